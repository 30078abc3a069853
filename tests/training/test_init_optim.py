"""Initialization schemes, optimizers, learning-rate schedules and L1/L2 penalties."""

from __future__ import annotations

import itertools
import math
from typing import Any, get_args

import pytest
import torch
from gradlab_contract.shapes import DataShape
from gradlab_contract.spec import (
    InitSpec,
    ModelSpec,
    OptimizerSpec,
    RegularizationSpec,
    ScheduleName,
    ScheduleSpec,
)
from torch import nn

from training.initialization import initialize, nonlinearity
from training.model import Network, build_model
from training.optim import build_optimizer, keeps_lr, lr_factor, penalty

WIDE = DataShape("vector", (400,), 3, 10, 5)
CONV_IMAGE = DataShape("image", (2, 6, 6), 4, 10, 5)
CATEGORICAL = DataShape("categorical", (2,), 2, 10, 5, (300, 40))


def _model(activation: str = "relu", shape: DataShape = WIDE, **model: Any) -> Network:
    torch.manual_seed(0)
    spec = ModelSpec(hidden=[300, 200], activation=activation, **model)
    return build_model(spec, shape)


def _init(model: Network, activation: str = "relu", **init: Any) -> Network:
    torch.manual_seed(1)
    initialize(model, InitSpec(**init), activation)
    return model


def _biases(model: Network) -> list[torch.Tensor]:
    return [
        m.bias
        for m in model.modules()
        if isinstance(m, nn.Linear | nn.Conv2d) and m.bias is not None
    ]


def test_default_keeps_pytorchs_own_initialization() -> None:
    model = _model()
    before = [p.clone() for p in model.parameters()]
    _init(model, scheme="default")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert any(b.abs().sum() > 0 for b in _biases(model))


@pytest.mark.parametrize(
    "scheme", ["zeros", "constant", "normal", "uniform", "xavier_normal", "orthogonal"]
)
def test_every_scheme_reaches_linear_conv_and_embedding_weights_and_zeroes_biases(
    scheme: str,
) -> None:
    for model in (
        _model(),
        _model(shape=CONV_IMAGE, kind="cnn", conv=[{"channels": 4}]),
        _model(shape=CATEGORICAL, kind="embedding_mlp", embedding_dim=6),
    ):
        _init(model, scheme=scheme, value=0.25, std=0.5, gain=0.7)
        for layer in model.layers():
            weight = layer.weight
            if scheme == "zeros":
                assert not weight.any(), layer.name
            elif scheme == "constant":
                assert torch.all(weight == 0.25), layer.name
            else:
                assert weight.std() > 0, layer.name
        assert all(not b.any() for b in _biases(model))


def test_normal_and_uniform_use_std_and_gain() -> None:
    weight = _init(_model(), scheme="normal", std=0.05).layers()[0].weight
    assert weight.std().item() == pytest.approx(0.05, rel=0.02)
    weight = _init(_model(), scheme="uniform", gain=0.3).layers()[0].weight
    assert weight.abs().max().item() <= 0.3
    assert weight.std().item() == pytest.approx(0.3 / math.sqrt(3), rel=0.02)


def test_xavier_variance_and_gain() -> None:
    fc2 = _init(_model(), scheme="xavier_normal", gain=2.0).layers()[1].weight  # 200 x 300
    assert fc2.std().item() == pytest.approx(2.0 * math.sqrt(2 / (300 + 200)), rel=0.03)
    fc2 = _init(_model(), scheme="xavier_uniform").layers()[1].weight
    assert fc2.abs().max().item() <= math.sqrt(6 / 500) + 1e-6


@pytest.mark.parametrize(
    ("activation", "gain"),
    [
        ("relu", math.sqrt(2)),
        ("gelu", math.sqrt(2)),
        ("leaky_relu", math.sqrt(2 / (1 + 0.01**2))),
        ("tanh", 5 / 3),
        ("sigmoid", 1.0),
        ("linear", 1.0),
    ],
)
def test_kaiming_gain_follows_the_activation(activation: str, gain: float) -> None:
    model = _init(_model(activation), activation, scheme="kaiming_normal")
    fc2, out = model.layers()[1].weight, model.layers()[2].weight
    assert fc2.std().item() == pytest.approx(gain / math.sqrt(300), rel=0.03)
    assert out.std().item() == pytest.approx(1 / math.sqrt(200), rel=0.1)  # nothing follows 'out'
    uniform = _init(_model(activation), activation, scheme="kaiming_uniform").layers()[1].weight
    assert uniform.abs().max().item() <= gain * math.sqrt(3 / 300) + 1e-6


