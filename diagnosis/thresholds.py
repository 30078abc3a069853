"""Every number a rule compares against, in one table, each with why it is set where it is.

§ refers to a section of the design lecture (shared/design/lecture.md). "Measured" values come from
the labelled runs of bench/diagnosis_matrix.py (spiral, digits, mnist1d, ctr; MLPs of 2 to 12
hidden layers and a small CNN): the thresholds sit between what healthy runs showed and what the
pathological ones showed, with an order of magnitude to spare where the data allowed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    # -- what the rules look at --------------------------------------------------------------
    # Snapshot steps a rule summarises (the latest ones), taking medians so that one noisy
    # mini-batch neither raises nor hides a finding. The record also keeps the first step (the
    # initialization), where collapse and saturation show most clearly.
    window: int = 8

    # -- symmetry (§3) -----------------------------------------------------------------------
    # unit_std / std of a layer's weights (or activations). Identical units give 0 up to float
    # rounding (~1e-7); every random init measured gave 0.7-1.0. Zero/constant init: exactly 0.
    symmetry_relative_unit_std: float = 1e-4

    # -- gradients (§2, §7: "orders of magnitude between the first and last layers") --------------
    # First-layer / last-layer gradient norm. Healthy runs measured 0.1-4; a 9-layer sigmoid MLP
    # 1e-7, a 6-layer tanh MLP at std 0.01 1e-6 at init.
    vanishing_ratio: float = 1e-3
    vanishing_error_ratio: float = 1e-5  # 5 orders: the first layer effectively does not learn
    exploding_ratio: float = 1e3  # the mirror image of vanishing_ratio
    # |gradient| / |weights| of one layer. Healthy 0.01-1 (a loss near ln C gives ~1 at most); a
    # 6-layer ReLU MLP at std 1 measured 150-1400: one SGD step would move the weights 100x.
    exploding_relative_gradient: float = 10.0
    # Peak of the grad_norm series over its median in the first 10% of steps: an absurd learning
    # rate measured 1e11-1e15 before the NaN; healthy runs stay within 10x.
    exploding_growth: float = 1e3

    # -- activations (§3, §7) ----------------------------------------------------------------
    # Spread (std) of the last hidden layer's activations over the first's. Normal(0, 0.01) tanh
    # shrinks ~0.08 per layer (6 layers: 3e-6); xavier/kaiming keep 0.3-3.
    collapse_ratio: float = 1e-2
    collapse_min_hidden: int = 3  # a shrinking trend needs at least three layers to see
    # Share of tanh/sigmoid outputs within 0.01 of a bound. Std-1 init measured 0.35-0.75;
    # xavier 0.00-0.04 even after training.
    saturation_fraction: float = 0.25
    saturation_error_fraction: float = 0.5  # half the units pass (almost) no gradient
    # Share of a layer's ReLU units that are 0 for every example of the batch. Healthy runs
    # measured up to 0.25 (a 2-D input leaves some half-plane detectors idle); an absurd
    # learning rate 0.5-1.0.
    dead_fraction: float = 0.5
    dead_error_fraction: float = 0.9

    # -- learning rate (§7: update/weight ratio ~1e-3 is healthy) ------------------------------
    healthy_update_ratio: float = 1e-3  # what a proposed higher learning rate aims at
    # Largest layer's median |dW|/|W|. Healthy runs measured 3e-4 to 1.5e-2 (Adam's first steps);
    # 0.1 is 100x the healthy order.
    lr_high_update_ratio: float = 0.1
    lr_low_update_ratio: float = 1e-4  # 10x below the healthy order, for every layer
    lr_low_loss_drop: float = 0.1  # ... and the loss fell by less than 10% of where it began
    # What a proposed lower learning rate aims the first update at: the top of the healthy range
    # (the first update is the largest, while the gradients of the initialization are).
    lr_target_update_ratio: float = 3e-3
    # A training loss above this multiple of its first value (the loss at initialization):
    # minibatch noise never came near it; an absurd learning rate measured 100x.
    loss_spike: float = 5.0

    # -- the loss curve (§7) -------------------------------------------------------------------
    divergence_rise: float = 3.0  # ends at 3x the loss it began at: training went the wrong way
    # |loss - ln(C)| / ln(C) that counts as "at chance"; learning runs left it by 20% or more.
    chance_tolerance: float = 0.05
    # ... and a training accuracy below this multiple of chance (1/C): a loss near ln(C) with
    # accuracy well above chance is learning slowly (lr_too_low), not stuck. Stuck runs: 1.0x.
    chance_accuracy_factor: float = 1.5
    no_learning_min_steps: int = 50  # fewer steps than this prove nothing about learning
    # Not converged: the fitted slope over the last half of the run, continued for another
    # quarter of it, as a share of what the loss has fallen so far. Converged runs measured
    # 0.03-0.05, runs stopped early (30-100 steps) 0.35-0.7. The validation loss, when there is
    # enough of it, must agree (0.1), or the remaining fall is memorization, not convergence.
    not_converged_share: float = 0.15
    not_converged_val_share: float = 0.1
    not_converged_min_steps: int = 20
    # Overfitting: the validation loss (a line fitted after its lowest point, read at the end)
    # ends this far above its lowest point, and above the training loss by as much, while the
    # training loss did not rise; the evaluations after the lowest sit half as far above it.
    # Healthy noisy runs rose by at most 0.05 nats; a 256-wide MLP on 10 points per class rose
    # 0.2-1.8; Adam on the CTR set (optimizers_on_ctr) 0.56 -> 0.68 fitted (0.71 measured).
    overfit_rise: float = 0.1
    overfit_rise_relative: float = 0.1
    overfit_min_evals: int = 5


DEFAULT = Thresholds()
