"""resnet and sequential networks match their torch-free plan; their options do what they say."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from gradlab_contract.shapes import DataShape, plan_layers
from gradlab_contract.spec import InitSpec, JobSpec, ModelSpec
from torch import nn

from training.initialization import initialize
from training.models import build_network
from training.models.resnet import BasicBlock, ResNet
from training.probes import collect, summarize

VECTOR = DataShape("vector", (12,), 3, 10, 5)
SEQUENCE = DataShape("sequence", (1, 40), 10, 10, 5)
IMAGE = DataShape("image", (3, 16, 16), 10, 10, 5)
STAGES = [{"channels": 8, "blocks": 2}, {"channels": 16, "blocks": 1, "stride": 2}]
SEQ_LAYERS: list[dict[str, Any]] = [
    {"type": "conv", "channels": 8}, {"type": "batch_norm"}, {"type": "activation"},
    {"type": "residual", "layers": [
        {"type": "conv", "channels": 8}, {"type": "group_norm", "groups": 4},
        {"type": "activation", "name": "maxout"}, {"type": "conv", "channels": 8},
        {"type": "layer_norm"}]},
    {"type": "activation", "name": "tanh"}, {"type": "pool", "mode": "avg"},
    {"type": "dropout", "p": 0.1}, {"type": "flatten"}, {"type": "linear", "units": 12},
    {"type": "layer_norm"}, {"type": "activation", "name": "prelu"},
]
MATRIX: list[tuple[dict[str, Any], DataShape]] = [
    ({"kind": "resnet", "resnet": {"stages": STAGES}}, SEQUENCE),
    ({"kind": "resnet", "activation": "prelu",
      "resnet": {"stages": STAGES, "norm": "group", "groups": 4, "shortcut": "projection"}},
     IMAGE),
    ({"kind": "resnet", "resnet": {"stages": STAGES, "norm": "layer"}}, IMAGE),
    ({"kind": "resnet", "resnet": {"stages": STAGES, "norm": "none", "shortcut": "none"}},
     SEQUENCE),
    ({"kind": "resnet", "dropout": 0.2, "resnet": {"stages": [{"channels": 6, "blocks": 3}]}},
     VECTOR),
    ({"kind": "resnet", "resnet": {"flat": True, "norm": "layer", "stages": [
        {"channels": 8, "blocks": 1}, {"channels": 4, "blocks": 2}]}}, SEQUENCE),
    ({"kind": "sequential", "layers": SEQ_LAYERS}, IMAGE),
    ({"kind": "sequential", "layers": SEQ_LAYERS[:6]}, SEQUENCE),
    ({"kind": "sequential", "activation": "prelu", "layers": [
        {"type": "batch_norm"}, {"type": "linear", "units": 8}, {"type": "activation"},
        {"type": "residual", "layers": [{"type": "linear", "units": 8}, {"type": "activation"},
                                        {"type": "linear", "units": 8}]},
        {"type": "activation"}]}, VECTOR),
    ({"kind": "sequential", "layers": [{"type": "conv", "channels": 4},
                                       {"type": "pool", "mode": "global_avg"}]}, SEQUENCE),
]


@pytest.mark.parametrize(("model_spec", "shape"), MATRIX)
def test_network_matches_its_plan(model_spec: dict[str, Any], shape: DataShape) -> None:
    spec = ModelSpec.model_validate(model_spec)
    model = build_network(spec, shape)
    plan = plan_layers(spec, shape)
    layers = model.layers()
    assert [layer.name for layer in layers] == [p.name for p in plan]
    assert [layer.type for layer in layers] == [p.type for p in plan]
    assert [layer.depth for layer in layers] == [p.depth for p in plan]
    assert [tuple(layer.weight.shape) for layer in layers] == [p.weight_shape for p in plan]
    assert [layer.activation is not None for layer in layers] == [p.hidden for p in plan]
    assert sum(p.numel() for p in model.parameters()) == sum(p.parameters for p in plan)
    outputs: dict[str, torch.Tensor] = {}
    handles = [layer.module.register_forward_hook(
        lambda _m, _i, out, name=layer.name: outputs.__setitem__(name, out)) for layer in layers]
    model.eval()
    logits = model(torch.randn(4, *shape.input_shape))
    for handle in handles:
        handle.remove()
    assert logits.shape == (4, shape.num_classes)
    assert {n: math.prod(o.shape[1:]) for n, o in outputs.items()} == {
        p.name: p.output_elements for p in plan}


def test_resnet_names_are_paths_and_depth_follows_the_main_path() -> None:
    spec = ModelSpec.model_validate(MATRIX[0][0])
    layers = build_network(spec, SEQUENCE).layers()
    assert [(layer.name, layer.depth) for layer in layers] == [
        ("stem", 0), ("stage1.block1.conv1", 1), ("stage1.block1.shortcut", 1),
        ("stage1.block1.conv2", 2), ("stage1.block2.conv1", 3), ("stage1.block2.conv2", 4),
        ("stage2.block1.conv1", 5), ("stage2.block1.shortcut", 5), ("stage2.block1.conv2", 6),
        ("out", 7)]


def _blocks(model: nn.Module) -> list[BasicBlock]:
    return [m for m in model.modules() if isinstance(m, BasicBlock)]


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_zero_init_residual_starts_each_identity_block_as_the_identity(norm: str) -> None:
    spec = ModelSpec.model_validate({"kind": "resnet", "resnet": {
        "norm": norm, "zero_init_residual": True, "stages": [{"channels": 16, "blocks": 2}]}})
    model = build_network(spec, SEQUENCE)
    initialize(model, InitSpec(scheme="kaiming_normal"), "relu")
    model.eval()
    block = _blocks(model)[1]  # stem 16 -> 16: an identity shortcut
    x = torch.relu(torch.randn(3, 16, 40))
    assert torch.equal(block(x), x)
    plain = build_network(spec.model_copy(update={"resnet": spec.resnet_spec.model_copy(
        update={"zero_init_residual": False})}), SEQUENCE)
    initialize(plain, InitSpec(scheme="kaiming_normal"), "relu")
    plain.eval()
    assert not torch.equal(_blocks(plain)[1](x), x)


def test_plain_resnet_has_no_shortcut_sum() -> None:
    spec = ModelSpec.model_validate({"kind": "resnet", "resnet": {
        "norm": "none", "shortcut": "none", "stem_channels": 4,
        "stages": [{"channels": 4, "blocks": 1}]}})
    model = build_network(spec, VECTOR)
    assert isinstance(model, ResNet)
    block = _blocks(model)[0]
    with torch.no_grad():
        block.layer2.weight.zero_()
        assert isinstance(block.layer2.bias, torch.Tensor)
        block.layer2.bias.zero_()
    assert torch.equal(block(torch.randn(2, 4)), torch.zeros(2, 4))


def test_prelu_learns_a_slope_per_unit_and_kaiming_uses_its_gain() -> None:
    spec = ModelSpec.model_validate({"hidden": [400, 400], "activation": "prelu"})
    model = build_network(spec, DataShape("vector", (400,), 2, 10, 5))
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert [p.weight.numel() for p in prelus] == [400, 400]
    initialize(model, InitSpec(scheme="kaiming_normal"), "prelu")
    std = model.layers()[1].weight.std().item()
    expected = math.sqrt(2 / (1 + 0.25**2) / 400)  # He et al. 2015, with the initial slope
    assert std == pytest.approx(expected, rel=0.05)
    assert std < math.sqrt(2 / 400) * 0.98  # not plain ReLU's gain


def test_each_activation_probe_uses_its_own_function() -> None:
    """A sequential model may mix activations: tanh saturation and ReLU death per layer."""
    spec = ModelSpec.model_validate({"kind": "sequential", "activation": "relu", "layers": [
        {"type": "linear", "units": 16}, {"type": "activation", "name": "tanh"},
        {"type": "linear", "units": 16}, {"type": "activation"}]})
    shape = DataShape("vector", (4,), 2, 10, 5)
    model = build_network(spec, shape)
    layers = model.layers()
    with torch.no_grad():
        layers[0].weight.fill_(10.0)  # tanh saturates
        layers[1].weight.fill_(-1.0)  # ReLU of the saturated tanh's positive output: all dead
        assert isinstance(layers[1].module, nn.Linear)
        layers[1].module.bias.zero_()
    acts: dict[str, torch.Tensor] = {}
    handles = [layer.activation.register_forward_hook(
        lambda _m, _i, out, name=layer.name: acts.__setitem__(name, out.detach()))
        for layer in layers if layer.activation is not None]
    model(torch.ones(8, 4))
    for handle in handles:
        handle.remove()
    snaps = {s.layer: s for s in summarize(1, collect(layers, ["activation"], acts), bins=8,
                                           activation="relu")}
    assert snaps["linear0"].stats["saturated_fraction"] == 1.0
    assert snaps["linear0"].stats["dead_fraction"] == 0.0
    assert snaps["linear2"].stats["dead_fraction"] == 1.0


def test_a_resnet_job_spec_is_valid_for_every_norm() -> None:
    for norm in ("batch", "layer", "group", "none"):
        JobSpec.model_validate({"data": {"dataset": "digits"}, "model": {
            "kind": "resnet", "resnet": {"norm": norm}}})
