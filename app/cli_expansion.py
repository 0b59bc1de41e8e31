"""``standctl expansion``: candidate places for new stands and the coach's scores for them.

Commands: ``add`` (one candidate), ``import`` (a CSV file, all or nothing), ``list``,
``score`` (rank the open candidates against the best existing stands) and, for managers,
``accept`` / ``reject``. The services are :mod:`app.coach.expansion`.

:func:`add_commands` registers the group on ``standctl``'s parser. It receives
``app.cli``'s ``_command`` and ``_group`` helpers as arguments, and the handlers import the
output helpers of :mod:`app.cli` only when they run, so this module never imports
:mod:`app.cli` while it is being loaded (no import cycle whichever is imported first).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.coach import expansion
from app.models import CandidateStatus, LocationType

if TYPE_CHECKING:
    from app.cli import Context

Handler = Callable[["Context", argparse.Namespace], int]
CommandFn = Callable[..., argparse.ArgumentParser]
GroupFn = Callable[..., "argparse._SubParsersAction[Any]"]


# =========================================================================== input


def _datetime_arg(text: str) -> datetime:
    from app.cli import datetime_arg

    return datetime_arg(text)


def _k_arg(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= 50:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 50")
    return int(value)


def parse_attrs(texts: Sequence[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` options as a mapping; the service checks names and numbers."""
    from app.cli import CliError

    out: dict[str, str] = {}
    for text in texts or ():
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise CliError(
                f"{text!r} is not KEY=VALUE (for example footfall=1200)", field="attributes"
            )
        if key in out:
            raise CliError(f"the attribute {key} is given twice", field="attributes")
        out[key] = value
    return out


def _range(low: Decimal | None, high: Decimal | None) -> str:
    from app.cli import money

    if low is None or high is None:
        return ""
    return money(low) if money(low) == money(high) else f"{money(low)}–{money(high)}"


def _attrs_text(attributes: dict[str, float]) -> str:
    return ", ".join(f"{expansion.attribute_label(k)} {v:g}" for k, v in sorted(attributes.items()))


# =========================================================================== handlers


def _show_candidate(ctx: Context, row: expansion.CandidateRow) -> None:
    from app.cli import fields

    place = ", ".join(x for x in (row.address or "", row.postal_code or "", row.city or "") if x)
    ctx.out(
        fields(
            [
                ("Candidate", f"{row.name} ({row.status})"),
                ("ID", row.id),
                ("Type", row.location_type),
                ("Address", place),
                ("Coordinates", f"{row.latitude:.5f}, {row.longitude:.5f}"),
                ("Source", row.source),
                ("Attributes", _attrs_text(row.attributes)),
                ("Notes", row.notes),
            ]
        )
    )


