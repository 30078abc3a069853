"""Probe statistics against plain reference computations, and when and how they are taken."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from engine_support import Recorder, make_spec, snapshot, tiny_dataset
from gradlab_contract.models import Snapshot

import training.loop as loop
from training import train
from training.model import ProbedLayer, build_model
from training.probes import (
    QUANTILE_SAMPLE,
    UNIT_STD_EXAMPLES,
    ActivationRecorder,
    ProbeTensor,
    reduce,
    summarize,
)
from training.runtime import seeded_model

BINS = 16


@pytest.fixture(params=["on_host", "on_device"], autouse=True)
def stage(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs against both stages: NumPy on the CPU (what CPU runs use) and torch
    (what an accelerator uses), the latter forced onto CPU tensors."""
    if request.param == "on_device":
        original = reduce

        def forced(*args: Any, **kwargs: Any) -> Any:
            return original(*args, **kwargs, on_host=False)

        monkeypatch.setattr("training.probes.reduce", forced)
    return str(request.param)


def _summary(
    x: torch.Tensor, kind: str = "weight", activation: str = "relu", unit_dim: int = 0
) -> Snapshot:
    probe = ProbeTensor(kind, "fc1", 0, x, unit_dim)  # type: ignore[arg-type]
    return summarize(7, [probe], bins=BINS, activation=activation)[0]


def _reference(x: torch.Tensor, unit_dim: int, kind: str) -> dict[str, float]:
    x64 = x.double()
    per_unit = x64[:UNIT_STD_EXAMPLES] if kind == "activation" else x64
    flat = x64.flatten()
    quantiles = torch.quantile(flat, torch.tensor([0.01, 0.5, 0.99], dtype=torch.float64)).tolist()
    return {
        "mean": flat.mean().item(),
        "std": flat.std(correction=0).item(),
        "min": flat.min().item(),
        "max": flat.max().item(),
        "l2": flat.norm().item(),
        "zero_fraction": (flat == 0).double().mean().item(),
        "nan_count": 0.0,
        "inf_count": 0.0,
        "p1": quantiles[0],
        "p50": quantiles[1],
        "p99": quantiles[2],
        "unit_std": per_unit.std(dim=unit_dim, correction=0).mean().item(),
    }


@pytest.mark.parametrize(
    ("shape", "kind", "unit_dim"),
    [
        ((5, 7), "weight", 0),
        ((4, 3, 3), "gradient", 0),
        ((32, 6), "activation", 1),
        ((8, 4, 5), "activation", 1),
    ],
)
def test_statistics_match_a_reference(shape: tuple[int, ...], kind: str, unit_dim: int) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    x[0, 0] = 0.0  # one exact zero
    result = _summary(x, kind, unit_dim=unit_dim)
    expected = _reference(x, unit_dim, kind)
    assert result.step == 7 and result.kind == kind
    for key, value in expected.items():
        assert result.stats[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    counts = torch.histc(x, BINS, x.min().item(), x.max().item()).long().tolist()
    assert result.histogram.counts == counts
    edges = torch.linspace(x.min().item(), x.max().item(), BINS + 1).tolist()
    assert result.histogram.edges == pytest.approx(edges, abs=1e-6)


def test_gradients_get_a_log10_histogram_of_their_nonzero_entries() -> None:
    g = torch.tensor([0.0, 0.0, 1e-6, -1e-4, 1e-3, -1e-2, 5e-2, 1.0])
    result = _summary(g, "gradient")
    assert result.log_histogram is not None
    logs = torch.log10(g[g != 0].abs())
    assert result.log_histogram.edges[0] == pytest.approx(-6.0) and result.log_histogram.edges[
        -1
    ] == pytest.approx(0.0)
    assert result.log_histogram.counts == torch.histc(logs, BINS, -6.0, 0.0).long().tolist()
    assert sum(result.log_histogram.counts) == 6  # the two zeros are left out
    assert _summary(g, "weight").log_histogram is None


def test_all_zero_and_constant_tensors() -> None:
    zeros = _summary(torch.zeros(6, 4), "gradient")
    assert (
        zeros.stats["std"] == 0.0
        and zeros.stats["zero_fraction"] == 1.0
        and zeros.stats["unit_std"] == 0.0
    )
    assert zeros.histogram.counts[0] == 24 and sum(zeros.histogram.counts) == 24
    assert zeros.log_histogram is not None and sum(zeros.log_histogram.counts) == 0
    constant = _summary(torch.full((6, 4), 0.3))
    assert constant.stats["std"] < 1e-7 and constant.stats["unit_std"] < 1e-7
    assert constant.stats["p1"] == constant.stats["p99"] == pytest.approx(0.3)


def test_nan_and_inf_are_counted_and_leave_the_histogram_empty() -> None:
    x = torch.tensor([[1.0, float("nan"), float("inf")], [float("-inf"), 2.0, float("nan")]])
    result = _summary(x, "gradient")
    assert result.stats["nan_count"] == 2.0 and result.stats["inf_count"] == 2.0
    assert sum(result.histogram.counts) == 0
    assert result.stats["p1"] == pytest.approx(1.01) and result.stats["p99"] == pytest.approx(
        1.99
    )  # finite ones


def test_quantiles_of_a_big_tensor_come_from_a_sample() -> None:
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(2))
    assert x.numel() > QUANTILE_SAMPLE
    stats = _summary(x).stats
    assert stats["p50"] == pytest.approx(0.0, abs=0.1)
    assert stats["p1"] == pytest.approx(-2.33, abs=0.3) and stats["p99"] == pytest.approx(
        2.33, abs=0.3
    )
    assert stats["mean"] == pytest.approx(x.mean().item(), abs=1e-5)  # moments are exact


