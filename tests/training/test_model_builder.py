"""The built network matches shapes.plan_layers exactly, block by block."""

from __future__ import annotations

import math
from typing import Any, get_args

import pytest
import torch
from gradlab_contract.shapes import DataShape, plan_layers
from gradlab_contract.spec import Activation, ModelSpec
from torch import nn

from training.model import Maxout, Network, SeededDropout, build_model

VECTOR = DataShape("vector", (12,), 3, 10, 5)
SEQUENCE = DataShape("sequence", (1, 40), 10, 10, 5)
IMAGE = DataShape("image", (3, 16, 16), 10, 10, 5)
CATEGORICAL = DataShape("categorical", (4,), 2, 10, 5, (50, 7, 3, 20))
CONV2 = [
    {"channels": 8, "kernel": 3, "padding": 1, "pool": "max"},
    {"channels": 6, "kernel": 5, "stride": 2, "padding": 2, "pool": "avg"},
]
MATRIX: list[tuple[dict[str, Any], DataShape]] = [
    ({"kind": "mlp", "hidden": [8, 4]}, VECTOR),
    ({"kind": "mlp", "hidden": []}, IMAGE),
    ({"kind": "mlp", "hidden": [10, 6, 4], "batch_norm": True, "dropout": 0.3}, SEQUENCE),
    ({"kind": "mlp", "hidden": [8, 6], "activation": "maxout", "batch_norm": True}, VECTOR),
    ({"kind": "cnn", "conv": CONV2, "hidden": [16]}, SEQUENCE),
    ({"kind": "cnn", "conv": CONV2, "hidden": []}, IMAGE),
    ({"kind": "cnn", "conv": CONV2, "hidden": [8], "batch_norm": True, "dropout": 0.1}, IMAGE),
    ({"kind": "cnn", "conv": CONV2, "hidden": [8], "activation": "maxout"}, IMAGE),
    ({"kind": "cnn", "conv": [{"channels": 4, "kernel": 3}], "hidden": [6]}, VECTOR),
    (
        {"kind": "cnn", "conv": [{"channels": 4, "kernel": 1, "padding": 0, "pool": "max"}] * 3},
        SEQUENCE,
    ),
    ({"kind": "embedding_mlp", "hidden": [16, 8], "embedding_dim": 5}, CATEGORICAL),
    ({"kind": "embedding_mlp", "hidden": [], "embedding_dim": 3, "batch_norm": True}, CATEGORICAL),
]


def _example(shape: DataShape, n: int = 4) -> torch.Tensor:
    if shape.kind == "categorical":
        return torch.stack([torch.randint(0, c, (n,)) for c in shape.cardinalities], dim=1)
    return torch.randn(n, *shape.input_shape)


def _block_outputs(model: Network, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every parameterized block (after pooling), in depth order."""
    outputs: list[torch.Tensor] = []
    owners = [*model.embeds, *model.convs, *model.fcs, model.out]
    handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for m in owners]
    model(x)
    for handle in handles:
        handle.remove()
    return outputs


@pytest.mark.parametrize(("model_spec", "shape"), MATRIX)
def test_model_matches_plan_layers(model_spec: dict[str, Any], shape: DataShape) -> None:
    spec = ModelSpec.model_validate(model_spec)
    model = build_model(spec, shape)
    plan = plan_layers(spec, shape)
    layers = model.layers()
    assert [layer.name for layer in layers] == [p.name for p in plan]
    assert [layer.type for layer in layers] == [p.type for p in plan]
    assert [tuple(layer.weight.shape) for layer in layers] == [p.weight_shape for p in plan]
    assert [layer.parameters for layer in layers] == [p.parameters for p in plan]
    assert [layer.activation is not None for layer in layers] == [p.hidden for p in plan]
    assert sum(p.numel() for p in model.parameters()) == sum(p.parameters for p in plan)
    model.eval()
    outputs = _block_outputs(model, _example(shape))
    assert [math.prod(out.shape[1:]) for out in outputs] == [p.output_elements for p in plan]
    assert outputs[-1].shape == (4, shape.num_classes)


def test_hidden_block_order_is_layer_norm_activation_pool_dropout() -> None:
    spec = ModelSpec(kind="cnn", conv=CONV2, hidden=[8], batch_norm=True, dropout=0.5)
    model = build_model(spec, IMAGE)
    conv = [type(m) for m in model.convs[0]]
    assert conv == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, SeededDropout]
    assert [type(m) for m in model.convs[1]][3] is nn.AvgPool2d
    assert [type(m) for m in model.fcs[0]] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, SeededDropout]


def test_conv_dimension_follows_the_data() -> None:
    conv = [{"channels": 4}]
    assert isinstance(
        build_model(ModelSpec(kind="cnn", conv=conv), SEQUENCE).convs[0][0], nn.Conv1d
    )
    assert isinstance(build_model(ModelSpec(kind="cnn", conv=conv), IMAGE).convs[0][0], nn.Conv2d)
    vector = build_model(ModelSpec(kind="cnn", conv=conv, hidden=[]), VECTOR)
    assert isinstance(vector.convs[0][0], nn.Conv1d)  # 12 features read as 1 channel x 12
    assert vector(torch.randn(5, 12)).shape == (5, 3)


@pytest.mark.parametrize(
    "activation",
    get_args(Activation),  # every value the contract allows, so a new one is covered at once
)
def test_every_activation_trains_a_step(activation: str) -> None:
    spec = ModelSpec(kind="cnn", conv=[{"channels": 4}], hidden=[6], activation=activation)
    model = build_model(spec, SEQUENCE)
    loss = nn.functional.cross_entropy(model(torch.randn(8, 1, 40)), torch.randint(0, 10, (8,)))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


def test_maxout_takes_the_max_of_adjacent_pairs() -> None:
    x = torch.tensor([[1.0, 5.0, -2.0, -3.0], [0.0, -1.0, 7.0, 8.0]])
    assert Maxout()(x).tolist() == [[5.0, -2.0], [0.0, 8.0]]
    maps = torch.arange(8.0).view(1, 4, 2)  # channels pair up on dim 1
    assert Maxout()(maps).tolist() == [[[2.0, 3.0], [6.0, 7.0]]]


def test_seeded_dropout_is_reproducible_and_off_in_eval() -> None:
    drop = SeededDropout(0.5)
    x = torch.ones(1000)
    drop.generator = torch.Generator().manual_seed(3)
    first = drop(x)
    drop.generator = torch.Generator().manual_seed(3)
    assert torch.equal(first, drop(x))
    assert set(first.unique().tolist()) == {0.0, 2.0}  # kept units are scaled by 1 / (1 - p)
    drop.eval()
    assert torch.equal(drop(x), x)


def test_embeddings_are_one_per_field_and_concatenated() -> None:
    spec = ModelSpec(kind="embedding_mlp", hidden=[4], embedding_dim=5)
    model = build_model(spec, CATEGORICAL)
    assert [e.num_embeddings for e in model.embeds] == [50, 7, 3, 20]
    assert model.fcs[0][0].in_features == 4 * 5
    assert model(_example(CATEGORICAL, 6)).shape == (6, 2)


def test_a_conv_stack_that_shrinks_to_nothing_is_refused() -> None:
    spec = ModelSpec(kind="cnn", conv=[{"channels": 4, "pool": "max"}] * 6)
    with pytest.raises(ValueError, match=r"model\.conv\.\d"):
        build_model(spec, DataShape("sequence", (1, 16), 2, 4, 2))
