"""Weight initialization (spec.model.init), applied to every linear, conv and embedding weight.

The gain of xavier/kaiming/orthogonal follows the nonlinearity that consumes the layer's output:
a hidden layer's activation, 'linear' for the output layer and the embeddings (nothing nonlinear
follows them directly). Every scheme but 'default' zeroes the biases, so 'zeros' and 'constant'
really leave all units of a layer identical (symmetry is never broken).
"""

from __future__ import annotations

from typing import Literal

import torch
from gradlab_contract.spec import RELU_FAMILY, InitSpec
from torch import nn

from training.model import ProbedNetwork

LEAKY_SLOPE = nn.LeakyReLU().negative_slope  # the slope our leaky_relu modules use
PRELU_SLOPE = 0.25  # nn.PReLU's initial slope, which He et al. (2015) derive their gain for
Nonlinearity = Literal["linear", "sigmoid", "tanh", "relu", "leaky_relu"]


def nonlinearity(activation: str) -> tuple[Nonlinearity, float]:
    """The name (and parameter) torch.nn.init.calculate_gain takes for an activation.

    The ReLU family is approximated by 'relu' (He et al.): ELU, GELU, SiLU, softplus and maxout
    pass about half of the input variance for unit-variance inputs, as ReLU does.
    """
    if activation == "leaky_relu":
        return "leaky_relu", LEAKY_SLOPE
    if activation == "prelu":  # gain sqrt(2 / (1 + a^2)) with the slope it starts from
        return "leaky_relu", PRELU_SLOPE
    if activation in RELU_FAMILY:
        return "relu", 0.0
    if activation == "tanh":
        return "tanh", 0.0
    if activation == "sigmoid":
        return "sigmoid", 0.0
    return "linear", 0.0


def initialize(model: ProbedNetwork, init: InitSpec, activation: str) -> None:
    """Apply ``init`` in place; 'default' keeps PyTorch's own initialization untouched. Then the
    architecture's own settings (a resnet's zero_init_residual) apply in either case."""
    if init.scheme != "default":
        _initialize_weights(model, init, activation)
    with torch.no_grad():
        model.after_initialization()


def _initialize_weights(model: ProbedNetwork, init: InitSpec, activation: str) -> None:
    with torch.no_grad():
        for layer in model.layers():
            follows = "linear" if layer.activation is None else layer.nonlinearity or activation
            _init_weight(layer.weight, init, *nonlinearity(follows))
            bias = getattr(layer.module, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.zero_()


def _init_weight(weight: torch.Tensor, init: InitSpec, nonlin: Nonlinearity, slope: float) -> None:
    scheme = init.scheme
    if scheme == "zeros":
        nn.init.zeros_(weight)
    elif scheme == "constant":
        nn.init.constant_(weight, init.value)
    elif scheme == "normal":
        nn.init.normal_(weight, 0.0, init.std)
    elif scheme == "uniform":
        nn.init.uniform_(weight, -init.gain, init.gain)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(weight, gain=init.gain)
    elif scheme == "xavier_uniform":
        nn.init.xavier_uniform_(weight, gain=init.gain)
    elif scheme == "kaiming_normal":
        nn.init.kaiming_normal_(weight, a=slope, nonlinearity=nonlin)
    elif scheme == "kaiming_uniform":
        nn.init.kaiming_uniform_(weight, a=slope, nonlinearity=nonlin)
    elif scheme == "orthogonal":
        nn.init.orthogonal_(weight, gain=init.gain)
    else:
        raise ValueError(f"model.init.scheme: unknown scheme {scheme!r}")
