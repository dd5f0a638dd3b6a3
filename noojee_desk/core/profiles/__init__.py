"""A desk's profiles: the settings file, API keys in the OS keyring, and the lists seen last."""
