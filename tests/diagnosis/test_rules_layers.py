"""The per-layer rules on hand-made statistics: symmetry, vanishing and exploding gradients,
activation collapse, saturation and dead units; at, just past and far from their thresholds,
and with what a real record may hold (missing kinds, NaN, the API's None)."""

from __future__ import annotations

import math

import pytest

from diagnosis import DEFAULT, LayerRecord
from diagnosis.rules.activations import activation_collapse, dead_units, saturation
from diagnosis.rules.exploding import exploding_gradients
from diagnosis.rules.gradients import vanishing_gradients
from diagnosis.rules.symmetry import symmetry
from tests.diagnosis.records import LAYERS, NAMES, codes, record, series, snaps, spec

T = DEFAULT


def weights(step: int, unit_std: float, std: float = 0.1, l2: float = 1.0) -> list:
    return snaps(step, "weight", {name: {"unit_std": unit_std, "std": std, "l2": l2, "mean": 0.0}
                                  for name in NAMES})


def test_identical_units_are_symmetry_with_the_init_remedy() -> None:
    found = symmetry(record(weights(100, unit_std=0.0, std=0.0, l2=0.0),
                            job=spec(init={"scheme": "zeros"})), T)
    assert codes(found) == ["symmetry"] and found[0].severity == "error"
    assert found[0].evidence["layers"] == ["fc1", "fc2", "fc3"]  # hidden layers, not out
    assert "all of them are 0" in found[0].detail and found[0].step == 100
    assert found[0].remedy == {"model.init.scheme": "kaiming_normal"}


@pytest.mark.parametrize(("unit_std", "raised"), [(0.0, True), (1e-6, True), (0.05, False),
                                                  (math.nan, False)])
def test_symmetry_reads_unit_spread_relative_to_the_layer(unit_std: float, raised: bool) -> None:
    assert bool(symmetry(record(weights(5, unit_std=unit_std)), T)) is raised


def test_symmetry_that_was_broken_later_is_not_reported() -> None:
    shots = weights(1, unit_std=0.0) + weights(50, unit_std=0.09)
    assert symmetry(record(shots), T) == []


def test_symmetry_falls_back_to_activations_and_skips_one_unit_layers() -> None:
    acts = snaps(9, "activation", {"fc1": {"unit_std": 0.0, "std": 0.3, "l2": 2.0}})
    assert codes(symmetry(record(acts), T)) == ["symmetry"]
    narrow = record(acts, layers=[LayerRecord("fc1", "linear", 0, (1, 2)), LAYERS[-1]])
    assert symmetry(narrow, T) == []


def grads(step: int, first: float | None, last: float, middle: float = 1e-3) -> list:
    return snaps(step, "gradient", {"fc1": {"l2": first}, "fc2": {"l2": middle},
                                    "fc3": {"l2": middle}, "out": {"l2": last}})


def test_vanishing_gradients_take_the_median_over_the_window() -> None:
    shots = [s for step in (25, 50, 75) for s in grads(step, 1e-8, 0.1)]
    shots += grads(100, 0.05, 0.1)  # one healthy-looking step does not hide it
    found = vanishing_gradients(record(shots, job=spec(activation="sigmoid")), T)
    assert codes(found) == ["vanishing_gradients"] and found[0].severity == "error"
    assert found[0].layer == "fc1" and found[0].step == 100
    assert found[0].evidence["median_ratio"] < T.vanishing_error_ratio
    assert "Sigmoid's derivative is at most 0.25" in found[0].detail
    # Three sigmoid layers are not a deep stack: Xavier, the sigmoid's own init (§3).
    assert found[0].remedy == {"model.init.scheme": "xavier_normal"}
    assert found[0].onset_step == 25


@pytest.mark.parametrize(("first", "severity"), [(1e-5, "warning"), (1e-3, None),
                                                 (None, None), (math.inf, None)])
def test_vanishing_severity_and_what_is_skipped(first: float | None, severity: str | None) -> None:
    found = vanishing_gradients(record(grads(10, first, 0.1)), T)
    assert (found[0].severity if found else None) == severity


def test_a_zero_output_gradient_proves_nothing() -> None:
    assert vanishing_gradients(record(grads(10, 0.0, 0.0)), T) == []


def test_vanishing_with_small_normal_init_proposes_a_scaled_init() -> None:
    job = spec(activation="tanh", init={"scheme": "normal", "std": 0.01})
    found = vanishing_gradients(record(grads(10, 1e-9, 1e-4), job=job), T)
    assert "normal(0, 0.01)" in found[0].detail
    assert found[0].remedy == {"model.init.scheme": "xavier_normal"}


