"""``standctl serve``: run the server that serves the program's REST contract.

The server itself lives in ``sync.server`` (FastAPI on uvicorn); this command only picks the
database and the address and starts it. By default it serves the data folder's SQLite file
(the same one ``standctl`` and the desktop use); ``--database-url`` points it at PostgreSQL,
where several ``--workers`` can share one database.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.errors import ValidationError

if TYPE_CHECKING:
    from app.cli import Context

CommandFn = Callable[..., argparse.ArgumentParser]

EXAMPLES = """\
  standctl serve
  standctl serve --host 0.0.0.0 --port 8080
  standctl serve --database-url postgresql+psycopg://stand@db/stand --workers 4
  standctl user add mgr.north --role manager --region North"""


def cmd_serve(ctx: Context, args: argparse.Namespace) -> int:
    # The one place the command line reaches into the wire layer (declared in pyproject's
    # import-linter contract): starting the server is what this command is for.
    from sync.server.runner import serve

    url = args.database_url or ctx.url
    if not 1 <= args.port <= 65535:
        raise ValidationError("The port must be from 1 to 65535.", field="port")
    if not 1 <= args.workers <= 64:
        raise ValidationError("Use 1 to 64 workers.", field="workers")
    if args.workers > 1 and url.startswith("sqlite"):
        raise ValidationError(
            "Several workers need PostgreSQL (--database-url postgresql+psycopg://...); "
            "a SQLite file is served by one worker.",
            field="workers",
        )
    from app.cli import describe_url, open_backend

    # Create or migrate the schema and seed the reference data (packages, tiers) once,
    # before any worker starts.
    open_backend(url, describe_url(url)).close()
    where = f"http://{args.host}:{args.port}"
    print(
        f"Serving {describe_url(url)} at {where}/api/v1 "
        f"(API docs: {where}/api/v1/docs); Ctrl+C stops.",
        file=ctx.stderr,
    )
    serve(url, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)
    return 0


def add_commands(sub: argparse._SubParsersAction[Any], command: CommandFn) -> None:
    p = command(
        sub,
        "serve",
        "serve the REST contract over HTTP (FastAPI on uvicorn)",
        EXAMPLES,
        cmd_serve,
        "Serve /api/v1 on this machine: the data folder's SQLite file by default, or the "
        "database given by --database-url. Users sign in with accounts made by "
        "'standctl user add'.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL of the database (default: the data folder's SQLite file)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (PostgreSQL only; default: %(default)s)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: %(default)s)",
    )
