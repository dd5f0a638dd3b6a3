"""When the batch grid's rows are checked: edited rows at once, all rows in a worker thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from noojee_desk.core.leads.paste import CheckResult, GridRow, check_rows
from noojee_desk.core.leads.validate import Validator
from noojee_desk.ui.grid.model import BatchModel
from noojee_desk.ui.grid.problems import ProblemListModel
from noojee_desk.ui.tasks import Tasks

log = logging.getLogger(__name__)

#: Checks stored per step when a check of the whole grid comes back.
APPLY_CHUNK = 2_500
#: Edits of up to this many rows are re-checked at once on the UI thread; more wait for the
#: full check in the background.
QUICK_CHECK_ROWS = 200
#: Pause after an edit before the whole grid is checked again (duplicates across rows).
RECHECK_DELAY_MS = 350


class GridChecker(QObject):
    """Keeps the model's checks and the problem list up to date with the rows.

    ``busy()``: a load runs (a check of the whole grid waits for it); ``pending()``: rows are
    being queued. ``changed`` fires when ``checking`` may have changed; ``checked`` when a check
    of the whole grid is stored.
    """

    changed = Signal()
    checked = Signal()

    def __init__(
        self,
        model: BatchModel,
        problems: ProblemListModel,
        tasks: Tasks,
        busy: Callable[[], bool],
        pending: Callable[[], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._model = model
        self._problems = problems
        self._tasks = tasks
        self._busy = busy
        self._pending = pending
        self._validator: Validator | None = None
        self._task: asyncio.Task[Any] | None = None
        self._dirty = False
        self._refilter = False
        self._generation = 0  # bumped when rows are added or removed, or the mapping changes
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._start)

    @property
    def validator(self) -> Validator | None:
        return self._validator

    @validator.setter
    def validator(self, validator: Validator | None) -> None:
        self._validator = validator

    @property
    def checking(self) -> bool:
        """Whether a check of the whole grid is due or running."""
        running = self._task is not None and not self._task.done()
        return running or self._dirty

    def restructured(self) -> None:
        """Rows came or went, or the mapping changed: a check running now is out of date."""
        self._generation += 1

    def schedule(self, delay: int, *, refilter: bool = False) -> None:
        """A check of the whole grid in ``delay`` ms (``refilter``: the problem filter follows)."""
        if self._validator is None:
            return
        self._dirty = True
        self._refilter = self._refilter or refilter
        self._timer.start(delay)
        self.changed.emit()

    def edited(self, row_ids: list[int]) -> None:
        """Cells of these rows changed: a few are checked at once, all of them a moment later."""
        validator = self._validator
        model = self._model
        if validator is not None and len(row_ids) <= QUICK_CHECK_ROWS:
            mapping = model.mapping
            for row_id in row_ids:
                row = model.row_by_id(row_id)
                if row is None:
                    continue
                number = model.grid_number(row_id)
                try:
                    check = check_rows(validator, mapping, [row])
                except Exception:
                    log.exception("checking row %s failed", number)
                    continue
                _rid, version, lead_check = check.checks[0]
                model.set_row_check(row_id, version, lead_check)
                self._problems.replace_row(row_id, lead_check.problems)
        self.schedule(RECHECK_DELAY_MS)

    # -- a load checks its rows itself ---------------------------------------------------------

    def loading(self, validator: Validator | None) -> None:
        """A load is about to check every row with ``validator``: no other check is due."""
        self._timer.stop()
        self._dirty = validator is None and self._dirty

    def check_loaded(
        self, validator: Validator, mapping: Sequence[str | None], rows: Sequence[GridRow]
    ) -> asyncio.Future[CheckResult]:
        """Check rows just loaded, in a worker thread (started now, awaited later)."""
        return asyncio.ensure_future(self._tasks.in_worker(check_rows, validator, mapping, rows))

    async def store_loaded(self, result: CheckResult, validator: Validator) -> None:
        """Store the check of a load unless the rules or rows changed meanwhile."""
        if validator is self._validator and not self._dirty:
            await self._apply(result, refilter=True)
        else:
            self.schedule(0, refilter=True)

    # -- the check of the whole grid -----------------------------------------------------------

    def _start(self) -> None:
        if self._busy():
            self._timer.start(RECHECK_DELAY_MS)
            return
        if self._task is not None and not self._task.done():
            return  # the running check loops again while ``_dirty``
        self._task = self._tasks.spawn(self._check_all(), name="check grid")

    async def _check_all(self) -> None:
        try:
            while self._dirty and self._validator is not None:
                self._dirty = False
                validator = self._validator
                generation = self._generation
                mapping = self._model.mapping
                self.changed.emit()
                rows = self._model.all_rows()
                result = await self._tasks.in_worker(check_rows, validator, mapping, rows)
                if generation != self._generation or validator is not self._validator:
                    self._dirty = True
                    continue
                refilter = self._refilter
                self._refilter = False
                await self._apply(result, refilter=refilter)
                if generation != self._generation:
                    self._dirty = True
        finally:
            self._task = None
            self.changed.emit()

    async def _apply(self, result: CheckResult, *, refilter: bool) -> None:
        """Store a check of the whole grid, a chunk at a time so the window keeps painting."""
        checks = result.checks
        model = self._model
        applied = 0
        for start in range(0, len(checks), APPLY_CHUNK):
            applied += model.set_checks(
                checks[start : start + APPLY_CHUNK], refilter=refilter, announce=False, near=start
            )
            if start + APPLY_CHUNK < len(checks):
                await asyncio.sleep(0)
        model.checks_applied(refilter=refilter)
        if applied == len(checks) and not self._pending():
            self._problems.reset(result.entries)
        else:
            self._problems.rebuild()
        self.changed.emit()
        self.checked.emit()
