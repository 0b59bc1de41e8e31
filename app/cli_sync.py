"""``standctl sync``: one sync round with the server from the command line, the device's
sync status, linking the device to a server, and exporting unsent changes.

Exit status: 0 when the round completed and nothing is left to send; 2 when work is left
(the server could not be reached or refused, or some changes were rejected: ``--status``
lists them); 130 when Ctrl+C cancelled the round. The output says how a round that stopped
ended (offline, server busy, refused, ...), and ``--json`` gives it as ``round.state``.

Ctrl+C during a round cancels it at its next step: the batch on the wire is answered and
stored first, so what was sent and received is kept and the next round carries on. A second
Ctrl+C stops at once (still never inside a local transaction; an op whose answer was not
stored is sent again and answered as a duplicate).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.clock import utcnow
from app.errors import ValidationError
from app.paths import data_dir
from app.services import sync_device

if TYPE_CHECKING:
    from app.cli import Context

CommandFn = Callable[..., argparse.ArgumentParser]

EXAMPLES = """\
  standctl sync --link --server https://stands.example.com --user rep.anna
  standctl sync
  standctl sync --status
  standctl sync --export unsent.jsonl"""

PASSWORD_ENV = "STAND_OS_PASSWORD"
WORK_LEFT = 2
#: How a round that did not complete is introduced, by its state (``RoundResult.state``).
STOPPED = {
    "offline": "Offline",
    "busy": "Server busy",
    "refused": "Refused by the server",
    "not_linked": "Not linked",
    "cancelled": "Cancelled",
    "error": "Stopped",
}


def _server_url(ctx: Context, args: argparse.Namespace) -> str:
    url: str | None = args.server
    if not url:
        with ctx.backend.factory() as s, s.begin():
            url = sync_device.state(s).server_url
    if not url:
        raise ValidationError(
            "No server yet: link this device first with "
            "'standctl sync --link --server URL --user NAME'.",
            field="server",
        )
    if not url.startswith(("http://", "https://")):
        raise ValidationError("The server URL must start with http:// or https://.", field="server")
    return url.rstrip("/")


def _store(ctx: Context) -> Any:
    # The one place the command line reaches into the wire layer's credential store
    # (declared in pyproject's import-linter contract).
    from sync.credentials import CredentialStore

    return CredentialStore(ctx.folder or data_dir())


@contextlib.contextmanager
def interrupt_cancels(cancel: Callable[[], None], say: Callable[[str], None]) -> Iterator[None]:
    """While inside, the first Ctrl+C (SIGINT) calls ``cancel`` and ``say``s so; a second one
    raises :class:`KeyboardInterrupt` as usual. Outside the main thread, where signals cannot
    be handled, nothing changes."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        # (None: a handler not installed from Python, which could not be put back.)
        yield
        return

    def first(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cancel()
        # Said from a signal handler: should the main thread be writing to the same stream
        # at that instant, the buffered writer refuses a re-entrant call; the cancel stands.
        with contextlib.suppress(RuntimeError):
            say("Stopping after the current step; press Ctrl+C again to stop at once.")

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_sync(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_INTERRUPTED
    from sync import client

    factory = ctx.backend.factory
    if args.export:
        path = Path(args.export)
        with factory() as s, s.begin():
            count = sync_device.write_export(s, str(path))
        ctx.out(f"Wrote {count} unsent or rejected change(s) to {path}.")
        return 0
    if args.status:
        with factory() as s, s.begin():
            st = sync_device.status(s)
        if ctx.json:
            ctx.emit(st)
        else:
            oldest = client.age(st.oldest_unsent_at, utcnow())
            ctx.out(f"{st.unsent} unsent" + (f" (oldest {oldest})" if oldest else ""))
            ctx.out(f"{st.rejected} rejected")
            ctx.out(f"Last synced: {st.last_ok_at or 'never'}; feed cursor {st.cursor}")
            if st.last_error:
                ctx.out(f"Last error: {st.last_error}")
        return 0 if st.unsent == 0 and st.rejected == 0 else WORK_LEFT
    url = _server_url(ctx, args)
    store = _store(ctx)
    if args.link:
        if not args.user:
            raise ValidationError("Give the user name to sign in with (--user).", field="user")
        password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"Password for {args.user}: ")
        creds = client.link_device(url, args.user, password, args.device_name)
        store.save(creds)
        with factory() as s, s.begin():
            sync_device.state(s).server_url = url
        ctx.out(f"Linked this device to {url} as {creds.username} ({store.describe()}).")
        return 0
    creds = store.load(url)
    if creds is None:
        raise ValidationError(
            f"This device is not linked to {url}: run "
            f"'standctl sync --link --server {url} --user NAME' first.",
            field="server",
        )

    def progress(stage: str, done: int, total: int) -> None:
        if not ctx.json and stage == "pull" and total:
            print(f"  pulled up to {done} of {total}", file=ctx.stderr)

    def say(text: str) -> None:
        print(text, file=ctx.stderr, flush=True)

    with (
        client.SyncClient(
            factory, url, credentials=creds, on_progress=progress, push_batch_max=client.GROW_TO
        ) as c,
        interrupt_cancels(c.cancel, say),
    ):
        result = c.round(push=not args.pull_only, pull=not args.push_only)
    with factory() as s, s.begin():
        st = sync_device.status(s)
    if ctx.json:
        ctx.emit({"round": result.__dict__, "status": st})
    else:
        ctx.out(
            f"Sent {result.pushed} change(s) ({result.rejected} rejected), "
            f"received {result.pulled}."
        )
        if result.error:
            ctx.out(f"{STOPPED.get(result.state, 'Stopped')}: {result.error}")
            if result.state == "refused" and result.status == 401:
                ctx.out(
                    "The server no longer accepts this device's sign-in: link it again with "
                    f"'standctl sync --link --server {url} --user NAME'."
                )
        if st.unsent or st.rejected:
            ctx.out(f"Left: {st.unsent} unsent, {st.rejected} rejected ('standctl sync --status').")
    if result.state == "cancelled":
        return EXIT_INTERRUPTED
    return 0 if result.complete and st.unsent == 0 and st.rejected == 0 else WORK_LEFT


def add_commands(sub: argparse._SubParsersAction[Any], command: CommandFn) -> None:
    p = command(
        sub,
        "sync",
        "send this device's changes to the server and fetch everyone else's",
        EXAMPLES,
        cmd_sync,
        "One sync round: push the unsent changes, then pull the changes of others. "
        "Link the device to a server once with --link.",
    )
    p.add_argument("--server", metavar="URL", help="the server (default: the linked one)")
    p.add_argument("--link", action="store_true", help="sign in and register this device")
    p.add_argument("--user", help="with --link: the user name to sign in with")
    p.add_argument(
        "--device-name", default="Stand OS desktop", help="with --link: how the server lists it"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--push-only", action="store_true", help="only send changes")
    mode.add_argument("--pull-only", action="store_true", help="only fetch changes")
    mode.add_argument("--status", action="store_true", help="show unsent and rejected changes")
    mode.add_argument(
        "--export", metavar="FILE", help="write unsent and rejected changes (JSON lines)"
    )
