"""What a spec will build, computed without torch: data shapes, layer shapes, parameter count,
activation memory and the number of steps.

The service uses this to refuse specs over its caps before anything is built; the training core
builds exactly the layers listed here (a test compares the two), so the estimate is the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from gradlab_contract.architectures import plan_resnet, plan_sequential
from gradlab_contract.spec import AugmentSpec, DataSpec, JobSpec, ModelSpec

DataKind = Literal["vector", "sequence", "image", "categorical"]

DIGITS_ROWS = 1797
CIFAR10_TRAIN_ROWS = 50_000
CIFAR10_TEST_ROWS = 10_000
MNIST1D_TRAIN_SPLIT = 0.8  # the mnist1d generator's own fixed train/test split


@dataclass(frozen=True)
class DataShape:
    """The shape of one example and the split sizes of a data set."""

    kind: DataKind
    input_shape: tuple[int, ...]  # per example: (features,), (channels, length) or (channels, h, w)
    num_classes: int
    n_train: int
    n_val: int
    cardinalities: tuple[int, ...] = ()  # categorical fields (ctr)


@dataclass(frozen=True)
class UploadInfo:
    """What the service knows of an uploaded .npz without opening it again."""

    x_shape: tuple[int, ...]  # full array shape, rows first
    num_classes: int
    test_rows: int | None = None  # rows of x_test when the upload has a fixed test split


@dataclass(frozen=True)
class LayerPlan:
    name: str
    type: str  # linear | conv1d | conv2d | embedding
    weight_shape: tuple[int, ...]
    parameters: int  # weights + bias (+ batch norm scale and shift)
    output_elements: int  # per example, after the activation (and pooling)
    hidden: bool  # has an activation whose output is probed
    depth: int = 0  # order along the main path (a projection shortcut shares its block's)
    field: str = ""  # the spec field that sizes it, for a refusal over the caps


@dataclass(frozen=True)
class Estimate:
    shape: DataShape
    layers: list[LayerPlan] = field(default_factory=list)
    parameters: int = 0
    activation_bytes: int = 0  # forward activations kept for backward, for one batch, fp32
    total_steps: int = 0


def split(rows: int, val_fraction: float) -> tuple[int, int]:
    """Train and validation sizes of a set without a fixed test split (the core uses this too)."""
    n_val = max(1, round(rows * val_fraction))
    return rows - n_val, n_val


def data_shape(data: DataSpec, upload: UploadInfo | None = None) -> DataShape:
    options = data.parsed_options()
    family = data.family
    if family == "mnist1d":
        n_train = int(options.samples * MNIST1D_TRAIN_SPLIT)
        return DataShape("sequence", (1, 40), 10, n_train, options.samples - n_train)
    if family == "digits":
        return DataShape("image", (1, 8, 8), 10, *split(DIGITS_ROWS, data.val_fraction))
    if family == "spiral":
        return DataShape(
            "vector",
            (2,),
            options.classes,
            *split(options.classes * options.points, data.val_fraction),
        )
    if family == "ctr":
        n_train, n_val = split(options.rows, data.val_fraction)
        return DataShape(
            "categorical",
            (options.fields,),
            2,
            n_train,
            n_val,
            (options.cardinality,) * options.fields,
        )
    if family == "cifar10":
        n_train = min(CIFAR10_TRAIN_ROWS, options.limit or CIFAR10_TRAIN_ROWS)
        return DataShape("image", (3, 32, 32), 10, n_train, CIFAR10_TEST_ROWS)
    if upload is None:
        raise ValueError("an uploaded data set needs its UploadInfo")
    return upload_shape(upload, data.val_fraction)


def upload_shape(upload: UploadInfo, val_fraction: float) -> DataShape:
    rows, example = upload.x_shape[0], tuple(upload.x_shape[1:])
    if upload.test_rows is not None:
        n_train, n_val = rows, upload.test_rows
    else:
        n_train, n_val = split(rows, val_fraction)
    if len(example) == 1:
        return DataShape("vector", example, upload.num_classes, n_train, n_val)
    if len(example) == 2:
        return DataShape("image", (1, *example), upload.num_classes, n_train, n_val)
    return DataShape("image", example, upload.num_classes, n_train, n_val)


def conv_input_shape(shape: DataShape) -> tuple[int, ...]:
    """A cnn is 1-D over (channels, length) and 2-D over (channels, h, w); a plain vector of
    features is read as a one-channel sequence."""
    return (1, *shape.input_shape) if shape.kind == "vector" else shape.input_shape


def plan_layers(model: ModelSpec, shape: DataShape) -> list[LayerPlan]:
    """The parameterized layers in depth order, named as the training core names them."""
    if model.kind == "resnet":
        return plan_resnet(model, shape)
    if model.kind == "sequential":
        return plan_sequential(model, shape)
    layers: list[LayerPlan] = []
    bn = 2 if model.batch_norm else 0  # scale and shift per unit
    narrowing = 2 if model.activation == "maxout" else 1  # maxout takes the max of unit pairs
    slopes = 1 if model.activation == "prelu" else 0  # PReLU learns one slope per unit
    if model.kind == "embedding_mlp":
        width = 0
        weight: tuple[int, ...]
        for index, cardinality in enumerate(shape.cardinalities):
            weight = (cardinality, model.embedding_dim)
            layers.append(
                LayerPlan(
                    f"embed{index + 1}",
                    "embedding",
                    weight,
                    math.prod(weight),
                    model.embedding_dim,
                    False,
                )
            )
            width += model.embedding_dim
    elif model.kind == "cnn":
        channels, *spatial = conv_input_shape(shape)
        conv_type = "conv1d" if len(spatial) == 1 else "conv2d"
        for index, conv in enumerate(model.conv):
            spatial = [
                (size + 2 * conv.padding - conv.kernel) // conv.stride + 1 for size in spatial
            ]
            if conv.pool:
                spatial = [size // 2 for size in spatial]
            if min(spatial) < 1:
                raise ValueError(f"model.conv.{index}: the input shrinks to nothing at this layer")
            weight = (conv.channels, channels, *([conv.kernel] * len(spatial)))
            out_channels = conv.channels // narrowing
            parameters = math.prod(weight) + conv.channels + (bn + slopes) * conv.channels
            layers.append(
                LayerPlan(
                    f"conv{index + 1}",
                    conv_type,
                    weight,
                    parameters,
                    out_channels * math.prod(spatial),
                    True,
                )
            )
            channels = out_channels
        width = channels * math.prod(spatial)
    else:
        width = math.prod(shape.input_shape)
    for index, units in enumerate(model.hidden):
        weight = (units, width)
        parameters = units * width + units + (bn + slopes) * units
        layers.append(
            LayerPlan(f"fc{index + 1}", "linear", weight, parameters, units // narrowing, True)
        )
        width = units // narrowing
    weight = (shape.num_classes, width)
    layers.append(
        LayerPlan(
            "out", "linear", weight, math.prod(weight) + shape.num_classes, shape.num_classes, False
        )
    )
    return [replace(layer, depth=depth) for depth, layer in enumerate(layers)]


POSITIONAL_AUGMENTS = ("shift", "crop_padding", "hflip", "cutout")


def augment_problem(augment: AugmentSpec, kind: DataKind) -> tuple[str, str] | None:
    """(field, reason) when the data's kind cannot take an augmentation the spec asks for.

    The spec alone cannot always tell (an upload's shape is known only to the service), so this
    runs with the estimate, and the training core refuses the same cases.
    """
    if kind == "categorical" and augment.enabled:
        return "data.augment", "categorical ids cannot be augmented"
    if kind == "vector":
        for name in POSITIONAL_AUGMENTS:
            if getattr(augment, name):
                return (
                    f"data.augment.{name}",
                    "vector data has no positions: it takes only noise_std",
                )
    if kind == "sequence" and augment.hflip:
        return (
            "data.augment.hflip",
            "hflip mirrors images; reversing a sequence can change its class",
        )
    return None


def total_steps(spec: JobSpec, n_train: int) -> int:
    if spec.training.steps is not None:
        return spec.training.steps
    assert spec.training.epochs is not None
    return spec.training.epochs * math.ceil(n_train / spec.training.batch_size)


def estimate(spec: JobSpec, upload: UploadInfo | None = None) -> Estimate:
    """Everything a scheduler must know before building the spec; raises ValueError naming the
    field when the layers cannot be built (a conv stack that shrinks the input to nothing)."""
    shape = data_shape(spec.data, upload)
    problem = augment_problem(spec.data.augment, shape.kind)
    if problem is not None:
        raise ValueError(f"{problem[0]}: {problem[1]}")
    layers = plan_layers(spec.model, shape)
    per_example = math.prod(shape.input_shape) + sum(layer.output_elements for layer in layers)
    # Pre-activations, activations (and batch norm outputs) are all kept for backward: about 3x.
    activation_bytes = 4 * 3 * per_example * spec.training.batch_size
    return Estimate(
        shape=shape,
        layers=layers,
        parameters=sum(layer.parameters for layer in layers),
        activation_bytes=activation_bytes,
        total_steps=total_steps(spec, shape.n_train),
    )
