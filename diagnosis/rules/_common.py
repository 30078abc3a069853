"""Words and spec changes the rules share."""

from __future__ import annotations

from gradlab_contract.spec import RELU_FAMILY, SATURATING_ACTIVATIONS, JobSpec

from diagnosis.findings import num
from diagnosis.remedy import normalization_remedy, plain_resnet, suited_init

__all__ = ["init_words", "longer", "lr_words", "normalization_remedy", "plain_resnet",
           "saturating", "scaled_lr", "suited_init", "uses_relu_family",
           "weights_by_construction"]


def weights_by_construction(spec: JobSpec) -> bool:
    """Whether the weights start at zero, or at one constant, by construction (zeros or constant
    init). Ratios over weight norms or update sizes say nothing there: an update of a weight that
    was 0 is infinitely large relative to it, and identical units move as one. The rules that
    divide by them stay silent; symmetry names the run."""
    return spec.model.init.scheme in ("zeros", "constant")


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


def longer(spec: JobSpec, factor: int) -> dict[str, int]:
    """The remedy that trains `factor` times as long, in the unit the spec counts in."""
    training = spec.training
    if training.steps is not None:
        return {"training.steps": training.steps * factor}
    return {"training.epochs": (training.epochs or 1) * factor}
