"""Remedies: the one table from a cause (and the run it happened in) to the spec change that
addresses it, and applying findings' remedies to a spec.

The table, grounded in the design lecture (shared/design/lecture.md, § = its sections):

cause                  the run                                 change
symmetry               any                                     random init suited to activation (§3)
activation_collapse,   sigmoid with DEEP_SIGMOID+ hidden layers ReLU + Kaiming init (§2, §3)
saturation,            init not suited to the activation       the suited init (§3)
vanishing_gradients    suited init, no batch norm              batch norm (§4)
vanishing_gradients    a resnet without its shortcuts          identity shortcuts (He et al. 2016)
exploding_gradients    init not suited to the activation       the suited init + clipping (§3, §7)
                       otherwise                               lower lr (evidence) + clipping
divergence, lr_too_high any                                    lower lr (evidence) + clipping (§7)
dead_units             a large lr is in evidence               lower lr (evidence) (§2)
                       ReLU family, init other than Kaiming    Kaiming init (§3)
                       otherwise                               Leaky ReLU (§2)
lr_too_low,            sparse (categorical) data, plain SGD    an adaptive optimizer: Adam (§1)
not_converged
lr_too_low             otherwise                               higher lr (evidence) (§7)
overfitting            any                                     L2 weight decay + dropout; noise on
                                                               the inputs where the data allow;
                                                               the best step to stop at (§5, §6)
not_converged          otherwise (never an overfitting run)    train longer
no_learning            -                                       none of its own: its cause's

"Suited" is He/Kaiming for the ReLU family (variance 2/fan_in: ReLU zeroes half its input) and
Glorot/Xavier for tanh, sigmoid and linear units (§3). A symptom's remedy is its cause's
(diagnosis.engine links them). How far a learning rate moves is the rule's call: it follows from
the evidence (the first update ratio, how far below 1e-3 the updates are) and comes in as `lr`.

The caller validates a remedied spec as a JobSpec: a remedy is a proposal, and the spec's own rules
(and the deployment's limits) still decide whether it can run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gradlab_contract.spec import RELU_FAMILY, JobSpec

from diagnosis.findings import CODES, num

DEEP_SIGMOID = 5  # hidden layers: 0.25^5 ~ 1e-3, the gradient of the first layer is gone (§2)
CLIP = 1.0  # the gradient norm a clipped run keeps (one unit: the loss' own scale)
L2 = 1e-3  # the L2 penalty an overfitting run gets: a tenth of the usual 1e-2 weight decay
DROPOUT = 0.2
NOISE = 0.1  # input noise for continuous data: a tenth of a standardized feature's spread
ADAM_LR = 1e-3  # Adam's own default: "forgiving about the learning rate" (§1)
INIT_CAUSES = frozenset({"activation_collapse", "saturation", "vanishing_gradients"})


@dataclass(frozen=True)
class Remedy:
    # Dotted spec path -> new value; None where no field of the spec makes the change (a
    # sequential model's norms are layers of its list): the words alone say what to do.
    changes: dict[str, Any] | None
    words: str  # what to do, for the finding's suggestion


def suited_init(activation: str) -> str:
    """The initialization that keeps the signal's variance through `activation` (§3)."""
    return "kaiming_normal" if activation in RELU_FAMILY else "xavier_normal"


