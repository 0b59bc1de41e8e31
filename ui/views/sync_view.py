"""Sync: what this device has not sent yet, what the server rejected and why, and what it
holds for a manager's review; "Sync now" and "Export unsent changes…".

The header says where sync stands (linked server, last sync, how the last round went in
plain words: "Offline — will retry", "Server busy", "Sign-in refused: link this device
again"...) and shows a progress bar during a round. Three tabs list
:func:`app.services.sync_device.items`:

- **Unsent**: changes waiting for the server, oldest first, with how often they were tried;
- **Rejected**: changes the server refused; the selected one's reason is shown large, with
  what to do about it (record the sale again, count the stand again…) and a way to its stand;
- **In review**: counts the server holds until a manager decides.

A device not linked to a server says so and offers Settings, and so does one whose
sign-in the server refused (it must be linked again); its changes are listed all the
same, and can be exported. The export writes every unsent and rejected change as JSON
lines (full envelopes), a backup a rep can mail or keep on a stick.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.clock import utcnow
from app.services import sync_settings
from app.services.sync_device import SyncItem
from ui.context import Changed, LatestRead, UiContext
from ui.i18n import tr
from ui.sync_controller import (
    BUSY,
    OFFLINE,
    oldest_age,
    short_time,
    sync_controller,
    unsent_text,
)
from ui.widgets import (
    TOUCH,
    EmptyState,
    kinetic,
    list_and_detail,
    local_time,
    plural,
    with_shortcut,
)

WARNING_COLOUR = "#b3261e"
MUTED = "color: #5f6b7a;"
ID_ROLE = Qt.ItemDataRole.UserRole + 1

#: What a rep can do about a rejected change, by op type (the longest matching prefix).
HINTS = {
    "sale.record": "The sale is not on the server. If it happened, record it again on the "
    "stand's Sale screen; the export keeps its details.",
    "sale.void": "The sale stays as the server has it. If it still needs undoing, void it "
    "again from the stand's sales.",
    "count.record": "Count the stand again: the new count sets its stock.",
    "stock.": "Record the write-off or return again from the stand's screen if it still "
    "applies, or count the stand.",
    "inventory.": "Open the stand and set its stock levels again if they still need changing.",
    "refill.deliver": "The units on the stand are not in stock on the server: record a "
    "return or count the stand.",
    "refill.": "Someone else changed this refill first. Open the stand's refills to see "
    "where it stands now, and act on it from there.",
    "loyalty.": "Check the partner's points balance on the Partners screen and adjust again "
    "if it is still needed.",
    "partner.": "Check the partner on the Partners screen; ask your manager if it should "
    "be changed on the server.",
    "stand.": "Check the stand on the Stands screen; ask your manager if it should be "
    "changed on the server.",
    "product.": "Ask your manager: product changes are made by the office.",
    "payout.": "Payouts are worked out on the server; nothing to do on this device.",
    "insight.": "Nothing to do: the coach's advice is kept up to date on each device.",
    "expansion.": "Check the site on the Expansion screen and decide again if needed.",
}
DEFAULT_HINT = (
    "Open the stand to see how things stand now, and enter the change again if it still "
    "applies. The export keeps its details."
)


def hint_for(op_type: str) -> str:
    """What to do about a rejected change of ``op_type``."""
    best = ""
    for prefix in HINTS:
        if op_type.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return tr(HINTS[best]) if best else tr(DEFAULT_HINT)


def not_linked_words() -> str:
    return tr(
        "This device is not linked to the program's server. Everything recorded here is "
        "kept on this computer, in order, and is sent once you link it: in Settings, with "
        "the server's address and your user name and password."
    )


def relink_words() -> str:
    return tr(
        "The server no longer accepts this device's sign-in. Link it again in Settings "
        "with your user name and password; everything recorded here stays on this "
        "computer and is sent then."
    )


def export_name(today: date) -> str:
    return f"stand-os-unsent-{today.isoformat()}.jsonl"


#: The tabs: (kind, title, columns, empty text when linked, empty text when not linked).
TABS = (
    (
        "unsent",
        "Unsent",
        ("What", "Stand", "Made", "Tries"),
        "Nothing waiting: the server has every change made on this device.",
        "No changes made on this device are waiting.",
    ),
    (
        "rejected",
        "Rejected",
        ("What", "Stand", "Made", "Reason"),
        "Nothing rejected. When the server refuses a change (a refill someone cancelled "
        "meanwhile, say), it is listed here with the reason and what to do.",
        "Nothing rejected. Changes are checked by the server once this device is linked.",
    ),
    (
        "review",
        "In review",
        ("What", "Stand", "Made", "Note"),
        "Nothing held for review. When two counts of the same stand and product overlap, "
        "the server keeps them here until a manager decides.",
        "Nothing held for review.",
    ),
)


class RejectedPane(QWidget):
    """The selected rejected change: the server's reason, large, and what to do."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.what = QLabel()
        self.what.setObjectName("rejected_what")
        self.what.setWordWrap(True)
        font = self.what.font()
        font.setBold(True)
        self.what.setFont(font)
        self.reason = QLabel()
        self.reason.setObjectName("rejected_reason")
        self.reason.setWordWrap(True)
        self.reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason.setStyleSheet(f"color: {WARNING_COLOUR}; font-size: 15px; font-weight: bold;")
        self.hint = QLabel()
        self.hint.setObjectName("rejected_hint")
        self.hint.setWordWrap(True)
        self.facts = QLabel()
        self.facts.setObjectName("rejected_facts")
        self.facts.setWordWrap(True)
        self.facts.setStyleSheet(MUTED)
        self.open_stand = QPushButton(tr("Open stand"))
        self.open_stand.setObjectName("open_stand")
        self.open_stand.setMinimumHeight(TOUCH)
        layout = QVBoxLayout(self)
        layout.addWidget(self.what)
        layout.addWidget(QLabel(tr("The server's reason:")))
        layout.addWidget(self.reason)
        layout.addSpacing(6)
        layout.addWidget(QLabel(tr("What to do:")))
        layout.addWidget(self.hint)
        layout.addWidget(self.facts)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_stand)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def show_item(self, item: SyncItem) -> None:
        stand = item.stand_name or tr("no stand")
        self.what.setText(f"{tr(item.label)} · {stand}")
        self.reason.setText(item.reason or tr("The server gave no reason."))
        self.hint.setText(hint_for(item.op_type))
        self.facts.setText(
            tr("Made {when} · change #{seq} of this device · {sent}").format(
                when=local_time(item.created_at),
                seq=item.device_seq,
                sent=plural(item.attempts, "sent once", "sent {n} times"),
            )
        )
        self.open_stand.setEnabled(bool(item.stand_id))


