"""The queue: its table model and filter (``model``), the view with its controls (``view``)."""
