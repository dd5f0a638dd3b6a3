"""The domain and the engine of Noojee Desk; never imports Qt."""
