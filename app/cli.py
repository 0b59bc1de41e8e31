"""``standctl``: the Stand Program OS command line.

Everything the desktop app does to the local database can be scripted here: create or
migrate the database, generate demo data, list and inspect stands, record sales and counts,
run refills through their lifecycle, onboard partners, manage loyalty points and payouts,
show performance KPIs (``kpi``) and write PDF reports (``report``), and verify the stock
ledger. Every action goes through :mod:`app.services` (via
:class:`app.backend.Backend`), so the rules, the change log and the error messages are the
same as in the GUI.

Output is a readable table for people, or JSON on stdout with ``--json`` (nothing else is
written to stdout then). Exit codes: 0 success, 1 ``verify`` found mismatches or an
unexpected error happened, 2 the input or the action was refused (one line on stderr:
``standctl: error: <message>``).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import importlib
import json
import os
import re
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, TextIO

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from app import kpi
from app.backend import Backend
from app.cli_expansion import add_commands as add_expansion_commands
from app.cli_server import add_commands as add_server_commands
from app.cli_sync import add_commands as add_sync_commands
from app.cli_users import add_commands as add_user_commands
from app.clock import utcnow
from app.db import SessionFactory, current_revision, head_revision, open_db
from app.errors import DomainError
from app.kpi import text as kpi_text
from app.models import (
    ChangeLog,
    LocationType,
    OpStatus,
    Package,
    PaymentMethod,
    PayoutStatus,
    Product,
    RefillStatus,
    Role,
    StandLocation,
    StandPartner,
    StandStatus,
)
from app.paths import DB_FILENAME, data_dir, database_url
from app.reference import seed_reference_data
from app.rules import round_money
from app.services import (
    catalog,
    inventory,
    loyalty,
    onboarding,
    payouts,
    queries,
    refills,
    sales,
)
from app.services.base import Actor, device_id, transactional

PROG = "standctl"
ENV_DB_URL = "STAND_OS_DB_URL"
ENV_USER = "STAND_OS_USER"
ENV_ROLE = "STAND_OS_ROLE"
DEFAULT_ROLE = Role.REP

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


# =========================================================================== errors


class CliError(Exception):
    """Bad command-line input (syntax, dates, options): exit 2 with one line."""

    code = "usage_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class _HelpExit(Exception):
    """``--help`` or ``--version`` was printed; leave with this code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Formatter(argparse.HelpFormatter):
    """Wraps prose paragraphs to the terminal; keeps indented lines (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.split("\n\n"):
            lines = para.splitlines()
            if any(ln.startswith(" ") for ln in lines) or para.startswith("examples:"):
                out.append("\n".join(indent + ln for ln in lines))
            else:
                out.append(
                    textwrap.fill(
                        " ".join(para.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                        break_long_words=False,
                    )
                )
        return "\n\n".join(out)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting, so every error
    leaves as one line (and as JSON with ``--json``)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _HelpExit(status)


# =========================================================================== output


def _json_default(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def to_json(value: object) -> str:
    """JSON text for ``value``: Decimal as string, times ISO 8601, dataclasses as objects."""
    return json.dumps(value, default=_json_default, indent=2, ensure_ascii=False)


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{round_money(value):.2f}"


def percent(rate: Decimal) -> str:
    text = f"{rate * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def local_time(value: datetime | None) -> str:
    """A stored UTC time shown in this computer's local time."""
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


_NUMBER_RE = re.compile(r"^[+-]?\d+(\.\d+)?%?$")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An aligned plain-text table; numbers are right-aligned."""
    body = [[_cell(v) for v in row] for row in rows]
    numeric = [
        any(r[i] for r in body) and all(_NUMBER_RE.match(r[i]) for r in body if r[i])
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in body)
    return "\n".join(out)


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """``label: value`` lines with the values aligned."""
    width = max(len(label) for label, _ in pairs)
    return "\n".join(
        f"{label + ':':<{width + 1}} {_cell(value)}".rstrip() for label, value in pairs
    )


# =========================================================================== context


@dataclass
class Context:
    """What every command gets: the parsed options, the actor and the open database."""

    json: bool
    debug: bool
    user: str
    role: Role
    url: str
    location: str
    folder: Path | None
    stdout: TextIO
    stderr: TextIO
    _backend: Backend | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.user, self.role)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = open_backend(self.url, self.location)
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def emit(self, data: object) -> None:
        print(to_json(data), file=self.stdout)

    def warn(self, message: str) -> None:
        print(f"{PROG}: warning: {message}", file=self.stderr)


@transactional
def _seed_if_missing(session: Session) -> None:
    if session.scalar(select(func.count()).select_from(Package)) == 0:
        seed_reference_data(session)


def open_backend(url: str, location: str) -> Backend:
    """Open (create or migrate) the database and make sure its reference data exists."""
    try:
        factory = open_db(url)
    except ArgumentError as exc:
        raise CliError(f"cannot use database URL {url!r}: {exc}", field="db_url") from None
    backend = Backend(factory, location=location)
    backend.call(_seed_if_missing)
    return backend


def describe_url(url: str) -> str:
    """The file path of a SQLite URL, else the URL with its password hidden."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def resolve_database(args: argparse.Namespace, *, demo: bool) -> tuple[str, Path | None]:
    """The database URL and (for a data folder) the folder, by the documented precedence."""
    explicit_url: str | None = args.db_url
    explicit_dir: str | None = args.data_dir
    if explicit_url:
        if args.demo:
            raise CliError(
                "--demo and --db-url cannot be combined; the demo data has its own folder",
                field="db_url",
            )
        return explicit_url, None
    env_url = os.environ.get(ENV_DB_URL, "").strip()
    if env_url and not explicit_dir and not demo:
        return env_url, None
    if explicit_dir:
        base = data_dir(explicit_dir)
        # app.paths.data_dir() ignores demo=True for an explicit folder; keep demo data
        # apart anyway, the same way it does for STAND_OS_DATA_DIR.
        folder = base / "demo" if demo else base
    else:
        folder = data_dir(demo=demo)
    return database_url(folder), folder


