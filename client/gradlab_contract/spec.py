"""The job spec: the one contract shared by the SDK, the service, the worker and the training core.

Every tuning choice of the lecture (optimizers, activations, initializations, batch norm,
augmentation, regularization) is a value here. Validation errors name the field (pydantic's
``loc``) and, for enums, the allowed values; combinations that cannot work are refused with the
field that has to change.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

Activation = Literal[
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "softplus",
    "maxout",
    "prelu",
    "linear",
]
InitScheme = Literal[
    "default",
    "zeros",
    "constant",
    "normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "orthogonal",
    "from_job",
]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
ScheduleName = Literal["constant", "step", "exponential", "cosine"]
ModelKind = Literal["mlp", "cnn", "embedding_mlp", "resnet", "sequential"]
Normalize = Literal["standardize", "minmax", "none"]
Pool = Literal["max", "avg"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["fp32", "bf16"]
Keep = Literal["best", "final", "both"]
SnapshotKind = Literal["gradient", "weight", "activation"]
EarlyStoppingMetric = Literal["val_loss", "val_accuracy", "val_auc"]
BuiltinDataset = Literal["mnist1d", "digits", "spiral", "ctr", "cifar10"]

BUILTIN_DATASETS: tuple[str, ...] = get_args(BuiltinDataset)
SNAPSHOT_KINDS: tuple[str, ...] = get_args(SnapshotKind)
ALL_SNAPSHOT_KINDS: tuple[SnapshotKind, ...] = ("gradient", "weight", "activation")
UPLOAD_PATTERN = re.compile(r"^upload:[A-Za-z0-9_-]{1,64}$")
# Activations that saturate at a bound; the others are the ReLU family (may die) or linear.
SATURATING_ACTIVATIONS = frozenset({"sigmoid", "tanh"})
RELU_FAMILY = frozenset(
    {"relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "softplus", "maxout"}
)

PositiveInt = Annotated[int, Field(ge=1)]
Width = Annotated[int, Field(ge=1, le=65536)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpiralOptions(_Strict):
    classes: int = Field(3, ge=2, le=20)
    points: int = Field(500, ge=10, le=100_000, description="points per class")
    noise: float = Field(0.2, ge=0.0, le=5.0)


class CtrOptions(_Strict):
    fields: int = Field(8, ge=1, le=64, description="categorical fields per row")
    cardinality: int = Field(1000, ge=2, le=1_000_000, description="categories per field")
    skew: float = Field(1.2, ge=0.0, le=4.0, description="Zipf exponent of category frequency")
    rows: int = Field(20_000, ge=100, le=5_000_000)


class Mnist1dOptions(_Strict):
    samples: int = Field(5000, ge=100, le=200_000, description="train + test sequences")


class DigitsOptions(_Strict):
    pass


class Cifar10Options(_Strict):
    limit: int | None = Field(None, ge=10, description="use only the first N training images")


class UploadOptions(_Strict):
    pass


DATASET_OPTIONS: dict[str, type[_Strict]] = {
    "spiral": SpiralOptions,
    "ctr": CtrOptions,
    "mnist1d": Mnist1dOptions,
    "digits": DigitsOptions,
    "cifar10": Cifar10Options,
    "upload": UploadOptions,
}


class AugmentSpec(_Strict):
    shift: int = Field(0, ge=0, le=64, description="random shift by up to N samples/pixels")
    crop_padding: int = Field(0, ge=0, le=16, description="pad by N then crop back at random")
    hflip: bool = Field(False, description="random horizontal flip (images)")
    noise_std: float = Field(0.0, ge=0.0, le=10.0, description="additive Gaussian noise")
    cutout: int = Field(0, ge=0, le=32, description="zero a random square (or span) of N")

    @property
    def enabled(self) -> bool:
        return bool(self.shift or self.crop_padding or self.hflip or self.noise_std or self.cutout)


class DataSpec(_Strict):
    dataset: str = Field(description="mnist1d | digits | spiral | ctr | cifar10 | upload:<id>")
    options: dict[str, Any] = Field(default_factory=dict)
    val_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    normalize: Normalize = "standardize"
    augment: AugmentSpec = AugmentSpec()

    @property
    def family(self) -> str:
        """The data set's name without an upload id: one of BUILTIN_DATASETS or 'upload'."""
        return "upload" if self.dataset.startswith("upload:") else self.dataset

    @property
    def upload_id(self) -> str | None:
        return self.dataset.split(":", 1)[1] if self.family == "upload" else None

    def parsed_options(self) -> Any:
        return DATASET_OPTIONS[self.family].model_validate(self.options)

    @model_validator(mode="after")
    def _check(self) -> DataSpec:
        if self.dataset not in BUILTIN_DATASETS and not UPLOAD_PATTERN.match(self.dataset):
            raise _field_error(
                ("dataset",),
                f"{self.dataset!r} is not one of {', '.join(BUILTIN_DATASETS)}, upload:<id>",
            )
        _validate_nested(DATASET_OPTIONS[self.family], self.options, ("options",))
        return self


