"""``target-anaplan-admin``: the target's companion command (login, list, describe, init,
check, reset), reading the same config as the target. The entry point is ``cli.main``."""
