"""One-line descriptions of every enum value of the job spec, for `GET /v1/catalog` and the CLI.

A test checks that every value allowed by the spec is described here and nothing else, so the
catalog cannot drift from the contract.
"""

from __future__ import annotations

from typing import get_args

from gradlab_contract.spec import (
    Activation,
    BuiltinDataset,
    Device,
    InitScheme,
    ModelKind,
    Norm,
    Normalize,
    OptimizerName,
    Pool,
    Precision,
    ScheduleName,
    SequentialPool,
    Shortcut,
    SnapshotKind,
)

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "data.dataset": {
        "mnist1d": "MNIST-1D: 40-sample sequences, 10 classes, generated offline",
        "digits": "scikit-learn's 1,797 handwritten digits, 8x8 pixels",
        "spiral": "the classic 2-D spiral, generated from the seed",
        "ctr": "synthetic sparse click data: categorical fields of skewed frequency",
        "cifar10": "CIFAR-10 in its binary format, read from the deployment's data folder",
    },
    "data.normalize": {
        "standardize": "zero mean and unit variance per feature, from the training split",
        "minmax": "scaled to [0, 1] with the training split's min and max",
        "none": "inputs as they are",
    },
    "model.kind": {
        "mlp": "fully connected layers",
        "cnn": "convolutions (1-D for sequences, 2-D for images), then fully connected layers",
        "embedding_mlp": "one embedding per categorical field, concatenated, then an MLP (ctr)",
        "resnet": "stages of residual basic blocks (He et al., 2016): conv 1-D/2-D from the data, "
        "or a residual MLP when flat (model.resnet)",
        "sequential": "an explicit list of layers (model.layers), shape-checked at submit",
    },
    "model.resnet.norm": {
        "batch": "batch norm: mini-batch statistics, running averages at inference",
        "layer": "layer norm: each example over its channels (and positions)",
        "group": "group norm: each example over groups of channels (resnet.groups)",
        "none": "no normalization (the layers keep their biases)",
    },
    "model.resnet.shortcut": {
        "identity": "x + F(x); a 1x1 projection only where the shape changes",
        "projection": "a 1x1 projection (with norm) on every block's shortcut",
        "none": "no shortcuts: the plain network of the same depth",
    },
    "model.layers.pool.mode": {
        "max": "max over windows of pool.size (per spatial dimension)",
        "avg": "average over windows of pool.size (per spatial dimension)",
        "global_avg": "average over all positions: (channels, ...) -> (channels,)",
    },
    "model.activation": {
        "sigmoid": "0..1, derivative at most 0.25: vanishes in deep nets, not zero-centred",
        "tanh": "-1..1, zero-centred, saturates at the bounds",
        "relu": "max(0, x): no saturation for x > 0; units can die with a large learning rate",
        "leaky_relu": "ReLU with a small slope (0.01) for x < 0, so units cannot die",
        "elu": "exponential for x < 0: smooth, mean closer to zero",
        "selu": "scaled ELU, self-normalizing with suitable init",
        "gelu": "Gaussian-weighted ReLU used by transformers",
        "silu": "x * sigmoid(x) (swish)",
        "softplus": "log(1 + e^x), a smooth ReLU",
        "maxout": "the max of pairs of units (widths must be even)",
        "prelu": "leaky ReLU whose negative slope is learned per unit (He et al., 2015)",
        "linear": "identity: the network stays linear",
    },
    "model.init.scheme": {
        "default": "PyTorch's own initialization of each layer",
        "zeros": "all weights 0: symmetry is never broken and nothing learns",
        "constant": "all weights init.value: units stay identical",
        "normal": "normal with std init.std (0.01 collapses deep nets, 1.0 saturates them)",
        "uniform": "uniform in [-init.gain, init.gain]",
        "xavier_normal": "Glorot normal, variance 2/(fan_in+fan_out): for tanh-like units",
        "xavier_uniform": "Glorot uniform, variance 2/(fan_in+fan_out): for tanh-like units",
        "kaiming_normal": "He normal, variance 2/fan_in: for ReLU",
        "kaiming_uniform": "He uniform, variance 2/fan_in: for ReLU",
        "orthogonal": "orthogonal matrices scaled by init.gain (Saxe et al.)",
    },
    "model.conv.pool": {
        "max": "max pooling over 2 (per spatial dimension)",
        "avg": "average pooling over 2 (per spatial dimension)",
    },
    "optimizer.name": {
        "sgd": "plain stochastic gradient descent",
        "momentum": "SGD with momentum",
        "nesterov": "SGD with Nesterov momentum",
        "adagrad": "per-parameter steps shrinking with accumulated squared gradients: sparse data",
        "rmsprop": "per-parameter steps from a running average of squared gradients",
        "adam": "momentum plus RMSProp scaling, bias-corrected: forgiving about the learning rate",
        "adamw": "Adam with decoupled weight decay",
    },
    "schedule.name": {
        "constant": "the learning rate stays at optimizer.lr (after warm-up)",
        "step": "multiplied by gamma every step_size steps",
        "exponential": "multiplied by gamma every step",
        "cosine": "cosine decay to 0 over the run",
    },
    "training.device": {
        "auto": "CUDA when the worker has it, else the CPU",
        "cpu": "the CPU",
        "cuda": "a CUDA GPU (the job fails on a worker without one)",
    },
    "training.precision": {
        "fp32": "32-bit floats",
        "bf16": "bfloat16 autocast (CUDA only)",
    },
    "telemetry.kinds": {
        "gradient": "per-layer weight gradients, with a histogram of log10|g|",
        "weight": "per-layer weights",
        "activation": "the output of each hidden layer's activation",
    },
}

ENUMS: dict[str, object] = {
    "data.dataset": BuiltinDataset,
    "data.normalize": Normalize,
    "model.kind": ModelKind,
    "model.activation": Activation,
    "model.init.scheme": InitScheme,
    "model.conv.pool": Pool,
    "model.resnet.norm": Norm,
    "model.resnet.shortcut": Shortcut,
    "model.layers.pool.mode": SequentialPool,
    "optimizer.name": OptimizerName,
    "schedule.name": ScheduleName,
    "training.device": Device,
    "training.precision": Precision,
    "telemetry.kinds": SnapshotKind,
}


def enum_values() -> dict[str, list[tuple[str, str]]]:
    """Every enum of the spec with its allowed values and their descriptions."""
    return {
        path: [(value, DESCRIPTIONS[path][value]) for value in get_args(literal)]
        for path, literal in ENUMS.items()
    }
