"""Following jobs live: event streams (streams.py), their wake-ups (wakeup.py)."""
