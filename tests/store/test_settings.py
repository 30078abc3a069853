from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from store.settings import Settings


def test_paths_and_database_derive_from_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h", _env_file=None)
    assert settings.home == (tmp_path / "h").resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/h/gradlab.db"
    assert settings.checkpoints_dir == settings.home / "checkpoints"
    assert settings.uploads_dir == settings.home / "uploads"
    assert settings.is_sqlite


def test_explicit_values_win_over_derived_ones(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, checkpoints_dir=tmp_path / "ck", database_url="sqlite:///x.db",
        _env_file=None,
    )
    assert settings.checkpoints_dir == (tmp_path / "ck").resolve()
    assert settings.database_url == "sqlite:///x.db"


def test_environment_variables_use_the_gradlab_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADLAB_HOME", str(tmp_path))
    monkeypatch.setenv("GRADLAB_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("GRADLAB_DATABASE_URL", "postgresql://u:p@db:5432/gradlab")
    settings = Settings(_env_file=None)
    assert settings.max_attempts == 5
    assert settings.home == tmp_path.resolve()
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/gradlab"
    assert settings.redacted_database_url == "postgresql+psycopg://u:***@db:5432/gradlab"
    assert not settings.is_sqlite


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GRADLAB_PORT=9001\nGRADLAB_UNRELATED=1\n")
    assert Settings(home=tmp_path, _env_file=env_file).port == 9001


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"database_url": "mysql://u@h/db"}, "sqlite:///<file> or postgresql"),
        ({"database_url": "postgres://u@h/db"}, "spell it postgresql://"),
        ({"database_url": "postgresql+psycopg2://u@h/db"}, "use postgresql+psycopg"),
        ({"database_url": "sqlite://"}, "not :memory:"),
        ({"database_url": "sqlite:///:memory:"}, "not :memory:"),
        ({"lease_seconds": 5, "heartbeat_seconds": 5}, "at least twice heartbeat_seconds"),
        ({"broker_url": "localhost"}, "is not a URL"),
        ({"port": 0}, "greater than or equal to 1"),
    ],
)
def test_unsafe_combinations_are_refused(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(home=tmp_path, _env_file=None, **overrides)  # type: ignore[arg-type]


def test_filesystem_broker_options_live_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, _env_file=None)
    options = settings.broker_transport_options
    queue = str(tmp_path / "broker" / "queue")
    assert options["data_folder_in"] == options["data_folder_out"] == queue
    assert options["processed_folder"] == str(tmp_path / "broker" / "processed")
    settings.ensure_directories()
    assert (tmp_path / "broker" / "queue").is_dir() and (tmp_path / "checkpoints").is_dir()
    redis = Settings(home=tmp_path, broker_url="redis://r:6379/0", _env_file=None)
    assert redis.broker_transport_options == {}


def test_every_field_is_described_for_the_readme() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []
