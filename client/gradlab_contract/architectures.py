"""The torch-free plan of the resnet and sequential kinds: every layer's shape, name and size.

The training core builds these networks from the same walk (training/models), so what the service
checks against its caps is what a worker builds. Shapes are per example: (features,) when flat,
(channels, length) for 1-D and (channels, h, w) for 2-D.

Names are paths: a resnet's ``stem``, ``stage2.block1.conv1`` (``fc1`` when flat), the block's
``shortcut`` when it projects, and ``out``; a sequential model's ``<type><index>`` by the index in
``model.layers`` (``conv0``, ``res3.linear1`` inside the residual at index 3), and ``out``.

Depth is the order of the weighted layers along the main path. A projection shortcut reads the
block's input as the block's first layer does, so it shares that layer's depth: it adds no depth
of its own (an identity shortcut has no weights and no row at all).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gradlab_contract.spec import (
    ActivationLayer,
    ConvLayer,
    FlattenLayer,
    GroupNormLayer,
    LinearLayer,
    ModelSpec,
    PoolLayer,
    ResidualLayer,
    ResNetSpec,
)

if TYPE_CHECKING:
    from gradlab_contract.shapes import DataShape, LayerPlan

Shape = tuple[int, ...]
NORMALIZERS = ("batch_norm", "layer_norm", "group_norm")


# -- resnet ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One basic block: two weighted layers on the main path, and a shortcut."""

    name: str  # stage2.block1
    stage: int  # index into resnet.stages
    in_channels: int
    channels: int
    stride: int
    projection: bool  # a weighted shortcut (1x1 conv or linear); identity otherwise
    spatial: Shape  # after the block


def resnet_dims(resnet: ResNetSpec, shape: DataShape) -> int:
    """0 for a residual MLP, else the number of spatial dims the convolutions run over."""
    if resnet.flat or shape.kind == "vector":
        return 0
    return len(shape.input_shape) - 1


