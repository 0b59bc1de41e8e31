"""``standctl user``: the people and devices that may sign in to the server.

Commands: ``add`` (a user with a role and its scope), ``list``, ``revoke`` (disable a user,
revoking their tokens and devices), ``device`` (credentials for one device; the secret is
shown once) and ``password`` (set a new one). The services are :mod:`app.services.users`.
Whoever can open the server's database administers its users, so these commands do not
look at ``--role``.

Passwords are typed twice at a hidden prompt, or read as one line from standard input with
``--password-stdin`` (for scripts: ``printf '%s\\n' "$PW" | standctl user add ...``); never
as an argument, where other users of the machine could see it in the process list.

:func:`add_commands` registers the group on ``standctl``'s parser, like
:mod:`app.cli_expansion`: it receives ``app.cli``'s ``_command`` and ``_group`` helpers, and
the handlers import the output helpers of :mod:`app.cli` only when they run.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.errors import ValidationError
from app.models import Role
from app.services import users

if TYPE_CHECKING:
    from app.cli import Context

Handler = Callable[["Context", argparse.Namespace], int]
CommandFn = Callable[..., argparse.ArgumentParser]
GroupFn = Callable[..., "argparse._SubParsersAction[Any]"]


# =========================================================================== input


def read_password(username: str, *, from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ValidationError("There is no password on standard input.", field="password")
        return line.rstrip("\r\n")
    try:
        first = getpass.getpass(f"New password for {username}: ")
        second = getpass.getpass("Repeat the password: ")
    except EOFError:
        raise ValidationError(
            "No password was typed; use --password-stdin to pass it on standard input.",
            field="password",
        ) from None
    if first != second:
        raise ValidationError(
            "The two passwords do not match; nothing was changed.", field="password"
        )
    return first


def scope_text(row: users.UserRow) -> str:
    """What the user may see, in a few words."""
    if row.role is Role.ADMIN:
        return "everything"
    if row.role is Role.MANAGER:
        return f"region {row.region}"
    if row.role is Role.REP:
        return f"territory {row.territory}"
    return f"partner {row.partner_id}"


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


# =========================================================================== handlers


def _show_user(ctx: Context, row: users.UserRow) -> None:
    from app.cli import fields, local_time

    ctx.out(
        fields(
            [
                ("User", f"{row.username} ({row.role.value})"),
                ("ID", row.id),
                ("Name", row.display_name),
                ("Scope", scope_text(row)),
                ("Active", "yes" if row.active else f"no, disabled {local_time(row.disabled_at)}"),
                ("Devices", row.devices),
                ("Open tokens", row.open_tokens),
            ]
        )
    )


def cmd_user_add(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK, PROG

    password = read_password(args.username, from_stdin=args.password_stdin)
    row = ctx.backend.call(
        users.add_user,
        args.username,
        password,
        args.role,
        display_name=args.display_name,
        region=args.region,
        territory=args.territory,
        partner_id=args.partner,
    )
    if ctx.json:
        ctx.emit(row)
        return EXIT_OK
    _show_user(ctx, row)
    ctx.out(f"\nGive a device its own credentials with: {PROG} user device {row.username} NAME")
    return EXIT_OK


def cmd_user_list(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK, table

    rows = ctx.backend.call(users.list_users, include_disabled=not args.active)
    if ctx.json:
        ctx.emit(rows)
        return EXIT_OK
    if not rows:
        ctx.out("No users yet.")
        return EXIT_OK
    ctx.out(
        table(
            ("User", "Role", "Scope", "Active", "Devices", "Tokens"),
            [
                (r.username, r.role, scope_text(r), _yes_no(r.active), r.devices, r.open_tokens)
                for r in rows
            ],
        )
    )
    return EXIT_OK


def cmd_user_revoke(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK

    row = ctx.backend.call(users.revoke_user, args.username)
    if ctx.json:
        ctx.emit(row)
    else:
        ctx.out(
            f"{row.username} is disabled: they cannot sign in, and their tokens and devices "
            "are revoked."
        )
    return EXIT_OK


def cmd_user_device(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK, fields

    creds = ctx.backend.call(users.register_device, args.username, args.device_name)
    if ctx.json:
        ctx.emit(creds)
        ctx.warn("the device secret is shown only this once; store it on the device now")
        return EXIT_OK
    ctx.out(
        fields(
            [
                ("Device", f"{creds.name} of {creds.username}"),
                ("Device ID", creds.device_id),
                ("Secret", creds.secret),
            ]
        )
    )
    ctx.out("\nStore the secret on the device now: it is shown only this once.")
    return EXIT_OK


def cmd_user_revoke_device(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK

    ctx.backend.call(users.revoke_device, args.device_id)
    if ctx.json:
        ctx.emit({"device_id": args.device_id, "revoked": True})
    else:
        ctx.out(f"Device {args.device_id} is revoked: its credentials and tokens stop working.")
    return EXIT_OK


def cmd_user_password(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK

    password = read_password(args.username, from_stdin=args.password_stdin)
    row = ctx.backend.call(users.set_password, args.username, password)
    if ctx.json:
        ctx.emit(row)
    else:
        ctx.out(
            f"New password set for {row.username}; sign-ins with the old password are "
            "signed out (device tokens keep working)."
        )
    return EXIT_OK


# =========================================================================== parser


def _password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password as one line from standard input instead of prompting",
    )


def add_commands(sub: argparse._SubParsersAction[Any], command: CommandFn, group: GroupFn) -> None:
    """Add the ``user`` group to ``standctl``'s top-level ``sub``parsers, using ``app.cli``'s
    ``_command`` and ``_group`` helpers (passed in: see the module docstring)."""
    grp = group(
        sub,
        "user",
        "people and devices that may sign in to the server",
        "Manage who may sign in to the server: users with a role and its scope (an admin "
        "sees everything, a manager one region, a rep one territory, a partner user one "
        "partner's stands), their passwords and their devices' credentials.",
    )
    p = command(
        grp,
        "add",
        "add a user who may sign in to the server",
        "  standctl user add anna --role rep\n"
        "  standctl user add max --role manager --region Berlin --display-name 'Max Mustermann'\n"
        "  printf '%s\\n' \"$PW\" | standctl user add kiosk1 --role partner "
        "--partner PARTNER_ID --password-stdin",
        cmd_user_add,
        "Add a user with a role and its scope: a manager needs --region (the partners' "
        "region), a partner user needs --partner (the partner's id), a rep's territory (the "
        "stands' assigned rep) is the user name unless --territory says otherwise. The "
        f"password (at least {users.MIN_PASSWORD_LENGTH} characters) is typed twice at a "
        "hidden prompt, or read from standard input with --password-stdin.",
    )
    p.add_argument("username", metavar="NAME", help="user name: 3 to 60 of a-z, 0-9, . _ -")
    p.add_argument("--role", required=True, choices=[r.value for r in Role], help="the role")
    p.add_argument("--region", help="a manager's region")
    p.add_argument("--territory", help="a rep's territory (default: the user name)")
    p.add_argument("--partner", metavar="PARTNER_ID", help="a partner user's partner")
    p.add_argument("--display-name", metavar="TEXT", help="the name shown (default: NAME)")
    _password_stdin(p)

    p = command(
        grp,
        "list",
        "list the server's users",
        "  standctl user list\n  standctl --json user list --active",
        cmd_user_list,
        "List the users with their role, scope, and how many devices and open tokens each has.",
    )
    p.add_argument("--active", action="store_true", help="only users not disabled")

    p = command(
        grp,
        "revoke",
        "disable a user, revoking their tokens and devices",
        "  standctl user revoke anna",
        cmd_user_revoke,
        "Disable a user: they can no longer sign in, and every token and device credential "
        "of theirs stops working at once.",
    )
    p.add_argument("username", metavar="NAME")

    p = command(
        grp,
        "device",
        "give a user's device its own credentials (secret shown once)",
        "  standctl user device anna 'Tablet 7'",
        cmd_user_device,
        "Register a device for a user and print its id and secret, which the device signs "
        "in with. The secret is shown only this once: the server keeps only a digest of it.",
    )
    p.add_argument("username", metavar="NAME")
    p.add_argument("device_name", metavar="DEVICE_NAME", help="what to call the device")

    p = command(
        grp,
        "revoke-device",
        "revoke one device's credentials (a lost tablet), keeping the user",
        "  standctl user revoke-device 01936f6e-8a2b-7c3d-9e4f-5a6b7c8d9e0f",
        cmd_user_revoke_device,
        "Revoke a device: its id and secret, and every token it was given, stop working at "
        "once. The user and their other devices are not affected.",
    )
    p.add_argument("device_id", metavar="DEVICE_ID", help="as printed by 'standctl user device'")

    p = command(
        grp,
        "password",
        "set a user's password",
        "  standctl user password anna\n"
        "  printf '%s\\n' \"$PW\" | standctl user password anna --password-stdin",
        cmd_user_password,
        "Set a new password for a user. Tokens from password sign-ins are revoked; device "
        "credentials keep working.",
    )
    p.add_argument("username", metavar="NAME")
    _password_stdin(p)
