"""Labelled runs for the diagnosis: pathological specs from the lecture, each with the codes it
must raise, and healthy controls (the same networks with a suitable init, activation or learning
rate) that must raise no warning or error. Plain JSON-able spec dicts, shared by
tests/diagnosis and bench/diagnosis_matrix.py; small enough for a CPU (well under a second each).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

Spec = dict[str, Any]


def mlp(
    hidden: list[int],
    activation: str = "relu",
    *,
    init: Spec | None = None,
    optimizer: Spec | None = None,
    steps: int = 300,
    data: Spec | None = None,
    **model: Any,
) -> Spec:
    """An MLP on the spiral (unless `data` says otherwise), probed every 25 steps."""
    return {
        "data": data or {"dataset": "spiral"},
        "model": {"kind": "mlp", "hidden": hidden, "activation": activation,
                  "init": init or {"scheme": "default"}, **model},
        "optimizer": optimizer or {"name": "adam", "lr": 1e-3},
        "training": {"steps": steps, "batch_size": 64, "eval_every": 25, "device": "cpu"},
        "telemetry": {"snapshot_every": 25, "bins": 16},
    }


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: Spec
    expect: frozenset[str] = field(default_factory=frozenset)  # empty: a healthy control
    why: str = ""

    @property
    def healthy(self) -> bool:
        return not self.expect

    def job_spec(self) -> Spec:
        return copy.deepcopy(self.spec)


KAIMING = {"scheme": "kaiming_normal"}
XAVIER = {"scheme": "xavier_normal"}
DIGITS = {"dataset": "digits"}
TINY_SPIRAL = {"dataset": "spiral", "options": {"points": 20}, "val_fraction": 0.5}

PATHOLOGICAL = [
    Scenario("zero_init", mlp([64, 64], init={"scheme": "zeros"}),
             frozenset({"symmetry", "no_learning"}), "§3: zero weights never break symmetry"),
    Scenario("deep_sigmoid", mlp([64] * 9, "sigmoid"),
             frozenset({"vanishing_gradients", "no_learning"}),
             "§2: sigmoid's derivative <= 0.25, multiplied through 9 layers"),
    Scenario("tanh_small_init",
             mlp([64] * 6, "tanh", init={"scheme": "normal", "std": 0.01},
                 optimizer={"name": "momentum", "lr": 0.01}),
             frozenset({"activation_collapse"}), "§3: std 0.01 shrinks the signal every layer"),
    Scenario("tanh_large_init", mlp([64] * 3, "tanh", init={"scheme": "normal", "std": 1.0},
                                    data=DIGITS),
             frozenset({"saturation"}), "§3: std 1 drives tanh to +-1"),
    Scenario("sigmoid_large_init", mlp([64] * 3, "sigmoid", init={"scheme": "normal", "std": 1.0},
                                       data=DIGITS),
             frozenset({"saturation"}), "§3: std 1 drives sigmoid to 0 and 1"),
    Scenario("relu_absurd_lr", mlp([64] * 3, optimizer={"name": "sgd", "lr": 2.0}),
             frozenset({"dead_units"}), "§2: a too-large step kills ReLUs"),
    Scenario("relu_large_init", mlp([64] * 6, init={"scheme": "normal", "std": 1.0}),
             frozenset({"exploding_gradients"}), "§3: std 1 grows the signal ~5.7x per layer"),
    Scenario("sgd_lr_50", mlp([64, 64], init=KAIMING, optimizer={"name": "sgd", "lr": 50.0}),
             frozenset({"divergence", "lr_too_high"}), "§7: the loss explodes to NaN"),
    Scenario("sgd_lr_1e-5", mlp([64, 64], init=KAIMING, optimizer={"name": "sgd", "lr": 1e-5}),
             frozenset({"lr_too_low"}), "§7: updates ~1e-6 of the weights"),
    Scenario("too_few_steps", mlp([64, 64], init=KAIMING, steps=30, data=DIGITS),
             frozenset({"not_converged"}), "§7: stopped while the loss still falls"),
    Scenario("tiny_train_set", mlp([256, 256], init=KAIMING, steps=500, data=TINY_SPIRAL,
                                   optimizer={"name": "adam", "lr": 1e-2}),
             frozenset({"overfitting"}), "§6: 256-wide layers on 10 training points per class"),
]

HEALTHY = [
    Scenario("relu_kaiming", mlp([64, 64], init=KAIMING, steps=1000)),
    Scenario("deep_relu_kaiming", mlp([64] * 9, init=KAIMING, steps=1000)),
    Scenario("deep_tanh_xavier", mlp([64] * 6, "tanh", init=XAVIER, steps=1000)),
    Scenario("tanh_xavier_digits", mlp([64] * 3, "tanh", init=XAVIER, data=DIGITS)),
    Scenario("sigmoid_xavier_digits", mlp([64] * 3, "sigmoid", init=XAVIER, data=DIGITS,
                                          steps=1000)),
    Scenario("relu_sgd_momentum", mlp([64] * 3, init=KAIMING, steps=1000,
                                      optimizer={"name": "momentum", "lr": 0.05})),
    Scenario("relu_digits", mlp([64, 64], init=KAIMING, steps=300, data=DIGITS)),
    Scenario("relu_more_data", mlp([256, 256], init=KAIMING, steps=500,
                                   optimizer={"name": "adam", "lr": 3e-3})),
    Scenario("deep_relu_batch_norm", mlp([64] * 9, batch_norm=True, steps=1000)),
]

SCENARIOS = PATHOLOGICAL + HEALTHY