def resnet_blocks(resnet: ResNetSpec, shape: DataShape) -> list[Block]:
    dims = resnet_dims(resnet, shape)
    spatial: Shape = tuple(shape.input_shape[1:]) if dims else ()
    channels = resnet.stem_channels
    blocks = []
    for s, stage in enumerate(resnet.stages):
        for b in range(stage.blocks):
            stride = stage.stride if b == 0 and dims else 1
            spatial = tuple(-(-size // stride) for size in spatial)  # odd kernel, same padding
            projection = resnet.shortcut == "projection" or (
                resnet.shortcut == "identity" and (stride != 1 or channels != stage.channels)
            )
            blocks.append(Block(f"stage{s + 1}.block{b + 1}", s, channels, stage.channels,
                                stride, projection, spatial))
            channels = stage.channels
    return blocks


def plan_resnet(model: ModelSpec, shape: DataShape) -> list[LayerPlan]:
    from gradlab_contract.shapes import LayerPlan

    resnet = model.resnet_spec
    dims = resnet_dims(resnet, shape)
    normed = resnet.norm != "none"
    layer_type = ("linear", "conv1d", "conv2d")[dims]
    kernel = (resnet.kernel,) * dims
    in_features = math.prod(shape.input_shape) if dims == 0 else shape.input_shape[0]
    spatial: Shape = tuple(shape.input_shape[1:]) if dims else ()
    prelu = model.activation == "prelu"

    def weighted(name: str, c_in: int, c_out: int, k: Shape, where: Shape, depth: int,
                 field: str, hidden: bool = True) -> LayerPlan:
        weight = (c_out, c_in, *k)
        extras = (2 * c_out if normed else c_out) + (c_out if prelu and hidden else 0)
        return LayerPlan(name, layer_type, weight, math.prod(weight) + extras,
                         c_out * math.prod(where), hidden, depth, field)

    layers = [weighted("stem", in_features, resnet.stem_channels, kernel, spatial, 0,
                       "model.resnet.stem_channels")]
    depth = 1
    for block in resnet_blocks(resnet, shape):
        field = f"model.resnet.stages.{block.stage}.channels"
        c_in, c = block.in_channels, block.channels
        prefix, word = block.name, ("fc" if dims == 0 else "conv")
        layers.append(weighted(f"{prefix}.{word}1", c_in, c, kernel, block.spatial, depth, field))
        if block.projection:
            layers.append(weighted(f"{prefix}.shortcut", c_in, c, (1,) * dims, block.spatial,
                                   depth, field, hidden=False))
        layers.append(weighted(f"{prefix}.{word}2", c, c, kernel, block.spatial, depth + 1, field))
        depth += 2
    width = resnet.stages[-1].channels
    weight = (shape.num_classes, width)
    layers.append(LayerPlan("out", "linear", weight, math.prod(weight) + shape.num_classes,
                            shape.num_classes, False, depth, "model.resnet.stages"))
    return layers


# -- sequential --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One entry of model.layers with the shape it reads and the shape it gives."""

    layer: object  # one of the spec's sequential layer models
    index: int
    path: str  # the name prefix of what it holds: "" at the top, "res3." inside a residual
    field: str  # model.layers.3 (model.layers.3.layers.1 inside)
    in_shape: Shape
    out_shape: Shape
    body: list[Step] = dataclasses.field(default_factory=list)  # a residual's layers

    @property
    def name(self) -> str:
        kind = str(getattr(self.layer, "type", ""))
        return f"{self.path}{'res' if kind == 'residual' else kind}{self.index}"


def walk_sequential(layers: Sequence[object], in_shape: Shape, *, activation: str,
                    path: str = "", field: str = "model.layers") -> list[Step]:
    """Each layer with its input and output shape; ValueError naming the layer's field (e.g.
    ``model.layers.3: ...``) when a layer cannot take the shape it receives."""
    steps, shape = [], in_shape
    for index, layer in enumerate(layers):
        where = f"{field}.{index}"
        body: list[Step] = []
        if isinstance(layer, ResidualLayer):
            prefix = f"{path}res{index}."
            body = walk_sequential(layer.layers, shape, activation=activation, path=prefix,
                                   field=f"{where}.layers")
            if body[-1].out_shape != shape:
                raise ValueError(f"{where}: the residual body turns {_shape(shape)} into "
                                 f"{_shape(body[-1].out_shape)}; x + body(x) needs the same shape")
            out = shape
        else:
            out = _layer_output(layer, shape, where, activation)
        steps.append(Step(layer, index, path, where, shape, out, body))
        shape = out
    return steps


def _layer_output(layer: object, shape: Shape, where: str, activation: str) -> Shape:
    if isinstance(layer, LinearLayer):
        if len(shape) != 1:
            raise ValueError(f"{where}: linear needs flat features, got {_shape(shape)}: put a "
                             "flatten (or a global_avg pool) before it")
        return (layer.units,)
    if isinstance(layer, ConvLayer):
        if len(shape) not in (2, 3):
            raise ValueError(f"{where}: conv needs (channels, length) or (channels, h, w), got "
                             f"{_shape(shape)}")
        spatial = tuple((size + 2 * layer.padding - layer.kernel) // layer.stride + 1
                        for size in shape[1:])
        if min(spatial) < 1:
            raise ValueError(f"{where}: the input {_shape(shape)} shrinks to nothing here")
        return (layer.channels, *spatial)
    if isinstance(layer, GroupNormLayer) and shape[0] % layer.groups:
        raise ValueError(f"{where}: group norm splits {shape[0]} channels into {layer.groups} "
                         "groups: it must divide evenly")
    if isinstance(layer, ActivationLayer) and (layer.name or activation) == "maxout":
        if shape[0] % 2:
            raise ValueError(f"{where}: maxout pairs channels, so they must be even, got "
                             f"{shape[0]}")
        return (shape[0] // 2, *shape[1:])
    if isinstance(layer, PoolLayer):
        if len(shape) < 2:
            raise ValueError(f"{where}: pooling needs positions, got flat {_shape(shape)}")
        if layer.mode == "global_avg":
            return (shape[0],)
        spatial = tuple(size // layer.size for size in shape[1:])
        if min(spatial) < 1:
            raise ValueError(f"{where}: the input {_shape(shape)} shrinks to nothing here")
        return (shape[0], *spatial)
    if isinstance(layer, FlattenLayer):
        return (math.prod(shape),)
    return shape  # norms, dropout and the other activations keep the shape


def flat_steps(steps: list[Step]) -> list[Step]:
    """The steps in the order the data passes them, residual bodies in place (after their
    residual's own entry)."""
    found = []
    for step in steps:
        found.append(step)
        found.extend(flat_steps(step.body))
    return found


def unweighted_parameters(step: Step, activation: str) -> int:
    """The norms' scale and shift and PReLU's slopes: one per channel (feature)."""
    kind = getattr(step.layer, "type", "")
    if kind in NORMALIZERS:
        return 2 * step.in_shape[0]
    if isinstance(step.layer, ActivationLayer) and (step.layer.name or activation) == "prelu":
        return step.in_shape[0]
    return 0


def plan_sequential(model: ModelSpec, shape: DataShape) -> list[LayerPlan]:
    """The weighted layers in order, then ``out``. A layer's parameters include those of the
    norms and PReLUs after it (before the next weighted layer); any before the first weighted
    layer count with it. A layer is hidden when an activation follows it before the next one."""
    from gradlab_contract.shapes import LayerPlan

    assert model.layers is not None
    steps = walk_sequential(model.layers, shape.input_shape, activation=model.activation)
    plans: list[LayerPlan] = []
    leading, extras, hidden = 0, 0, False
    for step in flat_steps(steps):
        if isinstance(step.layer, LinearLayer | ConvLayer):
            if plans:
                plans[-1] = _with(plans[-1], extras, hidden)
            extras, hidden = 0, False
            plans.append(_weighted_plan(step, len(plans)))
            continue
        if isinstance(step.layer, ActivationLayer):
            hidden = True
        if plans:
            extras += unweighted_parameters(step, model.activation)
        else:
            leading += unweighted_parameters(step, model.activation)
    if plans:
        plans[-1] = _with(plans[-1], extras, hidden)
    features = math.prod(steps[-1].out_shape)
    weight = (shape.num_classes, features)
    plans.append(LayerPlan("out", "linear", weight, math.prod(weight) + shape.num_classes,
                           shape.num_classes, False, len(plans), "model.layers"))
    first = plans[0]
    plans[0] = _with(first, leading, first.hidden)
    return plans


def _weighted_plan(step: Step, depth: int) -> LayerPlan:
    from gradlab_contract.shapes import LayerPlan

    layer = step.layer
    c_in = step.in_shape[0]
    if isinstance(layer, LinearLayer):
        weight: Shape = (layer.units, c_in)
        kind = "linear"
    else:
        assert isinstance(layer, ConvLayer)
        dims = len(step.in_shape) - 1
        weight = (layer.channels, c_in, *([layer.kernel] * dims))
        kind = f"conv{dims}d"
    return LayerPlan(step.name, kind, weight, math.prod(weight) + weight[0],
                     math.prod(step.out_shape), False, depth, step.field)


def _with(plan: LayerPlan, extras: int, hidden: bool) -> LayerPlan:
    return dataclasses.replace(plan, parameters=plan.parameters + extras, hidden=hidden)


def _shape(shape: Shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"
