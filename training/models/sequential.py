"""model.kind 'sequential': the layers of model.layers in order, then flatten and the output layer.

Built from gradlab_contract.architectures.walk_sequential, which gives every layer the shape it
reads, so the modules are sized as the service's estimate sized them (and a shape the layers
cannot take was refused at submit, naming the layer). A weighted layer's probed activation is the
first activation after it and before the next weighted layer, wherever that activation sits (after
a residual sum, for the last layer of a residual body).
"""

from __future__ import annotations

import torch
from gradlab_contract.architectures import Step, flat_steps, plan_sequential, walk_sequential
from gradlab_contract.shapes import DataShape
from gradlab_contract.spec import (
    ActivationLayer,
    ConvLayer,
    DropoutLayer,
    GroupNormLayer,
    LinearLayer,
    ModelSpec,
    PoolLayer,
)
from torch import nn

from training.model import ProbedLayer, ProbedNetwork, SeededDropout, make_activation
from training.models.resnet import make_norm

_POOLS = {
    ("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d,
    ("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d,
}


class GlobalAveragePool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(dim=2)


class Residual(nn.Module):
    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SequentialNet(ProbedNetwork):
    def __init__(self, model: ModelSpec, shape: DataShape) -> None:
        super().__init__()
        assert model.layers is not None
        self.activation = model.activation
        steps = walk_sequential(model.layers, shape.input_shape, activation=model.activation)
        self.plan = plan_sequential(model, shape)
        self.modules_of: dict[str, nn.Module] = {}  # step name -> its module (not registered)
        self.body = self._sequence(steps)
        self.steps = flat_steps(steps)
        self.flat = len(steps[-1].out_shape) == 1
        self.out = nn.Linear(self.plan[-1].weight_shape[1], shape.num_classes)

    def _sequence(self, steps: list[Step]) -> nn.Sequential:
        modules = nn.Sequential()
        for step in steps:
            module = Residual(self._sequence(step.body)) if step.body else self._module(step)
            modules.add_module(str(step.index), module)
            self.modules_of[step.name] = module
        return modules

    def _module(self, step: Step) -> nn.Module:
        layer, shape = step.layer, step.in_shape
        dims = len(shape) - 1
        if isinstance(layer, LinearLayer):
            return nn.Linear(shape[0], layer.units)
        if isinstance(layer, ConvLayer):
            conv = nn.Conv1d if dims == 1 else nn.Conv2d
            return conv(shape[0], layer.channels, layer.kernel, stride=layer.stride,
                        padding=layer.padding)
        if isinstance(layer, ActivationLayer):
            return make_activation(layer.name or self.activation, shape[0])
        if isinstance(layer, PoolLayer):
            if layer.mode == "global_avg":
                return GlobalAveragePool()
            return _POOLS[(layer.mode, dims)](layer.size)
        if isinstance(layer, DropoutLayer):
            return SeededDropout(layer.p)
        kind = getattr(layer, "type", "")
        if kind == "flatten":
            return nn.Flatten()
        norm = {"batch_norm": "batch", "layer_norm": "layer", "group_norm": "group"}[kind]
        groups = layer.groups if isinstance(layer, GroupNormLayer) else 1
        return make_norm(norm, shape[0], dims, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        return self.out(x if self.flat else x.flatten(1))

    def layers(self) -> list[ProbedLayer]:
        weighted: list[tuple[nn.Module, nn.Module | None, str]] = []
        for step in self.steps:
            if isinstance(step.layer, LinearLayer | ConvLayer):
                weighted.append((self.modules_of[step.name], None, ""))
            elif isinstance(step.layer, ActivationLayer) and weighted and weighted[-1][1] is None:
                module, _, _ = weighted[-1]
                name = step.layer.name or self.activation
                weighted[-1] = (module, self.modules_of[step.name], name)
        weighted.append((self.out, None, ""))
        return [
            ProbedLayer(plan.name, plan.type, module, act, plan.depth, plan.parameters, name)
            for plan, (module, act, name) in zip(self.plan, weighted, strict=True)
        ]


def build_sequential(model: ModelSpec, shape: DataShape) -> SequentialNet:
    return SequentialNet(model, shape)