class ConvLayerSpec(_Strict):
    channels: int = Field(ge=1, le=4096)
    kernel: int = Field(3, ge=1, le=15)
    stride: int = Field(1, ge=1, le=8)
    padding: int = Field(1, ge=0, le=8)
    pool: Pool | None = None


class InitSpec(_Strict):
    scheme: InitScheme = "default"
    std: float = Field(0.01, gt=0.0, le=100.0, description="std of 'normal'")
    value: float = Field(0.0, ge=-100.0, le=100.0, description="value of 'constant'")
    gain: float = Field(
        1.0, gt=0.0, le=100.0, description="gain of xavier/orthogonal, bound of 'uniform'"
    )
    job: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="'from_job': the succeeded job of your team whose weights to start from",
    )
    which: Literal["best", "final"] = Field(
        "best", description="'from_job': that job's best or final weights (as it kept them)"
    )

    @model_validator(mode="after")
    def _check(self) -> InitSpec:
        if self.scheme == "from_job" and self.job is None:
            raise _field_error(("job",), "scheme 'from_job' needs init.job, the job to start from")
        if self.scheme != "from_job" and self.job is not None:
            raise _field_error(("job",), f"init.job is for scheme 'from_job', not {self.scheme!r}")
        return self


# --- Residual and explicit-layer architectures (model.kind resnet and sequential) -------------

Norm = Literal["batch", "layer", "group", "none"]
Shortcut = Literal["identity", "projection", "none"]
SequentialPool = Literal["max", "avg", "global_avg"]
MAX_SEQUENTIAL_LAYERS = 256  # all layers, residual bodies included
MAX_RESIDUAL_NESTING = 4
DEFAULT_HIDDEN = [64, 64]  # model.hidden's default, which resnet and sequential leave unused


class ResNetStage(_Strict):
    channels: int = Field(ge=1, le=1024, description="channels (features, when flat) per block")
    blocks: int = Field(2, ge=1, le=64, description="basic blocks: two weighted layers each")
    stride: int = Field(
        1, ge=1, le=4, description="stride of the stage's first block (conv; a flat resnet has "
        "no positions and ignores it)"
    )


def _default_stages() -> list[ResNetStage]:
    return [ResNetStage(channels=16, blocks=2), ResNetStage(channels=32, blocks=2, stride=2)]


class ResNetSpec(_Strict):
    """He et al. (2016): a stem, stages of basic blocks (layer, norm, act, layer, norm, + the
    shortcut, act), global average pooling and the output layer."""

    stem_channels: int = Field(16, ge=1, le=1024)
    kernel: int = Field(3, ge=1, le=15, description="odd kernel of every conv (stem included)")
    stages: list[ResNetStage] = Field(default_factory=_default_stages, min_length=1, max_length=8)
    norm: Norm = "batch"
    groups: int = Field(8, ge=1, le=1024, description="groups of 'group' norm")
    shortcut: Shortcut = Field(
        "identity",
        description="identity (a 1x1 projection where the shape changes), projection in every "
        "block, or none: the same blocks without shortcuts (the plain network)",
    )
    zero_init_residual: bool = Field(
        False, description="start each block as the identity: its last norm's scale (or, without "
        "norm, its last weight) at 0"
    )
    flat: bool = Field(
        False, description="residual MLP over the flattened input (vector data is always flat)"
    )

    @model_validator(mode="after")
    def _check(self) -> ResNetSpec:
        if self.kernel % 2 == 0:
            raise _field_error(("kernel",), f"the kernel must be odd to keep the shape, got "
                               f"{self.kernel}")
        if self.zero_init_residual and self.shortcut == "none":
            raise _field_error(("zero_init_residual",), "a block without a shortcut that starts "
                               "at 0 passes nothing on: it needs shortcut identity or projection")
        if self.norm == "group":
            widths = [("stem_channels", self.stem_channels)] + [
                (f"stages.{i}.channels", stage.channels) for i, stage in enumerate(self.stages)
            ]
            for field, width in widths:
                if width % self.groups:
                    raise _field_error(tuple(field.split(".")), f"group norm splits {width} into "
                                       f"{self.groups} groups: it must divide evenly")
        return self