def remedy_for(cause: str, spec: JobSpec, *, lr: float | None = None,
               best_step: int | None = None, longer: dict[str, int] | None = None
               ) -> Remedy | None:
    """The table above: the change that addresses `cause` in the run `spec` describes. `lr` is
    the learning rate the evidence proposes (lr causes), `best_step` where validation was best
    (overfitting), `longer` the training length to use (not_converged)."""
    model = spec.model
    suited = suited_init(model.activation)
    if cause == "symmetry":
        return Remedy({"model.init.scheme": suited},
                      f"Initialize with random values scaled to the activation: {suited} for "
                      f"{model.activation} (§3).")
    if cause == "vanishing_gradients" and plain_resnet(spec):
        return Remedy({"model.resnet.shortcut": "identity"},
                      "Add identity shortcuts (He et al., 2016): x + F(x) carries the gradient "
                      "past every block unchanged, so depth stops degrading training.")
    if cause in INIT_CAUSES:
        return _signal_remedy(spec)
    if cause == "exploding_gradients":
        if model.init.scheme != suited:
            return Remedy({"model.init.scheme": suited, "training.grad_clip": CLIP},
                          f"Initialize with {suited} and clip the gradient norm to {num(CLIP)} "
                          "(§3, §7).")
        return _lower_lr(spec, lr)
    if cause in ("divergence", "lr_too_high"):
        return _lower_lr(spec, lr)
    if cause == "dead_units":
        return _dead_units(spec, lr)
    if cause in ("lr_too_low", "not_converged") and _sparse_sgd(spec):
        return Remedy({"optimizer.name": "adam", "optimizer.lr": ADAM_LR},
                      "Use an adaptive optimizer (Adam): on sparse inputs a rare feature gets "
                      "few updates, and a per-parameter step size makes them count (§1).")
    if cause == "lr_too_low" and lr is not None:
        return Remedy({"optimizer.lr": lr}, f"Raise the learning rate to {num(lr)} (§7).")
    if cause == "overfitting":
        return _regularize(spec, best_step)
    if cause == "not_converged" and longer:
        return Remedy(dict(longer), "Train longer (or with a larger learning rate and a decaying "
                      "schedule).")
    return None


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


def _sparse_sgd(spec: JobSpec) -> bool:
    """Categorical (sparse) inputs trained by a method with one step size for all weights."""
    return (spec.model.kind == "embedding_mlp"
            and spec.optimizer.name in ("sgd", "momentum", "nesterov"))


def _signal_remedy(spec: JobSpec) -> Remedy | None:
    model = spec.model
    suited = suited_init(model.activation)
    if model.activation == "sigmoid" and len(model.hidden) >= DEEP_SIGMOID:
        return Remedy({"model.activation": "relu", "model.init.scheme": "kaiming_normal"},
                      f"Use ReLU with He (kaiming_normal) init: sigmoid's derivative is at most "
                      f"0.25, and {len(model.hidden)} layers multiply it away (§2, §3); or add "
                      "batch norm (§4).")
    if model.init.scheme != suited:
        return Remedy({"model.init.scheme": suited},
                      f"Initialize with {suited}, which scales each layer's weights to its "
                      "fan-in so that the signal keeps its spread (§3); batch norm also does (§4).")
    normalize = normalization_remedy(spec)
    if normalize and not model.batch_norm:
        return Remedy(normalize, "Add batch norm: every layer's pre-activations are brought "
                      "back to unit scale (§4).")
    if model.kind == "sequential":
        return Remedy(None, "Add batch norm: a batch_norm layer after each linear or conv "
                      "layer of model.layers brings its pre-activations back to unit scale (§4).")
    return None


def _lower_lr(spec: JobSpec, lr: float | None) -> Remedy:
    lower = lr if lr is not None else float(f"{spec.optimizer.lr / 10:.2g}")
    return Remedy({"optimizer.lr": lower, "training.grad_clip": CLIP},
                  f"Lower the learning rate to {num(lower)} and clip the gradient norm to "
                  f"{num(CLIP)} (§7).")


def _dead_units(spec: JobSpec, lr: float | None) -> Remedy:
    model = spec.model
    if lr is not None:
        return Remedy({"optimizer.lr": lr},
                      f"Lower the learning rate to {num(lr)}: a step that large pushes ReLUs "
                      "where they output 0 for every input (§2).")
    if model.activation in RELU_FAMILY and model.init.scheme != "kaiming_normal":
        return Remedy({"model.init.scheme": "kaiming_normal"},
                      "Initialize with He (kaiming_normal), scaled for units that zero half "
                      "their input (§3).")
    return Remedy({"model.activation": "leaky_relu"},
                  "Use Leaky ReLU (or ELU), whose gradient is never 0 (§2).")


def _regularize(spec: JobSpec, best_step: int | None) -> Remedy:
    changes: dict[str, Any] = {"regularization.l2": max(spec.regularization.l2, L2)}
    if spec.model.dropout < DROPOUT:
        changes["model.dropout"] = DROPOUT
    words = "Add L2 weight decay and dropout (§6)"
    if spec.data.family in ("spiral", "digits", "mnist1d", "cifar10"):
        changes["data.augment.noise_std"] = max(spec.data.augment.noise_std, NOISE)
        words += ", and augment the inputs with noise (§5)"
    if best_step is not None:
        words += f"; or stop at step {best_step}, where validation loss was lowest"
    return Remedy(changes, words + ".")