class SyncView(QWidget):
    title = "Sync"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.loading = False
        self.sync = sync_controller(ctx)
        self.items: list[SyncItem] = []
        self._linked_shown = False
        self._read = LatestRead(ctx, self)

        # ---- actions (window shortcuts while this screen shows)
        self.sync_action = QAction(tr("Sync now"), self)
        self.sync_action.setObjectName("sync_now")
        self.sync_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.sync_action.setToolTip(
            with_shortcut(
                tr("Send this device's changes and fetch everyone else's"), self.sync_action
            )
        )
        self.sync_action.triggered.connect(self.sync_now)
        self.export_action = QAction(tr("Export unsent changes…"), self)
        self.export_action.setObjectName("export")
        self.export_action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        self.export_action.setToolTip(
            with_shortcut(
                tr("Save every unsent and rejected change to a file, as a backup"),
                self.export_action,
            )
        )
        self.export_action.triggered.connect(self.export)
        self.open_action = QAction(tr("Open stand"), self)
        self.open_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_action.triggered.connect(self.open_stand)
        for action in (self.sync_action, self.export_action, self.open_action):
            self.addAction(action)

        # ---- header
        self.headline = QLabel()
        self.headline.setObjectName("headline")
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.headline.setFont(font)
        self.rejected_badge = QLabel()
        self.rejected_badge.setObjectName("rejected_badge")
        self.rejected_badge.setStyleSheet(f"color: {WARNING_COLOUR}; font-weight: bold;")
        self.detail = QLabel()
        self.detail.setObjectName("detail")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {WARNING_COLOUR};")
        self.problem.hide()
        self.sync_button = QPushButton(tr("Sync now"))
        self.sync_button.setObjectName("sync_button")
        self.sync_button.setMinimumHeight(TOUCH)
        self.sync_button.setToolTip(self.sync_action.toolTip())
        self.sync_button.clicked.connect(self.sync_now)
        self.export_button = QPushButton(tr("Export unsent changes…"))
        self.export_button.setObjectName("export_button")
        self.export_button.setMinimumHeight(TOUCH)
        self.export_button.setToolTip(self.export_action.toolTip())
        self.export_button.clicked.connect(self.export)
        self.progress = QProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.progress_label = QLabel()
        self.progress_label.setObjectName("progress_label")
        self.progress_label.setStyleSheet(MUTED)
        self.progress_label.hide()

        # ---- not linked
        self.not_linked = QFrame()
        self.not_linked.setObjectName("not_linked")
        self.not_linked.setFrameShape(QFrame.Shape.StyledPanel)
        self.not_linked_text = QLabel(not_linked_words())
        self.not_linked_text.setObjectName("not_linked_text")
        self.not_linked_text.setWordWrap(True)
        self.settings_button = QPushButton(tr("Link in Settings"))
        self.settings_button.setObjectName("settings_button")
        self.settings_button.setMinimumHeight(TOUCH)
        self.settings_button.clicked.connect(lambda: ctx.navigate.emit("settings", None))
        banner = QHBoxLayout(self.not_linked)
        banner.addWidget(self.not_linked_text, 1)
        banner.addWidget(self.settings_button)

        # ---- the lists
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tabs")
        self.tables: dict[str, QTableWidget] = {}
        self.empties: dict[str, EmptyState] = {}
        for kind, _title, columns, _empty, _empty_alone in TABS:
            table = QTableWidget(0, len(columns))
            table.setObjectName(f"{kind}_table")
            table.setHorizontalHeaderLabels([tr(c) for c in columns])
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
            table.setAlternatingRowColors(True)
            table.setWordWrap(False)
            table.setTextElideMode(Qt.TextElideMode.ElideRight)
            table.verticalHeader().setVisible(False)
            table.verticalHeader().setDefaultSectionSize(TOUCH)
            header = table.horizontalHeader()
            header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            # Unsent: the stand takes the room; the others: the reason or note.
            stretch = 1 if kind == "unsent" else len(columns) - 1
            header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
            kinetic(table)
            empty = EmptyState("")
            empty.setObjectName(f"{kind}_empty")
            empty.hide()
            self.tables[kind], self.empties[kind] = table, empty
            page = QWidget()
            page_layout = QVBoxLayout(page)
            page_layout.setContentsMargins(0, 4, 0, 0)
            if kind == "rejected":
                self.pane = RejectedPane()
                self.pane.open_stand.clicked.connect(self.open_stand)
                pane_scroll = QScrollArea()
                pane_scroll.setWidgetResizable(True)
                pane_scroll.setFrameShape(QFrame.Shape.NoFrame)
                pane_scroll.setWidget(self.pane)
                pane_scroll.setMinimumWidth(300)
                kinetic(pane_scroll)
                self.pane_empty = EmptyState(
                    tr("Select a rejected change to see why and what to do.")
                )
                self.pane_empty.setObjectName("pane_empty")
                self.pane_scroll = pane_scroll
                self.splitter = list_and_detail(
                    table, empty, pane_scroll, self.pane_empty, (560, 380)
                )
                page_layout.addWidget(self.splitter)
                table.itemSelectionChanged.connect(self._show_rejected)
            else:
                page_layout.addWidget(table, 1)
                page_layout.addWidget(empty, 1)
            table.itemActivated.connect(lambda _item: self.open_stand())
            self.tabs.addTab(page, tr(_title))
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        # ---- layout
        top = QHBoxLayout()
        heading = QVBoxLayout()
        title_row = QHBoxLayout()
        title_row.addWidget(self.headline)
        title_row.addWidget(self.rejected_badge)
        title_row.addStretch(1)
        heading.addLayout(title_row)
        heading.addWidget(self.detail)
        heading.addWidget(self.problem)
        top.addLayout(heading, 1)
        top.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.sync_button, 0, Qt.AlignmentFlag.AlignTop)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress)
        progress_row.addWidget(self.progress_label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(progress_row)
        layout.addWidget(self.not_linked)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)

        self.sync.changed.connect(self._show_state)
        self.sync.round_started.connect(
            lambda: self.progress.setRange(0, 0)
        )  # busy, no figures yet
        self.sync.progress.connect(self._show_progress)
        self.sync.round_finished.connect(lambda _outcome: self._reload_if_shown())
        ctx.data_changed.connect(self._on_changed)
        self._show_state()
        self._fill([])

    # ------------------------------------------------------------------ the view protocol

    def refresh(self) -> None:
        self.loading = True
        self.sync.refresh()
        self._read(sync_settings.items, on_done=self._fill, on_error=self._failed)

    def _reload_if_shown(self) -> None:
        if self.isVisible():
            self.refresh()

    def _on_changed(self, change: Changed) -> None:
        if change.kinds:
            self._reload_if_shown()

    def _failed(self, exc: Exception) -> None:
        self.loading = False
        self._say(tr("Could not read the changes: {error}").format(error=exc), warning=True)

    # ------------------------------------------------------------------ showing

    def _show_state(self) -> None:
        s = self.sync
        status = s.status
        linked = s.linked
        if linked != self._linked_shown:
            self._fill(self.items)  # the empty lists say different things
        relink = s.sign_in_refused
        self.not_linked.setVisible(status is not None and (not linked or relink))
        self.not_linked_text.setText(relink_words() if relink else not_linked_words())
        self.settings_button.setText(
            tr("Link again in Settings") if relink else tr("Link in Settings")
        )
        self.sync_button.setVisible(linked)
        self.sync_button.setEnabled(linked and not s.running)
        self.sync_action.setEnabled(linked and not s.running)
        self.progress.setVisible(s.running)
        self.progress_label.setText(s.progress_text if s.running else "")
        self.progress_label.setVisible(s.running)
        if status is None:
            self.headline.setText(tr("Reading…"))
            return
        if not linked:
            self.headline.setText(tr("Not linked to a server"))
            self.detail.setText(
                plural(
                    status.unsent,
                    "{n} change is kept on this device until it is linked",
                    "{n} changes are kept on this device until it is linked",
                )
                + tr(" (the oldest for {age}).").format(age=oldest_age(status, utcnow()))
                if status.unsent
                else tr("No changes are waiting on this device.")
            )
            self.problem.setText(s.link_error or "")
        else:
            headline, explanation = s.trouble()
            if s.running:
                text = tr("Syncing…")
            elif headline:
                text = headline + " · " + unsent_text(status, utcnow(), lower=True)
            else:
                text = unsent_text(status, utcnow())
            self.headline.setText(text)
            synced = (
                tr("last synced {time}").format(time=short_time(status.last_ok_at))
                if status.last_ok_at
                else tr("not synced yet")
            )
            self.detail.setText(
                tr("Linked to {url} as {user} · {synced}").format(
                    url=s.server_url, user=s.username or "?", synced=synced
                )
            )
            if relink:  # the banner below says what to do
                explanation = tr("The server said: {message}").format(
                    message=s.last.message if s.last else ""
                )
            elif not explanation and s.connection is None and status.last_error:
                explanation = tr("Last problem: {error}").format(error=status.last_error)
            self.problem.setText(explanation)
            calm = s.connection in (OFFLINE, BUSY)
            self.problem.setStyleSheet(MUTED if calm else f"color: {WARNING_COLOUR};")
        self.problem.setVisible(bool(self.problem.text()))
        self.rejected_badge.setText(
            plural(status.rejected, "{n} rejected", "{n} rejected") if status.rejected else ""
        )

    def _show_progress(self, stage: str, value: int, maximum: int) -> None:
        if maximum > 0:
            self.progress.setRange(0, maximum)
            self.progress.setValue(min(value, maximum))
        else:
            self.progress.setRange(0, 0)
        self.progress_label.setText(self.sync.progress_text)

    def _fill(self, items: list[SyncItem]) -> None:
        self.loading = False
        self.items = items
        linked = self._linked_shown = self.sync.linked
        for index, (kind, title, _columns, empty_text, empty_alone) in enumerate(TABS):
            rows = [i for i in items if i.kind == kind]
            table = self.tables[kind]
            selected = self._selected(kind)
            table.setSortingEnabled(False)
            table.setRowCount(len(rows))
            for r, item in enumerate(rows):
                last = {
                    "unsent": str(item.attempts),
                    "rejected": item.reason or "",
                    "review": item.reason or "",
                }[kind]
                cells = (tr(item.label), item.stand_name or "—", local_time(item.created_at), last)
                for c, text in enumerate(cells):
                    cell = QTableWidgetItem(text)
                    cell.setData(ID_ROLE, item.op_id)
                    if c == 3 and kind != "unsent":
                        cell.setToolTip(text)
                    if c == 3 and kind == "rejected":
                        cell.setForeground(Qt.GlobalColor.darkRed)
                    table.setItem(r, c, cell)
                if selected == item.op_id:
                    table.selectRow(r)
            self.empties[kind].setText(tr(empty_text if linked else empty_alone))
            table.setVisible(bool(rows))
            self.empties[kind].setVisible(not rows)
            self.tabs.setTabText(index, f"{tr(title)} ({len(rows)})")
        if self.tables["rejected"].rowCount() and not self.tables["rejected"].selectedItems():
            self.tables["rejected"].selectRow(0)
        self._show_rejected()

    def _selected(self, kind: str) -> str | None:
        chosen = self.tables[kind].selectedItems()
        return str(chosen[0].data(ID_ROLE)) if chosen else None

    def _item(self, op_id: str | None) -> SyncItem | None:
        return next((i for i in self.items if i.op_id == op_id), None)

    def _show_rejected(self) -> None:
        item = self._item(self._selected("rejected"))
        self.pane_scroll.setVisible(item is not None)
        self.pane_empty.setVisible(item is None)
        if item is not None:
            self.pane.show_item(item)

    def current_item(self) -> SyncItem | None:
        """The selected change of the tab on show."""
        kind = TABS[self.tabs.currentIndex()][0]
        return self._item(self._selected(kind))

    def show_tab(self, kind: str) -> None:
        self.tabs.setCurrentIndex([t[0] for t in TABS].index(kind))

    # ------------------------------------------------------------------ actions

    def sync_now(self) -> bool:
        started = self.sync.sync_now()
        if not started and not self.sync.linked:
            self._say(tr("Link this device to a server in Settings first."))
        elif started:
            self._say("")
        return started

    def open_stand(self) -> None:
        item = self.current_item()
        if item is not None and item.stand_id:
            self.ctx.navigate.emit("stand", item.stand_id)

    def export(self) -> None:
        default = str(Path.home() / export_name(datetime.now().astimezone().date()))
        path, _filter = QFileDialog.getSaveFileName(
            self,
            tr("Export unsent changes"),
            default,
            tr("JSON lines (*.jsonl);;All files (*)"),
        )
        if not path:
            return
        self.export_button.setEnabled(False)
        self.ctx.read(
            sync_settings.export_unsent,
            path,
            on_done=lambda n: self._exported(path, n),
            on_error=self._export_failed,
        )

    def _exported(self, path: str, count: int) -> None:
        self.export_button.setEnabled(True)
        text = tr(
            "Wrote 1 unsent or rejected change to {path}."
            if count == 1
            else "Wrote {n} unsent or rejected changes to {path}."
        ).format(n=count, path=path)
        self._say(text)
        self.ctx.status.emit(text)

    def _export_failed(self, exc: Exception) -> None:
        self.export_button.setEnabled(True)
        reason = getattr(exc, "strerror", None) or str(exc)
        self._say(
            tr("The changes could not be exported: {error}. Nothing was changed.").format(
                error=reason
            ),
            warning=True,
        )

    def _say(self, text: str, *, warning: bool = False) -> None:
        self.message.setStyleSheet(f"color: {WARNING_COLOUR};" if warning else "")
        self.message.setText(text)
        self.message.setVisible(bool(text))
