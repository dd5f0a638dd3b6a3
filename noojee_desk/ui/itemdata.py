"""What the item models share: all roles of a cell answered in one call into Python."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex

AnyIndex = QModelIndex | QPersistentModelIndex


def fill_roles(model: Any, index: AnyIndex, span: Any) -> None:
    """``multiData`` from ``data``: one call into Python per cell instead of one per role.

    A view asks for some ten roles of every cell it paints. Each call into Python takes the
    GIL, and while a worker thread runs Python each takes its turn: a window of a few hundred
    cells then waits 50 to 100 ms for its paint.

    Every role of the span is answered, the ones without a value cleared: a delegate reuses
    its span from cell to cell, and a value left there would carry over to the next cell.
    """
    if not index.isValid():
        for role_data in span:
            role_data.clearData()
        return
    data = model.data
    for role_data in span:
        value = data(index, role_data.role())
        if value is None:
            role_data.clearData()
        else:
            role_data.setData(value)