# What a heal round never changes: it trains no longer than the job it heals (so it stays within
# the limits that job passed); a job whose only warning is not_converged learns, and is healthy.
KEPT_LENGTH = ("training.steps", "training.epochs")
LEARNING = frozenset({"not_converged"})


@dataclass(frozen=True)
class Round:
    spec: dict[str, Any]  # the next round's spec, as JSON
    codes: list[str]  # the root causes whose remedies made it
    changes: dict[str, Any]  # dotted path -> new value


def alarms(findings: Iterable[Any]) -> set[str]:
    """The codes of the warnings and errors."""
    return {_get(f, "code") for f in findings if _get(f, "severity") in ("warning", "error")}


def healthy(status: str, findings: Iterable[Any]) -> bool:
    """A job a heal can stop at: it succeeded with no warning or error but not_converged."""
    return status == "succeeded" and not alarms(findings) - LEARNING


def next_round(spec: Mapping[str, Any], findings: Sequence[Any]) -> Round | None:
    """The spec of a heal's next round: the remedies of the root causes (findings no other
    explains; a symptom's remedy is its cause's), without changes of the training length; None
    when no remedy applies or the remedies change nothing."""
    causes = [f for f in findings if _get(f, "caused_by") is None and _get(f, "remedy")
              and _get(f, "severity") != "info"]
    trimmed = {_get(f, "code"): {k: v for k, v in _get(f, "remedy").items()
                                 if k not in KEPT_LENGTH} for f in causes}
    codes = [code for code, changes in trimmed.items() if changes]
    if not codes:
        return None
    changes = {k: v for code in codes for k, v in trimmed[code].items()}
    result = copy.deepcopy(dict(spec))
    for path, value in changes.items():
        set_path(result, path, value)
    if _without_heal(result) == _without_heal(spec):
        return None
    return Round(result, codes, changes)


def _without_heal(spec: Mapping[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(dict(spec))
    copied.pop("diagnosis", None)
    return copied


def _get(finding: Any, name: str) -> Any:
    return finding.get(name) if isinstance(finding, Mapping) else getattr(finding, name)


class RemedyError(ValueError):
    """The requested codes cannot be applied; the message says which and why."""


def apply_remedies(
    spec: Mapping[str, Any], findings: Iterable[Any], codes: Sequence[str]
) -> dict[str, Any]:
    """A copy of `spec` (a JobSpec as JSON) with the remedies of `codes` applied, in the order
    given: where two remedies set the same field, the later code wins."""
    remedies = _remedies_by_code(findings)
    wanted = list(dict.fromkeys(codes))  # a repeated code is applied once
    unknown = [code for code in wanted if code not in CODES]
    if unknown:
        raise RemedyError(f"{', '.join(unknown)}: not a finding code (one of {', '.join(CODES)})")
    absent = [code for code in wanted if code not in remedies]
    if absent:
        found = ", ".join(sorted(remedies)) or "none"
        raise RemedyError(f"{', '.join(absent)}: not among this job's findings ({found})")
    bare = [code for code in wanted if not remedies[code]]
    if bare:
        raise RemedyError(f"{', '.join(bare)}: this finding has no remedy to apply; fix its "
                          "cause, named by the other findings")
    result = copy.deepcopy(dict(spec))
    for code in wanted:
        for path, value in (remedies[code] or {}).items():
            set_path(result, path, value)
    return result


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """document["a"]["b"]["c"] = value for "a.b.c", making the missing levels."""
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        if node.get(part) is None:  # absent, or an optional section left null (model.resnet)
            node[part] = {}
        child = node[part]
        if not isinstance(child, dict):
            raise RemedyError(f"{path}: {part} is not a section of the spec")
        node = child
    node[leaf] = value


def _remedies_by_code(findings: Iterable[Any]) -> dict[str, dict[str, Any] | None]:
    """The remedy of each code's first finding (findings come most severe first)."""
    remedies: dict[str, dict[str, Any] | None] = {}
    for finding in findings:
        code = finding["code"] if isinstance(finding, Mapping) else finding.code
        remedy = finding.get("remedy") if isinstance(finding, Mapping) else finding.remedy
        remedies.setdefault(code, remedy)
    return remedies
