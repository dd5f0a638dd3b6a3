"""Template, campaign and allocation pickers, loaded from the server with offline fallback."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QWidget,
)

from noojee_desk.core.delivery.api import Choice
from noojee_desk.core.delivery.records import Target
from noojee_desk.core.desk import Desk
from noojee_desk.core.profiles import choices
from noojee_desk.core.profiles.settings import Profile
from noojee_desk.ui.tasks import Tasks

_ID_TYPED = re.compile(r"^\s*#?\s*(\d{1,9})\s*$")


class ChoiceBox(QComboBox):
    """An editable combo of server choices; typing a number picks that id by hand."""

    chosen = Signal(object)  # int | None

    def __init__(self, name: str, accessible: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setAccessibleName(accessible)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        # Narrow enough for three in a row on a small or scaled screen; the list pops up wider.
        self.setMinimumContentsLength(8)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        line = self.lineEdit()
        assert line is not None  # an editable combo has its line edit (setEditable above)
        line.setPlaceholderText("choose, or type an id")
        line.setAccessibleName(accessible)
        line.setClearButtonEnabled(True)
        self.activated.connect(self._emit)
        line.editingFinished.connect(self._emit)
        self._last: int | None = None

    def set_choices(self, items: list[Choice], select: int | None) -> None:
        self.blockSignals(True)
        self.clear()
        for item in items:
            self.addItem(f"{item.name}  (#{item.id})", item.id)
        index = self.findData(select) if select is not None else -1
        if index < 0 and len(items) == 1:
            index = 0
        self.setCurrentIndex(index)
        if index < 0:
            # Offline with nothing cached: keep the remembered id so work can go on.
            self.setEditText(str(select) if select is not None and not items else "")
        self.blockSignals(False)
        self._last = None
        self._emit()

    def current_id(self) -> int | None:
        text = self.currentText()
        index = self.findText(text)
        if index >= 0:
            return int(self.itemData(index))
        typed = _ID_TYPED.match(text)
        return int(typed.group(1)) if typed else None

    def _emit(self, *_args: object) -> None:
        value = self.current_id()
        if value is not None and self.findText(self.currentText()) < 0:
            index = self.findData(value)
            if index >= 0:  # an id typed that the list has: shown by its name
                self.blockSignals(True)
                self.setCurrentIndex(index)
                self.blockSignals(False)
        if value != self._last:
            self._last = value
            self.chosen.emit(value)


class PickerBar(QWidget):
    """Three pickers in a row; emits ``target_changed`` with a Target or None."""

    target_changed = Signal(object)
    blocked = Signal(str)  # the server rejected the key or the address: a person must act

    def __init__(self, desk: Desk, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pickerBar")
        self._desk = desk
        self._tasks = tasks
        self._generation = {"templates": 0, "campaigns": 0, "allocations": 0}
        self.template = ChoiceBox("templatePicker", "Campaign template")
        self.campaign = ChoiceBox("campaignPicker", "Campaign")
        self.allocation = ChoiceBox("allocationPicker", "Allocation")
        self.refresh = QToolButton()
        self.refresh.setText("Refresh")
        self.refresh.setObjectName("refreshLists")
        self.refresh.setToolTip("Load the lists from the server again (F5)")
        self.refresh.setShortcut("F5")
        self.refresh.setAccessibleName("Refresh lists")
        self.refresh.setAccessibleDescription(
            "Load the templates, campaigns and allocations from the server again"
        )
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(60)
        self.busy.setMaximumHeight(10)
        self.busy.setTextVisible(False)
        self.busy.setAccessibleName("Loading")
        self.busy.hide()
        self.notice = QLabel()
        self.notice.setObjectName("pickerNotice")
        self.notice.setWordWrap(True)
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice.hide()  # shown with something to say: no empty row on a small screen
        self.retry = QPushButton("Retry")
        self.retry.setObjectName("pickerRetry")
        self.retry.setAccessibleName("Retry loading the lists")
        self.retry.hide()
        self._skippable = False

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for column, (label, box) in enumerate(
            (
                ("&Template", self.template),
                ("Ca&mpaign", self.campaign),
                ("A&llocation", self.allocation),
            )
        ):
            caption = QLabel(label)
            caption.setBuddy(box)
            grid.addWidget(caption, 0, column)
            grid.addWidget(box, 1, column)
            grid.setColumnStretch(column, 1)
        tools = QHBoxLayout()
        tools.addWidget(self.refresh)
        tools.addWidget(self.busy)
        self.tools = tools
        grid.addLayout(tools, 1, 3)
        notice_row = QHBoxLayout()
        notice_row.addWidget(self.notice, 1)
        notice_row.addWidget(self.retry)
        grid.addLayout(notice_row, 2, 0, 1, 4)

        self.template.chosen.connect(self._template_chosen)
        self.campaign.chosen.connect(self._campaign_chosen)
        self.allocation.chosen.connect(self._allocation_chosen)
        self.refresh.clicked.connect(self.reload)
        self.retry.clicked.connect(self.reload)
        self._loading = 0
        self._inside = False  # the focus is in one of the pickers (or on Refresh)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._focus_moved)

    # -- state -------------------------------------------------------------------------------

    def target(self) -> Target | None:
        ids = (self.template.current_id(), self.campaign.current_id(), self.allocation.current_id())
        if any(i is None for i in ids):
            return None
        return Target(*ids)  # type: ignore[arg-type]

    def _busy(self, delta: int) -> None:
        self._loading += delta
        self.busy.setVisible(self._loading > 0)

    def _show(self, loaded: choices.Loaded) -> None:
        if loaded.error is None:
            self._notice(f"ⓘ {loaded.note}" if loaded.note else "")
            self.retry.hide()
            return
        when = (
            time.strftime("%d %b %H:%M", time.localtime(loaded.fetched_at))
            if loaded.fetched_at
            else ""
        )
        stale = f" Showing the lists from {when} (not current)." if when else ""
        self._notice(f"⚠ {loaded.error_text}{stale}")
        self.retry.show()
        if loaded.blocked:
            self.blocked.emit(loaded.error_text)

    def _notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    # -- loading -----------------------------------------------------------------------------

    def reload(self) -> None:
        self._tasks.spawn(self._load("templates", None), name="load templates")

    def clear(self) -> None:
        for box in (self.template, self.campaign, self.allocation):
            box.set_choices([], None)
        self._notice("")
        self.retry.hide()

    async def _load(self, level: choices.Level, parent: int | None) -> None:
        self._generation[level] += 1
        generation = self._generation[level]
        self._busy(+1)
        try:
            loaded = await self._desk.load(level, parent)
        finally:
            self._busy(-1)
        if generation != self._generation[level] or self._desk.profile is None:
            return  # a newer request for this list was made meanwhile
        self._show(loaded)
        profile = self._desk.profile
        box, remembered = {
            "templates": (self.template, profile.template_id),
            "campaigns": (self.campaign, profile.campaign_id),
            "allocations": (self.allocation, profile.allocation_id),
        }[level]
        box.set_choices(loaded.items, remembered)

    def _template_chosen(self, template_id: int | None) -> None:
        self._remember(template_id, Profile.choose_template)
        self.campaign.set_choices([], None)
        self.allocation.set_choices([], None)  # a campaign already empty says nothing itself
        if template_id is not None:
            self._tasks.spawn(self._load("campaigns", template_id), name="load campaigns")
        self._changed()

    def _campaign_chosen(self, campaign_id: int | None) -> None:
        self._remember(campaign_id, Profile.choose_campaign)
        self.allocation.set_choices([], None)
        if campaign_id is not None:
            self._tasks.spawn(self._load("allocations", campaign_id), name="load allocations")
        self._changed()

    def _allocation_chosen(self, allocation_id: int | None) -> None:
        self._remember(allocation_id, Profile.choose_allocation)
        self._changed()

    def _remember(self, value: int | None, choose: Callable[[Profile, int], bool]) -> None:
        """Remember a choice per profile (a different one forgets the choices below it)."""
        profile = self._desk.profile
        if profile is not None and value is not None and choose(profile, value):
            self._desk.save_settings()

    def _changed(self) -> None:
        self._skip_when_chosen()
        self.target_changed.emit(self.target())

    @property
    def boxes(self) -> tuple[ChoiceBox, ChoiceBox, ChoiceBox]:
        return (self.template, self.campaign, self.allocation)

    def _skip_when_chosen(self) -> None:
        """While all three are chosen, Tab passes the pickers by (the form comes first);
        Ctrl+T, a mnemonic (Alt+T, Alt+M, Alt+L) or a click still reaches them, and once the
        focus is in one, Tab goes on to the next."""
        self._skippable = self.target() is not None
        self._set_tab_stops(not self._skippable or self._inside)

    def _focus_moved(self, _old: QWidget | None, new: QWidget | None) -> None:
        parts = (*self.boxes, self.refresh)
        inside = new is not None and any(part is new or part.isAncestorOf(new) for part in parts)
        if inside != self._inside:
            self._inside = inside
            self._set_tab_stops(not self._skippable or inside)

    def _set_tab_stops(self, reachable: bool) -> None:
        policy = Qt.FocusPolicy.StrongFocus if reachable else Qt.FocusPolicy.ClickFocus
        if self.template.focusPolicy() == policy:
            return
        for box in self.boxes:
            box.setFocusPolicy(policy)
            line = box.lineEdit()
            if line is not None:
                line.setFocusPolicy(policy)
        self.refresh.setFocusPolicy(
            Qt.FocusPolicy.TabFocus if reachable else Qt.FocusPolicy.NoFocus
        )

    @property
    def skipped_by_tab(self) -> bool:
        return self._skippable