@pytest.mark.parametrize(
    ("activation", "values", "saturated", "dead"),
    [
        ("tanh", [[0.995, -0.999], [0.5, 0.0]], 0.5, 0.0),
        ("sigmoid", [[0.005, 0.999], [0.5, 0.3]], 0.5, 0.0),
        ("relu", [[0.0, 1.0], [0.0, 2.0]], 0.0, 0.5),  # unit 0 is 0 for every example
        ("leaky_relu", [[-0.1, 1.0], [-0.2, -0.1]], 0.0, 0.5),
        ("linear", [[-1.0, -1.0], [-1.0, -1.0]], 0.0, 0.0),
    ],
)
def test_saturation_and_dead_units(
    activation: str, values: list[list[float]], saturated: float, dead: float
) -> None:
    stats = _summary(torch.tensor(values), "activation", activation, unit_dim=1).stats
    assert stats["saturated_fraction"] == pytest.approx(saturated)
    assert stats["dead_fraction"] == pytest.approx(dead)


def test_a_dead_channel_is_dead_at_every_position() -> None:
    maps = torch.rand(4, 3, 5)
    maps[:, 1] = 0.0
    maps[0, 2, 4] = 0.0  # channel 2 is zero once, which is not dead
    assert _summary(maps, "activation", "relu", unit_dim=1).stats["dead_fraction"] == pytest.approx(
        1 / 3
    )


def test_a_healthy_snapshot_copies_to_the_host_once_or_never(
    stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("cpu", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def spy(
            self: torch.Tensor, *args: Any, _name: str = name, _original: Any = original
        ) -> Any:
            calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, spy)
    probes = [ProbeTensor("weight", f"fc{i}", i, torch.randn(40, 50), 0) for i in range(5)]
    summarize(1, probes, bins=BINS, activation="relu")
    # torch copies everything in one transfer; NumPy reads CPU tensors where they are
    assert calls == (["cpu"] if stage == "on_device" else [])


def test_recorder_hooks_only_inside_its_block() -> None:
    from gradlab_contract.shapes import DataShape
    from gradlab_contract.spec import ModelSpec

    model = build_model(ModelSpec(hidden=[5, 4]), DataShape("vector", (3,), 2, 4, 2))
    layers: list[ProbedLayer] = model.layers()
    with ActivationRecorder(layers) as recorder:
        model(torch.randn(6, 3))
        assert all(
            len(layer.activation._forward_hooks) == 1 for layer in layers if layer.activation
        )
    assert all(len(layer.activation._forward_hooks) == 0 for layer in layers if layer.activation)
    assert set(recorder.outputs) == {"fc1", "fc2"}
    assert recorder.outputs["fc1"].shape == (6, 5) and recorder.outputs["fc1"].min() >= 0


def test_snapshot_steps_kinds_and_order() -> None:
    recorder = Recorder()
    spec = make_spec(
        training={"steps": 25}, telemetry={"snapshot_every": 10, "kinds": ["weight", "gradient"]}
    )
    train(spec, recorder.callbacks(), dataset=tiny_dataset())
    assert sorted(recorder.snapshots) == [1, 10, 20, 25]
    taken = recorder.snapshots[10]
    assert [(s.kind, s.layer, s.depth) for s in taken] == [
        ("gradient", "fc1", 0), ("gradient", "fc2", 1), ("gradient", "out", 2),
        ("weight", "fc1", 0), ("weight", "fc2", 1), ("weight", "out", 2),
    ]  # fmt: skip
    assert all(len(s.histogram.counts) == 8 and len(s.histogram.edges) == 9 for s in taken)


def test_activation_hooks_exist_on_snapshot_steps_only(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    hooked: list[int] = []

    class Spy(ActivationRecorder):
        def __enter__(self) -> ActivationRecorder:
            entered = super().__enter__()
            if self._handles:
                hooked.append(len(recorder.progress) + 1)  # the step being trained
            return entered

    monkeypatch.setattr(loop, "ActivationRecorder", Spy)
    spec = make_spec(training={"steps": 12}, telemetry={"snapshot_every": 5})
    train(spec, recorder.callbacks(), dataset=tiny_dataset())
    assert hooked == [1, 5, 10, 12]
    assert {s.layer for s in recorder.snapshots[5] if s.kind == "activation"} == {"fc1", "fc2"}


def test_a_snapshot_shows_the_weights_its_update_started_from() -> None:
    data = tiny_dataset()
    spec = make_spec(training={"steps": 1})
    initial = seeded_model(spec, data).layers()[0].weight
    recorder = Recorder()
    train(spec, recorder.callbacks(), dataset=data)
    weight = snapshot(recorder.snapshots[1], "weight", "fc1")
    assert weight.stats["mean"] == pytest.approx(initial.mean().item(), abs=1e-7)
    assert weight.stats["l2"] == pytest.approx(initial.norm().item(), rel=1e-6)