def default_user() -> str:
    env = os.environ.get(ENV_USER, "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


def default_role() -> Role:
    env = os.environ.get(ENV_ROLE, "").strip().lower()
    if not env:
        return DEFAULT_ROLE
    try:
        return Role(env)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise CliError(
            f"{ENV_ROLE}={env!r} is not a role; use one of: {roles}", field="role"
        ) from None


# =========================================================================== input parsing

_QTY_RE = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class QtyArg:
    """One ``PRODUCT=QTY[@PRICE]`` argument: a product by id, SKU or barcode."""

    ref: str
    quantity: int
    price: str | None
    text: str


def parse_qty(text: str, *, allow_price: bool = False) -> QtyArg:
    example = "SKU=QTY@PRICE" if allow_price else "SKU=QTY"
    ref, sep, rest = text.rpartition("=")
    ref = ref.strip()
    if not sep or not ref:
        raise CliError(f"{text!r} is not {example} (for example SKU-001=2)", field="lines")
    qty_text, at, price = rest.partition("@")
    qty_text, price = qty_text.strip(), price.strip()
    if at and not allow_price:
        raise CliError(f"{text!r}: a price (@PRICE) is not accepted here", field="lines")
    if at and not price:
        raise CliError(f"{text!r}: the price after @ is missing", field="lines")
    if not _QTY_RE.match(qty_text):
        raise CliError(
            f"{text!r}: the quantity must be a whole number, not {qty_text!r}", field="lines"
        )
    quantity = int(qty_text)
    if quantity < 0:
        raise CliError(f"{text!r}: the quantity must not be negative", field="lines")
    return QtyArg(ref, quantity, price if at else None, text)


def parse_qtys(texts: Sequence[str], *, allow_price: bool = False) -> list[QtyArg]:
    items = [parse_qty(t, allow_price=allow_price) for t in texts]
    seen: set[str] = set()
    for item in items:
        if item.ref in seen and not allow_price:
            raise CliError(f"{item.ref} is listed twice", field="lines")
        seen.add(item.ref)
    return items


def date_arg(text: str) -> date:
    """argparse type: a calendar date, YYYY-MM-DD."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def datetime_arg(text: str) -> datetime:
    """argparse type: a moment, ISO 8601; without an offset it is this computer's local time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; use YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more."""
    if not _QTY_RE.match(text.strip()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


# =========================================================================== shared helpers


@transactional
def _product_ids(session: Session, refs: Sequence[str]) -> list[str]:
    return [onboarding.resolve_product(session, ref).id for ref in refs]


def resolve_quantities(ctx: Context, items: Sequence[QtyArg]) -> dict[str, int]:
    """``PRODUCT=QTY`` arguments as a mapping of product id to quantity."""
    ids = ctx.backend.call(_product_ids, [i.ref for i in items])
    out: dict[str, int] = {}
    for pid, item in zip(ids, items, strict=True):
        if pid in out:
            raise CliError(f"{item.ref} names a product that is already listed", field="lines")
        out[pid] = item.quantity
    return out


def inventory_labels(ctx: Context, stand_id: str) -> dict[str, queries.InventoryRow]:
    return stand_labels(ctx, stand_id)[1]


def stand_labels(ctx: Context, stand_id: str) -> tuple[str, dict[str, queries.InventoryRow]]:
    """The stand's name and its inventory rows by product id (SKUs and names for output)."""
    detail = ctx.backend.read(queries.stand_detail, stand_id)
    return detail.stand.name, {row.product_id: row for row in detail.inventory}


def _label(labels: Mapping[str, queries.InventoryRow], product_id: str) -> tuple[str, str]:
    row = labels.get(product_id)
    return (row.sku, row.name) if row else (product_id, "")


# =========================================================================== db


@transactional
def _db_counts(session: Session) -> dict[str, object]:
    def count(model: type[Any], *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return {
        "device_id": device_id(session),
        "stands": count(StandLocation),
        "partners": count(StandPartner),
        "products": count(Product),
        "pending_ops": count(ChangeLog, ChangeLog.status == OpStatus.PENDING),
    }


def _revision(factory: SessionFactory) -> str | None:
    return current_revision(factory.kw["bind"])


def cmd_db_upgrade(ctx: Context, args: argparse.Namespace) -> int:
    revision = ctx.backend.with_factory(_revision)
    data = {"database": describe_url(ctx.url), "revision": revision, "head": head_revision()}
    if ctx.json:
        ctx.emit(data)
    else:
        latest = " (the latest)" if revision == data["head"] else ""
        ctx.out(f"Database {data['database']} is at revision {revision}{latest}.")
    return EXIT_OK


def cmd_db_info(ctx: Context, args: argparse.Namespace) -> int:
    revision = ctx.backend.with_factory(_revision)
    counts = ctx.backend.call(_db_counts)
    data: dict[str, object] = {"database": describe_url(ctx.url), "revision": revision, **counts}
    if ctx.json:
        ctx.emit(data)
    else:
        ctx.out(
            fields(
                [
                    ("Database", data["database"]),
                    ("Revision", revision),
                    ("Device id", counts["device_id"]),
                    ("Stands", counts["stands"]),
                    ("Partners", counts["partners"]),
                    ("Products", counts["products"]),
                    ("Pending ops", counts["pending_ops"]),
                ]
            )
        )
    return EXIT_OK


# =========================================================================== demo


class _Progress:
    """Progress on stderr: one updating line on a terminal, nothing otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.width = 0

    def __call__(self, phase: str, fraction: float) -> None:
        """The demo generator's progress: a phase name and how far it is (0..1)."""
        if not self.enabled:
            return
        text = f"{phase} {fraction:.0%}"
        line = text[:100]
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = max(self.width, len(line))

    def done(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _remove_database_files(folder: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = folder / f"{DB_FILENAME}{suffix}"
        if path.exists():
            path.unlink()


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module("app.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "app.demo":
            raise
        raise CliError("the demo generator (app.demo) is not available in this build") from None
    generate: Callable[..., Any] | None = getattr(module, "generate_demo", None)
    if generate is None:
        raise CliError("the demo generator (app.demo.generate_demo) is not available")
    if args.reset:
        if ctx.folder is None:
            raise CliError("--reset only works on the demo data folder, not with --db-url")
        _remove_database_files(ctx.folder)
    if ctx.backend.read(queries.list_stands, limit=1):
        raise CliError(
            f"the demo database {describe_url(ctx.url)} already has data; "
            "add --reset to generate it afresh"
        )
    progress = _Progress(ctx.stderr)
    try:
        summary = ctx.backend.with_factory(
            generate, stands=args.stands, days=args.days, seed=args.seed, progress=progress
        )
    finally:
        progress.done()
    if ctx.json:
        ctx.emit({"database": describe_url(ctx.url), "summary": summary})
        return EXIT_OK
    pairs: list[tuple[str, object]] = [("Database", describe_url(ctx.url))]
    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        for name, value in dataclasses.asdict(summary).items():
            label = name.replace("_", " ").capitalize()
            pairs.append((label, f"{value:.1f} s" if name == "elapsed_seconds" else value))
    else:
        pairs.append(("Summary", summary))
    ctx.out(fields(pairs))
    if ctx.folder is not None and not args.data_dir:
        ctx.out(f"\nLook at it with: {PROG} --demo stands")
    return EXIT_OK


# =========================================================================== stands


STAND_COLUMNS = (
    "Name",
    "City",
    "Partner",
    "Type",
    "Status",
    "Rep",
    "SKUs",
    "Units",
    "Low",
    "Out",
    "Refills",
    "Attention",
    "ID",
)


def cmd_stands(ctx: Context, args: argparse.Namespace) -> int:
    rows = ctx.backend.read(
        queries.list_stands,
        search=args.search,
        status=args.status,
        partner_id=args.partner,
        rep=args.rep,
        location_type=args.type,
        needs_attention=True if args.attention else None,
        order_by=args.sort,
        descending=args.desc,
        limit=args.limit,
    )
    if ctx.json:
        ctx.emit(rows)
        return EXIT_OK
    if not rows:
        ctx.out("No stands match.")
        return EXIT_OK
    ctx.out(
        table(
            STAND_COLUMNS,
            [
                (
                    r.name,
                    r.city,
                    r.partner_name,
                    r.location_type,
                    r.status,
                    r.assigned_rep,
                    r.sku_count,
                    r.units_on_hand,
                    r.low_count,
                    r.out_count,
                    r.open_refills,
                    "!" if r.needs_attention else "",
                    r.id,
                )
                for r in rows
            ],
        )
    )
    ctx.out(f"\n{len(rows)} stand{'s' if len(rows) != 1 else ''}")
    return EXIT_OK


def cmd_stand(ctx: Context, args: argparse.Namespace) -> int:
    d = ctx.backend.read(queries.stand_detail, args.stand_id)
    if ctx.json:
        data = dataclasses.asdict(d)
        for row, obj in zip(data["inventory"], d.inventory, strict=True):
            row["state"] = obj.state
        ctx.emit(data)
        return EXIT_OK
    s = d.stand
    ctx.out(
        fields(
            [
                ("Stand", f"{s.name} ({s.status})"),
                ("ID", s.id),
                ("Partner", f"{s.partner_name} ({s.partner_id})"),
                ("Package", d.package_name),
                ("Tier", d.tier_name),
                ("Loyalty balance", f"{d.loyalty_balance} points"),
                ("Address", ", ".join(x for x in (d.address, d.postal_code or "", s.city) if x)),
                (
                    "Coordinates",
                    ""
                    if d.latitude is None or d.longitude is None
                    else f"{d.latitude:.5f}, {d.longitude:.5f}",
                ),
                ("Type", s.location_type),
                ("Rep", s.assigned_rep),
                ("Capacity", d.capacity_units),
                ("Time zone", d.timezone),
                ("Payment ref", d.payment_reference),
                ("QR payload", d.qr_payload),
                ("Open refills", s.open_refills),
                ("Last counted", s.last_counted_at or "never"),
                ("Needs attention", "yes" if s.needs_attention else "no"),
            ]
        )
    )
    ctx.out()
    ctx.out(
        table(
            (
                "SKU",
                "Product",
                "Category",
                "On hand",
                "Par",
                "Reorder",
                "Capacity",
                "Price",
                "State",
            ),
            [
                (
                    i.sku,
                    i.name,
                    i.category,
                    i.on_hand,
                    i.par_level,
                    i.reorder_point,
                    i.capacity,
                    i.list_price,
                    i.state,
                )
                for i in d.inventory
            ],
        )
    )
    return EXIT_OK


# =========================================================================== sales


def cmd_sale_record(ctx: Context, args: argparse.Namespace) -> int:
    items = parse_qtys(args.lines, allow_price=True)
    lines = [sales.SaleLine(i.ref, i.quantity, i.price) for i in items]
    result = ctx.backend.call(
        sales.record_sale,
        ctx.actor,
        args.stand_id,
        lines,
        args.pay,
        occurred_at=args.at,
        order_id=args.order_id,
    )
    for o in result.oversold:
        ctx.warn(
            f"sold {o.quantity} x {o.name} but only {o.expected_on_hand} were expected "
            "on hand; the sale is recorded, a count will correct the stock"
        )
    if result.duplicate:
        ctx.warn(f"order {result.order_id} was already recorded; nothing changed")
    if ctx.json:
        ctx.emit(result)
        return EXIT_OK
    labels = inventory_labels(ctx, result.stand_id)
    ctx.out(
        fields(
            [
                ("Order", result.order_id),
                ("Total", money(result.total)),
                ("Payment", args.pay),
                ("Points earned", result.points_earned),
            ]
        )
    )
    ctx.out()
    ctx.out(
        table(
            ("SKU", "Product", "On hand after"),
            [(*_label(labels, pid), qty) for pid, qty in result.stock_after.items()],
        )
    )
    return EXIT_OK


def cmd_sale_void(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.backend.call(sales.void_sale, ctx.actor, args.order_id, reason=args.reason)
    if ctx.json:
        ctx.emit(result)
    else:
        ctx.out(
            fields(
                [
                    ("Voided order", result.voided_order_id),
                    ("Void order", result.void_order_id),
                    ("Total", money(result.total)),
                    ("Points reversed", result.points_reversed),
                ]
            )
        )
    return EXIT_OK


# =========================================================================== counts


def cmd_count(ctx: Context, args: argparse.Namespace) -> int:
    counts = resolve_quantities(ctx, parse_qtys(args.lines))
    result = ctx.backend.call(
        inventory.record_count, ctx.actor, args.stand_id, counts, counted_at=args.at, note=args.note
    )
    if ctx.json:
        ctx.emit({**dataclasses.asdict(result), "total_variance": result.total_variance})
        return EXIT_OK
    ctx.out(f"Count {result.snapshot_id}")
    ctx.out()
    ctx.out(
        table(
            ("SKU", "Product", "Expected", "Counted", "Variance"),
            [
                (
                    ln.sku,
                    ln.name,
                    ln.expected,
                    ln.counted,
                    f"{ln.variance:+d}" if ln.variance else "0",
                )
                for ln in result.lines
            ],
        )
    )
    ctx.out(f"\nTotal variance: {result.total_variance:+d}")
    return EXIT_OK


# =========================================================================== refills


def show_refill(ctx: Context, result: refills.RefillResult) -> int:
    if result.discrepancies:
        ctx.warn(
            f"the received quantities differ from the delivery; "
            f"{len(result.discrepancies)} discrepancy(ies) opened for a manager: "
            + ", ".join(result.discrepancies)
        )
    if result.duplicate:
        ctx.warn(f"refill {result.refill_id} was already requested; nothing changed")
    if ctx.json:
        ctx.emit(result)
        return EXIT_OK
    name = stand_labels(ctx, result.stand_id)[0]
    ctx.out(
        fields(
            [
                ("Refill", result.refill_id),
                ("Stand", f"{name} ({result.stand_id})"),
                ("Status", result.status),
                ("Total", money(result.total)),
            ]
        )
    )
    ctx.out()
    ctx.out(
        table(
            ("SKU", "Product", "Requested", "Approved", "Delivered", "Received", "Price"),
            [
                (
                    ln.sku,
                    ln.name,
                    ln.requested,
                    ln.approved,
                    ln.delivered,
                    ln.received,
                    ln.unit_price,
                )
                for ln in result.lines
            ],
        )
    )
    return EXIT_OK


def cmd_refill_request(ctx: Context, args: argparse.Namespace) -> int:
    items = parse_qtys(args.lines, allow_price=True)
    if len({i.ref for i in items}) != len(items):
        raise CliError("a product is listed twice", field="lines")
    quantities = {i.ref: i.quantity for i in items} if items else None
    prices = {i.ref: i.price for i in items if i.price is not None} or None
    result = ctx.backend.call(
        refills.request_refill,
        ctx.actor,
        args.stand_id,
        quantities,
        prices=prices,
        note=args.note,
        refill_id=args.refill_id,
    )
    return show_refill(ctx, result)


def _optional_quantities(ctx: Context, texts: Sequence[str]) -> dict[str, int] | None:
    return resolve_quantities(ctx, parse_qtys(texts)) if texts else None


def cmd_refill_approve(ctx: Context, args: argparse.Namespace) -> int:
    qty = _optional_quantities(ctx, args.lines)
    return show_refill(
        ctx, ctx.backend.call(refills.approve_refill, ctx.actor, args.refill_id, qty)
    )


def cmd_refill_schedule(ctx: Context, args: argparse.Namespace) -> int:
    return show_refill(
        ctx,
        ctx.backend.call(
            refills.schedule_refill, ctx.actor, args.refill_id, args.date, args.dealer
        ),
    )


def cmd_refill_deliver(ctx: Context, args: argparse.Namespace) -> int:
    qty = _optional_quantities(ctx, args.lines)
    result = ctx.backend.call(
        refills.deliver_refill,
        ctx.actor,
        args.refill_id,
        qty,
        more_to_come=args.more_to_come,
    )
    code = show_refill(ctx, result)
    if not ctx.json and result.status == RefillStatus.SCHEDULED:
        done = sum(ln.delivered or 0 for ln in result.lines)
        approved = sum(ln.approved or 0 for ln in result.lines)
        ctx.out(
            f"\nPartly delivered: {done} of {approved} units; record the rest with "
            f"`standctl refill deliver {result.refill_id}`."
        )
    return code


def cmd_refill_confirm(ctx: Context, args: argparse.Namespace) -> int:
    qty = _optional_quantities(ctx, args.lines)
    return show_refill(
        ctx, ctx.backend.call(refills.confirm_refill, ctx.actor, args.refill_id, qty)
    )


def cmd_refill_reject(ctx: Context, args: argparse.Namespace) -> int:
    return show_refill(
        ctx, ctx.backend.call(refills.reject_refill, ctx.actor, args.refill_id, args.reason)
    )


def cmd_refill_cancel(ctx: Context, args: argparse.Namespace) -> int:
    return show_refill(
        ctx, ctx.backend.call(refills.cancel_refill, ctx.actor, args.refill_id, args.reason)
    )


def cmd_refill_resolve(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.backend.call(
        refills.resolve_discrepancy,
        ctx.actor,
        args.discrepancy_id,
        accept_received=args.accept_received,
        note=args.note,
    )
    if ctx.json:
        ctx.emit(result)
    else:
        ctx.out(
            fields(
                [
                    ("Discrepancy", result.discrepancy_id),
                    ("Status", result.status),
                    ("Stock correction", result.movement_id or "none"),
                ]
            )
        )
    return EXIT_OK


def cmd_refill_list(ctx: Context, args: argparse.Namespace) -> int:
    rows = ctx.backend.read(
        queries.list_refills, status=args.status, stand_id=args.stand, limit=args.limit
    )
    if ctx.json:
        ctx.emit(rows)
        return EXIT_OK
    if not rows:
        ctx.out("No refills match.")
        return EXIT_OK
    ctx.out(
        table(
            ("Stand", "Status", "Lines", "Total", "Requested by", "Requested", "Scheduled", "ID"),
            [
                (
                    r.stand_name,
                    r.status,
                    r.line_count,
                    r.total,
                    r.requested_by,
                    r.requested_at,
                    r.scheduled_for,
                    r.id,
                )
                for r in rows
            ],
        )
    )
    return EXIT_OK


def cmd_refill_suggest(ctx: Context, args: argparse.Namespace) -> int:
    suggestion = ctx.backend.read(refills.suggest_refill, args.stand_id)
    labels = inventory_labels(ctx, args.stand_id)
    if ctx.json:
        ctx.emit(
            [
                {"product_id": pid, "sku": _label(labels, pid)[0], "quantity": qty}
                for pid, qty in suggestion.items()
            ]
        )
        return EXIT_OK
    if not suggestion:
        ctx.out("Every product is at or above par; nothing to refill.")
        return EXIT_OK
    rows = []
    for pid, qty in suggestion.items():
        inv = labels.get(pid)
        rows.append(
            (
                *_label(labels, pid),
                inv.on_hand if inv else None,
                inv.par_level if inv else None,
                qty,
            )
        )
    ctx.out(table(("SKU", "Product", "On hand", "Par", "Suggested"), rows))
    sample = " ".join(f"{r[0]}={r[4]}" for r in rows[:3])
    ctx.out(
        f"\nRequest it with: {PROG} refill request {args.stand_id}  (or list quantities, "
        f"e.g. {sample})"
    )
    return EXIT_OK


# =========================================================================== partners


STAND_OPTION_DESTS = (
    "stand_name",
    "address",
    "city",
    "type",
    "capacity",
    "lat",
    "lon",
    "postal_code",
    "country",
    "rep",
    "timezone",
    "products",
)
REQUIRED_STAND_OPTIONS = (
    ("stand_name", "--stand-name"),
    ("address", "--address"),
    ("city", "--city"),
    ("type", "--type"),
    ("capacity", "--capacity"),
)


def stand_input(args: argparse.Namespace) -> onboarding.StandInput:
    missing = [flag for dest, flag in REQUIRED_STAND_OPTIONS if getattr(args, dest) is None]
    if missing:
        raise CliError(f"a stand needs {', '.join(missing)}", field="stand")
    return onboarding.StandInput(
        name=args.stand_name,
        address=args.address,
        city=args.city,
        location_type=args.type,
        capacity_units=args.capacity,
        postal_code=args.postal_code,
        country=args.country or "DE",
        latitude=args.lat,
        longitude=args.lon,
        assigned_rep=args.rep,
        timezone=args.timezone or onboarding.DEFAULT_TIMEZONE,
        products=args.products or None,
    )


def show_stand_created(ctx: Context, created: onboarding.StandCreated) -> list[tuple[str, object]]:
    return [
        ("Stand", f"{created.name} ({created.stand_id})"),
        ("Payment ref", created.payment_reference),
        ("QR payload", created.qr_payload),
        ("Products", len(created.product_ids)),
    ]


def cmd_partner_onboard(ctx: Context, args: argparse.Namespace) -> int:
    partner = onboarding.PartnerInput(
        name=args.name,
        contact_name=args.contact,
        package_code=args.package,
        email=args.email,
        phone=args.phone,
        region=args.region,
        payout_method=args.payout_method,
        payout_account=args.payout_account,
        notes=args.notes or "",
    )
    wants_stand = any(getattr(args, d) not in (None, []) for d in STAND_OPTION_DESTS)
    stand = stand_input(args) if wants_stand else None
    result = ctx.backend.call(onboarding.onboard_partner, ctx.actor, partner, stand)
    if ctx.json:
        ctx.emit(result)
        return EXIT_OK
    pairs: list[tuple[str, object]] = [
        ("Partner", result.partner_id),
        ("Package", result.package_code),
        ("Tier", result.tier_code),
        ("Status", "onboarding"),
    ]
    if result.stand is not None:
        pairs.extend(show_stand_created(ctx, result.stand))
    ctx.out(fields(pairs))
    ctx.out(f"\nActivate with: {PROG} loyalty activate {result.partner_id}")
    return EXIT_OK


def cmd_partner_add_stand(ctx: Context, args: argparse.Namespace) -> int:
    created = ctx.backend.call(onboarding.add_stand, ctx.actor, args.partner_id, stand_input(args))
    if ctx.json:
        ctx.emit(created)
    else:
        ctx.out(fields([("Partner", created.partner_id), *show_stand_created(ctx, created)]))
    return EXIT_OK


# =========================================================================== loyalty


def show_points(ctx: Context, result: loyalty.PointsResult, what: str) -> int:
    if ctx.json:
        ctx.emit(result)
    else:
        ctx.out(f"{what}: {result.points:+d} points; balance {result.balance} points.")
    return EXIT_OK


def cmd_loyalty_balance(ctx: Context, args: argparse.Namespace) -> int:
    points = ctx.backend.read(loyalty.balance, args.partner_id)
    status = ctx.backend.read(loyalty.tier_status, args.partner_id)
    if ctx.json:
        ctx.emit({"partner_id": args.partner_id, "balance": points, "tier": status})
        return EXIT_OK
    nxt = (
        "top tier reached"
        if status.next_tier_name is None
        else f"{status.points_to_next} points to {status.next_tier_name}"
    )
    ctx.out(
        fields(
            [
                ("Balance", f"{points} points"),
                ("Tier", status.tier_name),
                ("Earned (12 months)", f"{status.earned_in_window} points"),
                ("Next tier", nxt),
            ]
        )
    )
    return EXIT_OK


def cmd_loyalty_activate(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.backend.call(loyalty.activate_partner, ctx.actor, args.partner_id)
    return show_points(ctx, result, "Partner activated, stands live; activation bonus")


def cmd_loyalty_redeem(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.backend.call(
        loyalty.redeem_points, ctx.actor, args.partner_id, args.points, note=args.note
    )
    return show_points(ctx, result, "Redeemed")


def cmd_loyalty_ledger(ctx: Context, args: argparse.Namespace) -> int:
    entries = ctx.backend.read(loyalty.ledger, args.partner_id, limit=args.limit)
    if ctx.json:
        ctx.emit(entries)
        return EXIT_OK
    if not entries:
        ctx.out("No loyalty entries yet.")
        return EXIT_OK
    ctx.out(
        table(
            ("When", "Kind", "Points", "Note", "Reference"),
            [
                (
                    e.occurred_at,
                    e.kind,
                    e.points,
                    e.note,
                    f"{e.ref_type} {e.ref_id}" if e.ref_type else None,
                )
                for e in entries
            ],
        )
    )
    return EXIT_OK


def cmd_loyalty_expire(ctx: Context, args: argparse.Namespace) -> int:
    results = ctx.backend.call(loyalty.expire_points, ctx.actor, partner_id=args.partner)
    if ctx.json:
        ctx.emit(results)
        return EXIT_OK
    if not results:
        ctx.out("No points are old enough to expire.")
        return EXIT_OK
    ctx.out(
        table(
            ("Partner", "Expired", "Balance"),
            [(r.partner_id, r.points, r.balance) for r in results],
        )
    )
    return EXIT_OK


def cmd_loyalty_tiers(ctx: Context, args: argparse.Namespace) -> int:
    changes = ctx.backend.call(loyalty.reevaluate_tiers, ctx.actor, partner_id=args.partner)
    if ctx.json:
        ctx.emit(changes)
        return EXIT_OK
    if not changes:
        ctx.out("Every partner already holds the tier their points earn.")
        return EXIT_OK
    ctx.out(
        table(("Partner", "From", "To"), [(c.partner_id, c.old_tier, c.new_tier) for c in changes])
    )
    return EXIT_OK


# =========================================================================== payouts

PAYOUT_COLUMNS = ("Partner", "From", "To", "Orders", "Sales", "Rate", "Amount", "Status", "ID")


def payout_rows(results: Sequence[payouts.PayoutResult]) -> list[tuple[object, ...]]:
    return [
        (
            p.partner_id,
            p.period_start.isoformat(),
            p.period_end.isoformat(),
            p.order_count,
            p.sales_total,
            percent(p.commission_rate),
            p.amount,
            p.status,
            p.payout_id,
        )
        for p in results
    ]


def cmd_payout_compute(ctx: Context, args: argparse.Namespace) -> int:
    results = ctx.backend.call(
        payouts.compute_payouts,
        ctx.actor,
        args.period_from,
        args.period_to,
        partner_id=args.partner,
    )
    if ctx.json:
        ctx.emit(results)
        return EXIT_OK
    if not results:
        ctx.out("No sales in that period; no payouts.")
        return EXIT_OK
    ctx.out(table(PAYOUT_COLUMNS, payout_rows(results)))
    total = sum((p.amount for p in results), Decimal(0))
    ctx.out(f"\n{len(results)} payout(s), {money(total)} in total")
    return EXIT_OK


def cmd_payout_list(ctx: Context, args: argparse.Namespace) -> int:
    status = PayoutStatus(args.status) if args.status else None
    results = ctx.backend.read(payouts.list_payouts, partner_id=args.partner, status=status)
    if ctx.json:
        ctx.emit(results)
    elif not results:
        ctx.out("No payouts.")
    else:
        ctx.out(table(PAYOUT_COLUMNS, payout_rows(results)))
    return EXIT_OK


def show_payout(ctx: Context, p: payouts.PayoutResult) -> int:
    if ctx.json:
        ctx.emit(p)
    else:
        ctx.out(table(PAYOUT_COLUMNS, payout_rows([p])))
    return EXIT_OK


def cmd_payout_schedule(ctx: Context, args: argparse.Namespace) -> int:
    return show_payout(
        ctx, ctx.backend.call(payouts.schedule_payout, ctx.actor, args.payout_id, args.date)
    )


def cmd_payout_paid(ctx: Context, args: argparse.Namespace) -> int:
    return show_payout(
        ctx, ctx.backend.call(payouts.mark_payout_paid, ctx.actor, args.payout_id, args.reference)
    )


# =========================================================================== products

PRODUCT_COLUMNS = ("SKU", "Name", "Category", "Price", "Cost", "Min", "Max", "Pack", "Barcode")


def product_rows(rows: Sequence[catalog.ProductRow]) -> list[list[object]]:
    return [
        [
            p.sku,
            p.name + ("" if p.active else " (discontinued)"),
            p.category,
            money(p.list_price),
            money(p.unit_cost),
            money(p.min_price),
            money(p.max_price),
            p.pack_size,
            p.gtin or "",
        ]
        for p in rows
    ]


def cmd_product_list(ctx: Context, args: argparse.Namespace) -> int:
    rows = ctx.backend.read(catalog.list_products, search=args.search, include_inactive=args.all)
    if ctx.json:
        ctx.emit(rows)
    elif not rows:
        ctx.out("No products.")
    else:
        ctx.out(table(PRODUCT_COLUMNS, product_rows(rows)))
    return EXIT_OK


def cmd_product_add(ctx: Context, args: argparse.Namespace) -> int:
    row = ctx.backend.call(
        catalog.add_product,
        ctx.actor,
        sku=args.sku,
        name=args.name,
        category=args.category,
        list_price=args.price,
        unit_cost=args.cost,
        gtin=args.gtin,
        min_price=args.min_price,
        max_price=args.max_price,
        pack_size=args.pack_size,
    )
    if ctx.json:
        ctx.emit(row)
    else:
        ctx.out(table(PRODUCT_COLUMNS, product_rows([row])))
    return EXIT_OK


def cmd_product_update(ctx: Context, args: argparse.Namespace) -> int:
    active = None if args.active is None else args.active == "yes"
    row = ctx.backend.call(
        catalog.update_product,
        ctx.actor,
        args.product,
        list_price=args.price,
        unit_cost=args.cost,
        min_price=args.min_price,
        max_price=args.max_price,
        active=active,
    )
    if ctx.json:
        ctx.emit(row)
    else:
        ctx.out(table(PRODUCT_COLUMNS, product_rows([row])))
    return EXIT_OK


# =========================================================================== kpi


def kpi_scope(args: argparse.Namespace) -> kpi.Scope:
    """The scope named by --stand / --partner / --rep / --program (exactly one)."""
    given = [
        (kind, key)
        for kind, key in (
            (kpi.ScopeKind.STAND, args.stand),
            (kpi.ScopeKind.PARTNER, args.partner),
            (kpi.ScopeKind.TERRITORY, args.rep),
            (kpi.ScopeKind.PROGRAM, "" if args.program else None),
        )
        if key is not None
    ]
    if len(given) != 1:
        raise CliError(
            "name exactly one of --stand ID, --partner ID, --rep NAME or --program",
            field="scope",
        )
    kind, key = given[0]
    return kpi.Scope(kind, key or None)


def kpi_period(args: argparse.Namespace) -> kpi.Period:
    return kpi.parse_period(args.period, now=args.at or utcnow())


def _kpi_json(report: kpi.KpiReport) -> dict[str, object]:
    return {
        "scope": {
            "kind": report.scope.kind,
            "id": report.scope.key,
            "label": report.scope.label,
        },
        "period": {
            "start": report.start,
            "end": report.end,
            "days": (report.end - report.start).days + 1,
        },
        "prior_period": {"start": report.prior_start, "end": report.prior_end},
        "currency": report.currency,
        "stand_count": report.stand_count,
        "kpis": [
            {
                "key": k.key,
                "label": k.label,
                "unit": k.unit,
                "value": k.value,
                "prior": k.prior,
                "change": k.change,
                "higher_is_better": k.higher_is_better,
                "formula": k.formula,
            }
            for k in report.kpis
        ],
    }


def cmd_kpi(ctx: Context, args: argparse.Namespace) -> int:
    report = ctx.backend.read(
        kpi.kpi_report, kpi_scope(args), kpi_period(args), now=args.at or None
    )
    if ctx.json:
        ctx.emit(_kpi_json(report))
        return EXIT_OK
    days = (report.end - report.start).days + 1
    ctx.out(
        f"{report.scope.label}: {report.stand_count} stand{'s' if report.stand_count != 1 else ''}"
        f", {report.start} – {report.end} ({days} day{'s' if days != 1 else ''})"
        f" vs {report.prior_start} – {report.prior_end}"
    )
    ctx.out()
    headers: tuple[str, ...] = ("KPI", "Value", "Prior", "Change")
    rows: list[tuple[object, ...]] = []
    for k in report.kpis:
        row: tuple[object, ...] = (
            k.label,
            kpi_text.format_value(k.unit, k.value, report.currency),
            kpi_text.format_value(k.unit, k.prior, report.currency),
            kpi_text.format_change(k),
        )
        rows.append((*row, k.formula) if args.explain else row)
    ctx.out(table((*headers, "How") if args.explain else headers, rows))
    return EXIT_OK


def _report_output(text: str, suffix: str, option: str) -> Path:
    """The file an output option names: with ``suffix``, in a folder that exists."""
    path = Path(text).expanduser()
    if path.suffix.lower() != suffix:
        raise CliError(f"{option} must name a {suffix} file, not {text!r}", field=option[2:])
    folder = path.parent
    if not folder.is_dir():
        raise CliError(f"{option}: the folder {str(folder)!r} does not exist", field=option[2:])
    if path.is_dir():
        raise CliError(f"{option}: {text!r} is a folder", field=option[2:])
    return path


def cmd_report(ctx: Context, args: argparse.Namespace) -> int:
    # Checked before anything is read, so a typo costs nothing.
    scope = kpi_scope(args)
    out = _report_output(args.out, ".pdf", "--out")
    csv_out = _report_output(args.csv, ".csv", "--csv") if args.csv else None
    period = kpi_period(args)
    # matplotlib takes a while to import: only this command pays for it.
    from ui import report as pdf_report

    generated = utcnow()
    try:
        if scope.kind == kpi.ScopeKind.STAND:
            perf = ctx.backend.read(
                kpi.stand_performance, scope.key or "", period, now=args.at or None
            )
            report = perf.report
            pdf_report.render_stand_report(perf, out, generated_at=generated)
        else:
            dash = ctx.backend.read(kpi.dashboard, scope, period, now=args.at or None)
            report = dash.report
            pdf_report.render_program_report(dash, out, generated_at=generated)
        if csv_out is not None:
            pdf_report.export_kpi_csv(report, csv_out)
    except OSError as exc:
        raise CliError(f"could not write {exc.filename or out}: {exc.strerror or exc}") from exc
    size = out.stat().st_size
    if ctx.json:
        ctx.emit(
            {
                "path": str(out.resolve()),
                "bytes": size,
                "pages": 1,
                "csv": str(csv_out.resolve()) if csv_out is not None else None,
                "scope": {
                    "kind": report.scope.kind,
                    "id": report.scope.key,
                    "label": report.scope.label,
                },
                "period": {"start": report.start, "end": report.end},
            }
        )
        return EXIT_OK
    ctx.out(f"Wrote {out} (1 page, {max(1, round(size / 1024))} KB)")
    if csv_out is not None:
        ctx.out(f"Wrote {csv_out} ({len(report.kpis)} KPIs)")
    return EXIT_OK


# =========================================================================== coach


def _coach_insight_json(ins: Any, names: Mapping[str, str]) -> dict[str, object]:
    return {
        "kind": ins.kind,
        "severity": ins.severity,
        "stand_id": ins.stand_id,
        "stand_name": names.get(ins.stand_id, ""),
        "product_id": ins.product_id,
        "message": ins.message,
        "action": ins.action,
        "evidence": ins.evidence,
        "dedup_key": ins.dedup_key,
    }


def _coach_more(ctx: Context, shown: int, total: int, what: str) -> None:
    if total > shown:
        ctx.out(f"... and {total - shown} more {what} (--limit 0 shows all, --json gives all)")


def _coach_insight_table(ctx: Context, rows: Sequence[Sequence[object]], total: int) -> None:
    ctx.out(table(("Severity", "Kind", "Stand", "Insight"), rows))
    _coach_more(ctx, len(rows), total, "insights")


def cmd_coach(ctx: Context, args: argparse.Namespace) -> int:
    # The coach (numpy forecasts) is imported by the command that uses it only.
    from app.coach import agent as coach

    if args.limit < 0:
        raise CliError("--limit must be 0 (all) or more", field="limit")
    limit = None if args.limit == 0 else args.limit
    acted = [
        (flag, value)
        for flag, value in (("ack", args.ack), ("dismiss", args.dismiss), ("done", args.done))
        if value
    ]
    if args.reason and not acted:
        raise CliError("--reason goes with --dismiss or --done", field="reason")
    if acted:
        flag, insight_id = acted[0]
        if flag == "ack":
            view = ctx.backend.call(coach.acknowledge_insight, ctx.actor, insight_id)
        elif flag == "dismiss":
            view = ctx.backend.call(coach.dismiss_insight, ctx.actor, insight_id, args.reason)
        else:
            view = ctx.backend.call(coach.mark_insight_done, ctx.actor, insight_id, args.reason)
        if ctx.json:
            ctx.emit(view)
        else:
            ctx.out(f"Insight {view.id} is now {view.status.value}: {view.message}")
        return EXIT_OK
    if args.list:
        views = ctx.backend.read(
            coach.list_insights,
            kind=args.kind,
            severity=args.severity,
            stand_id=args.stand,
        )
        if ctx.json:
            ctx.emit(views)
            return EXIT_OK
        if not views:
            ctx.out("No open coach insights.")
            return EXIT_OK
        shown = views if limit is None else views[:limit]
        ctx.out(
            table(
                ("Id", "Severity", "Status", "Kind", "Stand", "Insight"),
                [(v.id, v.severity, v.status, v.kind, v.stand_name, v.message) for v in shown],
            )
        )
        _coach_more(ctx, len(shown), len(views), "insights")
        return EXIT_OK
    if args.kind or args.severity:
        raise CliError("--kind and --severity filter --list", field="kind")
    run = ctx.backend.call(
        coach.run_coach,
        stand_ids=[args.stand] if args.stand else None,
        now=args.at or None,
        service=args.service,
    )
    names = run.stand_names
    if ctx.json:
        ctx.emit(
            {
                "at": run.at,
                "model_version": run.model_version,
                "stands": run.stands,
                "series": run.series,
                "service": run.service,
                "lead_days": run.lead_days,
                "counts": {
                    "insights": len(run.insights),
                    "created": run.created,
                    "updated": run.updated,
                    "unchanged": run.unchanged,
                    "reopened": run.reopened,
                    "kept_closed": run.kept_closed,
                    "retired": run.retired,
                },
                "timings": dict(run.timings),
                "insights": [_coach_insight_json(i, names) for i in run.insights],
                "recommendations": run.recommendations,
                "stand_risks": run.stand_risks,
            }
        )
        return EXIT_OK
    seconds = sum(t for _, t in run.timings)
    ctx.out(
        f"Coach run at {local_time(run.at)} over {run.stands} stand"
        f"{'s' if run.stands != 1 else ''} ({run.series} products) in {seconds:.1f} s: "
        f"{len(run.insights)} insight{'s' if len(run.insights) != 1 else ''} "
        f"({run.created} new, {run.updated} updated, {run.unchanged} unchanged, "
        f"{run.kept_closed} kept closed; {run.retired} no longer apply)."
    )
    ctx.out()
    if run.insights:
        shown_i = run.insights if limit is None else run.insights[:limit]
        _coach_insight_table(
            ctx,
            [(i.severity, i.kind, names.get(i.stand_id, i.stand_id), i.message) for i in shown_i],
            len(run.insights),
        )
    else:
        ctx.out("No insights.")
    ctx.out()
    recs = run.recommendations
    if not recs:
        ctx.out("No refills recommended.")
        return EXIT_OK
    total = sum((r.value for r in recs), Decimal(0))
    ctx.out(
        f"Refills recommended: {sum(r.quantity for r in recs)} units of {len(recs)} "
        f"product{'s' if len(recs) != 1 else ''}, {money(total)} at list prices "
        f"({percent(Decimal(str(run.service)))} service level)."
    )
    ctx.out()
    shown_r = recs if limit is None else recs[:limit]
    ctx.out(
        table(
            ("Stand", "SKU", "Risk", "On hand", "On order", "Refill", "Value", "Why"),
            [
                (
                    names.get(r.stand_id, r.stand_id),
                    r.sku,
                    f"{round(r.reason.stockout_risk * 100)}%",
                    r.reason.on_hand,
                    r.reason.on_order,
                    r.quantity,
                    r.value,
                    r.message,
                )
                for r in shown_r
            ],
        )
    )
    _coach_more(ctx, len(shown_r), len(recs), "refill lines")
    return EXIT_OK


# =========================================================================== verify


def cmd_verify(ctx: Context, args: argparse.Namespace) -> int:
    mismatches = ctx.backend.read(inventory.verify_on_hand, args.stand)
    if ctx.json:
        ctx.emit({"ok": not mismatches, "mismatches": mismatches})
    elif not mismatches:
        ctx.out("OK: every cached on-hand equals the sum of its stock movements.")
    else:
        ctx.out(
            f"{len(mismatches)} stand x product pair(s) whose cached on-hand differs from "
            "the movement ledger:"
        )
        ctx.out()
        ctx.out(
            table(
                ("Stand", "Product", "Cached", "Ledger"),
                [(m.stand_id, m.product_id, m.cached, m.ledger) for m in mismatches],
            )
        )
    return EXIT_OK if not mismatches else EXIT_FAILED


# =========================================================================== the parser

DESCRIPTION = """\
Stand Program OS from the command line: the same services, rules and change log as the
desktop app, on the same local database.

Who acts: --user and --role (or STAND_OS_USER / STAND_OS_ROLE; default: your login name as
a rep). Roles are NOT authenticated locally: anyone at this computer can claim any role
until sign-in arrives with sync. The role decides what the services allow (e.g. only a
manager approves refills or runs payouts) and is recorded on every change.

Which database: --db-url, else --data-dir, else STAND_OS_DB_URL, else STAND_OS_DATA_DIR,
else the platform's user data folder. --demo uses the separate demo folder (the "demo"
subfolder of --data-dir / STAND_OS_DATA_DIR), so demo data never mixes with real data.
The database is created and migrated automatically.

Products are given as PRODUCT=QTY, where PRODUCT is a SKU, a barcode (GTIN) or a product id.

Exit status: 0 done; 1 `verify` found mismatches, or an unexpected error (--debug shows the
traceback); 2 the input or the action was refused (one line on stderr, and with --json a
{"error": {...}} object on stdout)."""

EPILOG = """\
examples:
  standctl db info
  standctl demo --stands 60 --days 180
  standctl --demo stands --attention --sort city
  standctl stand 0190a3c4-...
  standctl sale record STAND_ID SKU-001=2 4006381333931=1 --pay cash
  standctl --role manager refill approve REFILL_ID
  standctl --json stands | jq '.[].name'

`standctl COMMAND --help` describes each command."""


def _command(
    sub: argparse._SubParsersAction[_Parser],
    name: str,
    help_text: str,
    examples: str,
    handler: Callable[[Context, argparse.Namespace], int],
    description: str | None = None,
) -> _Parser:
    parser = sub.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        epilog="examples:\n" + examples,
        formatter_class=_Formatter,
    )
    _add_output_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def _group(
    sub: argparse._SubParsersAction[_Parser], name: str, help_text: str, description: str
) -> argparse._SubParsersAction[_Parser]:
    parser = sub.add_parser(
        name, help=help_text, description=description, formatter_class=_Formatter
    )
    return parser.add_subparsers(
        title="commands", dest=f"{name}_command", required=True, metavar="COMMAND"
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """--json and --debug are also accepted after the command (``standctl stands --json``)."""
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output on stdout",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an unexpected error",
    )


def _qty_lines(
    parser: argparse.ArgumentParser, what: str, *, required: bool, price: bool = False
) -> None:
    metavar = "PRODUCT=QTY[@PRICE]" if price else "PRODUCT=QTY"
    parser.add_argument(
        "lines",
        nargs="+" if required else "*",
        metavar=metavar,
        help=f"{what}; PRODUCT is a SKU, barcode or product id",
    )


def _stand_options(parser: argparse.ArgumentParser, *, title: str) -> None:
    g = parser.add_argument_group(title)
    g.add_argument("--stand-name", metavar="NAME", help="the stand's name, e.g. 'Kiosk am Markt'")
    g.add_argument("--address", help="street and number")
    g.add_argument("--city")
    g.add_argument("--type", choices=[t.value for t in LocationType], help="location type")
    g.add_argument(
        "--capacity", type=positive_int, metavar="UNITS", help="how many units the stand holds"
    )
    g.add_argument("--lat", type=float, metavar="DEG", help="latitude")
    g.add_argument("--lon", type=float, metavar="DEG", help="longitude")
    g.add_argument("--postal-code")
    g.add_argument("--country", metavar="CC", help="two-letter country code (default DE)")
    g.add_argument("--rep", metavar="NAME", help="the rep assigned to the stand")
    g.add_argument(
        "--timezone", metavar="ZONE", help=f"IANA time zone (default {onboarding.DEFAULT_TIMEZONE})"
    )
    g.add_argument(
        "--product",
        dest="products",
        action="append",
        metavar="PRODUCT",
        help="a product to carry (SKU, barcode or id; repeat the option); "
        "default: the package's starting assortment",
    )


def _kpi_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("scope (exactly one)")
    g.add_argument("--stand", metavar="STAND_ID", help="one stand")
    g.add_argument("--partner", metavar="PARTNER_ID", help="all stands of one partner")
    g.add_argument("--rep", metavar="NAME", help="the stands assigned to one rep (territory)")
    g.add_argument("--program", action="store_true", help="every stand")
    parser.add_argument(
        "--period",
        default=f"{kpi.period.DEFAULT_DAYS}d",
        metavar="PERIOD",
        help="Nd for the last N days up to today (default %(default)s), "
        "or FROM..TO as YYYY-MM-DD..YYYY-MM-DD",
    )
    parser.add_argument(
        "--at",
        type=datetime_arg,
        metavar="TIME",
        help="compute as of this moment instead of now (ISO 8601)",
    )


def build_parser() -> _Parser:
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter)
    g = parser.add_argument_group("global options (before the command)")
    g.add_argument("--data-dir", metavar="DIR", help="the data folder (env STAND_OS_DATA_DIR)")
    g.add_argument(
        "--db-url",
        metavar="URL",
        help="a SQLAlchemy database URL instead of the data folder's SQLite file "
        "(env STAND_OS_DB_URL)",
    )
    g.add_argument("--demo", action="store_true", help="use the separate demo data folder")
    g.add_argument(
        "--user", metavar="NAME", help="who acts (env STAND_OS_USER; default: your login name)"
    )
    g.add_argument(
        "--role",
        choices=[r.value for r in Role],
        help="acting role (env STAND_OS_ROLE; default rep). Not authenticated "
        "locally until sign-in arrives with sync",
    )
    g.add_argument(
        "--json", action="store_true", help="machine-readable JSON on stdout, and nothing else"
    )
    g.add_argument(
        "--debug", action="store_true", help="show the full traceback of an unexpected error"
    )
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    # ---- db
    db = _group(
        sub,
        "db",
        "create, migrate and inspect the database",
        "Create or migrate the database and show what is in it.",
    )
    _command(
        db,
        "upgrade",
        "create or migrate the database to the latest schema",
        "  standctl db upgrade\n  standctl --data-dir /srv/stand db upgrade\n"
        "  standctl --db-url postgresql+psycopg://u@host/stand db upgrade",
        cmd_db_upgrade,
        "Create the database if needed and apply every migration; print the revision "
        "and where the database is.",
    )
    _command(
        db,
        "info",
        "where the database is and what it holds",
        "  standctl db info\n  standctl --demo --json db info",
        cmd_db_info,
        "Show the database location, schema revision, this device's id, the number of "
        "stands, partners and products, and the change-log ops not yet synced.",
    )

    # ---- demo
    p = _command(
        sub,
        "demo",
        "generate demo data in the demo folder",
        "  standctl demo\n  standctl demo --stands 10 --days 30 --seed 1\n"
        "  standctl demo --reset\n  standctl --demo stands",
        cmd_demo,
        "Generate a realistic, deterministic demo program (partners, stands, "
        "products, sales, counts, refills, loyalty) in the demo database, which is "
        "always separate from real data (the same as --demo). The same seed gives "
        "the same data.",
    )
    p.add_argument("--stands", type=positive_int, default=60, help="number of stands (60)")
    p.add_argument("--days", type=positive_int, default=180, help="days of history (180)")
    p.add_argument("--seed", type=int, default=7, help="random seed (7)")
    p.add_argument("--reset", action="store_true", help="delete the existing demo database first")

    # ---- stands
    p = _command(
        sub,
        "stands",
        "list stands with their stock summary",
        "  standctl stands\n  standctl stands --search berlin --sort city\n"
        "  standctl stands --attention --rep rep.anna\n"
        "  standctl --json stands --status active --limit 20",
        cmd_stands,
        "List stands with SKU count, units on hand, low and out-of-stock SKUs and "
        "open refills. A stand needs attention when a SKU is at or below its reorder "
        f"point or it has not been counted for {queries.COUNT_OVERDUE_DAYS} days.",
    )
    p.add_argument("--search", metavar="TEXT", help="in name, city, partner and address")
    p.add_argument("--status", choices=[s.value for s in StandStatus])
    p.add_argument("--partner", metavar="ID", help="only this partner's stands")
    p.add_argument("--rep", metavar="NAME", help="only stands assigned to this rep")
    p.add_argument("--type", choices=[t.value for t in LocationType])
    p.add_argument("--attention", action="store_true", help="only stands needing attention")
    p.add_argument("--sort", choices=sorted(queries.SORTABLE), default="name")
    p.add_argument("--desc", action="store_true", help="sort descending")
    p.add_argument("--limit", type=positive_int, metavar="N")

    p = _command(
        sub,
        "stand",
        "one stand: details and inventory",
        "  standctl stand STAND_ID\n  standctl --json stand STAND_ID",
        cmd_stand,
        "Show a stand's details (partner, package, tier, payment reference, QR "
        "payload) and its inventory with each SKU's state: ok, low (at or below the "
        "reorder point) or out.",
    )
    p.add_argument("stand_id", metavar="STAND_ID")

    # ---- sales
    sale = _group(
        sub,
        "sale",
        "record or void a sale",
        "Record a sale at a stand, or void one (a compensating record; sales are "
        "never edited or deleted).",
    )
    p = _command(
        sale,
        "record",
        "record a sale at a stand",
        "  standctl sale record STAND_ID SKU-001=2 --pay cash\n"
        "  standctl sale record STAND_ID 4006381333931=1 SKU-007=3@4.50 --pay card\n"
        "  standctl sale record STAND_ID SKU-001=1 --pay qr --order-id ORDER_UUID",
        cmd_sale_record,
        "Record a sale: stock goes down, the partner earns loyalty points. Selling "
        "more than the expected stock is recorded anyway (the goods were sold) and "
        "reported as a warning on stderr. Re-running with the same --order-id "
        "changes nothing.",
    )
    p.add_argument("stand_id", metavar="STAND_ID")
    _qty_lines(
        p,
        "what was sold; @PRICE overrides the list price within its guardrails",
        required=True,
        price=True,
    )
    p.add_argument(
        "--pay", required=True, choices=[m.value for m in PaymentMethod], help="payment method"
    )
    p.add_argument("--order-id", metavar="UUID", help="client order id (makes retries safe)")
    p.add_argument(
        "--at",
        type=datetime_arg,
        metavar="TIME",
        help="when it happened (ISO 8601; default now; local time without offset)",
    )
    p = _command(
        sale,
        "void",
        "void a sale",
        "  standctl sale void ORDER_ID --reason 'wrong product scanned'",
        cmd_sale_void,
        "Void a sale with a compensating record: stock comes back and the points "
        "it earned are taken back.",
    )
    p.add_argument("order_id", metavar="ORDER_ID")
    p.add_argument("--reason", metavar="TEXT")

    # ---- count
    p = _command(
        sub,
        "count",
        "record a physical stock count",
        "  standctl count STAND_ID SKU-001=4 SKU-002=0\n"
        "  standctl count STAND_ID 4006381333931=7 --note 'after inventory'",
        cmd_count,
        "Record what was counted on the shelf. Each counted SKU gets its expected, "
        "counted and variance figures, and a stock adjustment for the variance. SKUs "
        "not listed keep their stock.",
    )
    p.add_argument("stand_id", metavar="STAND_ID")
    _qty_lines(p, "counted quantities", required=True)
    p.add_argument("--note", metavar="TEXT")
    p.add_argument(
        "--at",
        type=datetime_arg,
        metavar="TIME",
        help="when it was counted (ISO 8601; default now)",
    )

    # ---- refills
    refill = _group(
        sub,
        "refill",
        "refills: request, approve, schedule, deliver, confirm",
        "Refills go requested -> approved -> scheduled -> delivered -> confirmed, "
        "or end rejected or cancelled. Approving, scheduling, rejecting and "
        "resolving discrepancies need --role manager (or admin). Quantities may "
        "be given per product on approve, deliver and confirm; products not "
        "listed keep the figure of the previous step.",
    )
    p = _command(
        refill,
        "request",
        "ask for a refill of a stand",
        "  standctl refill request STAND_ID\n"
        "  standctl refill request STAND_ID SKU-001=12 SKU-004=6 --note 'weekend'\n"
        "  standctl refill request STAND_ID SKU-001=12@2.49",
        cmd_refill_request,
        "Request a refill. Without quantities, every SKU below par is refilled up to "
        "par (whole packs, within capacity); see `refill suggest`. @PRICE sets the "
        "shelf price of the refill line within the product's guardrails.",
    )
    p.add_argument("stand_id", metavar="STAND_ID")
    _qty_lines(p, "quantities to request (default: the suggestion)", required=False, price=True)
    p.add_argument("--note", metavar="TEXT")
    p.add_argument("--refill-id", metavar="UUID", help="client refill id (makes retries safe)")
    for name, verb, handler, extra in (
        (
            "approve",
            "approve a requested refill (manager)",
            cmd_refill_approve,
            "  standctl --role manager refill approve REFILL_ID\n"
            "  standctl --role manager refill approve REFILL_ID SKU-001=6",
        ),
        (
            "deliver",
            "record the delivery; stock goes up",
            cmd_refill_deliver,
            "  standctl refill deliver REFILL_ID\n  standctl refill deliver REFILL_ID SKU-001=5\n"
            "  standctl refill deliver REFILL_ID SKU-001=5 SKU-002=0 --more-to-come",
        ),
        (
            "confirm",
            "the partner confirms what was received",
            cmd_refill_confirm,
            "  standctl --role partner refill confirm REFILL_ID\n"
            "  standctl refill confirm REFILL_ID SKU-001=4",
        ),
    ):
        p = _command(
            refill,
            name,
            verb,
            extra,
            handler,
            {
                "approve": "Approve a requested refill as requested, or with other "
                "quantities per product (partial approval).",
                "deliver": "Record the delivery of a scheduled refill: all approved "
                "units, or fewer per product. The units go on the stand's "
                "stock. With --more-to-come this is one part of the delivery and "
                "the refill stays scheduled until the rest arrives. Products not "
                "listed bring all their units still to deliver.",
                "confirm": "Record what the partner received. Where it differs from "
                "the delivery a discrepancy is opened for a manager (stock "
                "keeps the delivered figure until it is resolved).",
            }[name],
        )
        p.add_argument("refill_id", metavar="REFILL_ID")
        if name != "deliver":
            _qty_lines(p, f"{name}d quantities (default: the previous step's)", required=False)
        else:
            _qty_lines(
                p, "delivered quantities (default: the units still to deliver)", required=False
            )
            p.add_argument(
                "--more-to-come",
                action="store_true",
                help="this is one part of the delivery; the refill stays scheduled and "
                "the rest is delivered later (default quantities: what is still to come)",
            )
    p = _command(
        refill,
        "schedule",
        "plan the delivery date and dealer (manager)",
        "  standctl --role manager refill schedule REFILL_ID --date 2025-07-01 "
        "--dealer 'Nord Logistik'",
        cmd_refill_schedule,
        "Schedule an approved refill: a delivery date and who delivers.",
    )
    p.add_argument("refill_id", metavar="REFILL_ID")
    p.add_argument("--date", type=date_arg, required=True, metavar="YYYY-MM-DD")
    p.add_argument("--dealer", required=True, metavar="NAME")
    for name, handler, who in (
        ("reject", cmd_refill_reject, "a manager"),
        ("cancel", cmd_refill_cancel, "the requester or a manager"),
    ):
        p = _command(
            refill,
            name,
            f"{name} an open refill ({who})",
            f"  standctl refill {name} REFILL_ID --reason 'stand closed for works'",
            handler,
            f"{name.capitalize()} a refill, with a reason ({who}).",
        )
        p.add_argument("refill_id", metavar="REFILL_ID")
        p.add_argument("--reason", required=True, metavar="TEXT")
    p = _command(
        refill,
        "resolve",
        "close a delivery discrepancy (manager)",
        "  standctl --role manager refill resolve DISCREPANCY_ID --accept-received\n"
        "  standctl --role manager refill resolve DISCREPANCY_ID --keep-delivered",
        cmd_refill_resolve,
        "Close a discrepancy opened by a confirmation: accept the partner's received "
        "figure (stock is corrected) or keep the delivered one (no stock change).",
    )
    p.add_argument("discrepancy_id", metavar="DISCREPANCY_ID")
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument("--accept-received", dest="accept_received", action="store_true")
    choice.add_argument("--keep-delivered", dest="accept_received", action="store_false")
    p.add_argument("--note", metavar="TEXT")
    p = _command(
        refill,
        "list",
        "list refills, newest first",
        "  standctl refill list\n  standctl refill list --status requested\n"
        "  standctl refill list --stand STAND_ID",
        cmd_refill_list,
        "List refills with their status and value, newest first.",
    )
    p.add_argument("--status", choices=[s.value for s in RefillStatus])
    p.add_argument("--stand", metavar="STAND_ID")
    p.add_argument("--limit", type=positive_int, default=500, metavar="N")
    p = _command(
        refill,
        "suggest",
        "what a refill request would ask for",
        "  standctl refill suggest STAND_ID",
        cmd_refill_suggest,
        "Par minus on hand for every SKU below par, rounded up to whole packs but "
        "never above capacity: what `refill request STAND_ID` asks for.",
    )
    p.add_argument("stand_id", metavar="STAND_ID")

    # ---- partners
    partner = _group(
        sub,
        "partner",
        "onboard partners and add stands",
        "Sign up partners (shops) and their stands.",
    )
    p = _command(
        partner,
        "onboard",
        "sign up a partner, optionally with a first stand",
        "  standctl partner onboard --name 'Kiosk Weber GmbH' --contact 'Eva Weber' "
        "--package growth\n"
        "  standctl partner onboard --name 'Kiosk Weber GmbH' --contact 'Eva Weber' \\\n"
        "      --package starter --email eva@example.com --stand-name 'Kiosk Weber' \\\n"
        "      --address 'Hauptstr. 5' --city Berlin --type kiosk --capacity 200",
        cmd_partner_onboard,
        "Sign up a partner (status onboarding, entry loyalty tier). Give stand "
        "options to create their first stand too; it goes live when the partner is "
        "activated (`loyalty activate`). Prints the stand's payment reference and "
        "QR payload.",
    )
    p.add_argument("--name", required=True, help="business name")
    p.add_argument("--contact", required=True, metavar="NAME", help="contact person")
    p.add_argument(
        "--package", required=True, metavar="CODE", help="package code: starter, growth or pro"
    )
    p.add_argument("--email")
    p.add_argument("--phone")
    p.add_argument("--region")
    p.add_argument("--payout-method", metavar="METHOD", help="e.g. sepa")
    p.add_argument("--payout-account", metavar="ACCOUNT", help="e.g. an IBAN")
    p.add_argument("--notes", metavar="TEXT")
    _stand_options(
        p,
        title="first stand (optional; if given, --stand-name, --address, "
        "--city, --type and --capacity are required)",
    )
    p = _command(
        partner,
        "add-stand",
        "add a stand for a partner (within their package)",
        "  standctl partner add-stand PARTNER_ID --stand-name 'Kiosk Weber 2' \\\n"
        "      --address 'Bahnhofstr. 1' --city Potsdam --type cafe --capacity 150",
        cmd_partner_add_stand,
        "Add a stand for an existing partner, within their package's stand limit. "
        "--stand-name, --address, --city, --type and --capacity are required.",
    )
    p.add_argument("partner_id", metavar="PARTNER_ID")
    _stand_options(p, title="stand")

    # ---- loyalty
    loy = _group(
        sub,
        "loyalty",
        "partner loyalty points and tiers",
        "Loyalty points: the balance is the sum of an append-only ledger.",
    )
    p = _command(
        loy,
        "balance",
        "points balance and tier",
        "  standctl loyalty balance PARTNER_ID",
        cmd_loyalty_balance,
        "A partner's points balance, tier, and what the next tier needs.",
    )
    p.add_argument("partner_id", metavar="PARTNER_ID")
    p = _command(
        loy,
        "activate",
        "activate an onboarding partner",
        "  standctl loyalty activate PARTNER_ID",
        cmd_loyalty_activate,
        "Make an onboarding partner active: their planned stands go live and they "
        "receive the package's activation points (once).",
    )
    p.add_argument("partner_id", metavar="PARTNER_ID")
    p = _command(
        loy,
        "redeem",
        "spend points",
        "  standctl loyalty redeem PARTNER_ID 500 --note 'display kit'",
        cmd_loyalty_redeem,
        "Redeem points; the balance can never go below zero.",
    )
    p.add_argument("partner_id", metavar="PARTNER_ID")
    p.add_argument("points", type=positive_int, metavar="POINTS")
    p.add_argument("--note", metavar="TEXT")
    p = _command(
        loy,
        "ledger",
        "a partner's ledger entries, newest first",
        "  standctl loyalty ledger PARTNER_ID --limit 20",
        cmd_loyalty_ledger,
        "List a partner's ledger entries (earn, activation, bonus, redeem, expire, "
        "adjust), newest first.",
    )
    p.add_argument("partner_id", metavar="PARTNER_ID")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N")
    p = _command(
        loy,
        "expire",
        "expire old points (manager)",
        "  standctl --role manager loyalty expire\n"
        "  standctl --role manager loyalty expire --partner PARTNER_ID",
        cmd_loyalty_expire,
        "Expire points older than a year, oldest first, for every partner or one. "
        "Running it twice on a day changes nothing.",
    )
    p.add_argument("--partner", metavar="ID")
    p = _command(
        loy,
        "tiers",
        "re-evaluate loyalty tiers (manager)",
        "  standctl --role manager loyalty tiers",
        cmd_loyalty_tiers,
        "Move partners to the tier their points earned over the last 12 months hold (up or down).",
    )
    p.add_argument("--partner", metavar="ID")

    # ---- payouts
    prod = _group(
        sub,
        "product",
        "the product catalog",
        "Products that stands can carry. Adding and changing products needs --role manager "
        "(or admin). Prices are decimals such as 2.49; orders keep the price they were "
        "sold at.",
    )
    p = _command(
        prod,
        "list",
        "list products",
        "  standctl product list --search cola",
        cmd_product_list,
        "List the catalog by category (discontinued products only with --all).",
    )
    p.add_argument("--search", metavar="TEXT", help="name, SKU or exact barcode")
    p.add_argument("--all", action="store_true", help="include discontinued products")
    p = _command(
        prod,
        "add",
        "add a product",
        "  standctl --role manager product add --sku COLA-033 --name 'Cola 0.33 l' \\\n"
        "      --category drinks --price 1.90 --cost 0.80 --gtin 4006381333931 --pack-size 24",
        cmd_product_add,
        "Add a product to the catalog. The barcode (GTIN-8/12/13/14) is checked.",
    )
    p.add_argument("--sku", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--category", required=True)
    p.add_argument("--price", required=True, metavar="AMOUNT", help="list price")
    p.add_argument("--cost", required=True, metavar="AMOUNT", help="unit cost")
    p.add_argument("--gtin", metavar="BARCODE")
    p.add_argument("--min-price", metavar="AMOUNT", help="lowest price allowed (guardrail)")
    p.add_argument("--max-price", metavar="AMOUNT", help="highest price allowed (guardrail)")
    p.add_argument("--pack-size", default="1", metavar="N", help="units per refill pack")
    p = _command(
        prod,
        "update",
        "change prices or discontinue a product",
        "  standctl --role manager product update COLA-033 --price 1.99\n"
        "  standctl --role manager product update COLA-033 --active no",
        cmd_product_update,
        "Change a product's prices or guardrails, or stop selling it (--active no).",
    )
    p.add_argument("product", metavar="SKU|BARCODE|ID")
    p.add_argument("--price", metavar="AMOUNT")
    p.add_argument("--cost", metavar="AMOUNT")
    p.add_argument("--min-price", metavar="AMOUNT")
    p.add_argument("--max-price", metavar="AMOUNT")
    p.add_argument("--active", choices=("yes", "no"))
    pay = _group(
        sub,
        "payout",
        "partner commission payouts (manager)",
        "Commission payouts per period: draft -> scheduled -> paid. Needs --role "
        "manager (or admin).",
    )
    p = _command(
        pay,
        "compute",
        "compute draft payouts for a finished period",
        "  standctl --role manager payout compute --from 2025-05-01 --to 2025-05-31",
        cmd_payout_compute,
        "Create or refresh the draft payout of every partner with sales in the "
        "period (calendar days, both inclusive, program time zone). Scheduled and "
        "paid payouts are never recomputed.",
    )
    p.add_argument("--from", dest="period_from", type=date_arg, required=True, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="period_to", type=date_arg, required=True, metavar="YYYY-MM-DD")
    p.add_argument("--partner", metavar="ID")
    p = _command(
        pay,
        "list",
        "list payouts",
        "  standctl payout list --status draft",
        cmd_payout_list,
        "List payouts, newest period first.",
    )
    p.add_argument("--status", choices=[s.value for s in PayoutStatus])
    p.add_argument("--partner", metavar="ID")
    p = _command(
        pay,
        "schedule",
        "schedule a draft payout",
        "  standctl --role manager payout schedule PAYOUT_ID --date 2025-06-15",
        cmd_payout_schedule,
        "Schedule a draft payout for a payment date.",
    )
    p.add_argument("payout_id", metavar="PAYOUT_ID")
    p.add_argument("--date", type=date_arg, required=True, metavar="YYYY-MM-DD")
    p = _command(
        pay,
        "paid",
        "mark a scheduled payout as paid",
        "  standctl --role manager payout paid PAYOUT_ID --reference BANK-4711",
        cmd_payout_paid,
        "Mark a scheduled payout as paid, with the bank reference.",
    )
    p.add_argument("payout_id", metavar="PAYOUT_ID")
    p.add_argument("--reference", metavar="TEXT")

    # ---- kpi
    p = _command(
        sub,
        "kpi",
        "performance KPIs of a stand, partner, territory or the program",
        "  standctl kpi --program\n  standctl kpi --stand STAND_ID --period 7d\n"
        "  standctl kpi --partner PARTNER_ID --period 2026-01-01..2026-03-31 --json\n"
        "  standctl kpi --rep rep.anna --explain",
        cmd_kpi,
        "Performance KPIs over a period of local days, each with the same KPI over the prior "
        "period of equal length. A day is the stand's local day.",
    )
    _kpi_options(p)
    p.add_argument(
        "--explain", action="store_true", help="add a column saying how each is computed"
    )

    # ---- report
    p = _command(
        sub,
        "report",
        "a one-page PDF report of a stand, partner, territory or the program",
        "  standctl report --stand STAND_ID --out stand.pdf\n"
        "  standctl report --program --period 90d --out program.pdf --csv program.csv\n"
        "  standctl report --rep rep.anna --at 2026-03-31T18:00Z --out territory.pdf --json",
        cmd_report,
        "Write the KPIs of a period, compared with the prior period, as one A4 page of PDF: "
        "KPI tiles, revenue per day and, for a stand, the stock of the SKUs most at risk and "
        "every KPI; otherwise the top and bottom stands by revenue, units per SKU and the "
        "refill funnel. The folder of --out must exist; an existing file is replaced.",
    )
    _kpi_options(p)
    p.add_argument("--out", required=True, metavar="FILE.pdf", help="the PDF file to write")
    p.add_argument(
        "--csv",
        metavar="FILE.csv",
        help="also write the KPI table as CSV (UTF-8 with a byte-order mark, for Excel)",
    )

    # ---- coach
    p = _command(
        sub,
        "coach",
        "run the AI Stand Coach: stock-out risk, refills and insights",
        "  standctl coach\n  standctl coach --stand STAND_ID --at 2026-03-31T18:00Z\n"
        "  standctl --json coach | jq '.recommendations[0]'\n"
        "  standctl coach --list --severity critical\n"
        "  standctl coach --dismiss INSIGHT_ID --reason 'seasonal, keeps its slot'",
        cmd_coach,
        "Forecast the demand of every product on every active stand (or one with --stand), "
        "estimate the risk of running out before the next visit, recommend refills (order-up-"
        "to level for the service level, within capacity, in whole packs, each with its "
        "reason) and find insights: stock-out risk, slow movers, under-faced best sellers, "
        "trend breaks, stands below their peers, overdue counts and loyalty tiers within "
        "reach. The insights are stored: a run updates the ones found before and never "
        "reopens one a person dismissed or finished. --list shows the stored open insights "
        "without running; --ack, --dismiss and --done act on one.",
    )
    p.add_argument("--stand", metavar="STAND_ID", help="only this stand")
    p.add_argument(
        "--at",
        type=datetime_arg,
        metavar="TIME",
        help="run as of this moment instead of now (ISO 8601)",
    )
    p.add_argument(
        "--service",
        type=float,
        default=0.95,
        metavar="LEVEL",
        help="target probability of not running out before the next refill (default 0.95)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=30,
        metavar="N",
        help="rows per table for people (default %(default)s; 0 for all)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--list", action="store_true", help="show the stored open insights")
    g.add_argument("--ack", metavar="INSIGHT_ID", help="acknowledge an insight")
    g.add_argument("--dismiss", metavar="INSIGHT_ID", help="dismiss an insight (with --reason)")
    g.add_argument("--done", metavar="INSIGHT_ID", help="mark an insight done")
    p.add_argument("--reason", metavar="TEXT", help="why, with --dismiss; a note with --done")
    p.add_argument("--kind", metavar="KIND", help="with --list: only this kind")
    p.add_argument("--severity", metavar="LEVEL", help="with --list: info, warning or critical")

    # ---- verify
    p = _command(
        sub,
        "verify",
        "check the stock cache against the movement ledger",
        "  standctl verify\n  standctl verify --stand STAND_ID",
        cmd_verify,
        "Check that every cached on-hand equals the sum of its stock movements. "
        "Exit status 1 with the mismatches listed if any.",
    )
    p.add_argument("--stand", metavar="STAND_ID")
    add_expansion_commands(sub, _command, _group)
    add_user_commands(sub, _command, _group)
    add_server_commands(sub, _command)
    add_sync_commands(sub, _command)
    return parser


# =========================================================================== main


def _error(
    message: str, *, code: str, field: str | None, as_json: bool, stdout: TextIO, stderr: TextIO
) -> None:
    one_line = " ".join(message.split())
    print(f"{PROG}: error: {one_line}", file=stderr)
    if as_json:
        print(to_json({"error": {"code": code, "message": one_line, "field": field}}), file=stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``standctl`` with ``argv`` (default: the process arguments); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    stdout, stderr = sys.stdout, sys.stderr
    as_json = "--json" in args_list
    debug = "--debug" in args_list
    ctx: Context | None = None
    try:
        args = build_parser().parse_args(args_list)
        as_json, debug = bool(args.json), bool(args.debug)
        demo = bool(args.demo) or args.command == "demo"
        url, folder = resolve_database(args, demo=demo)
        ctx = Context(
            json=as_json,
            debug=debug,
            user=args.user or default_user(),
            role=Role(args.role) if args.role else default_role(),
            url=url,
            location=str(folder) if folder else describe_url(url),
            folder=folder,
            stdout=stdout,
            stderr=stderr,
        )
        handler: Callable[[Context, argparse.Namespace], int] = args.handler
        return handler(ctx, args)
    except _HelpExit as exc:
        return exc.code
    except CliError as exc:
        _error(
            exc.message,
            code=exc.code,
            field=exc.field,
            as_json=as_json,
            stdout=stdout,
            stderr=stderr,
        )
        return EXIT_REFUSED
    except DomainError as exc:
        _error(
            exc.message,
            code=exc.code,
            field=exc.field,
            as_json=as_json,
            stdout=stdout,
            stderr=stderr,
        )
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            traceback.print_exc(file=stderr)
        hint = "" if debug else " (run with --debug for the traceback)"
        # A database driver's own message, without SQLAlchemy's statement and link.
        cause = getattr(exc, "orig", None) or exc
        _error(
            f"unexpected {type(cause).__name__}: {cause}{hint}",
            code="internal_error",
            field=None,
            as_json=as_json,
            stdout=stdout,
            stderr=stderr,
        )
        return EXIT_FAILED
    finally:
        if ctx is not None:
            ctx.close()


if __name__ == "__main__":
    sys.exit(main())
