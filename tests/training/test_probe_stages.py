"""The two probe stages (NumPy for CPU tensors, torch for accelerators) held to each other;
test_probes.py checks each of them against reference computations."""

from __future__ import annotations

import pytest
import torch
from engine_support import make_spec, tiny_dataset

from training.model import ProbedLayer
from training.probes import ActivationRecorder, ProbeTensor, collect, reduce
from training.probes.readout import read_snapshots
from training.runtime import seeded_model

BINS = 16


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_both_stages_agree_on_a_real_snapshot(activation: str) -> None:
    """The stages share nothing but readout: the same probes give the same statistics (float32
    sums against float64 ones), the same histograms count for count, the same quantiles."""
    spec = make_spec(
        model={"hidden": [12, 9], "activation": activation, "init": {"scheme": "zeros"}}
    )
    data = tiny_dataset()
    model = seeded_model(spec, data)
    torch.nn.init.normal_(model.layers()[1].weight)  # one layer with spread, the others symmetric
    layers: list[ProbedLayer] = model.layers()
    with ActivationRecorder(layers) as recorder:
        logits = model(data.x_train[:40])
    torch.nn.functional.cross_entropy(logits, data.y_train[:40]).backward()
    probes = collect(layers, ["gradient", "weight", "activation"], recorder.outputs)
    probes.append(ProbeTensor("weight", "big", 9, torch.randn(50, 60), 0))  # sampled quantiles
    host, device = (
        read_snapshots(
            3, [p.info() for p in probes],
            reduce(probes, bins=BINS, activation=activation, on_host=flag),
        )
        for flag in (True, False)
    )
    for ours, theirs in zip(host, device, strict=True):
        assert ours.stats == pytest.approx(theirs.stats, rel=1e-5, abs=1e-7), ours.layer
        assert ours.histogram.counts == theirs.histogram.counts, ours.layer
        assert ours.histogram.edges == pytest.approx(theirs.histogram.edges, rel=1e-6, abs=1e-9)
        if ours.log_histogram is not None:
            assert theirs.log_histogram is not None
            assert ours.log_histogram.counts == theirs.log_histogram.counts, ours.layer


def test_a_unit_index_too_big_to_keep_is_rebuilt_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import training.probes.on_host as on_host

    probes = [
        ProbeTensor("gradient", "fc1", 0, torch.randn(6, 5), 0),
        ProbeTensor("weight", "fc1", 0, torch.randn(6, 5), 0),
        ProbeTensor("weight", "embed1", 1, torch.randn(30, 4), 1),
        ProbeTensor("activation", "conv1", 2, torch.randn(20, 3, 7), 1),
    ]
    kept = reduce(probes, bins=BINS, activation="relu", on_host=True).moments
    monkeypatch.setattr(on_host, "UNIT_INDEX_CACHED", 0)
    rebuilt = reduce(probes, bins=BINS, activation="relu", on_host=True).moments
    torch_stage = reduce(probes, bins=BINS, activation="relu", on_host=False).moments
    assert (rebuilt == kept).all()
    assert rebuilt[:, 6] == pytest.approx(torch_stage[:, 6], rel=1e-5)  # unit spreads