class LinearLayer(_Strict):
    type: Literal["linear"]
    units: Width


class ConvLayer(_Strict):
    type: Literal["conv"]
    channels: int = Field(ge=1, le=4096)
    kernel: int = Field(3, ge=1, le=15)
    stride: int = Field(1, ge=1, le=8)
    padding: int = Field(1, ge=0, le=8)


class BatchNormLayer(_Strict):
    type: Literal["batch_norm"]


class LayerNormLayer(_Strict):
    type: Literal["layer_norm"]


class GroupNormLayer(_Strict):
    type: Literal["group_norm"]
    groups: int = Field(8, ge=1, le=1024)


class ActivationLayer(_Strict):
    type: Literal["activation"]
    name: Activation | None = Field(None, description="model.activation when left out")


class PoolLayer(_Strict):
    type: Literal["pool"]
    mode: SequentialPool = "max"
    size: int = Field(2, ge=2, le=8, description="window and stride of max/avg")


class DropoutLayer(_Strict):
    type: Literal["dropout"]
    p: float = Field(0.5, ge=0.0, lt=1.0)


class FlattenLayer(_Strict):
    type: Literal["flatten"]


class ResidualLayer(_Strict):
    """x + body(x): the body must keep the shape of its input (the planner checks it)."""

    type: Literal["residual"]
    layers: list[SequentialLayer] = Field(min_length=1, max_length=64)


SequentialLayer = Annotated[
    LinearLayer | ConvLayer | BatchNormLayer | LayerNormLayer | GroupNormLayer | ActivationLayer
    | PoolLayer | DropoutLayer | FlattenLayer | ResidualLayer,
    Field(discriminator="type"),
]
ResidualLayer.model_rebuild()


def _count_layers(layers: list[Any], nesting: int, loc: tuple[str | int, ...]) -> int:
    """All layers of a sequential list, residual bodies included; refuses deep nesting."""
    if nesting > MAX_RESIDUAL_NESTING:
        raise _field_error(loc, f"residual blocks nest at most {MAX_RESIDUAL_NESTING} deep")
    total = 0
    for index, layer in enumerate(layers):
        total += 1
        if isinstance(layer, ResidualLayer):
            total += _count_layers(layer.layers, nesting + 1, (*loc, index, "layers"))
    return total


def _activation_names(layers: list[Any], default: str) -> list[str]:
    names = []
    for layer in layers:
        if isinstance(layer, ActivationLayer):
            names.append(layer.name or default)
        elif isinstance(layer, ResidualLayer):
            names.extend(_activation_names(layer.layers, default))
    return names


def _check_architecture(model: ModelSpec) -> None:
    """The resnet and sequential kinds' own fields, and the shared ones they do not take."""
    kind = model.kind
    if model.resnet is not None and kind != "resnet":
        raise _field_error(("resnet",), f"model.resnet needs kind 'resnet', not {kind!r}")
    if model.layers is not None and kind != "sequential":
        raise _field_error(("layers",), f"model.layers needs kind 'sequential', not {kind!r}")
    if kind not in ("resnet", "sequential"):
        return
    # hidden keeps its default in a stored spec (it round-trips); any other width is a mistake.
    if model.hidden and model.hidden != DEFAULT_HIDDEN:
        raise _field_error(("hidden",), f"kind {kind!r} takes no hidden widths: use "
                           + ("model.resnet.stages" if kind == "resnet" else "model.layers"))
    if model.batch_norm:
        raise _field_error(("batch_norm",), f"kind {kind!r} sets its normalization in "
                           + ("model.resnet.norm" if kind == "resnet" else "model.layers"))
    if kind == "resnet" and model.activation == "maxout":
        raise _field_error(("activation",), "maxout halves the channels, which breaks the "
                           "residual sum: choose another activation")
    if kind == "sequential":
        if not model.layers:
            raise _field_error(("layers",), "a sequential model needs at least one layer")
        total = _count_layers(model.layers, 0, ("layers",))
        if total > MAX_SEQUENTIAL_LAYERS:
            raise _field_error(("layers",), f"{total} layers; at most {MAX_SEQUENTIAL_LAYERS}")