def cmd_expansion_add(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK, PROG

    candidate = expansion.CandidateInput(
        name=args.name,
        latitude=args.lat,
        longitude=args.lon,
        location_type=args.type,
        address=args.address,
        city=args.city,
        postal_code=args.postal_code,
        country=args.country or "DE",
        attributes=parse_attrs(args.attrs),
        notes=args.notes or "",
    )
    row = ctx.backend.call(expansion.add_candidate, ctx.actor, candidate)
    if ctx.json:
        ctx.emit(row)
        return EXIT_OK
    _show_candidate(ctx, row)
    ctx.out(f"\nScore the open candidates with: {PROG} expansion score")
    return EXIT_OK


def cmd_expansion_import(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK, EXIT_REFUSED, PROG, to_json

    path = Path(args.file).expanduser()
    try:
        result = ctx.backend.call(expansion.import_candidates_csv, ctx.actor, path)
    except expansion.CandidateImportError as exc:
        one_line = " ".join(exc.message.split())
        print(f"{PROG}: error: {one_line}", file=ctx.stderr)
        for e in exc.errors:
            where = f" ({e.field})" if e.field else ""
            print(f"  line {e.line}{where}: {e.message}", file=ctx.stderr)
        if ctx.json:
            error = {
                "code": exc.code,
                "message": one_line,
                "field": exc.field,
                "rows": list(exc.errors),
            }
            print(to_json({"error": error}), file=ctx.stdout)
        return EXIT_REFUSED
    if ctx.json:
        ctx.emit(result)
        return EXIT_OK
    n = result.rows
    ctx.out(f"Imported {n} candidate{'s' if n != 1 else ''} from {path.name}.")
    ctx.out(f"\nScore them with: {PROG} expansion score")
    return EXIT_OK


def cmd_expansion_list(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK, table

    rows = ctx.backend.read(expansion.list_candidates, status=args.status)
    if ctx.json:
        ctx.emit(rows)
        return EXIT_OK
    if not rows:
        ctx.out("No candidates." if args.status == "all" else f"No {args.status} candidates.")
        return EXIT_OK
    ctx.out(
        table(
            ("Score", "Candidate", "Type", "City", "€/day", "Source", "Status", "ID"),
            [
                (
                    r.score,
                    r.name,
                    r.location_type,
                    r.city,
                    _range(r.expected_low, r.expected_high),
                    r.source,
                    r.status,
                    r.id,
                )
                for r in rows
            ],
        )
    )
    ctx.out(f"\n{len(rows)} candidate{'s' if len(rows) != 1 else ''}")
    return EXIT_OK


def _km(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 1000:.0f} m" if value < 1 else f"{value:.1f} km"


def cmd_expansion_score(ctx: Context, args: argparse.Namespace) -> int:
    from app.cli import EXIT_OK, money, table

    scores = ctx.backend.call(
        expansion.score_candidates,
        now=args.at or None,
        k=args.k,
        include_partner_leads=not args.no_leads,
    )
    if ctx.json:
        ctx.emit(scores)
        return EXIT_OK
    if not scores:
        ctx.out(
            "Nothing to score: add candidates (expansion add / import), and stands need "
            f"{expansion.MIN_HISTORY_DAYS} days of sales to compare them with."
        )
        return EXIT_OK
    ctx.out(
        f"{len(scores)} candidate{'s' if len(scores) != 1 else ''} against "
        f"{scores[0].reference_stands} stands (revenue per day over the last "
        f"{expansion.WINDOW_DAYS} days; analogues among the best of each type)"
    )
    ctx.out()
    ctx.out(
        table(
            ("#", "Score", "Candidate", "Type", "City", "Expected €/day", "Nearby", "Analogues"),
            [
                (
                    i,
                    s.score,
                    s.name,
                    s.location_type,
                    s.city,
                    _range(s.expected_low, s.expected_high),
                    f"-{s.cannibalisation:.0%}" if s.cannibalisation else "",
                    len(s.analogues),
                )
                for i, s in enumerate(scores, 1)
            ],
        )
    )
    for i, s in enumerate(scores, 1):
        ctx.out()
        ctx.out(f"{i}. {s.message}")
        gross = _range(s.gross_low, s.gross_high)
        line = f"   score {s.score}: analogues earn {gross}/day"
        if s.nearby:
            near = ", ".join(f"{n.name} {_km(n.distance_km)}" for n in s.nearby)
            line += f"; {s.cannibalisation:.0%} less for {near}"
        ctx.out(line)
        if s.unused_attributes:
            ctx.out(
                "   not compared (too few stands know it): "
                + ", ".join(expansion.attribute_label(a) for a in s.unused_attributes)
            )
        rows = [
            (
                a.name,
                a.location_type,
                money(a.revenue_per_day),
                f"{a.feature_distance:.2f}",
                _km(a.distance_km),
                f"{a.weight:.0%}",
            )
            for a in s.analogues
        ]
        body = table(("Analogue", "Type", "€/day", "Distance (sd)", "Away", "Weight"), rows)
        ctx.out("\n".join("   " + ln for ln in body.splitlines()))
    return EXIT_OK


def _decide(ctx: Context, args: argparse.Namespace, status: CandidateStatus) -> int:
    from app.cli import EXIT_OK

    row = ctx.backend.call(
        expansion.set_candidate_status,
        ctx.actor,
        args.candidate_id,
        status.value,
        reason=args.reason,
        stand_id=getattr(args, "stand", None),
    )
    if ctx.json:
        ctx.emit(row)
    else:
        ctx.out(f"{row.name} is {row.status}.")
    return EXIT_OK


def cmd_expansion_accept(ctx: Context, args: argparse.Namespace) -> int:
    return _decide(ctx, args, CandidateStatus.ACCEPTED)


def cmd_expansion_reject(ctx: Context, args: argparse.Namespace) -> int:
    return _decide(ctx, args, CandidateStatus.REJECTED)


# =========================================================================== parser


def add_commands(sub: argparse._SubParsersAction[Any], command: CommandFn, group: GroupFn) -> None:
    """Add the ``expansion`` group to ``standctl``'s top-level ``sub``parsers, using
    ``app.cli``'s ``_command`` and ``_group`` helpers (passed in: see the module docstring)."""
    exp = group(
        sub,
        "expansion",
        "candidate places for new stands, scored by the coach",
        "Collect candidate places for new stands (entered, imported from CSV, or partner "
        "leads: planned stands of partners not live yet) and score them against the best "
        "existing stands: expected revenue per day and the analogue stands behind it.",
    )
    p = command(
        exp,
        "add",
        "add a candidate place",
        "  standctl expansion add --name 'Kiosk Alexanderplatz' --lat 52.5219 --lon 13.4132 "
        "--type kiosk\n"
        "  standctl expansion add --name 'Apotheke am Ring' --lat 52.50 --lon 13.33 \\\n"
        "      --type pharmacy --city Berlin --attr footfall=1200 --attr area_m2=80",
        cmd_expansion_add,
        "Add a candidate place for a new stand. Name, coordinates and location type are "
        "required; attributes are optional numbers the coach compares with stands that "
        "have them: footfall_per_day (footfall), opening_hours_per_week (opening_hours), "
        "area_m2 (area), competitors_nearby (competitors), or any other name.",
    )
    p.add_argument("--name", required=True, help="what to call the place")
    p.add_argument("--lat", required=True, metavar="DEG", help="latitude, e.g. 52.5219")
    p.add_argument("--lon", required=True, metavar="DEG", help="longitude, e.g. 13.4132")
    p.add_argument(
        "--type", required=True, choices=[t.value for t in LocationType], help="location type"
    )
    p.add_argument("--address", help="street and number")
    p.add_argument("--city")
    p.add_argument("--postal-code")
    p.add_argument("--country", metavar="CC", help="two-letter country code (default DE)")
    p.add_argument(
        "--attr",
        dest="attrs",
        action="append",
        metavar="KEY=VALUE",
        help="a numeric attribute (repeat the option), e.g. footfall=1200",
    )
    p.add_argument("--notes", metavar="TEXT")

    p = command(
        exp,
        "import",
        "import candidate places from a CSV file (all or nothing)",
        "  standctl expansion import candidates.csv\n\n"
        "  name,address,city,latitude,longitude,location_type,footfall_per_day\n"
        "  Kiosk Alexanderplatz,Alexanderplatz 1,Berlin,52.5219,13.4132,kiosk,1200",
        cmd_expansion_import,
        "Import candidates from a CSV file whose first line names the columns: name, "
        "latitude, longitude and location_type are required; address, city, postal_code, "
        "country and notes are optional; any other column is a numeric attribute (empty "
        "where unknown). Commas, semicolons or tabs separate columns. Every row is checked "
        "first: if any row is wrong, each bad row is listed with its line number and "
        "nothing is imported.",
    )
    p.add_argument("file", metavar="FILE.csv")

    p = command(
        exp,
        "list",
        "list candidates with their latest score",
        "  standctl expansion list\n  standctl expansion list --status all",
        cmd_expansion_list,
        "List candidates, best scored first, with the expected revenue per day from the "
        "last `expansion score`.",
    )
    p.add_argument(
        "--status",
        default="open",
        choices=[*(s.value for s in CandidateStatus), "all"],
        help="which candidates (default %(default)s)",
    )

    p = command(
        exp,
        "score",
        "rank the open candidates against the best existing stands",
        "  standctl expansion score\n  standctl --json expansion score --k 3",
        cmd_expansion_score,
        "Score every open candidate (partner leads included): its k nearest analogues "
        "among the best existing stands of its type (standardised features: type, stands "
        "within 2 km, distance to the nearest stand, attributes), the expected revenue per "
        "day as their weighted 25–75 % range less a share for stands within 1 km, and a "
        "score from 0 to 100. Each result is kept as a coach insight.",
    )
    p.add_argument(
        "--k",
        type=_k_arg,
        default=expansion.DEFAULT_K,
        metavar="N",
        help="analogue stands per candidate (default %(default)s)",
    )
    p.add_argument(
        "--at",
        type=_datetime_arg,
        metavar="TIME",
        help="score as of this moment instead of now (ISO 8601)",
    )
    p.add_argument("--no-leads", action="store_true", help="do not bring in partner leads first")

    for name, handler, verb in (
        ("accept", cmd_expansion_accept, "accept"),
        ("reject", cmd_expansion_reject, "reject"),
    ):
        p = command(
            exp,
            name,
            f"{verb} an open candidate (managers)",
            f"  standctl --role manager expansion {name} CANDIDATE_ID --reason '...'",
            handler,
            f"{verb.capitalize()} an open candidate; its coach insight is closed.",
        )
        p.add_argument("candidate_id", metavar="CANDIDATE_ID")
        p.add_argument("--reason", metavar="TEXT")
        if name == "accept":
            p.add_argument(
                "--stand",
                metavar="STAND_ID",
                help="the stand opened for it (its attributes then describe that stand)",
            )
