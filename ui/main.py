"""``stand-os``: start the desktop application, or render a view to a PNG and exit.

    stand-os [--data-dir DIR] [--demo] [--role ROLE]
    stand-os --screenshot FILE.png --view stands [--size 1280x800] [--data-dir DIR]

``--demo`` uses a demo data folder of its own (seeded with a demo program on first use),
never the user's real data folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

VIEWS = ("stands",)
PLANNED_VIEWS = ("today", "stand", "sale", "count", "refill", "refills", "onboarding")
DEMO_STANDS, DEMO_DAYS, DEMO_SEED = 60, 180, 7


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x800, not {text!r}") from None
    if w < 320 or h < 240:
        raise argparse.ArgumentTypeError("size must be at least 320x240")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stand-os", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        help="data folder (default: $STAND_OS_DATA_DIR or the platform's user data folder)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="use the demo data folder, seeded with a demo program"
    )
    parser.add_argument(
        "--role",
        default=os.environ.get("STAND_OS_ROLE", "rep"),
        choices=("admin", "manager", "rep", "partner"),
    )
    parser.add_argument("--screenshot", metavar="FILE.png", help="render a view and exit")
    parser.add_argument(
        "--view", default="stands", help=f"view to render with --screenshot: {', '.join(VIEWS)}"
    )
    parser.add_argument("--size", type=_size, default=(1280, 800), metavar="WxH")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        if args.view not in VIEWS:
            planned = args.view in PLANNED_VIEWS
            print(
                f"stand-os: error: view {args.view!r} "
                f"{'is not built yet' if planned else 'does not exist'}; "
                f"available: {', '.join(VIEWS)}",
                file=sys.stderr,
            )
            return 2

    from PySide6.QtCore import (
        QCoreApplication,
        QMessageLogContext,
        QtMsgType,
        qInstallMessageHandler,
    )
    from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog

    from app.backend import Backend
    from app.errors import DomainError
    from app.services import queries
    from ui.i18n import tr
    from ui.main_window import MainWindow
    from ui.tasks import TaskRunner

    if args.screenshot:
        # The offscreen platform has no window manager and says so once per window.
        def quiet(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
            if "propagateSizeHints" not in message:
                print(message, file=sys.stderr)

        qInstallMessageHandler(quiet)
    QCoreApplication.setOrganizationName("StandProgram")
    QCoreApplication.setApplicationName("stand-os-demo" if args.demo else "stand-os")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    try:
        backend = Backend.open_folder(args.data_dir, demo=args.demo)
    except (OSError, DomainError) as exc:
        if args.screenshot:
            print(f"stand-os: error: cannot open the data folder: {exc}", file=sys.stderr)
            return 1
        QMessageBox.critical(
            None,
            tr("Stand Program OS"),
            tr("Cannot open the data folder: {error}").format(error=exc),
        )
        return 1
    runner = TaskRunner()
    window = MainWindow(backend, runner, role=args.role)

    needs_demo = args.demo and not backend.read(queries.list_stands, limit=1)
    if args.screenshot:
        from app.demo import generate_demo

        if needs_demo:
            backend.with_factory(generate_demo, stands=DEMO_STANDS, days=DEMO_DAYS, seed=DEMO_SEED)
        window.resize(*args.size)
        window.show()
        window.reload()
        while window.loading:
            app.processEvents()
            runner.wait(50)
        app.processEvents()
        Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(args.screenshot)
        runner.wait()
        backend.close()
        if not ok:
            print(f"stand-os: error: could not write {args.screenshot}", file=sys.stderr)
            return 1
        return 0

    window.resize(1280, 800)
    window.show()
    if needs_demo:
        from app.demo import generate_demo

        dialog = QProgressDialog(tr("Creating the demo program…"), "", 0, 100, window)
        dialog.setCancelButton(None)
        dialog.setMinimumDuration(0)
        dialog.setWindowTitle(tr("Demo data"))

        def done(_summary: object) -> None:
            dialog.close()
            window.reload()

        def progress(phase: str, fraction: float) -> None:
            dialog.setLabelText(phase)
            dialog.setValue(int(fraction * 100))

        def failed(exc: Exception) -> None:
            dialog.close()
            QMessageBox.critical(
                window,
                tr("Demo data"),
                tr("The demo program could not be created: {error}").format(error=exc),
            )

        runner.run_db(
            backend.with_factory,
            generate_demo,
            stands=DEMO_STANDS,
            days=DEMO_DAYS,
            seed=DEMO_SEED,
            on_done=done,
            on_error=failed,
            on_progress=progress,
        )
    else:
        window.reload()
    code = app.exec()
    runner.wait()
    backend.close()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
