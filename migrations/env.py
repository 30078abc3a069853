"""Alembic's environment: the store's metadata, and the database of the server's Settings.

Where the database comes from, first match wins:
1. ``config.attributes["connection"]``: an open connection (tests, store.migrate);
2. ``config.attributes["settings"]``: a Settings object (store.migrate.upgrade);
3. ``alembic -x database_url=...``;
4. ``Settings()``: GRADLAB_DATABASE_URL, .env, or the embedded default under GRADLAB_HOME.

On SQLite, migrations run in batch mode (copy-and-move tables, since SQLite's ALTER TABLE is
limited) with foreign keys off, so that dropping a copied parent table cascades into nothing;
the foreign keys are checked before commit instead.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, text

from store.db import make_engine
from store.orm import Base
from store.settings import Settings

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _settings() -> Settings:
    settings = config.attributes.get("settings")
    if isinstance(settings, Settings):
        return settings
    url = context.get_x_argument(as_dictionary=True).get("database_url")
    return Settings(database_url=url) if url else Settings()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # store.db emits BEGIN itself on SQLite, which makes its DDL transactional too: the whole
        # upgrade commits or none of it does.
        transactional_ddl=True,
        compare_type=True,
        compare_server_default=True,
    )


def _migrate(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
            if broken:
                raise RuntimeError(f"migration left rows with missing parents: {broken[:5]}")


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the DDL instead of running it."""
    url = _settings().database_url
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(_settings(), enforce_foreign_keys=False)
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
