"""The batch grid: many pasted or opened leads, checked, fixed in place and queued."""

from noojee_desk.ui.grid.widget import BatchGrid

__all__ = ["BatchGrid"]
