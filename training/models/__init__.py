"""Every network a spec can describe, behind one builder.

mlp, cnn and embedding_mlp live in training/model.py; the residual and explicit-layer kinds
have their own modules here. All are ProbedNetworks: the loop, the probes and the initializer
see only their ``layers()``.
"""

from __future__ import annotations

from gradlab_contract.shapes import DataShape
from gradlab_contract.spec import ModelSpec

from training.model import ProbedNetwork, build_model
from training.models.resnet import build_resnet
from training.models.sequential import build_sequential


def build_network(model: ModelSpec, shape: DataShape) -> ProbedNetwork:
    """The network of ``model`` for data of ``shape``, with PyTorch's default initialization;
    ValueError naming the field when the layers cannot be built (as the service's estimate)."""
    if model.kind == "resnet":
        return build_resnet(model, shape)
    if model.kind == "sequential":
        return build_sequential(model, shape)
    return build_model(model, shape)
