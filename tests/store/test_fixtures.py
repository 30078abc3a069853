"""The shared fixtures of tests/conftest.py give what they promise."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import make_url

from store.settings import Settings


def test_settings_fixture_is_an_uncreated_sqlite_home(settings: Settings) -> None:
    assert settings.is_sqlite and not settings.home.exists()


@pytest.mark.integration
def test_pg_url_is_a_fresh_empty_database(pg_url: str) -> None:
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)


@pytest.mark.integration
def test_redis_url_is_an_empty_database_of_its_own(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("gradlab-test", "1")
    assert int(redis_url.rsplit("/", 1)[1]) >= 8
    client.close()
