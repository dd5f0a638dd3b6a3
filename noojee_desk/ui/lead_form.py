"""Key in one lead: fields from the template's layout, checked as you type, Ctrl+Enter queues it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate, QDateTime, Qt, QTime, QTimer, QTimeZone, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDateTimeEdit,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from noojee_desk.core.leads.dates import default_callback, earliest_callback
from noojee_desk.core.leads.layouts import FieldLayout
from noojee_desk.core.leads.validate import LeadCheck, Problem, Validator
from noojee_desk.ui.theme import style


def _wall(value: datetime) -> QDateTime:
    """A wall-clock time for the callback editor (held as UTC, shown as it is)."""
    return QDateTime(
        QDate(value.year, value.month, value.day), QTime(value.hour, value.minute), QTimeZone.utc()
    )


@dataclass(frozen=True, slots=True)
class FormLead:
    """What the form hands over when a lead is queued."""

    fields: dict[str, str]
    phones: frozenset[str]
    allow_duplicates: bool


class LeadForm(QWidget):
    """The single-lead form. ``submitted`` carries a FormLead; the window queues it."""

    submitted = Signal(object)
    send_again = Signal(object)  # a FormLead delivered before, to queue again
    tab_order_changed = Signal()  # the fields were rebuilt: the window chains them again

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("leadForm")
        self._validator: Validator | None = None
        self._layout: FieldLayout | None = None
        self._inputs: dict[str, QLineEdit] = {}
        self._notes: dict[str, QLabel] = {}
        self._confirmed_warnings: tuple[str, ...] = ()
        self._other_phones: Callable[[Iterable[str]], dict[str, str]] | None = None
        self._timezone = "Australia/Sydney"
        self._check_timer = QTimer(self, singleShot=True, interval=120)
        self._check_timer.timeout.connect(self._check_live)

        self.fields_box = QGroupBox("Lead")
        self.fields_form = QFormLayout(self.fields_box)
        self.fields_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        options = QGroupBox("Dialling options")
        self.callback_on = QCheckBox("Call &back at")
        self.callback_on.setObjectName("callbackEnabled")
        self.callback = QDateTimeEdit()
        self.callback.setObjectName("callbackDate")
        self.callback.setAccessibleName("Callback date and time")
        self.callback.setCalendarPopup(True)
        self.callback.setDisplayFormat("ddd d MMM yyyy  h:mm ap")
        self.callback.setEnabled(False)
        # The editor holds the PBX zone's wall-clock time as is (UTC: no DST gaps of the PC's
        # own zone); ``clock`` is the instant now (tests set it).
        self.callback.setTimeZone(QTimeZone.utc())
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.callback_zone = QLabel()
        self.callback_zone.setObjectName("callbackZone")
        self.callback_on.toggled.connect(self.callback.setEnabled)
        self.callback_on.toggled.connect(self._callback_toggled)
        self.callback_on.toggled.connect(self._schedule_check)
        self.callback.dateTimeChanged.connect(self._schedule_check)
        self.priority = QSpinBox()
        self.priority.setObjectName("priority")
        self.priority.setAccessibleName("Priority")
        self.priority.setRange(-1, 100)
        self.priority.setSpecialValueText("Template default (10)")
        self.priority.setValue(-1)
        self.priority.setToolTip("0 to 100; lower is called sooner")
        self.contact_hours = QLineEdit()
        self.contact_hours.setObjectName("contactHours")
        self.contact_hours.setAccessibleName("Contact hours")
        self.contact_hours.setPlaceholderText("template default")
        self.external_id = QLineEdit()
        self.external_id.setObjectName("externalId")
        self.external_id.setAccessibleName("External lead id")
        self.external_id.setPlaceholderText("generated")
        self.allow_duplicates = QCheckBox("Allow &duplicates (add even if the number is known)")
        self.allow_duplicates.setObjectName("allowDuplicates")
        callback_row = QHBoxLayout()
        callback_row.addWidget(self.callback_on)
        callback_row.addWidget(self.callback, 1)
        callback_row.addWidget(self.callback_zone)
        opts = QFormLayout(options)
        opts.addRow(callback_row)
        opts.addRow("&Priority", self.priority)
        opts.addRow("Contact h&ours", self.contact_hours)
        opts.addRow("E&xternal id", self.external_id)
        opts.addRow(self.allow_duplicates)
        self._system_notes = QLabel()
        self._system_notes.setWordWrap(True)
        opts.addRow(self._system_notes)
        for widget in (self.contact_hours, self.external_id):
            widget.textChanged.connect(self._schedule_check)
        self.priority.valueChanged.connect(self._schedule_check)

        self.summary = QLabel()
        self.summary.setObjectName("formSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.queue_button = QPushButton("Q&ueue lead  (Ctrl+Enter)")
        self.queue_button.setToolTip("Queue this lead to be sent (Ctrl+Enter)")
        self.queue_button.setObjectName("queueLead")
        self.queue_button.setEnabled(False)
        self.clear_button = QPushButton("Clear  (Esc)")
        self.clear_button.setObjectName("clearForm")
        self.clear_button.setToolTip("Empty the form for the next lead (Esc)")
        self.queue_button.clicked.connect(self.submit)
        self.clear_button.clicked.connect(self.clear)
        self.again_button = QPushButton("Send again")
        self.again_button.setObjectName("sendLeadAgain")
        self.again_button.hide()
        self._delivered_lead: FormLead | None = None
        self.again_button.clicked.connect(self._send_again)
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.again_button)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.queue_button)

        columns = QHBoxLayout()
        columns.addWidget(self.fields_box, 3)
        columns.addWidget(options, 2)
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.addLayout(columns)
        inner_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes from field to field, not here
        self.scroll_area = scroll
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll, 1)
        outer.addLayout(buttons)

        # Actions (not bare shortcuts): Help ▸ Keyboard shortcuts lists them from here.
        self.act_queue = QAction("Queue the lead", self)
        self.act_queue.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.act_queue.triggered.connect(self.submit)
        self.act_clear = QAction("Clear the form", self)
        self.act_clear.setShortcut(QKeySequence("Escape"))
        self.act_clear.triggered.connect(self.clear)
        for act in (self.act_queue, self.act_clear):
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(act)
        self._waiting_text = ""  # what the summary says while leads cannot be queued
        self.set_target_ready(False)
        self._offer_callback()  # a sensible time (now + 1 h in the default zone) from the start
        self.callback_zone.setText(f"{self._timezone} time")

    # -- configuration -----------------------------------------------------------------------

    def set_layout(
        self,
        layout: FieldLayout,
        validator: Validator,
        timezone: str,
        other_phones: Callable[[Iterable[str]], dict[str, str]] | None = None,
    ) -> None:
        """Rebuild the fields for ``layout``; keeps values of fields with the same name."""
        old = {name: box.text() for name, box in self._inputs.items()}
        had_focus = self._focus_in_fields()
        for box in self._inputs.values():
            box.blockSignals(True)  # no editingFinished from a box on its way out
        while self.fields_form.rowCount():
            self.fields_form.removeRow(0)
        self._inputs.clear()
        self._notes.clear()
        self._layout = layout
        self._validator = validator
        self._timezone = timezone
        self._other_phones = other_phones
        # Required fields first, so that they are in view without scrolling on a small screen;
        # the others keep the template's order.
        ordered = sorted(layout.fields, key=lambda spec: not spec.required)
        for spec in ordered:
            box = QLineEdit(old.get(spec.name, ""))
            box.setObjectName(f"field_{spec.name}")
            box.setAccessibleName(spec.title)
            box.setToolTip(f"Sent as the field {spec.name}")
            box.setAccessibleDescription(
                f"Sent as the field {spec.name}"
                + ("; required" if spec.required else "")
                + ("; a phone number" if spec.phone else "")
            )
            box.setMaxLength(spec.max_length)
            if spec.phone:
                box.setPlaceholderText("phone number")
                box.editingFinished.connect(lambda name=spec.name: self._format_phone(name))
            box.textChanged.connect(self._schedule_check)
            note = QLabel()
            note.setObjectName(f"note_{spec.name}")
            note.setWordWrap(True)
            note.hide()
            cell = QVBoxLayout()
            cell.setSpacing(1)
            cell.addWidget(box)
            cell.addWidget(note)
            label = spec.title + (" *" if spec.required else "") + (" ☎" if spec.phone else "")
            self.fields_form.addRow(label, cell)
            self._inputs[spec.name] = box
            self._notes[spec.name] = note
        try:
            zone = ZoneInfo(timezone)
            self.callback_zone.setText(f"{timezone} time")
            self.callback.setToolTip(f"Sent in the PBX's contact-hours zone ({zone.key})")
        except (ValueError, KeyError, OSError):
            self.callback_zone.setText(timezone)
        self._offer_callback()
        self._fix_tab_order()
        self._check_live()
        if had_focus:
            # The box that had the focus was replaced; the new ones show a moment later.
            QTimer.singleShot(0, self.focus_first)

    def _offer_callback(self, *, fresh: bool = False) -> None:
        """Now + 1 h on the PBX's clock (its zone, never the PC's), unless one is chosen."""
        now = self.clock()
        self.callback.setMinimumDateTime(_wall(earliest_callback(self._timezone, now)))
        if fresh or not self.callback_on.isChecked():
            self.callback.setDateTime(_wall(default_callback(self._timezone, now)))

    def _callback_toggled(self, on: bool) -> None:
        if on:  # offered afresh: the form may have stood open for hours
            self._offer_callback(fresh=True)

    def set_target_ready(self, ready: bool, waiting: str = "") -> None:
        """Whether leads can be queued; when not, ``waiting`` says for what (by default: the
        template, campaign and allocation to be chosen)."""
        self._target_ready = ready
        self.queue_button.setEnabled(ready and self._layout is not None)
        if not ready:
            self.summary.setStyleSheet("")
            self.summary.setText(waiting or "Choose a template, campaign and allocation above.")
            self._waiting_text = self.summary.text()
        elif self.summary.text() == self._waiting_text or self.summary.text().startswith(
            "Choose a template"
        ):
            self.summary.setText(self.READY_TEXT)

    READY_TEXT = "Type a lead, then press Ctrl+Enter to queue it."

    def tab_chain(self) -> list[QWidget]:
        """The form's widgets in Tab order: the fields, the dialling options, Queue, Clear."""
        chain: list[QWidget] = [*self._inputs.values(), self.callback_on, self.callback]
        chain += [self.priority, self.contact_hours, self.external_id, self.allow_duplicates]
        return [*chain, self.queue_button, self.clear_button, self.again_button]

    def first_field(self) -> QWidget | None:
        return next(iter(self._inputs.values()), None)

    def focus_first(self) -> None:
        """Put the cursor in the first field (the next lead starts there)."""
        first = self.first_field()
        if first is not None:
            first.setFocus(Qt.FocusReason.OtherFocusReason)
            self.scroll_area.ensureWidgetVisible(first)

    @property
    def target_ready(self) -> bool:
        return self._target_ready

    def _focus_in_fields(self) -> bool:
        focus = self.window().focusWidget()
        return focus is not None and focus in self._inputs.values()

    def _fix_tab_order(self) -> None:
        for first, second in itertools.pairwise(self.tab_chain()):
            QWidget.setTabOrder(first, second)
        self.tab_order_changed.emit()

    # -- reading and checking ----------------------------------------------------------------

    def values(self) -> dict[str, str]:
        fields = {name: box.text() for name, box in self._inputs.items()}
        if self.callback_on.isChecked():
            fields["njCallBackDate"] = self.callback.dateTime().toString("yyyy-MM-dd HH:mm")
        if self.priority.value() >= 0:
            fields["njPriority"] = str(self.priority.value())
        if self.contact_hours.text().strip():
            fields["njContactHours"] = self.contact_hours.text()
        if self.external_id.text().strip():
            fields["njExternalLeadId"] = self.external_id.text()
        return fields

    def check(self) -> LeadCheck | None:
        """Check the form; numbers already waiting in the queue are warned about."""
        if self._validator is None:
            return None
        values = self.values()
        result = self._validator.validate_one(values)
        if self._other_phones is None or not result.phones:
            return result
        queued = self._other_phones(result.phones)
        return self._validator.validate_one(values, other_phones=queued) if queued else result

    def _schedule_check(self, *_args: object) -> None:
        self._confirmed_warnings = ()
        self._check_timer.start()

    def _check_live(self) -> None:
        result = self.check()
        if result is None:
            return
        self._show(result, live=True)

    def _show(self, result: LeadCheck, *, live: bool) -> None:
        by_field: dict[str, list[Problem]] = {}
        for problem in result.problems:
            by_field.setdefault(problem.field or "", []).append(problem)
        for name, note in self._notes.items():
            problems = by_field.pop(name, [])
            box = self._inputs[name]
            empty = not box.text().strip()
            # While typing, do not shout about fields not filled in yet.
            shown = [p for p in problems if not (live and empty)]
            if shown:
                worst = "error" if any(p.severity == "error" for p in shown) else "warning"
                note.setStyleSheet(style("error") if worst == "error" else style("warning"))
                note.setText("\n".join(self._line(p) for p in shown))
                note.show()
                box.setToolTip(note.text())
            elif name in self._layout_phone_names() and not empty and name in result.fields:
                note.setStyleSheet(style("ok"))
                note.setText(f"✓ {result.fields[name]}")
                note.show()
                box.setToolTip("")
            else:
                note.hide()
                box.setToolTip("")
        rest = [p for group in by_field.values() for p in group]
        if not live:
            self._system_notes.setText("\n".join(self._line(p) for p in rest))
        else:
            self._system_notes.setText(
                "\n".join(self._line(p) for p in rest if p.field not in ("", None))
            )
        self._system_notes.setStyleSheet(
            style("error") if any(p.severity == "error" for p in rest) else style("warning")
        )
        if self._target_ready:
            errors = sum(p.severity == "error" for p in result.problems)
            if live and not any(box.text().strip() for box in self._inputs.values()):
                self.summary.setText(self.READY_TEXT)
            elif not errors:
                self.summary.setText("Ready to queue (Ctrl+Enter).")
            else:
                self.summary.setText(
                    f"{errors} problem{'' if errors == 1 else 's'} to fix before queueing."
                )

    @staticmethod
    def _line(problem: Problem) -> str:
        mark = "✖" if problem.severity == "error" else "⚠"
        fix = f" — {problem.fix.label}" if problem.fix is not None else ""
        return f"{mark} {problem.message}{fix}"

    def _layout_phone_names(self) -> tuple[str, ...]:
        return self._layout.phone_fields if self._layout is not None else ()

    def _format_phone(self, name: str) -> None:
        if not all(isValid(box) for box in self._inputs.values()):
            return  # a box losing the focus as the form is taken down (the window closing)
        result = self.check()
        box = self._inputs.get(name)
        if result is None or box is None or not box.text().strip():
            return
        problems = [p for p in result.problems if p.field == name]
        fix = next((p.fix for p in problems if p.fix is not None), None)
        if fix is not None:
            return  # the person decides on a repair; we do not change it silently
        value = result.fields.get(name)
        if value and not problems and value != box.text():
            box.blockSignals(True)
            box.setText(value)
            box.blockSignals(False)

    # -- actions -----------------------------------------------------------------------------

    def submit(self) -> None:
        """Ctrl+Enter: queue the lead when it is valid; warnings need a second Ctrl+Enter."""
        if not self._target_ready:
            self.summary.setText("Choose a template, campaign and allocation first.")
            return
        result = self.check()
        if result is None:
            return
        self._show(result, live=False)
        if not result.ok:
            first = next(
                (p.field for p in result.problems if p.severity == "error" and p.field), None
            )
            if first in self._inputs:
                self._inputs[first].setFocus()
            self.summary.setStyleSheet(style("error"))
            return
        warnings = tuple(p.message for p in result.problems if p.severity == "warning")
        if (
            warnings
            and warnings != self._confirmed_warnings
            and not self.allow_duplicates.isChecked()
        ):
            self._confirmed_warnings = warnings
            self.summary.setStyleSheet(style("warning"))
            self.summary.setText(
                "⚠ " + warnings[0] + "  Press Ctrl+Enter again to queue it anyway."
            )
            return
        self.summary.setStyleSheet("")
        self.submitted.emit(
            FormLead(
                dict(result.fields), frozenset(result.phones), self.allow_duplicates.isChecked()
            )
        )
        self.clear()
        self.summary.setText("Lead queued. Next one.")

    def delivered_before(self, lead: FormLead, when: str) -> None:
        """The window did not queue ``lead``: the same lead went to this campaign before."""
        self._delivered_lead = lead
        self.summary.setStyleSheet(style("warning"))
        self.summary.setText(
            f"⚠ This lead was already delivered to this campaign {when}; it was not queued "
            "again. Send again to queue it anyway."
        )
        self.again_button.show()

    def queue_failed(self, lead: FormLead, message: str) -> None:
        """The window could not queue ``lead``: it goes back into the form (unless the next
        lead is being typed there already) with ``message``, to queue again with Ctrl+Enter."""
        typing = any(box.text().strip() for box in self._inputs.values())
        if not typing:
            self._put_back(lead)
        self.summary.setStyleSheet(style("error"))
        again = (
            "The lead is back in the form: press Ctrl+Enter to queue it again."
            if not typing
            else "Its fields were: "
            + ", ".join(f"{k}: {v}" for k, v in lead.fields.items() if str(v).strip())
        )
        self.summary.setText(f"✖ The lead was not queued. {message} {again}")

    def _put_back(self, lead: FormLead) -> None:
        for name, box in self._inputs.items():
            box.setText(str(lead.fields.get(name, "") or ""))
        self.external_id.setText(str(lead.fields.get("njExternalLeadId", "") or ""))
        self.contact_hours.setText(str(lead.fields.get("njContactHours", "") or ""))
        priority = str(lead.fields.get("njPriority", "") or "")
        if priority.isdigit():
            self.priority.setValue(int(priority))
        callback = str(lead.fields.get("njCallBackDate", "") or "")
        if callback:
            for shape in ("yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-ddTHH:mm:ss"):
                read = QDateTime.fromString(callback, shape)
                if read.isValid():
                    # The text is the PBX's wall clock, which the editor holds as UTC: read in
                    # the PC's zone it would move by the PC's offset.
                    when = QDateTime(read.date(), read.time(), QTimeZone.utc())
                    self.callback_on.setChecked(True)
                    self.callback.setDateTime(when)
                    break
        self.allow_duplicates.setChecked(lead.allow_duplicates)

    def _send_again(self) -> None:
        lead, self._delivered_lead = self._delivered_lead, None
        self.again_button.hide()
        if lead is not None:
            self.send_again.emit(lead)
            self.summary.setStyleSheet("")
            self.summary.setText("Lead queued again.")

    def clear(self) -> None:
        """Esc: empty the form for the next lead; the pickers and options stay."""
        self._delivered_lead = None
        self.again_button.hide()
        for box in self._inputs.values():
            box.blockSignals(True)
            box.clear()
            box.blockSignals(False)
        for note in self._notes.values():
            note.hide()
        self.external_id.clear()
        self.callback_on.setChecked(False)
        self._system_notes.clear()
        self._confirmed_warnings = ()
        self.summary.setStyleSheet("")
        self.summary.setText("")
        self.focus_first()