def test_nonlinearity_names() -> None:
    assert nonlinearity("selu") == ("relu", 0.0)
    assert nonlinearity("maxout") == ("relu", 0.0)
    assert nonlinearity("leaky_relu") == ("leaky_relu", 0.01)


def test_orthogonal_rows_are_orthonormal_times_gain() -> None:
    fc2 = _init(_model(), scheme="orthogonal", gain=1.5).layers()[1].weight  # 200 x 300
    gram = fc2 @ fc2.T
    assert torch.allclose(gram, 1.5**2 * torch.eye(200), atol=1e-4)


@pytest.mark.parametrize(
    ("name", "kind", "options"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.0, "nesterov": False}),
        ("momentum", torch.optim.SGD, {"momentum": 0.8, "nesterov": False}),
        ("nesterov", torch.optim.SGD, {"momentum": 0.8, "nesterov": True}),
        ("adagrad", torch.optim.Adagrad, {"eps": 1e-6}),
        ("rmsprop", torch.optim.RMSprop, {"momentum": 0.0, "eps": 1e-6}),
        ("adam", torch.optim.Adam, {"betas": (0.8, 0.9), "eps": 1e-6}),
        ("adamw", torch.optim.AdamW, {"betas": (0.8, 0.9), "eps": 1e-6}),
    ],
)
def test_optimizers_take_the_spec(name: str, kind: type, options: dict[str, Any]) -> None:
    model = _model()
    weights = [layer.weight for layer in model.layers()]
    spec = OptimizerSpec(
        name=name, lr=0.05, momentum=0.8, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1
    )
    optimizer = build_optimizer(model, weights, spec)
    assert type(optimizer) is kind
    decayed, plain = optimizer.param_groups
    assert decayed["lr"] == plain["lr"] == 0.05
    assert {k: decayed[k] for k in options} == options
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(w) for w in weights}
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_without_weight_decay_there_is_one_group() -> None:
    model = _model()
    optimizer = build_optimizer(
        model, [layer.weight for layer in model.layers()], OptimizerSpec(weight_decay=0.0)
    )
    assert len(optimizer.param_groups) == 1


def _factors(total: int = 40, **schedule: Any) -> list[float]:
    factor = lr_factor(ScheduleSpec(**schedule), total)
    return [factor(t) for t in range(total)]


def test_schedules() -> None:
    assert _factors(name="constant") == [1.0] * 40
    step = _factors(name="step", step_size=10, gamma=0.5)
    assert step[0] == step[9] == 1.0 and step[10] == 0.5 and step[39] == 0.125
    exponential = _factors(name="exponential", step_size=10, gamma=0.5)
    assert exponential[10] == pytest.approx(0.5) and exponential[5] == pytest.approx(0.5**0.5)
    cosine = _factors(name="cosine")
    assert cosine[0] == 1.0 and cosine[20] == pytest.approx(0.5) and cosine[39] < 0.01
    assert all(a >= b for a, b in itertools.pairwise(cosine))


@pytest.mark.parametrize("name", get_args(ScheduleName))
@pytest.mark.parametrize("warmup_steps", [0, 3])
def test_keeps_lr_exactly_when_every_factor_is_one(name: str, warmup_steps: int) -> None:
    """The loop skips setting the lr of a schedule that keeps it: the two must agree."""
    schedule = {"name": name, "warmup_steps": warmup_steps, "step_size": 10}
    expected = all(f == 1.0 for f in _factors(**schedule))
    assert keeps_lr(ScheduleSpec(**schedule)) == expected


def test_warmup_rises_linearly_then_the_decay_starts() -> None:
    factors = _factors(name="cosine", warmup_steps=4)
    assert factors[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert factors[-1] < 0.01
    assert _factors(name="step", warmup_steps=5, step_size=10)[14] == 1.0


def test_penalties_count_weights_only() -> None:
    weights = [torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])]
    assert penalty(weights, RegularizationSpec()) is None
    l1 = penalty(weights, RegularizationSpec(l1=0.1))
    l2 = penalty(weights, RegularizationSpec(l2=0.01))
    both = penalty(weights, RegularizationSpec(l1=0.1, l2=0.01))
    assert l1 is not None and l2 is not None and both is not None
    assert l1.item() == pytest.approx(0.6)
    assert l2.item() == pytest.approx(0.14)
    assert both.item() == pytest.approx(0.74)
