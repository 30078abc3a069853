"""training.early_stopping: a run whose validation metric stops improving ends early, as
succeeded, with the step of its best evaluation."""

from __future__ import annotations

import pytest
import torch
from engine_support import Recorder, make_spec, tiny_dataset
from gradlab_contract.spec import EarlyStoppingSpec
from pydantic import ValidationError

from training import RunResult, train
from training.stopping import EarlyStopper


def _run(early: dict[str, object], steps: int = 200) -> tuple[RunResult, Recorder, list[int]]:
    recorder = Recorder()
    bests: list[int] = []
    callbacks = recorder.callbacks()
    callbacks.on_best = bests.append
    spec = make_spec(training={"steps": steps, "eval_every": 5, "early_stopping": early})
    return train(spec, callbacks, dataset=tiny_dataset("vector")), recorder, bests


def test_no_improvement_for_patience_evaluations_stops_as_succeeded() -> None:
    # Nothing can beat the first evaluation by 1e6: evaluations 10 and 15 are the patience.
    result, recorder, bests = _run({"metric": "val_loss", "patience": 2, "min_delta": 1e6})
    assert result.status == "succeeded"
    assert result.stopped_early and result.best_step == 5
    assert result.steps_done == 15 and max(recorder.progress) == 15
    assert "val_loss did not improve" in result.reason
    assert bests == [5]
    assert max(recorder.metrics) == 15  # every step up to the stop was reported


def test_an_improving_run_trains_to_its_last_step_and_reports_its_best() -> None:
    result, recorder, bests = _run({"metric": "val_accuracy", "patience": 1000}, steps=30)
    assert result.status == "succeeded" and not result.stopped_early
    accuracy = recorder.series("val_accuracy")
    best = max(accuracy.values())
    first_best = min(step for step, value in accuracy.items() if value == best)
    assert result.best_step == first_best == bests[-1]


def test_the_stopper_follows_its_mode_and_min_delta() -> None:
    stopper = EarlyStopper(EarlyStoppingSpec(metric="val_accuracy", patience=2, min_delta=0.05))
    for step, value in [(10, 0.5), (20, 0.54), (30, 0.56), (40, 0.57)]:
        stopper.observe(step, {"val_accuracy": value, "train_loss": 1.0})
    assert stopper.best_step == 30 and stopper.waited == 1 and not stopper.exhausted
    stopper.observe(50, {"val_accuracy": float("nan")})  # a NaN is no improvement
    assert stopper.exhausted
    restored = EarlyStopper(stopper.spec)
    restored.load_state_dict(stopper.state_dict())
    assert (restored.best, restored.best_step, restored.waited) == (0.56, 30, 2)


def test_the_spec_names_a_wrong_metric_and_an_unknown_stop_on_code() -> None:
    with pytest.raises(ValidationError, match=r"early_stopping\.metric"):
        make_spec(training={"early_stopping": {"metric": "train_loss"}})
    with pytest.raises(ValidationError, match="not one of"):
        make_spec(training={"stop_on": ["no_learning", "bogus"]})
    assert make_spec(training={"stop_on": ["no_learning"]}).training.stop_on == ["no_learning"]
    assert EarlyStoppingSpec(metric="val_loss").direction == "min"
    assert EarlyStoppingSpec(metric="val_auc").direction == "max"


def test_an_early_stopped_run_hands_over_the_weights_of_its_best_step() -> None:
    # The kept "best" weights are early stopping's best step (here val_loss, not the default
    # val_accuracy), and a run that stopped early hands its model over like any success.
    recorder, kept = Recorder(), []
    callbacks = recorder.callbacks()
    callbacks.on_trained = kept.append
    spec = make_spec(training={"steps": 200, "eval_every": 5, "early_stopping": {
        "metric": "val_loss", "patience": 2, "min_delta": 1e6}})
    result = train(spec, callbacks, dataset=tiny_dataset("vector"))
    (trained,) = kept
    assert result.stopped_early and result.best_step == trained.best_step == 5
    assert trained.step_of("best") == 5 and trained.step_of("final") == 15
    best, final = trained.weights("best"), trained.weights("final")
    assert any(not torch.equal(best[name], final[name]) for name in final)