def test_gradients_far_larger_than_the_weights_explode() -> None:
    shots = grads(10, 2e3, 2e3, middle=2e3) + weights(10, unit_std=1.0, l2=10.0)
    job = spec(init={"scheme": "normal", "std": 1.0})
    found = exploding_gradients(record(shots, job=job), T)
    assert codes(found) == ["exploding_gradients"]
    assert "200x its weight norm" in found[0].title
    assert found[0].remedy == {"training.grad_clip": 1.0, "model.init.scheme": "kaiming_normal"}


def test_exploding_from_first_to_last_layer_and_from_the_grad_norm_series() -> None:
    assert codes(exploding_gradients(record(grads(10, 500.0, 0.1)), T)) == [
        "exploding_gradients"]
    norms = [1.0] * 20 + [10.0 ** k for k in range(1, 8)] + [math.nan]
    found = exploding_gradients(record(metrics={"grad_norm": series(norms)}), T)
    assert found[0].evidence["nonfinite_step"] == len(norms)
    assert found[0].evidence["peak_grad_norm"] == 1e7
    assert exploding_gradients(record(metrics={"grad_norm": series([1.0, 3.0] * 20)}), T) == []


def activations(step: int, stat: str, values: list[float], **extra: float) -> list:
    return snaps(step, "activation", {name: {stat: value, **extra}
                                      for name, value in zip(NAMES[:3], values, strict=True)})


def test_activation_collapse_at_init_that_training_outgrew_is_a_warning() -> None:
    shots = activations(1, "std", [0.1, 1e-3, 1e-5]) + activations(100, "std", [0.3, 0.2, 0.2])
    job = spec(activation="tanh", init={"scheme": "normal", "std": 0.01})
    found = activation_collapse(record(shots, job=job), T)
    assert codes(found) == ["activation_collapse"] and found[0].severity == "warning"
    assert found[0].step == 1 and found[0].layer == "fc3"
    assert "By step 100 training had grown the weights enough" in found[0].detail
    assert found[0].remedy == {"model.init.scheme": "xavier_normal"}
    persistent = activation_collapse(record(activations(1, "std", [0.1, 1e-3, 1e-5])), T)
    assert persistent[0].severity == "error"


def test_no_collapse_when_spread_holds_or_there_are_too_few_layers() -> None:
    assert activation_collapse(record(activations(1, "std", [0.6, 0.5, 0.4])), T) == []
    two = snaps(1, "activation", {"fc1": {"std": 1.0}, "fc2": {"std": 1e-6}})
    assert activation_collapse(record(two), T) == []


@pytest.mark.parametrize(("fraction", "severity"), [(0.6, "error"), (0.3, "warning"),
                                                    (0.1, None)])
def test_saturation_of_tanh_units(fraction: float, severity: str | None) -> None:
    job = spec(activation="tanh", init={"scheme": "normal", "std": 1.0})
    shots = activations(50, "saturated_fraction", [fraction, 0.05, 0.05])
    found = saturation(record(shots, job=job), T)
    assert (found[0].severity if found else None) == severity
    if found:
        assert found[0].layer == "fc1" and "±1" in found[0].title
        assert found[0].remedy == {"model.init.scheme": "xavier_normal"}


def test_saturation_is_only_read_for_saturating_activations() -> None:
    shots = activations(50, "saturated_fraction", [0.9, 0.9, 0.9])
    assert saturation(record(shots, job=spec(activation="relu")), T) == []


def test_dead_units_blame_the_learning_rate_when_the_evidence_does() -> None:
    shots = activations(50, "dead_fraction", [0.2, 0.95, 1.0])
    job = spec(optimizer={"name": "sgd", "lr": 2.0})
    spiky = {"train_loss": series([1.1, 80.0, 1.1, 1.1])}
    found = dead_units(record(shots, spiky, job=job), T)
    assert found[0].severity == "error" and found[0].layer == "fc3"
    assert "jumped from 1.1 to 80" in found[0].detail
    assert found[0].remedy == {"optimizer.lr": 0.2}
    calm = dead_units(record(shots, {"train_loss": series([1.1, 1.0, 0.9])}, job=job), T)
    assert calm[0].remedy == {"model.init.scheme": "kaiming_normal"}  # PyTorch's default init
    kaiming = spec(optimizer={"name": "sgd", "lr": 2.0}, init={"scheme": "kaiming_normal"})
    calm = dead_units(record(shots, {"train_loss": series([1.1, 1.0, 0.9])}, job=kaiming), T)
    assert calm[0].remedy == {"model.activation": "leaky_relu"}


def test_a_third_of_idle_units_is_not_a_finding() -> None:
    assert dead_units(record(activations(50, "dead_fraction", [0.3, 0.35, 0.4])), T) == []
