"""The queue view: every lead's live state, batch progress, controls, filter, search and export."""

from __future__ import annotations

import threading

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noojee_desk.core.delivery.dispatcher import QueueFigures
from noojee_desk.core.delivery.records import Attempt, BatchInfo, Counts, Lead, State
from noojee_desk.core.pbx import DUPLICATE
from noojee_desk.ui.queue.model import (
    COL_BATCH,
    COL_DETAILS,
    COL_ID,
    COL_LEAD,
    COL_PHONE,
    COL_STATUS,
    COL_TARGET,
    COL_TRIES,
    COL_UPDATED,
    FILTERS,
    LeadRole,
    QueueModel,
    clock_text,
)


class ElidedLabel(QLabel):
    """One line of text that gives way on a narrow window: cut with "…" where it has no room
    (the whole text in its tooltip), never pushing the controls beside it over each other."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width()
        )
        painter.drawText(self.contentsRect(), int(self.alignment()), shown)


class BatchProgress(QWidget):
    """One bar per open or just-finished batch: delivered / total, with problems counted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("batchProgress")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self._bars: dict[int, tuple[QLabel, QProgressBar, QWidget]] = {}

    def show_batches(self, batches: list[tuple[BatchInfo, Counts]]) -> None:
        keep = {batch.id for batch, _ in batches}
        for batch_id in list(self._bars):
            if batch_id not in keep:
                self._bars.pop(batch_id)[2].deleteLater()
        for batch, counts in batches:
            entry = self._bars.get(batch.id)
            if entry is None:
                row = QWidget()
                label = QLabel()
                bar = QProgressBar()
                bar.setMaximumHeight(14)
                bar.setTextVisible(False)
                line = QHBoxLayout(row)
                line.setContentsMargins(0, 0, 0, 0)
                line.addWidget(label, 2)
                line.addWidget(bar, 3)
                self._layout.addWidget(row)
                entry = (label, bar, row)
                self._bars[batch.id] = entry
            label, bar, _row = entry
            done = counts.total - counts.open
            bar.setRange(0, max(1, counts.total))
            bar.setValue(done)
            bar.setAccessibleName(f"Batch {batch.source} progress")
            problems = counts[State.REJECTED] + counts[State.DUPLICATE] + counts[State.FAILED]
            needs = "needs" if problems == 1 else "need"
            extra = f", {problems} {needs} a person" if problems else ""
            label.setText(
                f"{batch.source} ({clock_text(batch.created_at)}): "
                f"{counts[State.DELIVERED]} of {counts.total} delivered{extra}"
            )


class ExportProgress(QWidget):
    """An export's progress bar and its Cancel button (in the status bar while it runs).

    The worker writing the file calls ``tell`` (any thread); a timer on the UI thread shows it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportProgress")
        self.bar = QProgressBar()
        self.bar.setObjectName("exportBar")
        self.bar.setMaximumWidth(200)
        self.bar.setMaximumHeight(16)
        self.bar.setFormat("Exporting %p%")
        self.bar.setAccessibleName("Export progress")
        self.cancel = QToolButton()
        self.cancel.setObjectName("exportCancel")
        self.cancel.setText("Cancel")
        self.cancel.setToolTip("Stop the export; no file is written")
        self.cancel.clicked.connect(self._cancel)
        line = QHBoxLayout(self)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.bar)
        line.addWidget(self.cancel)
        self._done = (0, 0)
        self._cancelled = threading.Event()
        self._timer = QTimer(self, interval=100)
        self._timer.timeout.connect(self._show)
        self.hide()

    def begin(self) -> None:
        self._done = (0, 0)
        self._cancelled.clear()
        self.bar.setRange(0, 0)  # busy until the first figures
        self.cancel.setEnabled(True)
        self.show()
        self._timer.start()

    def tell(self, done: int, total: int) -> bool:
        """The export's progress callback: False once the person pressed Cancel."""
        self._done = (done, total)
        return not self._cancelled.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _cancel(self) -> None:
        self._cancelled.set()
        self.cancel.setEnabled(False)

    def _show(self) -> None:
        done, total = self._done
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(done)

    def end(self) -> None:
        self._timer.stop()
        self.hide()


