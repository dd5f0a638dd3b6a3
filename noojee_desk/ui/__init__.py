"""Qt widgets, models and dialogs of Noojee Desk."""
