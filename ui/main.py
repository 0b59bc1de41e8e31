"""``stand-os``: start the desktop application, or render a screen to a PNG and exit.

    stand-os [--data-dir DIR] [--demo] [--user NAME] [--role ROLE]
    stand-os --screenshot FILE.png --view VIEW [--size 1280x800] [--data-dir DIR] [--demo]

``--demo`` uses a demo data folder of its own (seeded with a demo program on first use),
never the user's real data folder. VIEW is one of: today, stands, stand (the stand with the
most to do), sale, count, refill, refills, onboarding, partners, settings, sync, dashboard,
performance, coach (the coach runs once first, so the screen shows its insights).

The app runs the coach in the background while it is open (:mod:`ui.coach_scan`): a few
seconds after start, every half hour, and a minute after sales, stock or refills change.
Once the device is linked to a server it syncs while open (:mod:`ui.sync_controller`): at
start, every minute (Settings), and two seconds after a change.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

VIEWS = (
    "today",
    "stands",
    "stand",
    "sale",
    "count",
    "refill",
    "refills",
    "onboarding",
    "partners",
    "settings",
    "sync",
    "dashboard",
    "performance",
    "coach",
    "expansion",
)
#: Screens that show one stand; a screenshot opens them on the most interesting one.
STAND_VIEWS = ("stand", "sale", "count", "refill", "performance")
ROLES = ("admin", "manager", "rep", "partner")
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
    parser.add_argument("--user", help="who is working (default: as set in Settings)")
    parser.add_argument("--role", choices=ROLES, help="their role (default: as set in Settings)")
    parser.add_argument("--screenshot", metavar="FILE.png", help="render a screen and exit")
    parser.add_argument("--view", default="stands", choices=VIEWS, help="screen to render")
    parser.add_argument("--size", type=_size, default=(1280, 800), metavar="WxH")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import (
        QCoreApplication,
        QLibraryInfo,
        QLocale,
        QMessageLogContext,
        QSettings,
        QtMsgType,
        QTranslator,
        qInstallMessageHandler,
    )
    from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog

    from app.backend import Backend
    from app.errors import DomainError
    from app.models import Role
    from app.services import queries
    from app.services.base import Actor
    from ui.context import UiContext
    from ui.i18n import tr
    from ui.main_window import MainWindow
    from ui.tasks import Cancelled, TaskRunner

    if args.screenshot:
        # The offscreen platform has no window manager and says so once per window.
        def quiet(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
            if "propagateSizeHints" not in message:
                print(message, file=sys.stderr)

        qInstallMessageHandler(quiet)
    QCoreApplication.setOrganizationName("StandProgram")
    QCoreApplication.setApplicationName("stand-os-demo" if args.demo else "stand-os")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    # Qt's own texts (standard buttons, dialogs) in the user's language, before any widget.
    # Without a locale in the environment (LANG unset: the "C" locale) Qt writes "21.48€"
    # and "29 11 2026"; English (US) conventions read better than those.
    if QLocale().language() == QLocale.Language.C:
        QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
    qt_translator = QTranslator(app)
    if qt_translator.load(
        QLocale(), "qtbase", "_", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    ):
        app.installTranslator(qt_translator)
    # The same look on every platform; Fusion follows the system's light or dark scheme.
    QApplication.setStyle("Fusion")

    settings = QSettings()
    user = args.user or os.environ.get("STAND_OS_USER") or settings.value("user/name")
    if not user and args.demo:
        from app.demo_catalog import DEMO_USER

        user = DEMO_USER
    role = args.role or os.environ.get("STAND_OS_ROLE") or settings.value("user/role") or "rep"
    if role not in ROLES:
        role = "rep"
    try:
        actor = Actor(str(user or getpass.getuser()), Role(str(role)))
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
    ctx = UiContext(backend, runner, actor)
    window = MainWindow(ctx)
    needs_demo = args.demo and not backend.read(queries.list_stands, limit=1)

    if args.screenshot:
        from app.demo import generate_demo

        if needs_demo:
            backend.with_factory(generate_demo, stands=DEMO_STANDS, days=DEMO_DAYS, seed=DEMO_SEED)
        window.resize(*args.size)
        window.show()
        arg: object = None
        if args.view in STAND_VIEWS:
            stands = backend.read(queries.list_stands, status="active")
            if stands:
                arg = max(stands, key=lambda r: (r.out_count + r.low_count, r.open_refills)).id
        if args.view == "coach":  # what the background scan would have found by now
            from app.coach.agent import run_coach
            from ui.coach_scan import coach_runs

            coach_runs(ctx).record(backend.call(run_coach))
        if args.view == "expansion":  # partner leads scored, as "Score now" would
            from app.coach.expansion import score_candidates

            backend.call(score_candidates)
        if args.view == "performance":  # the stand screen, on its Performance tab
            window.go("stand", arg, remember=False)
            cast(Any, window.view("stand")).show_tab("performance")
        else:
            window.go(args.view, arg, remember=False)
        deadline = time.monotonic() + 60
        while window.busy and time.monotonic() < deadline:
            app.processEvents()
            runner.wait(20)
        for _ in range(3):
            app.processEvents()
        Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(args.screenshot)
        runner.wait()
        backend.close()
        if not ok:
            print(f"stand-os: error: could not write {args.screenshot}", file=sys.stderr)
            return 1
        return 0

    if not settings.contains("main/geometry"):
        window.resize(1280, 800)
    window.show()
    # Everything made so far (Qt wrappers, modules) lives as long as the app: keep it out of
    # the garbage collector's full passes, which otherwise pause the GUI for up to ~0.1 s
    # while a 10,000-stand list scrolls (bench/bench_stand_list.py --gc-freeze).
    gc.freeze()
    if needs_demo:
        from app.demo import generate_demo

        dialog = QProgressDialog(tr("Creating the demo program…"), tr("Cancel"), 0, 100, window)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumDuration(0)
        dialog.setWindowTitle(tr("Demo data"))

        def progress(phase: str, fraction: float) -> None:
            dialog.setLabelText(tr("Creating the demo program: {phase}…").format(phase=phase))
            dialog.setValue(int(fraction * 100))

        def done(_summary: object) -> None:
            dialog.close()
            window.start()

        def failed(exc: Exception) -> None:
            dialog.close()
            if isinstance(exc, Cancelled):  # rolled back: an empty program, nothing half-made
                window.start()
                window.show_message(tr("Demo program not created (cancelled)."))
                return
            QMessageBox.critical(
                window,
                tr("Demo data"),
                tr("The demo program could not be created: {error}").format(error=exc),
            )

        job = runner.run_db(
            backend.with_factory,
            generate_demo,
            stands=DEMO_STANDS,
            days=DEMO_DAYS,
            seed=DEMO_SEED,
            on_done=done,
            on_error=failed,
            on_progress=progress,
        )
        dialog.canceled.connect(lambda: runner.cancel(job))
    else:
        window.start()
    # Keep the coach's insights current while the app is open (queued behind the demo's
    # creation on the database lane when there is one).
    from ui.coach_scan import start_scanner

    scanner = start_scanner(ctx)
    app.aboutToQuit.connect(scanner.stop)
    code = app.exec()
    scanner.stop()
    runner.wait()
    backend.close()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
