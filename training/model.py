"""Build the network a spec describes, exactly as ``gradlab_contract.shapes.plan_layers`` plans it.

Each hidden block is ``layer -> [batch norm] -> activation -> [pool] -> [dropout]``; the probes
read the activation's output, so every block owns its own activation module to hook.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from gradlab_contract.shapes import DataShape, conv_input_shape, plan_layers
from gradlab_contract.spec import ConvLayerSpec, ModelSpec
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # slope 0.01; initialization reads it from the module
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "linear": nn.Identity,
}


_POOLS: dict[tuple[int, str], type[nn.Module]] = {
    (1, "max"): nn.MaxPool1d,
    (1, "avg"): nn.AvgPool1d,
    (2, "max"): nn.MaxPool2d,
    (2, "avg"): nn.AvgPool2d,
}


class Maxout(nn.Module):
    """Max over adjacent pairs of units (dim 1): units (0, 1), (2, 3), ... halve the width."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (x.shape[1] // 2, 2)).amax(dim=2)


class SeededDropout(nn.Module):
    """Dropout that draws its mask from an explicit generator.

    nn.Dropout uses the global RNG, which would make runs depend on whatever else the process
    draws and would not be restorable from a checkpoint without touching global state.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)


@dataclass(frozen=True)
class ProbedLayer:
    """A parameterized layer as the probes and the initializer see it."""

    name: str
    type: str  # linear | conv1d | conv2d | embedding
    module: nn.Module  # the Linear / Conv / Embedding that owns `weight`
    activation: nn.Module | None  # whose output is the layer's activation (hidden layers only)
    depth: int
    parameters: int  # weight and bias, plus batch norm's scale and shift
    # The activation module's own name (a sequential model's may differ from model.activation);
    # "" means model.activation.
    nonlinearity: str = ""

    @property
    def weight(self) -> torch.Tensor:
        weight = self.module.weight
        assert isinstance(weight, torch.Tensor)
        return weight


class ProbedNetwork(nn.Module):
    """What the loop, the probes and the initializer need of any network the spec builds."""

    def layers(self) -> list[ProbedLayer]:
        """Parameterized layers in depth order, named as plan_layers names them."""
        raise NotImplementedError

    def set_dropout_generator(self, generator: torch.Generator) -> None:
        for module in self.modules():
            if isinstance(module, SeededDropout):
                module.generator = generator

    def after_initialization(self) -> None:
        """What an architecture sets after the weights are initialized (zero_init_residual)."""


class Network(ProbedNetwork):
    def __init__(
        self,
        *,
        conv_input: tuple[int, ...] | None,
        embeds: list[nn.Embedding],
        convs: list[nn.Sequential],
        fcs: list[nn.Sequential],
        out: nn.Linear,
    ) -> None:
        super().__init__()
        self.conv_input = conv_input
        self.embeds = nn.ModuleList(embeds)
        self.convs = nn.ModuleList(convs)
        self.fcs = nn.ModuleList(fcs)
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.embeds):
            x = torch.cat([embed(x[:, i]) for i, embed in enumerate(self.embeds)], dim=1)
        elif self.conv_input is not None:
            x = x.reshape(len(x), *self.conv_input)  # a 'vector' becomes a 1-channel sequence
        for block in self.convs:
            x = block(x)
        x = x.flatten(1)
        for block in self.fcs:
            x = block(x)
        return self.out(x)

    def layers(self) -> list[ProbedLayer]:
        """Parameterized layers in depth order, named as plan_layers names them."""
        found: list[tuple[str, str, nn.Module, nn.Module | None, nn.Module]] = []
        for i, embed in enumerate(self.embeds):
            found.append((f"embed{i + 1}", "embedding", embed, None, embed))
        for i, block in enumerate(self.convs):
            layer = _child(block, "layer")
            kind = "conv1d" if isinstance(layer, nn.Conv1d) else "conv2d"
            found.append((f"conv{i + 1}", kind, layer, _child(block, "act"), block))
        for i, block in enumerate(self.fcs):
            found.append(
                (f"fc{i + 1}", "linear", _child(block, "layer"), _child(block, "act"), block)
            )
        found.append(("out", "linear", self.out, None, self.out))
        return [
            ProbedLayer(name, kind, module, act, depth, sum(p.numel() for p in owner.parameters()))
            for depth, (name, kind, module, act, owner) in enumerate(found)
        ]


def _child(block: nn.Module, name: str) -> nn.Module:
    return block.get_submodule(name)


def make_activation(name: str, units: int = 1) -> nn.Module:
    """The activation module; PReLU learns one slope per unit (channel), as He et al. (2015)."""
    if name == "prelu":
        return nn.PReLU(units)
    return Maxout() if name == "maxout" else _ACTIVATIONS[name]()


def _block(
    model: ModelSpec, layer: nn.Module, units: int, dims: int, pool: str | None = None
) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict(layer=layer)
    if model.batch_norm:
        parts["norm"] = (nn.BatchNorm1d if dims <= 1 else nn.BatchNorm2d)(units)
    parts["act"] = make_activation(model.activation, units)
    if pool is not None:
        parts["pool"] = _POOLS[(dims, pool)](2)
    if model.dropout > 0:
        parts["drop"] = SeededDropout(model.dropout)
    return nn.Sequential(parts)


def _conv_blocks(model: ModelSpec, in_channels: int, dims: int) -> tuple[list[nn.Sequential], int]:
    conv_type = nn.Conv1d if dims == 1 else nn.Conv2d
    blocks, channels = [], in_channels
    narrowing = 2 if model.activation == "maxout" else 1
    for conv in model.conv:
        layer = _conv(conv_type, channels, conv)
        blocks.append(_block(model, layer, conv.channels, dims, conv.pool))
        channels = conv.channels // narrowing
    return blocks, channels


def _conv(
    conv_type: type[nn.Conv1d] | type[nn.Conv2d], channels: int, conv: ConvLayerSpec
) -> nn.Module:
    return conv_type(channels, conv.channels, conv.kernel, stride=conv.stride, padding=conv.padding)


def build_model(model: ModelSpec, shape: DataShape) -> Network:
    """The network of ``model`` for data of ``shape``; raises ValueError as plan_layers does when
    a conv stack shrinks the input to nothing. Weights keep PyTorch's default initialization."""
    plan = plan_layers(model, shape)  # validates the geometry and gives the flattened width
    embeds = []
    if model.kind == "embedding_mlp":
        embeds = [nn.Embedding(card, model.embedding_dim) for card in shape.cardinalities]
    convs: list[nn.Sequential] = []
    conv_input = None
    if model.kind == "cnn":
        conv_input = conv_input_shape(shape)
        convs, _ = _conv_blocks(model, conv_input[0], len(conv_input) - 1)
    first_fc = len(embeds) + len(convs)
    width = plan[first_fc].weight_shape[1]
    narrowing = 2 if model.activation == "maxout" else 1
    fcs = []
    for units in model.hidden:
        fcs.append(_block(model, nn.Linear(width, units), units, 1))
        width = units // narrowing
    out = nn.Linear(width, shape.num_classes)
    return Network(conv_input=conv_input, embeds=embeds, convs=convs, fcs=fcs, out=out)
