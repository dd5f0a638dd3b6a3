"""Every lead to the PBX exactly once: codes, client, retry policy, outbox and dispatcher."""
