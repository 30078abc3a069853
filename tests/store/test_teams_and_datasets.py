from __future__ import annotations

import pytest

from store import datasets, teams
from store.db import Database
from store.errors import Conflict, InvalidInput, NotFound


def test_a_key_authenticates_its_team_until_revoked(database: Database) -> None:
    with database.transaction() as session:
        team = teams.create_team(session, name="acme")
        key = teams.create_api_key(session, team_id=team.id)
    assert key.startswith("glk_") and len(key) > 40
    with database.read() as session:
        assert teams.authenticate(session, key=key) == team
        assert teams.authenticate(session, key=key + "x") is None
        assert teams.authenticate(session, key="Bearer " + key) is None
        stored = session.get(teams.orm.ApiKey, session.query(teams.orm.ApiKey.id).scalar())
        assert stored is not None and key not in (stored.key_hash, stored.prefix)
    with database.transaction() as session:
        assert teams.revoke_api_key(session, key=key)
    with database.read() as session:
        assert teams.authenticate(session, key=key) is None


def test_team_names_are_unique(database: Database) -> None:
    with database.transaction() as session:
        teams.create_team(session, name="acme")
        with pytest.raises(Conflict):
            teams.create_team(session, name="acme")
        assert teams.get_team_by_name(session, name="acme") is not None


def test_default_team_and_key_are_made_on_the_first_start_only(database: Database) -> None:
    with database.transaction() as session:
        key = teams.ensure_default_team_and_key(session)
    with database.transaction() as session:
        assert teams.ensure_default_team_and_key(session) is None
    assert key is not None
    with database.read() as session:
        team = teams.authenticate(session, key=key)
    assert team is not None and team.name == "default"


def test_datasets_belong_to_their_team(database: Database) -> None:
    with database.transaction() as session:
        mine = teams.create_team(session, name="acme")
        theirs = teams.create_team(session, name="globex")
        info = datasets.create_dataset(
            session, team_id=mine.id, name="iris", kind="vector", path="/u/iris.npz",
            x_shape=[4], num_classes=3, rows=150, size_bytes=4096, dataset_id="iris-1",
        )
    assert info.id == "upload:iris-1" and not info.builtin and info.input_shape == [4]
    with database.read() as session:
        assert datasets.get_dataset(session, team_id=mine.id, dataset_id="upload:iris-1") == info
        assert datasets.list_datasets(session, team_id=mine.id) == [info]
        assert datasets.list_datasets(session, team_id=theirs.id) == []
        found = datasets.get_dataset_file(session, team_id=mine.id, dataset_id="iris-1")
        assert (found.path, found.rows, found.test_rows) == ("/u/iris.npz", 150, None)
        with pytest.raises(NotFound):
            datasets.get_dataset(session, team_id=theirs.id, dataset_id="upload:iris-1")


def test_a_dataset_id_must_fit_the_spec_pattern(database: Database) -> None:
    with database.transaction() as session, pytest.raises(InvalidInput):
        datasets.create_dataset(
            session, team_id="t", name="x", kind="vector", path="p", x_shape=[1],
            num_classes=2, rows=1, size_bytes=1, dataset_id="../etc",
        )
