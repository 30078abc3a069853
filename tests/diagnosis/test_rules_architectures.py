"""The rules on resnet and sequential models: layers by path, depth along the main path (a
projection shortcut shares its block's first layer's depth), remedies in the kind's own fields."""

from __future__ import annotations

from typing import Any

from gradlab_contract.spec import JobSpec

from diagnosis import DEFAULT, LayerRecord, SnapshotRecord
from diagnosis.remedy import apply_remedies
from diagnosis.rules.activations import saturation
from diagnosis.rules.gradients import vanishing_gradients
from tests.diagnosis.records import record

T = DEFAULT
RESNET_LAYERS = [
    LayerRecord("stem", "linear", 0, (16, 40)),
    LayerRecord("stage1.block1.fc1", "linear", 1, (16, 16)),
    LayerRecord("stage1.block1.shortcut", "linear", 1, (16, 16)),
    LayerRecord("stage1.block1.fc2", "linear", 2, (16, 16)),
    LayerRecord("out", "linear", 3, (10, 16)),
]


def _job(model: dict[str, Any]) -> JobSpec:
    return JobSpec.model_validate({"data": {"dataset": "mnist1d"}, "model": model})


def _grads(step: int, norms: dict[str, float]) -> list[SnapshotRecord]:
    depth = {layer.name: layer.depth for layer in RESNET_LAYERS}
    return [SnapshotRecord(step, "gradient", name, depth[name], {"l2": norm})
            for name, norm in norms.items()]


def _vanishing(model: dict[str, Any]) -> Any:
    shots = _grads(10, {"stem": 1e-9, "stage1.block1.fc1": 1e-6,
                        "stage1.block1.shortcut": 1e-3, "stage1.block1.fc2": 1e-3, "out": 0.1})
    found = vanishing_gradients(record(shots, job=_job(model), layers=RESNET_LAYERS), T)
    assert [f.code for f in found] == ["vanishing_gradients"]
    return found[0]


def test_a_plain_resnet_whose_gradients_vanish_is_told_to_add_shortcuts() -> None:
    model = {"kind": "resnet", "resnet": {"flat": True, "norm": "none", "shortcut": "none"}}
    finding = _vanishing(model)
    assert finding.layer == "stem"
    assert finding.evidence["last_layer"] == "out"
    assert "no shortcuts" in finding.detail and "over 3 layers" in finding.detail
    assert finding.remedy == {"model.resnet.shortcut": "identity"}
    remedied = apply_remedies(_job(model).model_dump(mode="json"),
                              [finding.__dict__], ["vanishing_gradients"])
    assert JobSpec.model_validate(remedied).model.resnet_spec.shortcut == "identity"


KAIMING = {"scheme": "kaiming_normal"}  # an init suited to ReLU: what is left is normalization


def test_a_residual_resnet_without_norm_gets_batch_norm_in_its_own_field() -> None:
    # With PyTorch's default init the remedy table fixes the init first (ReLU -> Kaiming).
    assert _vanishing({"kind": "resnet", "resnet": {"norm": "none"}}).remedy == {
        "model.init.scheme": "kaiming_normal"}
    model = {"kind": "resnet", "init": KAIMING}  # model.resnet left out: the remedy creates it
    finding = _vanishing({**model, "resnet": {"norm": "none"}})
    assert finding.remedy == {"model.resnet.norm": "batch"}
    remedied = apply_remedies(_job(model).model_dump(mode="json"), [finding.__dict__],
                              ["vanishing_gradients"])
    assert JobSpec.model_validate(remedied).model.resnet_spec.norm == "batch"


def test_a_sequential_model_gets_the_suggestion_without_an_invalid_remedy() -> None:
    finding = _vanishing({"kind": "sequential", "init": KAIMING, "layers": [
        {"type": "flatten"}, {"type": "linear", "units": 8}, {"type": "activation"}]})
    assert finding.remedy is None
    assert "batch norm" in finding.suggestion


def test_saturation_is_read_from_a_sequential_models_own_tanh_layers() -> None:
    job = _job({"kind": "sequential", "activation": "relu", "layers": [
        {"type": "flatten"}, {"type": "linear", "units": 16},
        {"type": "activation", "name": "tanh"}]})
    layers = [LayerRecord("linear1", "linear", 0, (16, 40)), LayerRecord("out", "linear", 1,
                                                                         (10, 16))]
    shots = [SnapshotRecord(10, "activation", "linear1", 0, {"saturated_fraction": 0.9})]
    found = saturation(record(shots, job=job, layers=layers), T)
    assert [f.code for f in found] == ["saturation"] and found[0].layer == "linear1"
