"""Causes before symptoms, by time: a finding explains another only when it is a known cause of
it and began no later; the explained finding stays, linked to its cause, with its cause's
remedy. And the remedy table (diagnosis.remedy.remedy_for) row by row."""

from __future__ import annotations

import math
from typing import Any

import pytest
from gradlab_contract.spec import JobSpec

from diagnosis import CODES, Finding
from diagnosis.engine import EXPLAINS, explains, link
from diagnosis.remedy import healthy, next_round, remedy_for
from diagnosis.rules.exploding import exploding_gradients
from diagnosis.rules.learning_rate import lr_too_high, lr_too_low
from diagnosis.thresholds import DEFAULT as T
from tests.diagnosis.records import record, series, snaps, spec
from tests.diagnosis.scenarios import mlp


def finding(code: str, onset: int | None, **changes: Any) -> Finding:
    return Finding(code=code, severity="error", title=code, detail=code, onset_step=onset,
                   remedy=changes or {"cause": code}, suggestion=f"fix {code}")


def test_a_collapse_at_initialization_explains_units_that_died_later() -> None:
    """He et al. 2015's 30-layer ReLU net with Xavier init: the signal collapses at step 1, the
    units die later, the loss never leaves ln(10)."""
    found = link([finding("dead_units", 300), finding("activation_collapse", 1),
                  finding("no_learning", 1)])
    assert [(f.code, f.caused_by) for f in found] == [
        ("activation_collapse", None), ("no_learning", "activation_collapse"),
        ("dead_units", "activation_collapse")]
    assert all(f.remedy == {"cause": "activation_collapse"} for f in found)
    assert all(f.suggestion == "fix activation_collapse" for f in found)


def test_units_that_died_first_explain_the_collapse_that_followed() -> None:
    found = link([finding("dead_units", 20), finding("activation_collapse", 200)])
    assert {f.code: f.caused_by for f in found} == {
        "dead_units": None, "activation_collapse": "dead_units"}


def test_a_cause_that_began_later_explains_nothing() -> None:
    found = link([finding("symmetry", 100), finding("dead_units", 50)])
    assert all(f.caused_by is None for f in found)
    assert {f.code: f.remedy for f in found} == {
        "symmetry": {"cause": "symmetry"}, "dead_units": {"cause": "dead_units"}}


def test_a_tie_between_mutual_causes_goes_to_the_cause_listed_first() -> None:
    found = link([finding("dead_units", 1), finding("activation_collapse", 1)])
    assert {f.code: f.caused_by for f in found} == {
        "activation_collapse": None, "dead_units": "activation_collapse"}


def test_a_chain_takes_the_root_cause_remedy_and_the_earliest_cause() -> None:
    found = link([finding("lr_too_low", 300), finding("vanishing_gradients", 50),
                  finding("saturation", 1)])
    causes = {f.code: f.caused_by for f in found}
    assert causes == {"saturation": None, "vanishing_gradients": "saturation",
                      "lr_too_low": "saturation"}
    assert {f.code for f in found if f.remedy == {"cause": "saturation"}} == set(causes)


def test_an_unknown_onset_counts_as_the_latest() -> None:
    assert not explains(finding("lr_too_low", None), finding("not_converged", 10))
    assert explains(finding("lr_too_low", 10), finding("not_converged", None))


def test_the_cause_graph_has_no_cycle_once_ties_are_broken() -> None:
    """Only dead units and collapse may cause each other (time decides); any other cycle would
    let two findings explain each other at the same step."""
    mutual = {frozenset((a, b)) for a, bs in EXPLAINS.items() for b in bs
              if a in EXPLAINS.get(b, frozenset())}
    assert mutual == {frozenset({"dead_units", "activation_collapse"})}
    assert set(EXPLAINS) <= set(CODES)
    assert all(set(symptoms) <= set(CODES) for symptoms in EXPLAINS.values())


def test_overfitting_explains_not_converged_so_a_run_never_reads_both() -> None:
    found = link([finding("overfitting", 100), finding("not_converged", 300)])
    assert {f.code: f.caused_by for f in found}["not_converged"] == "overfitting"


# -- the remedy table -----------------------------------------------------------------------------


def job(activation: str = "relu", scheme: str = "default", depth: int = 3, **extra: Any
        ) -> JobSpec:
    data = extra.pop("data", None)
    return JobSpec.model_validate(mlp([32] * depth, activation, init={"scheme": scheme},
                                      data=data, **extra))


@pytest.mark.parametrize(("cause", "run", "changes"), [
    ("activation_collapse", job("relu", "xavier_normal", 30),
     {"model.init.scheme": "kaiming_normal"}),
    ("activation_collapse", job("leaky_relu", "normal"), {"model.init.scheme": "kaiming_normal"}),
    ("activation_collapse", job("tanh", "normal"), {"model.init.scheme": "xavier_normal"}),
    ("saturation", job("sigmoid", "normal"), {"model.init.scheme": "xavier_normal"}),
    ("vanishing_gradients", job("sigmoid", "default", 9),
     {"model.activation": "relu", "model.init.scheme": "kaiming_normal"}),
    ("activation_collapse", job("relu", "kaiming_normal"), {"model.batch_norm": True}),
    ("symmetry", job("relu", "zeros"), {"model.init.scheme": "kaiming_normal"}),
    ("symmetry", job("tanh", "constant"), {"model.init.scheme": "xavier_normal"}),
    ("exploding_gradients", job("relu", "normal"),
     {"model.init.scheme": "kaiming_normal", "training.grad_clip": 1.0}),
    ("dead_units", job("relu", "xavier_normal"), {"model.init.scheme": "kaiming_normal"}),
    ("dead_units", job("relu", "kaiming_normal"), {"model.activation": "leaky_relu"}),
])
def test_the_table_maps_a_cause_in_its_run_to_the_change(
    cause: str, run: JobSpec, changes: dict[str, Any]
) -> None:
    remedy = remedy_for(cause, run)
    assert remedy is not None and remedy.changes == changes and remedy.words


