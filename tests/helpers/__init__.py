"""What the tests share: waits, fakes, desks, and the plugin that keeps Qt out of the core."""
