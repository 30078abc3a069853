"""The rules that read the metric series: divergence, lr_too_high, lr_too_low, no_learning,
overfitting and not_converged; on recorded-looking series with their noise, gaps and NaN."""

from __future__ import annotations

import math

import pytest

from diagnosis import DEFAULT
from diagnosis.rules.learning_rate import lr_too_high, lr_too_low
from diagnosis.rules.loss import divergence, no_learning, not_converged, overfitting
from tests.diagnosis.records import codes, falling, record, series, snaps, spec

T = DEFAULT
CHANCE = math.log(3)


def test_a_nan_loss_is_divergence_and_a_too_high_learning_rate() -> None:
    loss = series([1.1, 3.0, 40.0, 9e9, math.nan])
    job = spec(optimizer={"name": "sgd", "lr": 50.0})
    found = divergence(record(metrics={"train_loss": loss}, job=job, status="diverged"), T)
    assert codes(found) == ["divergence"] and found[0].step == 5
    assert found[0].evidence["last_finite_loss"] == 9e9
    assert found[0].remedy == {"optimizer.lr": 5.0, "training.grad_clip": 1.0}
    high = lr_too_high(record(metrics={"train_loss": loss}, job=job), T)
    assert high[0].severity == "error" and "became NaN at step 5" in high[0].title


def test_a_loss_that_ends_far_above_its_start_diverged() -> None:
    rising = series([1.0] * 10 + [2.0] * 10 + [6.0] * 10)
    assert codes(divergence(record(metrics={"train_loss": rising}), T)) == ["divergence"]
    assert divergence(record(metrics={"train_loss": falling(100)}), T) == []


def test_a_loss_spike_or_huge_updates_mean_the_learning_rate_is_too_high() -> None:
    spike = series([1.1, 1.0, 12.0, 0.9, 0.8])
    found = lr_too_high(record(metrics={"train_loss": spike}), T)
    assert found[0].severity == "warning" and found[0].step == 3
    assert "jumped from 1.1 to 12" in found[0].title
    ratios = {"update_ratio/fc1": series([0.5, 0.3, 0.4, 0.2], every=25)}
    shots = [s for step in (1, 26, 51, 76) for s in snaps(step, "gradient", {"fc1": {"l2": 1.0}})]
    huge = lr_too_high(record(shots, {"train_loss": falling(80), **ratios}), T)
    assert "0.3 of their norm" in huge[0].title


def test_steady_healthy_updates_are_not_too_high() -> None:
    ratios = {"update_ratio/fc1": series([0.05, 2e-3, 1e-3, 1e-3], every=25)}
    shots = [s for step in (1, 26, 51, 76) for s in snaps(step, "gradient", {"fc1": {"l2": 1.0}})]
    assert lr_too_high(record(shots, {"train_loss": falling(80), **ratios}), T) == []


def tiny_updates(loss: list[float], ratio: float = 1e-6) -> list:
    ratios = {f"update_ratio/{layer}": series([ratio, 0.0, ratio * 2, ratio], every=50)
              for layer in ("fc1", "out")}
    shots = [s for step in (1, 51, 101, 151) for s in snaps(step, "gradient", {"fc1": {"l2": 1}})]
    return [shots, {"train_loss": series(loss), **ratios}]


def test_tiny_updates_and_a_flat_loss_mean_the_learning_rate_is_too_low() -> None:
    shots, metrics = tiny_updates([1.10] * 100 + [1.08] * 100)
    found = lr_too_low(record(shots, metrics, job=spec(optimizer={"name": "sgd", "lr": 1e-5})), T)
    assert codes(found) == ["lr_too_low"]
    assert found[0].remedy == {"optimizer.lr": 0.01}  # 1000x, the most it proposes at once
    assert found[0].evidence["loss_drop"] < 0.1


def test_tiny_updates_of_a_learning_run_are_not_too_low() -> None:
    shots, metrics = tiny_updates(list(falling(200).values))
    assert lr_too_low(record(shots, metrics), T) == []


@pytest.mark.parametrize(("loss", "accuracy", "raised"), [
    (CHANCE, 0.33, True), (CHANCE * 1.03, 0.34, True), (CHANCE, 0.6, False),
    (CHANCE * 0.8, 0.4, False),
])
def test_no_learning_is_a_loss_at_chance_and_an_accuracy_at_chance(
    loss: float, accuracy: float, raised: bool
) -> None:
    metrics = {"train_loss": series([loss] * 120), "train_accuracy": series([accuracy] * 120)}
    found = no_learning(record(metrics=metrics), T)
    assert bool(found) is raised
    if found:
        assert found[0].evidence["classes"] == 3 and "ln(3)" in found[0].title


def test_a_few_steps_at_chance_prove_nothing() -> None:
    assert no_learning(record(metrics={"train_loss": series([CHANCE] * 20)}), T) == []


def val_curve(values: list[float]) -> dict:
    return {"val_loss": series(values, start=25, every=25),
            "train_loss": falling(25 * len(values), start=1.1, end=0.02)}


def test_validation_loss_rising_while_training_loss_falls_is_overfitting() -> None:
    found = overfitting(record(metrics=val_curve(
        [1.0, 0.6, 0.5, 0.55, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2])), T)
    assert codes(found) == ["overfitting"] and found[0].evidence["best_step"] == 75
    assert found[0].remedy == {"model.dropout": 0.2, "regularization.l2": 1e-3,
                               "data.augment.noise_std": 0.1}
    assert found[0].onset_step == 100  # the rise began after the best evaluation


@pytest.mark.parametrize("values", [
    [1.0, 0.6, 0.4, 0.3, 0.25, 0.9, 0.22, 0.2, 0.21, 0.2],  # a one-evaluation spike
    [1.0, 0.6, 0.4, 0.3, 0.25, 0.22, 0.2, 0.2, 0.2, 0.5],  # a rise too recent to say
    [1.0, 0.5, 0.1, 0.06, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1],  # doubled, by 0.05 nats
])
def test_noise_and_small_rises_are_not_overfitting(values: list[float]) -> None:
    assert overfitting(record(metrics=val_curve(values)), T) == []


def test_not_converged_needs_a_finished_run_still_falling() -> None:
    linear = [2.3 - 0.02 * step for step in range(60)]  # falling as fast at the end
    still = {"train_loss": series(linear), "grad_norm": series([1.0] * 60)}
    found = not_converged(record(metrics=still, status="succeeded"), T)
    assert codes(found) == ["not_converged"] and found[0].step == 60
    assert found[0].remedy == {"training.steps": 1200}  # 4x the spec's 300 steps
    assert not_converged(record(metrics=still), T) == []  # live: it is still training
    assert not_converged(record(metrics=still, status="cancelled"), T) == []
    flat = {"train_loss": falling(1000, start=2.3, end=0.1, noise=0.01)}
    assert not_converged(record(metrics=flat, status="succeeded"), T) == []


def test_a_training_loss_falling_alone_is_memorization_not_convergence() -> None:
    metrics = {"train_loss": falling(400, start=2.3, end=0.0),
               "val_loss": series([1.0] * 16, start=25, every=25)}
    assert not_converged(record(metrics=metrics, status="succeeded"), T) == []
