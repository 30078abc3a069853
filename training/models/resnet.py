"""model.kind 'resnet' (He et al., 2016): a stem, stages of basic blocks, global average pooling.

A basic block is ``layer1 -> norm -> act1 -> layer2 -> norm -> (+ shortcut) -> act2``; the layers
are convolutions over the data's 1 or 2 spatial dims, or linear layers when the resnet is flat (a
residual MLP; vector data is always flat). ``shortcut: none`` builds the same blocks without the
sum: the plain network of the paper's comparison. Built from the walk that
gradlab_contract.architectures plans, so names, shapes and parameter counts are the plan's.
"""

from __future__ import annotations

import math

import torch
from gradlab_contract.architectures import Block, plan_resnet, resnet_blocks, resnet_dims
from gradlab_contract.shapes import DataShape
from gradlab_contract.spec import ModelSpec, ResNetSpec
from torch import nn

from training.model import ProbedLayer, ProbedNetwork, SeededDropout, make_activation

_CONVS: dict[int, type[nn.Conv1d] | type[nn.Conv2d]] = {1: nn.Conv1d, 2: nn.Conv2d}


def make_norm(kind: str, channels: int, dims: int, groups: int) -> nn.Module:
    """batch: BatchNorm over the batch (and positions); layer: over each example's channels and
    positions (GroupNorm with one group on feature maps, LayerNorm on flat features); group:
    GroupNorm. Each learns a scale and a shift per channel."""
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "layer":
        return nn.LayerNorm(channels) if dims == 0 else nn.GroupNorm(1, channels)
    if kind == "group":
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class _Layers:
    """Makes the weighted layers of one resnet: linear when flat, else conv of ``dims`` dims."""

    def __init__(self, resnet: ResNetSpec, dims: int) -> None:
        self.resnet, self.dims = resnet, dims
        self.bias = resnet.norm == "none"  # a norm's shift makes a bias redundant

    def main(self, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
        if not self.dims:
            return nn.Linear(c_in, c_out, bias=self.bias)
        k = self.resnet.kernel
        return _CONVS[self.dims](c_in, c_out, k, stride=stride, padding=k // 2, bias=self.bias)

    def projection(self, c_in: int, c_out: int, stride: int) -> nn.Module:
        if not self.dims:
            return nn.Linear(c_in, c_out, bias=self.bias)
        return _CONVS[self.dims](c_in, c_out, 1, stride=stride, bias=self.bias)

    def norm(self, channels: int) -> nn.Module:
        return make_norm(self.resnet.norm, channels, self.dims, self.resnet.groups)


class BasicBlock(nn.Module):
    def __init__(self, block: Block, make: _Layers, activation: str, residual: bool) -> None:
        super().__init__()
        c_in, c = block.in_channels, block.channels
        self.layer1, self.norm1 = make.main(c_in, c, block.stride), make.norm(c)
        self.act1 = make_activation(activation, c)
        self.layer2, self.norm2 = make.main(c, c), make.norm(c)
        self.act2 = make_activation(activation, c)
        self.residual = residual
        self.shortcut: nn.Module | None = None
        if block.projection:
            self.shortcut = nn.Sequential(make.projection(c_in, c, block.stride), make.norm(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.layer2(self.act1(self.norm1(self.layer1(x)))))
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.act2(out)

    def zero_residual(self) -> None:
        """The block starts as the identity (Goyal et al., 2017): its branch adds 0."""
        scale = getattr(self.norm2, "weight", None)
        target = scale if isinstance(scale, torch.Tensor) else self.layer2.weight
        assert isinstance(target, torch.Tensor)
        target.zero_()


class ResNet(ProbedNetwork):
    def __init__(self, model: ModelSpec, shape: DataShape) -> None:
        super().__init__()
        resnet = self.resnet = model.resnet_spec
        self.dims = resnet_dims(resnet, shape)
        self.plan = plan_resnet(model, shape)
        make = _Layers(resnet, self.dims)
        c_in = shape.input_shape[0] if self.dims else math.prod(shape.input_shape)
        self.stem = make.main(c_in, resnet.stem_channels)
        self.stem_norm = make.norm(resnet.stem_channels)
        self.stem_act = make_activation(model.activation, resnet.stem_channels)
        blocks = resnet_blocks(resnet, shape)
        self.names = [block.name for block in blocks]
        residual = resnet.shortcut != "none"
        self.blocks = nn.ModuleList(BasicBlock(b, make, model.activation, residual) for b in blocks)
        self.drop = SeededDropout(model.dropout)
        self.out = nn.Linear(resnet.stages[-1].channels, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.dims:
            x = x.flatten(1)
        x = self.stem_act(self.stem_norm(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        if self.dims:
            x = x.flatten(2).mean(dim=2)  # global average pooling
        return self.out(self.drop(x))

    def after_initialization(self) -> None:
        if self.resnet.zero_init_residual:
            for block in self.blocks:
                assert isinstance(block, BasicBlock)
                block.zero_residual()

    def layers(self) -> list[ProbedLayer]:
        found: dict[str, tuple[nn.Module, nn.Module | None]] = {
            "stem": (self.stem, self.stem_act), "out": (self.out, None)
        }
        word = "conv" if self.dims else "fc"
        for name, block in zip(self.names, self.blocks, strict=True):
            assert isinstance(block, BasicBlock)
            found[f"{name}.{word}1"] = (block.layer1, block.act1)
            found[f"{name}.{word}2"] = (block.layer2, block.act2)
            if isinstance(block.shortcut, nn.Sequential):
                found[f"{name}.shortcut"] = (block.shortcut[0], None)
        return [
            ProbedLayer(p.name, p.type, found[p.name][0], found[p.name][1], p.depth, p.parameters)
            for p in self.plan
        ]


def build_resnet(model: ModelSpec, shape: DataShape) -> ResNet:
    return ResNet(model, shape)