class ModelSpec(_Strict):
    kind: ModelKind = "mlp"
    hidden: list[Width] = Field(default_factory=lambda: list(DEFAULT_HIDDEN), max_length=256)
    conv: list[ConvLayerSpec] = Field(default_factory=list, max_length=64)
    activation: Activation = "relu"
    init: InitSpec = InitSpec()
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    embedding_dim: int = Field(8, ge=1, le=1024)
    resnet: ResNetSpec | None = Field(None, description="kind 'resnet' (defaults when left out)")
    layers: list[SequentialLayer] | None = Field(
        None, max_length=MAX_SEQUENTIAL_LAYERS, description="kind 'sequential': the layers in order"
    )

    @property
    def resnet_spec(self) -> ResNetSpec:
        return self.resnet if self.resnet is not None else ResNetSpec()

    def activations(self) -> frozenset[str]:
        """The activation functions the network uses (a sequential model's may be several)."""
        if self.kind != "sequential" or self.layers is None:
            return frozenset({self.activation})
        return frozenset(_activation_names(self.layers, self.activation))

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        _check_architecture(self)
        if self.kind == "cnn" and not self.conv:
            raise _field_error(("conv",), "a cnn needs at least one conv layer")
        if self.kind != "cnn" and self.conv:
            raise _field_error(("conv",), f"conv layers need kind 'cnn', not {self.kind!r}")
        if self.activation == "maxout":
            for index, width in enumerate(self.hidden):
                if width % 2:
                    raise _field_error(
                        ("hidden", index),
                        f"maxout pairs units, so widths must be even, got {width}",
                    )
            for index, conv in enumerate(self.conv):
                if conv.channels % 2:
                    raise _field_error(
                        ("conv", index, "channels"),
                        f"maxout pairs channels, so they must be even, got {conv.channels}",
                    )
        return self


class OptimizerSpec(_Strict):
    name: OptimizerName = "adam"
    lr: float = Field(1e-3, gt=0.0, le=1e4)
    momentum: float = Field(
        0.9,
        ge=0.0,
        lt=1.0,
        description="momentum and nesterov only: rmsprop runs without momentum, as the "
        "lecture defines it",
    )
    betas: tuple[
        Annotated[float, Field(ge=0.0, lt=1.0)], Annotated[float, Field(ge=0.0, lt=1.0)]
    ] = (
        0.9,
        0.999,
    )
    eps: float = Field(1e-8, gt=0.0, le=1.0)
    weight_decay: float = Field(0.0, ge=0.0, le=10.0)


class ScheduleSpec(_Strict):
    name: ScheduleName = "constant"
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from lr/warmup_steps")
    step_size: int = Field(100, ge=1, description="steps between decays of 'step'")
    gamma: float = Field(
        0.5, gt=0.0, le=1.0, description="decay factor of 'step' and 'exponential'"
    )


class RegularizationSpec(_Strict):
    l1: float = Field(0.0, ge=0.0, le=10.0, description="L1 penalty added to the loss")
    l2: float = Field(0.0, ge=0.0, le=10.0, description="L2 penalty added to the loss")


def _check_stop_on(codes: list[str]) -> None:
    if not codes:  # the default; also what the module's own defaults build while it loads
        return
    from gradlab_contract.models import FINDING_CODES  # models imports this module

    for index, code in enumerate(codes):
        if code not in FINDING_CODES:
            raise _field_error(("stop_on", index),
                               f"{code!r} is not one of {', '.join(FINDING_CODES)}")


class EarlyStoppingSpec(_Strict):
    """Stop when a validation metric has not improved for `patience` evaluations; the job then
    succeeds with `stopped_early` and the step of the best value (training/stopping.py)."""

    metric: EarlyStoppingMetric = "val_loss"
    mode: Literal["min", "max"] | None = Field(
        None, description="min: lower is better; default: min for val_loss, max otherwise"
    )
    patience: int = Field(5, ge=1, le=100_000, description="evaluations without improvement")
    min_delta: float = Field(0.0, ge=0.0, le=1e6, description="smallest change that counts")

    @property
    def direction(self) -> Literal["min", "max"]:
        return self.mode or ("min" if self.metric == "val_loss" else "max")


