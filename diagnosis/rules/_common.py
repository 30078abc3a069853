"""Words and spec changes the rules share."""

from __future__ import annotations

from typing import Any

from gradlab_contract.spec import RELU_FAMILY, SATURATING_ACTIVATIONS, JobSpec

from diagnosis.findings import num


def suited_init(activation: str) -> str:
    """The initialization that keeps the signal's variance through `activation` (§3): He for the
    ReLU family, Glorot for tanh, sigmoid and linear units."""
    return "kaiming_normal" if activation in RELU_FAMILY else "xavier_normal"


def init_words(spec: JobSpec) -> str:
    init = spec.model.init
    if init.scheme == "normal":
        return f"normal(0, {num(init.std)})"
    if init.scheme == "constant":
        return f"the constant {num(init.value)}"
    if init.scheme == "uniform":
        return f"uniform(-{num(init.gain)}, {num(init.gain)})"
    if init.scheme == "default":
        return "PyTorch's default init"
    return init.scheme


def lr_words(spec: JobSpec) -> str:
    return f"{spec.optimizer.name} at lr {num(spec.optimizer.lr)}"


def scaled_lr(spec: JobSpec, factor: float) -> float:
    """The learning rate times `factor`, to two significant digits."""
    return float(f"{spec.optimizer.lr * factor:.2g}")


def saturating(spec: JobSpec) -> bool:
    return bool(spec.model.activations() & SATURATING_ACTIVATIONS)


def uses_relu_family(spec: JobSpec) -> bool:
    return bool(spec.model.activations() & RELU_FAMILY)


def plain_resnet(spec: JobSpec) -> bool:
    """A resnet built without its shortcuts: the plain network of He et al.'s comparison."""
    return spec.model.kind == "resnet" and spec.model.resnet_spec.shortcut == "none"


def normalization_remedy(spec: JobSpec) -> dict[str, Any] | None:
    """The spec change that normalizes every layer, in the field the model's kind reads; None
    where no single field does it (a sequential model's norms are layers of its list)."""
    kind = spec.model.kind
    if kind == "sequential":
        return None
    if kind == "resnet":
        if spec.model.resnet_spec.norm != "none":
            return None
        return {"model.resnet.norm": "batch"}
    return {"model.batch_norm": True}


def longer(spec: JobSpec, factor: int) -> dict[str, int]:
    """The remedy that trains `factor` times as long, in the unit the spec counts in."""
    training = spec.training
    if training.steps is not None:
        return {"training.steps": training.steps * factor}
    return {"training.epochs": (training.epochs or 1) * factor}
