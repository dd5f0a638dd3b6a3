"""The PBX emulator: the documented Noojee Campaign API with its limits and faults."""
