"""The Qt binding keeps Python's reference counts right (a release that does not is excluded)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, Qt, Signal


class _Emitter(QObject):
    happened = Signal()
    carried = Signal(object)


class _Empty(QAbstractListModel):
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 1

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        return None


def test_signals_and_model_data_do_not_lose_references_to_none_or_true() -> None:
    emitter = _Emitter()
    emitter.happened.connect(lambda: None)
    emitter.carried.connect(lambda value: None)
    model = _Empty()
    index = model.index(0, 0)
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2000):
        emitter.happened.emit()
        emitter.carried.emit(True)
        assert index.data() is None
    after = sys.getrefcount(None), sys.getrefcount(True)
    # A binding that drops one reference per call would be thousands short here (and with
    # immortal singletons, Python 3.12+, the counts do not move at all).
    assert after[0] >= before[0] - 50
    assert after[1] >= before[1] - 50