def test_learning_rate_causes_take_the_rate_the_evidence_gives() -> None:
    run = job("relu", "kaiming_normal")
    for cause in ("divergence", "lr_too_high", "exploding_gradients"):
        assert remedy_for(cause, run, lr=1e-4).changes == {  # type: ignore[union-attr]
            "optimizer.lr": 1e-4, "training.grad_clip": 1.0}
    assert remedy_for("dead_units", run, lr=0.01).changes == {  # type: ignore[union-attr]
        "optimizer.lr": 0.01}
    assert remedy_for("lr_too_low", run, lr=0.1).changes == {  # type: ignore[union-attr]
        "optimizer.lr": 0.1}


def test_overfitting_regularizes_and_names_the_best_step_never_trains_longer() -> None:
    remedy = remedy_for("overfitting", job(), best_step=100)
    assert remedy is not None and "training.steps" not in remedy.changes
    assert remedy.changes == {"regularization.l2": 1e-3, "model.dropout": 0.2,
                              "data.augment.noise_std": 0.1}
    assert "stop at step 100" in remedy.words
    ctr = JobSpec.model_validate({"data": {"dataset": "ctr"},
                                  "model": {"kind": "embedding_mlp", "hidden": [32]}})
    assert "data.augment.noise_std" not in remedy_for("overfitting", ctr).changes  # type: ignore[union-attr]


def test_no_learning_has_no_remedy_of_its_own() -> None:
    assert remedy_for("no_learning", job()) is None


# -- no false alarms where the weights are zero by construction ---------------------------------


def test_zero_init_sigmoid_raises_no_learning_rate_or_exploding_alarm() -> None:
    """An update of a weight that was 0 is enormous relative to it, at any learning rate."""
    zero = spec(activation="sigmoid", init={"scheme": "zeros"})
    shots = []
    for step in (1, 51, 101, 151):  # the update-ratio series' steps
        shots += snaps(step, "weight", {"fc1": {"l2": 0.0}, "out": {"l2": 1e-6}})
        shots += snaps(step, "gradient", {"fc1": {"l2": 0.0}, "out": {"l2": 0.5}})
    huge = series([5.0] * 4, every=50)
    metrics = {"train_loss": series([math.log(3)] * 150), "update_ratio/out": huge,
               "update_ratio/fc1": series([1e-9] * 4, every=50)}
    run = record(shots, metrics, status="succeeded", job=zero)
    assert lr_too_high(run, T) == [] and exploding_gradients(run, T) == []
    assert lr_too_low(run, T) == []
    kaiming = record(shots, metrics, status="succeeded", job=spec(activation="sigmoid"))
    assert [f.code for f in lr_too_high(kaiming, T)] == ["lr_too_high"]  # the ratio is read


# -- a heal's round -------------------------------------------------------------------------------


def test_a_heal_round_applies_the_root_causes_remedies_but_never_trains_longer() -> None:
    spec = mlp([8, 8], init={"scheme": "zeros"})
    found = link([finding("symmetry", 1, **{"model.init.scheme": "kaiming_normal"}),
                  finding("no_learning", 1),
                  Finding(code="not_converged", severity="warning", title="t", detail="d",
                          onset_step=1, remedy={"training.steps": 4000})])
    planned = next_round(spec, found)
    assert planned is not None and planned.codes == ["symmetry"]
    assert planned.changes == {"model.init.scheme": "kaiming_normal"}
    assert planned.spec["model"]["init"]["scheme"] == "kaiming_normal"
    assert planned.spec["training"] == spec["training"]
    assert next_round(planned.spec, found) is None  # nothing left to change
    assert next_round(spec, [finding("not_converged", 1, **{"training.steps": 4000})]) is None


def test_a_job_that_only_has_not_converged_left_is_healthy() -> None:
    learning = [Finding(code="not_converged", severity="warning", title="t", detail="d")]
    assert healthy("succeeded", learning) and healthy("succeeded", [])
    assert not healthy("diverged", [])
    assert not healthy("succeeded", [finding("dead_units", 1)])


def test_sparse_data_with_plain_sgd_is_told_to_use_an_adaptive_optimizer() -> None:
    ctr = JobSpec.model_validate({"data": {"dataset": "ctr"}, "optimizer": {"name": "sgd"},
                                  "model": {"kind": "embedding_mlp", "hidden": [32]}})
    for cause in ("lr_too_low", "not_converged"):
        remedy = remedy_for(cause, ctr, lr=0.1, longer={"training.steps": 1000})
        assert remedy is not None
        assert remedy.changes == {"optimizer.name": "adam", "optimizer.lr": 1e-3}
    assert remedy_for("not_converged", job(), longer={"training.steps": 1000}).changes == {  # type: ignore[union-attr]
        "training.steps": 1000}
