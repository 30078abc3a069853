"""diagnose() itself (what a root cause explains away, the order), the streaming RecordBuilder the
worker keeps, findings as the API carries them, and applying remedies to a spec."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from gradlab_contract.models import Finding as ApiFinding

from diagnosis import (
    CODES,
    Finding,
    RecordBuilder,
    RemedyError,
    RunRecord,
    SnapshotRecord,
    apply_remedies,
    diagnose,
)
from diagnosis.builder import SeriesBuffer
from diagnosis.findings import num
from tests.diagnosis.records import NAMES, codes, record, roots, series, snaps, spec


def zero_init_relu() -> RunRecord:
    """What a zero-initialized ReLU MLP records: every weight and activation 0, loss at chance."""
    shots = []
    for step in (1, 100):
        zeros = {"unit_std": 0.0, "std": 0.0, "l2": 0.0, "mean": 0.0, "dead_fraction": 1.0}
        shots += snaps(step, "weight", dict.fromkeys(NAMES, zeros))
        shots += snaps(step, "activation", dict.fromkeys(NAMES[:3], zeros))
    metrics = {"train_loss": series([math.log(3)] * 100),
               "train_accuracy": series([0.33] * 100),
               "update_ratio/out": series([1e-9, 1e-9, 1e-9], every=50)}
    return record(shots, metrics, status="succeeded", job=spec(init={"scheme": "zeros"}))


def test_a_root_cause_explains_its_symptoms_away() -> None:
    """Zero-init ReLU units are also 'dead' and nothing moves ('lr too low'), but the cause, and
    the fix, is the symmetry: the user reads it and the consequence, not four findings."""
    found = diagnose(zero_init_relu())
    assert roots(found) == ["symmetry"]
    assert {f.code: f.caused_by for f in found} == {
        "symmetry": None, "dead_units": "symmetry", "no_learning": "symmetry"}
    symmetry = found[0]
    assert all(f.remedy == symmetry.remedy for f in found)  # a symptom's remedy is its cause's


def test_findings_come_most_severe_first_then_causes_before_symptoms() -> None:
    shots = snaps(1, "activation", {"fc1": {"std": 1.0, "saturated_fraction": 0.3},
                                    "fc2": {"std": 1e-3, "saturated_fraction": 0.0},
                                    "fc3": {"std": 1e-5, "saturated_fraction": 0.0}})
    found = diagnose(record(shots, job=spec(activation="tanh")))
    assert codes(found) == ["activation_collapse", "saturation"]
    assert [f.severity for f in found] == ["error", "warning"]


def test_an_empty_record_has_no_findings() -> None:
    assert diagnose(record()) == []
    assert diagnose(record(status="succeeded")) == []


def test_findings_are_json_safe_and_the_api_model_reads_them() -> None:
    finding = Finding(code="divergence", severity="error", title="t", detail="d", step=3,
                      evidence={"loss": math.nan, "ratio": 1.23456789e-7, "per": {"fc1": math.inf},
                                "layers": ["fc1"], "n": 3})
    assert finding.evidence == {"loss": None, "ratio": 1.235e-07, "per": {"fc1": None},
                                "layers": ["fc1"], "n": 3}
    assert ApiFinding.model_validate(finding.to_dict()).evidence == finding.evidence
    with pytest.raises(ValueError, match="unknown finding code"):
        Finding(code="bad_luck", severity="error", title="t", detail="d")
    assert CODES[0] == "symmetry" and len(set(CODES)) == len(CODES)


@pytest.mark.parametrize(("value", "text"), [(3.2e-7, "3.2e-07"), (0.25, "0.25"), (13.4, "13.4"),
                                             (2.6e12, "2.6e+12"), (math.nan, "NaN"), (0, "0")])
def test_numbers_read_as_a_person_writes_them(value: float, text: str) -> None:
    assert num(value) == text


def test_a_series_buffer_stays_bounded_keeping_the_first_point_spikes_and_nan() -> None:
    buffer = SeriesBuffer(max_points=64)
    for step in range(1, 10_001):
        value = 100.0 if step == 4321 else (math.nan if step == 9000 else 1.0 + 1e-6 * step)
        buffer.add(step, value)
    assert len(buffer.steps) < 64 and buffer.steps == sorted(buffer.steps)
    assert (buffer.steps[0], buffer.values[0]) == (1, 1.0 + 1e-6)  # the loss at initialization
    assert 4321 in buffer.steps and 9000 in buffer.steps
    assert math.isnan(buffer.values[buffer.steps.index(9000)])


@dataclass
class TrainingSnapshot:
    """The training core's Snapshot, histograms and all (the builder must drop them)."""

    step: int
    kind: str
    layer: str
    depth: int
    stats: dict[str, float]
    histogram: object = None


def test_the_builder_keeps_the_first_snapshot_step_and_a_window_of_the_latest() -> None:
    builder = RecordBuilder(spec(), window=3)
    builder.add_layers([{"name": "fc1", "type": "linear", "depth": 0, "shape": [8, 2]},
                        {"name": "out", "type": "linear", "depth": 1, "shape": [3, 8]}])
    for step in range(1, 301):
        builder.add_metrics(step, {"train_loss": 1.0})
        if step == 1 or step % 50 == 0:
            builder.add_snapshots(step, [TrainingSnapshot(step, "weight", "fc1", 0, {"std": 1.0},
                                                          histogram=[1, 2, 3])])
    built = builder.record(status="succeeded", total_steps=300)
    assert built.steps("weight") == [1, 200, 250, 300]
    assert all(isinstance(s, SnapshotRecord) for s in built.snapshots)
    assert built.final and built.final_step == 300 and built.num_classes == 3
    assert len(built.series("train_loss")[0]) == 300


def test_a_resumed_attempt_starts_from_what_the_store_holds() -> None:
    earlier = zero_init_relu()
    builder = RecordBuilder(earlier.spec)
    builder.seed(earlier)
    builder.add_metrics(101, {"train_loss": math.log(3)})
    resumed = builder.record(status="succeeded")
    assert resumed.steps("weight") == [1, 100] and resumed.final_step == 101
    assert roots(diagnose(resumed)) == ["symmetry"]


SPEC = {"model": {"activation": "sigmoid", "init": {"scheme": "default"}, "batch_norm": False},
        "optimizer": {"lr": 1.0}, "training": {"steps": 300}}
FOUND = [
    {"code": "vanishing_gradients", "remedy": {"model.activation": "relu",
                                               "model.init.scheme": "kaiming_normal"}},
    {"code": "activation_collapse", "remedy": {"model.init.scheme": "xavier_normal"}},
    {"code": "no_learning", "remedy": None},
]


def test_remedies_apply_in_the_order_asked_and_the_later_wins() -> None:
    fixed = apply_remedies(SPEC, FOUND, ["activation_collapse", "vanishing_gradients"])
    assert fixed["model"] == {"activation": "relu", "init": {"scheme": "kaiming_normal"},
                              "batch_norm": False}
    assert SPEC["model"]["activation"] == "sigmoid"  # the original is left alone
    again = apply_remedies(SPEC, FOUND, ["vanishing_gradients", "activation_collapse"])
    assert again["model"]["init"]["scheme"] == "xavier_normal"


@pytest.mark.parametrize(("codes_", "message"), [
    (["bad_luck"], "not a finding code"), (["dead_units"], "not among this job's findings"),
    (["no_learning"], "no remedy"),
])
def test_remedies_that_cannot_be_applied_say_why(codes_: list[str], message: str) -> None:
    with pytest.raises(RemedyError, match=message):
        apply_remedies(SPEC, FOUND, codes_)
