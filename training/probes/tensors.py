"""Which tensors a snapshot summarizes, and the hooks that capture activations for it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import torch
from gradlab_contract.spec import SnapshotKind
from torch.utils.hooks import RemovableHandle

from training.model import ProbedLayer

UNIT_STD_EXAMPLES = 16  # an activation's unit_std averages over this many examples of the batch
KIND_ORDER: tuple[SnapshotKind, ...] = ("gradient", "weight", "activation")


@dataclass(frozen=True)
class ProbeInfo:
    """What readout needs to know of a probed tensor, without the tensor."""

    kind: SnapshotKind
    layer: str
    depth: int
    shape: tuple[int, ...]
    unit_dim: int  # the dim that indexes the layer's units

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def units(self) -> int:
        return self.shape[self.unit_dim] if len(self.shape) > 1 else 1


@dataclass(frozen=True)
class ProbeTensor:
    kind: SnapshotKind
    layer: str
    depth: int
    tensor: torch.Tensor
    unit_dim: int  # the dim that indexes the layer's units
    nonlinearity: str = ""  # an activation's own function, when it is not model.activation

    def info(self) -> ProbeInfo:
        return ProbeInfo(self.kind, self.layer, self.depth, tuple(self.tensor.shape), self.unit_dim)


class ActivationRecorder:
    """Forward hooks on the hidden layers' activation modules, for the duration of a `with`."""

    def __init__(self, layers: list[ProbedLayer]) -> None:
        self._layers = [layer for layer in layers if layer.activation is not None]
        self._handles: list[RemovableHandle] = []
        self.outputs: dict[str, torch.Tensor] = {}

    def __enter__(self) -> ActivationRecorder:
        for layer in self._layers:
            assert layer.activation is not None
            self._handles.append(layer.activation.register_forward_hook(self._hook(layer.name)))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Callable[[torch.nn.Module, object, torch.Tensor], None]:
        def record(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
            self.outputs[name] = output.detach()

        return record


def collect(
    layers: list[ProbedLayer], kinds: list[SnapshotKind], activations: dict[str, torch.Tensor]
) -> list[ProbeTensor]:
    """The tensors to summarize, kind by kind (gradient, weight, activation), in depth order.

    A weight's units are its output dim 0, an embedding's its dim 1 (a row is a category, not a
    unit); an activation's units are its feature/channel dim 1.
    """
    found: list[ProbeTensor] = []
    for kind in KIND_ORDER:
        if kind not in kinds:
            continue
        for layer in layers:
            unit_dim = 1 if layer.type == "embedding" else 0
            if kind == "weight":
                found.append(
                    ProbeTensor(kind, layer.name, layer.depth, layer.weight.detach(), unit_dim)
                )
            elif kind == "gradient":
                grad = layer.weight.grad
                grad = torch.zeros_like(layer.weight) if grad is None else grad.detach()
                found.append(ProbeTensor(kind, layer.name, layer.depth, grad, unit_dim))
            elif layer.name in activations:
                found.append(ProbeTensor(kind, layer.name, layer.depth, activations[layer.name], 1,
                                         layer.nonlinearity))
    return found