class TrainingSpec(_Strict):
    steps: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    batch_size: int = Field(64, ge=1)
    eval_every: int = Field(50, ge=1)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    grad_clip: float | None = Field(None, gt=0.0)
    device: Device = "auto"
    precision: Precision = "fp32"
    keep: Keep = Field(
        "best", description="the weights a succeeded job keeps (safetensors, TorchScript and "
        "ONNX): those of the evaluation with the best validation accuracy, the final ones, or both"
    )
    early_stopping: EarlyStoppingSpec | None = None
    stop_on: list[str] = Field(
        default_factory=list, max_length=32,
        description="diagnosis codes that stop the job when found live at error severity",
    )

    @model_validator(mode="after")
    def _check(self) -> TrainingSpec:
        _check_stop_on(self.stop_on)
        if (self.steps is None) == (self.epochs is None):
            raise _field_error(("steps",), "set exactly one of training.steps or training.epochs")
        if self.precision == "bf16" and self.device != "cuda":
            raise _field_error(
                ("precision",),
                f"bf16 runs on CUDA only: set training.device to 'cuda', not {self.device!r}",
            )
        return self


class TelemetrySpec(_Strict):
    snapshot_every: int = Field(50, ge=1)
    bins: int = Field(64, ge=2)
    kinds: list[SnapshotKind] = Field(
        default_factory=lambda: list(ALL_SNAPSHOT_KINDS), max_length=3
    )


class HealSpec(_Strict):
    max_rounds: int = Field(3, ge=1, le=5, description="remedy jobs at most")


class DiagnosisSpec(_Strict):
    heal: HealSpec | None = Field(
        None, description="when the job ends unhealthy, run diagnose -> remedy -> train rounds "
        "until a job is healthy (GET /v1/jobs/{id}/heal)")


class JobSpec(_Strict):
    name: str | None = Field(None, max_length=100)
    data: DataSpec
    model: ModelSpec = ModelSpec()
    optimizer: OptimizerSpec = OptimizerSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    regularization: RegularizationSpec = RegularizationSpec()
    training: TrainingSpec = TrainingSpec(steps=500)
    telemetry: TelemetrySpec = TelemetrySpec()
    diagnosis: DiagnosisSpec = DiagnosisSpec()

    @model_validator(mode="after")
    def _check_combinations(self) -> JobSpec:
        family, kind = self.data.family, self.model.kind
        if family == "ctr" and kind != "embedding_mlp":
            raise _field_error(
                ("model", "kind"), f"ctr is categorical: use 'embedding_mlp', not {kind!r}"
            )
        if kind == "embedding_mlp" and family != "ctr":
            raise _field_error(
                ("model", "kind"), f"embedding_mlp needs categorical data (ctr), not {family!r}"
            )
        if kind == "cnn" and family == "spiral":
            raise _field_error(("model", "kind"), "spiral points have no spatial shape: use 'mlp'")
        augment = self.data.augment
        if family == "ctr" and augment.enabled:
            raise _field_error(("data", "augment"), "ctr is categorical and cannot be augmented")
        if family == "spiral" and (
            augment.shift or augment.crop_padding or augment.hflip or augment.cutout
        ):
            raise _field_error(("data", "augment"), "spiral points take only noise_std")
        if family == "mnist1d" and augment.hflip:
            raise _field_error(
                ("data", "augment", "hflip"),
                "hflip mirrors images; reversing a sequence can change its class",
            )
        return self


class FieldError(BaseModel):
    """One validation problem: the dotted path of the offending field and what is wrong."""

    field: str
    message: str


def describe_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Turn pydantic's errors into field paths and plain messages.

    A model validator can only report its own location, so cross-field errors carry the offending
    field's path relative to that model in ``ctx['field']``; it is appended here.
    """
    described = []
    for error in exc.errors(include_url=False):
        loc = [*prefix, *error["loc"]]
        ctx = error.get("ctx") or {}
        if error["type"] == _COMBINATION and ctx.get("field"):
            loc.extend(str(ctx["field"]).split("."))
            message = str(ctx["message"])
        elif error["type"] in ("literal_error", "enum"):
            message = f"{error['input']!r} is not one of {ctx.get('expected', '')}"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        else:
            message = error["msg"]
        described.append(
            FieldError(field=".".join(str(part) for part in loc) or "body", message=message)
        )
    return described


_COMBINATION = "invalid_combination"



def _field_error(loc: tuple[str | int, ...], message: str) -> PydanticCustomError:
    return PydanticCustomError(
        _COMBINATION, "{field}: {message}", {"field": ".".join(map(str, loc)), "message": message}
    )


def _validate_nested(model: type[BaseModel], value: dict[str, Any], loc: tuple[str, ...]) -> None:
    """Validate a free-form dict against the typed model chosen by another field."""
    try:
        model.model_validate(value)
    except ValidationError as exc:
        first = describe_errors(exc, loc)[0]
        raise _field_error(tuple(first.field.split(".")), first.message) from None
