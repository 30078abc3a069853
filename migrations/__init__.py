"""Alembic migrations of the store's schema; run them with `gradlab-server migrate`."""
