"""The lecture's classic failures, reproduced and read off the probes (lecture.md, 2, 3, 7)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from engine_support import Recorder, make_spec, snapshot, tiny_dataset
from gradlab_contract.models import Snapshot

from training import train

WIDE = {"input_shape": (64,), "n_train": 256, "n_val": 64, "spread": 0.3}  # inputs ~ unit variance


def _snapshots(
    sections: dict[str, Any], step: int | None = None, **data: Any
) -> tuple[list[Snapshot], Recorder]:
    recorder = Recorder()
    result = train(
        make_spec(**sections), recorder.callbacks(), dataset=tiny_dataset(**{**WIDE, **data})
    )
    assert result.status == "succeeded", result.reason
    return recorder.snapshots[step if step is not None else max(recorder.snapshots)], recorder


def _per_layer(snapshots: list[Snapshot], kind: str, stat: str) -> list[float]:
    found = sorted((s for s in snapshots if s.kind == kind), key=lambda s: s.depth)
    return [s.stats[stat] for s in found]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_zero_init_never_breaks_symmetry(activation: str) -> None:
    sections = {
        "model": {"hidden": [16, 16], "activation": activation, "init": {"scheme": "zeros"}},
        "training": {"steps": 40},
        "telemetry": {"snapshot_every": 40},
    }
    last, _ = _snapshots(sections)
    for layer in ("fc1", "fc2"):
        assert snapshot(last, "weight", layer).stats["unit_std"] == 0.0, layer
        assert snapshot(last, "activation", layer).stats["unit_std"] == 0.0, layer
    broken, _ = _snapshots(
        {**sections, "model": {**sections["model"], "init": {"scheme": "xavier_normal"}}}
    )
    assert snapshot(broken, "weight", "fc2").stats["unit_std"] > 0.01


def test_a_deep_sigmoid_net_starves_its_first_layers_of_gradient() -> None:
    deep = {"hidden": [32] * 10, "init": {"scheme": "xavier_normal"}}
    first, _ = _snapshots({"model": {**deep, "activation": "sigmoid"}, "training": {"steps": 1}})
    norms = _per_layer(first, "gradient", "l2")
    assert norms[0] < 1e-3 * norms[-1]  # fc1 vs out: over three orders of magnitude
    relu, _ = _snapshots(
        {
            "model": {**deep, "activation": "relu", "init": {"scheme": "kaiming_normal"}},
            "training": {"steps": 1},
        }
    )
    norms = _per_layer(relu, "gradient", "l2")
    assert norms[0] > 1e-2 * norms[-1]


def test_kaiming_keeps_relu_activations_steady_while_xavier_shrinks_them() -> None:
    model = {"hidden": [128] * 24, "activation": "relu"}
    sections: dict[str, Any] = {"training": {"steps": 1, "batch_size": 128}}
    kaiming, _ = _snapshots({**sections, "model": {**model, "init": {"scheme": "kaiming_normal"}}})
    xavier, _ = _snapshots({**sections, "model": {**model, "init": {"scheme": "xavier_normal"}}})
    steady = _per_layer(kaiming, "activation", "std")
    shrinking = _per_layer(xavier, "activation", "std")
    assert len(steady) == 24
    assert 0.25 < steady[-1] / steady[0] < 4
    assert shrinking[-1] / shrinking[0] < 1e-2  # variance halves at every layer
    assert sum(b < a for a, b in itertools.pairwise(shrinking)) >= 20


def test_an_absurd_learning_rate_kills_relu_units() -> None:
    def dead(lr: float) -> float:
        sections = {
            "model": {"hidden": [32, 32], "activation": "relu"},
            "optimizer": {"name": "sgd", "lr": lr},
            "training": {"steps": 60},
            "telemetry": {"snapshot_every": 60},
        }
        last, _ = _snapshots(sections)
        return max(_per_layer(last, "activation", "dead_fraction"))

    assert dead(0.01) < 0.2
    assert dead(5.0) > 0.5


def test_tanh_with_std_one_init_saturates() -> None:
    def saturated(init: dict[str, Any]) -> list[float]:
        sections = {
            "model": {"hidden": [64, 64], "activation": "tanh", "init": init},
            "training": {"steps": 1},
        }
        first, _ = _snapshots(sections)
        return _per_layer(first, "activation", "saturated_fraction")

    assert min(saturated({"scheme": "normal", "std": 1.0})) > 0.6
    assert max(saturated({"scheme": "xavier_normal"})) < 0.1