class LeadDetails(QDialog):
    """Everything about one lead: fields, external id, every attempt."""

    def __init__(
        self,
        lead: Lead,
        attempts: list[Attempt],
        parent: QWidget | None = None,
        batch_name: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Lead {lead.id}")
        self.resize(620, 460)
        lines = [
            f"State: {lead.state.value}",
            f"External id: {lead.external_id}",
            f"Template / campaign / allocation: {lead.target.template_id} / "
            f"{lead.target.campaign_id} / {lead.target.allocation_id}",
            f"Allow duplicates: {'yes' if lead.allow_duplicates else 'no'}",
        ]
        if lead.sentence:
            lines.append(f"Result: {lead.sentence} {lead.fix}".rstrip())
        if lead.last_message:
            lines.append(f"Server message: {lead.last_message}")
        row = f", row {lead.row}" if lead.row is not None else ""
        named = f": {batch_name}" if batch_name else ""
        lines.append(f"Batch {lead.batch_id}{named}{row}")
        lines.append("")
        lines.append("Fields sent:")
        lines += [f"  {k}: {v}" for k, v in lead.fields.items()]
        lines.append("")
        lines.append("Attempts:")
        for a in attempts:
            code = f" code {a.code}" if a.code is not None else ""
            lines.append(
                f"  {clock_text(a.started_at)}  {a.outcome}{code}  {a.latency * 1000:.0f} ms  "
                f"{a.message}"
            )
        if not attempts:
            lines.append("  none yet")
        text = QPlainTextEdit("\n".join(lines))
        text.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(buttons)


#: Up to this many selected rows the controls follow the selected leads' states.
SELECTION_READ = 500

#: The states Retry sends again (``Outbox.requeue``), unless the lead was taken back.
RETRYABLE = frozenset({State.REJECTED, State.FAILED, State.CANCELLED, State.HELD, State.DUPLICATE})

#: The queue's columns: (column, wanted width, least width); Details takes what is left.
_WIDTHS = (
    (COL_ID, 56, 56),
    (COL_BATCH, 150, 80),
    (COL_STATUS, 140, 110),
    (COL_LEAD, 200, 110),
    (COL_PHONE, 100, 100),
    (COL_TARGET, 100, 64),
    (COL_TRIES, 48, 48),
    (COL_UPDATED, 90, 64),
)
_FITTED = tuple(column for column, _wanted, _least in _WIDTHS)
_LEAST = {column: least for column, _wanted, least in _WIDTHS}
_SHRINKS = tuple(column for column, wanted, least in _WIDTHS if least < wanted)
#: The least of the Details column (it stretches into any room left).
DETAILS_LEAST = 140


class QueueView(QWidget):
    """Shows the queue; its controls emit signals the window routes to the dispatcher."""

    pause_toggled = Signal(bool)  # True: pause
    retry_requested = Signal(list)
    hold_requested = Signal(list)
    cancel_requested = Signal(list)
    resend_requested = Signal(list)
    export_requested = Signal(str)  # "csv" | "xlsx"
    copy_failed_requested = Signal()
    details_requested = Signal(int)

    def __init__(self, model: QueueModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queueView")
        self.model = model

        self.table = QTableView()
        self.table.setObjectName("queueTable")
        self.table.setAccessibleName("Lead queue")
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(COL_DETAILS, QHeaderView.ResizeMode.Stretch)
        # Queue order, oldest or newest first (the # column's header turns it round), or by
        # status or last change (a sorted query in a worker): a click on the header.
        header.setSortIndicatorShown(True)
        header.setSortIndicator(model.sort_column, model.sort_order)
        header.sectionClicked.connect(self._header_clicked)
        model.order_changed.connect(self._show_order)
        # The widths wanted; a narrow table (a small or scaled screen) narrows the wordy
        # columns down to their least, elided (the Details dialog has every word), instead of
        # scrolling sideways. A column the person drags keeps the width given.
        self._wanted = {column: width for column, width, _least in _WIDTHS}
        self._fitting = False
        header.sectionResized.connect(self._column_dragged)
        self.table.viewport().installEventFilter(self)  # also when a scroll bar comes or goes
        self._fit_columns()
        self.table.doubleClicked.connect(self._open_details)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)

        self.title = QLabel("<b>Queue</b>")
        self.pause = QToolButton()
        self.pause.setText("Pause sending")
        self.pause.setObjectName("pauseQueue")
        self.pause.setCheckable(True)
        self.pause.setToolTip("Stop sending; queued leads wait (Ctrl+P)")
        self.pause.setShortcut(QKeySequence("Ctrl+P"))
        self.pause.toggled.connect(self._pause_toggled)
        self.filter = QComboBox()
        self.filter.setObjectName("queueFilter")
        self.filter.setAccessibleName("Show")
        self.filter.addItems(list(FILTERS))
        # As wide as most of its choices, not its longest: the row fits a narrow window (the
        # list pops up as wide as it needs).
        self.filter.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.filter.setMinimumContentsLength(14)
        self.filter.currentTextChanged.connect(lambda text: self.model.set_states(FILTERS[text]))
        self.search = QLineEdit()
        self.search.setObjectName("queueSearch")
        self.search.setPlaceholderText("Search name, phone, id, message… (Ctrl+F)")
        self.search.setAccessibleName("Search the queue")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(200)  # the words typed stay in view beside "Searching…"
        # The search runs in SQL when typing pauses (a keystroke each is a query each).
        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self._search_now)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.search.returnPressed.connect(self._search_now)
        self.search.installEventFilter(self)  # Down: on to the rows found
        # A search's first results come from the indexes; the rest while this shows.
        self.searching = QLabel("Searching messages…")
        self.searching.setObjectName("queueSearching")
        self.searching.setToolTip(
            "The first results are shown; messages and parts of words are still being searched"
        )
        self.searching.hide()
        self.model.searching.connect(self.searching.setVisible)

        self.act_retry = self._action("Retry", "Send the selected leads again now", "actRetry")
        self.act_cancel = self._action("Cancel", "Do not send the selected leads", "actCancel")
        self.act_hold = self._action(
            "Hold",
            "Keep the selected queued leads back; they are not sent until retried (Ctrl+H)",
            "actHold",
        )
        self.act_resend = self._action(
            "Resend allowing duplicates",
            "Send rejected duplicates again with 'allow duplicates'",
            "actResendDuplicates",
        )
        self.act_details = self._action("Details…", "Every attempt of this lead", "actDetails")
        self.act_copy_failed = self._action(
            "Copy failed rows", "Copy rejected and failed leads as TSV for a spreadsheet", "actCopy"
        )
        self.act_export_csv = self._action("Export results as CSV…", "", "actExportCsv")
        self.act_export_xlsx = self._action("Export results as Excel…", "", "actExportXlsx")
        self.act_retry.setShortcut(QKeySequence("Ctrl+R"))
        self.act_cancel.setShortcut(QKeySequence(Qt.Key.Key_Delete))
        self.act_hold.setShortcut(QKeySequence("Ctrl+H"))
        self.act_retry.triggered.connect(lambda: self.retry_requested.emit(self.selected_ids()))
        self.act_cancel.triggered.connect(lambda: self.cancel_requested.emit(self.selected_ids()))
        self.act_hold.triggered.connect(lambda: self.hold_requested.emit(self.selected_ids()))
        self.act_resend.triggered.connect(lambda: self.resend_requested.emit(self.selected_ids()))
        self.act_details.triggered.connect(lambda: self._open_details(self.table.currentIndex()))
        self.act_copy_failed.triggered.connect(self.copy_failed_requested)
        #: What can be done to the selected leads (the menus and the table's shortcuts).
        self.lead_actions = (
            self.act_retry,
            self.act_hold,
            self.act_cancel,
            self.act_resend,
            self.act_details,
        )
        self.act_export_csv.triggered.connect(lambda: self.export_requested.emit("csv"))
        self.act_export_xlsx.triggered.connect(lambda: self.export_requested.emit("xlsx"))
        for act in self.lead_actions:
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.table.addAction(act)
        find = QAction(self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.search.setFocus)
        self.addAction(find)

        actions = QToolButton()

        actions.setText("Selected leads")
        actions.setObjectName("selectedLeadsMenu")
        actions.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(actions)
        for act in self.lead_actions:
            menu.addAction(act)
        actions.setMenu(menu)
        export = QToolButton()
        export.setText("Export")
        export.setObjectName("exportMenu")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        export_menu = QMenu(export)
        for act in (self.act_export_csv, self.act_export_xlsx, self.act_copy_failed):
            export_menu.addAction(act)
        export.setMenu(export_menu)

        self.figures = ElidedLabel()
        self.figures.setObjectName("queueFigures")
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.figures, 1)
        top.addWidget(self.filter)
        top.addWidget(self.search, 1)
        top.addWidget(self.searching)
        top.addWidget(actions)
        top.addWidget(export)
        top.addWidget(self.pause)
        self.batches = BatchProgress()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.batches)
        layout.addWidget(self.table, 1)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        model.selection_size = self._selected_at_most
        # A selected lead changes state while selected (delivered, rejected 105, …).
        self.model.dataChanged.connect(self._rows_changed)
        self._selection_changed()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        elif watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key() if isinstance(event, QKeyEvent) else None
            if key == Qt.Key.Key_Down and self.model.rowCount():
                self._search_now()
                if not self.table.currentIndex().isValid():
                    self.table.setCurrentIndex(self.model.index(0, COL_LEAD))
                self.table.setFocus(Qt.FocusReason.ShortcutFocusReason)
                return True
        return False

    def _fit_columns(self) -> None:
        """Columns at their wanted widths where the table has room; where it has not, the
        wordy ones narrowed in proportion (never below their least) so the row fits."""
        room = self.table.viewport().width()
        header = self.table.horizontalHeader()
        wanted = {c: self._wanted.get(c, header.defaultSectionSize()) for c in _FITTED}
        fixed = sum(wanted[c] for c in _FITTED if c not in _SHRINKS) + DETAILS_LEAST
        shrinkable = sum(wanted[c] for c in _SHRINKS)
        spare = room - fixed
        widths = dict(wanted)
        if spare < shrinkable:
            least = {c: _LEAST[c] for c in _SHRINKS}
            give = max(0, spare - sum(least.values()))
            over = max(1, shrinkable - sum(least.values()))
            for c in _SHRINKS:
                widths[c] = least[c] + (wanted[c] - least[c]) * give // over
        self._fitting = True
        try:
            for column, width in widths.items():
                if header.sectionSize(column) != width:
                    self.table.setColumnWidth(column, width)
        finally:
            self._fitting = False

    def _column_dragged(self, column: int, _old: int, new: int) -> None:
        if not self._fitting and column in _FITTED:
            self._wanted[column] = new

    def _search_now(self) -> None:
        self._search_timer.stop()
        if self.search.text().strip() != self.model.search:
            self.model.set_search(self.search.text())

    def _header_clicked(self, column: int) -> None:
        """The header has turned its indicator already: the model sorts that way, or (a
        column it does not sort by) the indicator goes back to the model's order."""
        header = self.table.horizontalHeader()
        if self.model.can_sort(column):
            self.model.sort(column, header.sortIndicatorOrder())
        self._show_order()

    def _show_order(self) -> None:
        self.table.horizontalHeader().setSortIndicator(
            self.model.sort_column, self.model.sort_order
        )

    def _action(self, text: str, tip: str, name: str) -> QAction:
        act = QAction(text, self)
        act.setObjectName(name)
        if tip:
            act.setToolTip(tip)
            act.setStatusTip(tip)
        return act

    def _pause_toggled(self, paused: bool) -> None:
        self.pause.setText("Resume sending" if paused else "Pause sending")
        self.pause_toggled.emit(paused)

    def set_paused(self, paused: bool) -> None:
        """Reflect the dispatcher's state without emitting a request."""
        self.pause.blockSignals(True)
        self.pause.setChecked(paused)
        self.pause.setText("Resume sending" if paused else "Pause sending")
        self.pause.blockSignals(False)

    def selected_rows(self) -> list[int]:
        """The selected rows in order, from the selection's ranges (no lead is read)."""
        rows: set[int] = set()
        for top, bottom in self._spans():
            rows.update(range(top, bottom + 1))
        return sorted(rows)

    def _spans(self) -> list[tuple[int, int]]:
        """The selection's ranges of rows (first, last)."""
        selection = self.table.selectionModel().selection()
        return [(span.top(), span.bottom()) for span in map(selection.at, range(selection.size()))]

    def _selected_at_most(self) -> int:
        """The selected rows counted by their ranges (overlaps twice): no row is walked."""
        return sum(bottom - top + 1 for top, bottom in self._spans())

    def selected_count(self) -> int:
        """How many rows are selected (a range each: Ctrl+A at a million is one)."""
        spans = self._spans()
        if len(spans) > 1:
            return len(self.selected_rows())
        return sum(bottom - top + 1 for top, bottom in spans)

    def selected_leads(self) -> list[Lead]:
        found = (self.model.index(row, 0).data(LeadRole) for row in self.selected_rows())
        return [lead for lead in found if lead is not None]

    def selected_ids(self) -> list[int]:
        """The ids of the selected rows (a control on them says how many it changed)."""
        count = self.model.rowCount()
        return [self.model.id_at(row) for row in self.selected_rows() if row < count]

    def _rows_changed(self, top: QModelIndex, bottom: QModelIndex, *_args: object) -> None:
        """A lead changed while the view shows it: the actions follow only when it is one of a
        few selected ones (a large selection has every control on already)."""
        if self.selected_count() > SELECTION_READ:
            return
        first, last = top.row(), bottom.row()
        for top_row, bottom_row in self._spans():
            if top_row <= last and bottom_row >= first:
                self._selection_changed()
                return

    def _selection_changed(self, *_args: object) -> None:
        """Which controls apply to the selected leads. Up to SELECTION_READ rows their states
        decide (their leads are read a page at a time); above that every control is on, and
        the control says how many leads it changed (reading 100,000 leads freezes the UI)."""
        if self.selected_count() > SELECTION_READ:
            for act in (self.act_retry, self.act_cancel, self.act_hold, self.act_resend):
                act.setEnabled(True)
            self.act_details.setEnabled(False)
            return
        leads = self.selected_leads()
        states = {lead.state for lead in leads}
        # A lead taken back to the grid is never sent again (its new copy is): nothing to retry.
        sendable = [lead for lead in leads if not lead.taken_back]
        self.act_retry.setEnabled(any(lead.state in RETRYABLE for lead in sendable))
        self.act_cancel.setEnabled(bool(states & {State.QUEUED, State.HELD}))
        self.act_hold.setEnabled(State.QUEUED in states)
        self.act_resend.setEnabled(
            any(
                lead.last_code == DUPLICATE and lead.state in (State.REJECTED, State.DUPLICATE)
                for lead in sendable
            )
        )
        self.act_details.setEnabled(len(leads) == 1)

    def _open_details(self, index: QModelIndex) -> None:
        if index.isValid():
            lead = self.model.index(index.row(), 0).data(LeadRole)
            if lead is not None:
                self.details_requested.emit(lead.id)

    def _context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        for act in self.lead_actions:
            menu.addAction(act)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def show_figures(self, figures: QueueFigures) -> None:
        """The queue's part of the dispatcher's figures: rates, the pause button, the rows'
        "needs attention"."""
        attention = f"{figures.paused_reason} {figures.fix}".strip()
        self.model.set_paused(attention if figures.needs_attention else "")
        self.set_paused(bool(figures.paused_reason) and not figures.needs_attention)
        if figures.in_flight or figures.queued:
            # What waits first: on a narrow window the end of the line gives way.
            self.figures.setText(
                f"{figures.queued:,} waiting · {figures.in_flight} sending · "
                f"{figures.rate_per_s:.1f} leads/s · limit found: {figures.limit} at once"
            )
        else:
            self.figures.setText("Nothing waiting to be sent.")

    @property
    def figures_text(self) -> str:
        return self.figures.text()


class PauseAction(QAction):
    """Queue ▸ Pause sending, which reads "Resume sending" while the queue is paused."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("&Pause sending", parent)
        self.setObjectName("actPause")

    def show_figures(self, figures: QueueFigures) -> None:
        self.setText("&Resume sending" if figures.paused_reason else "&Pause sending")
