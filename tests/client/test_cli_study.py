"""`gradlab study` and `client.studies` against the real app in process (no worker: jobs are
ended through the store, so `--wait` returns at once)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gradlab_client import Client, Conflict, ValidationError
from gradlab_client._cli_study import comparison_table
from gradlab_contract.models import ComparisonRow, Stat, StudyComparison
from sqlalchemy import update

from store import orm
from store.db import Database

Run = Callable[..., tuple[int, str, str]]
GRID = {"model.activation": ["relu", "tanh"]}


def study_file(tmp_path: Path, spiral: dict[str, Any], **body: Any) -> str:
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"base": spiral, "grid": GRID, **body}))
    return str(path)


def finish_all(database: Database) -> None:
    with database.transaction() as session:
        session.execute(update(orm.Job).values(status="succeeded",
                                               summary={"final_val_accuracy": 0.5}))


def test_study_run_prints_the_id_and_compare_prints_a_row_per_variant(
    gradlab: Run, tmp_path: Path, spiral: dict[str, Any], database: Database
) -> None:
    code, out, err = gradlab("study", "run", study_file(tmp_path, spiral, seeds=[0, 1]))
    assert code == 0 and "4 jobs over 2 variants" in err
    finish_all(database)
    code, out, _ = gradlab("study", "compare", out.strip(), "--sort", "model.activation",
                           "--order", "desc")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[1].split()[:2] == ["tanh", "0.5±0"] and "2 succeeded" in lines[1]


def test_study_run_wait_with_a_template_prints_the_table(
    gradlab: Run, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gradlab_client._cli_study.POLL_SECONDS", 0.01)
    monkeypatch.setattr("gradlab_client.studies.Studies.get", _finishing_get(database))
    code, out, _ = gradlab("study", "run", "--template", "batch_norm_x_lr", "--set",
                           "training.steps=10", "--wait")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["model.batch_norm", "optimizer.lr"]
    assert len(out.splitlines()) == 5


def _finishing_get(database: Database) -> Any:
    from gradlab_client.studies import Studies

    original = Studies.get

    def get(self: Studies, study_id: str) -> Any:
        finish_all(database)
        return original(self, study_id)

    return get


def test_an_invalid_grid_exits_2_naming_the_value(
    gradlab: Run, tmp_path: Path, spiral: dict[str, Any]
) -> None:
    path = study_file(tmp_path, spiral, grid={"model.init.scheme": ["zeros", "glorot"]})
    code, _, err = gradlab("study", "run", path)
    assert code == 2 and "grid.model.init.scheme[1]" in err


def test_the_sdk_creates_lists_compares_and_cancels(sdk: Client, spiral: dict[str, Any]) -> None:
    study = sdk.studies.create({"base": spiral, "grid": GRID})
    assert [found.id for found in sdk.studies.list()] == [study.id]
    assert len(sdk.studies.compare(study.id).rows) == 2
    assert sdk.studies.cancel(study.id).counts == {"cancelled": 2}
    assert sdk.studies.get(study.id).done
    assert {t.name for t in sdk.studies.templates()} >= {"init_x_activation"}
    with pytest.raises(ValidationError) as refused:
        sdk.studies.create({"base": spiral, "grid": {"optimizer.lr": [-1]}})
    assert refused.value.field == "grid.optimizer.lr[0]"


def test_the_table_shows_spread_only_for_several_seeds() -> None:
    row = ComparisonRow(variant=0, values={"model.init": {"scheme": "zeros"}}, seeds=[0],
                        job_ids=["a"], statuses={"succeeded": 1},
                        metrics={"final_val_accuracy": Stat(mean=0.25, std=0.0, n=1)},
                        steps_to_target=Stat(mean=40, std=0, n=1), reached_target=1,
                        codes=["symmetry"])
    comparison = StudyComparison(study_id="s", varied=["model.init"], target="val_accuracy >= 0.2",
                                 rows=[row])
    lines = comparison_table(comparison).splitlines()
    assert lines[0] == "target: val_accuracy >= 0.2"
    assert lines[2].split() == ['{"scheme":"zeros"}', "0.25", "-", "-", "-", "40", "(1/1)",
                                "1", "succeeded", "symmetry"]


def test_an_idempotency_key_makes_a_study_once(
    sdk: Client, gradlab: Run, tmp_path: Path, spiral: dict[str, Any]
) -> None:
    first = sdk.studies.create({"base": spiral, "grid": GRID}, idempotency_key="nightly-7")
    again = sdk.studies.create({"base": spiral, "grid": GRID}, idempotency_key="nightly-7")
    assert again.id == first.id and again.jobs == 2
    with pytest.raises(Conflict):
        sdk.studies.create({"base": spiral, "grid": GRID, "seeds": [3, 4]},
                           idempotency_key="nightly-7")
    path = study_file(tmp_path, spiral)
    code, out, _ = gradlab("study", "run", path, "--idempotency-key", "nightly-7")
    assert code == 0 and out.strip() == first.id
    assert [study.id for study in sdk.studies.list()] == [first.id]
