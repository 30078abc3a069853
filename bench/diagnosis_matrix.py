"""How well the diagnosis names the cause, and how often its remedies cure: scenarios generated
from a seed (the lecture's pathologies and healthy controls of the same shapes, across depths,
widths, data sets and training seeds), trained on the CPU, diagnosed as the worker does at the end.

For each scenario set it prints, per code: recall (the pathology's cause among the root causes);
false alarms on the controls (any warning or error but not_converged, which only says "train
longer"); for pathologies the share cured by one round of remedies and by a heal of at most 3
rounds (cured: no error-level finding and a best validation loss clearly below the original's,
store.remedies.judge), with the training steps each spent relative to the original run; and heal
against a random search over the same spec fields with the same number of jobs.

The thresholds (diagnosis/thresholds.py) are tuned on the tuning seeds; the figures that count
are the held-out seeds'. Targets: every pathology named by its cause; <= 2% of controls with an
alarm; >= 90% cured in one round, >= 98% within 3; heal reaching a learning job with fewer steps
than the random search.

Run: .venv/bin/python bench/diagnosis_matrix.py [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the harness lives under the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from gradlab_contract.spec import JobSpec

from diagnosis import CODES, diagnose
from diagnosis.remedy import alarms, healthy, next_round, set_path
from store.remedies import judge

Spec = dict[str, Any]
TUNING_SEEDS = range(0, 1000)
HELD_OUT_SEEDS = range(1000, 2000)
MAX_ROUNDS = 3


# -- the generator ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: Spec
    causes: frozenset[str] = field(default_factory=frozenset)  # empty: a healthy control

    @property
    def healthy(self) -> bool:
        return not self.causes


DATA = {"spiral": {"dataset": "spiral"}, "digits": {"dataset": "digits"},
        "mnist1d": {"dataset": "mnist1d"}}


def _spec(rng: random.Random, *, depth: int, width: int, activation: str, init: Spec,
          optimizer: Spec, data: Spec | None = None, steps: int = 300, **model: Any) -> Spec:
    family = rng.choice(sorted(DATA))
    return {
        "data": data or DATA[family],
        "model": {"kind": "mlp", "hidden": [width] * depth, "activation": activation,
                  "init": init, **model},
        "optimizer": optimizer,
        "training": {"steps": steps, "batch_size": 64, "eval_every": 25,
                     "seed": rng.randrange(1000), "device": "cpu"},
        "telemetry": {"snapshot_every": 25, "bins": 16},
    }


def _width(rng: random.Random, low: int = 32, high: int = 256) -> int:
    return rng.choice([w for w in (32, 64, 128, 256) if low <= w <= high])


Maker = Callable[[random.Random], tuple[Scenario, Scenario]]


def _pair(name: str, causes: set[str], bad: Spec, good: Spec) -> tuple[Scenario, Scenario]:
    """A pathology and its healthy control of the same shape."""
    return Scenario(name, bad, frozenset(causes)), Scenario(f"{name}:control", good)


ADAM = {"name": "adam", "lr": 1e-3}
KAIMING = {"scheme": "kaiming_normal"}
XAVIER = {"scheme": "xavier_normal"}


def zero_init(rng: random.Random) -> tuple[Scenario, Scenario]:
    depth, width, act = rng.randint(3, 6), _width(rng, high=128), rng.choice(["relu", "tanh"])
    init = rng.choice([{"scheme": "zeros"}, {"scheme": "constant", "value": 0.05}])
    shape = {"depth": depth, "width": width, "activation": act, "optimizer": ADAM}
    seed_rng = random.Random(rng.random())
    good_init = KAIMING if act == "relu" else XAVIER
    return _pair("zero_or_constant_init", {"symmetry"}, _spec(seed_rng, init=init, **shape),
                 _spec(random.Random(rng.random()), init=good_init, **shape))


def deep_sigmoid(rng: random.Random) -> tuple[Scenario, Scenario]:
    depth, width = rng.randint(8, 12), _width(rng, high=128)
    bad = _spec(rng, depth=depth, width=width, activation="sigmoid", init={"scheme": "default"},
                optimizer=ADAM)
    good = _spec(rng, depth=depth, width=width, activation="relu", init=KAIMING, optimizer=ADAM)
    return _pair("deep_sigmoid", {"vanishing_gradients", "activation_collapse", "saturation"},
                 bad, good)


def small_std(rng: random.Random) -> tuple[Scenario, Scenario]:
    act = rng.choice(["tanh", "relu"])
    depth, width = rng.randint(6, 10), _width(rng, high=128)
    optimizer = {"name": "momentum", "lr": 0.01}
    bad = _spec(rng, depth=depth, width=width, activation=act,
                init={"scheme": "normal", "std": 0.01}, optimizer=optimizer)
    good = _spec(rng, depth=depth, width=width, activation=act,
                 init=KAIMING if act == "relu" else XAVIER, optimizer=optimizer)
    return _pair(f"deep_{act}_std_0.01", {"activation_collapse"}, bad, good)


def relu_xavier(rng: random.Random) -> tuple[Scenario, Scenario]:
    """He et al. 2015: Xavier halves a ReLU signal's variance at every layer."""
    depth, width = rng.randint(25, 40), rng.choice([32, 64])
    optimizer = {"name": "momentum", "lr": 0.01}
    bad = _spec(rng, depth=depth, width=width, activation="relu", init=XAVIER,
                optimizer=optimizer, data=DATA["mnist1d"], steps=200)
    good = _spec(rng, depth=depth, width=width, activation="relu", init=KAIMING,
                 optimizer=optimizer, data=DATA["mnist1d"], steps=200)
    return _pair("deep_relu_xavier", {"activation_collapse"}, bad, good)


def lr_high(rng: random.Random) -> tuple[Scenario, Scenario]:
    depth, width = rng.randint(2, 4), _width(rng)
    bad = _spec(rng, depth=depth, width=width, activation="relu", init=KAIMING,
                optimizer={"name": "sgd", "lr": rng.choice([20.0, 50.0, 100.0])})
    good = _spec(rng, depth=depth, width=width, activation="relu", init=KAIMING,
                 optimizer={"name": "sgd", "lr": 0.05})
    return _pair("lr_too_high", {"lr_too_high", "divergence", "exploding_gradients"}, bad, good)


def lr_low(rng: random.Random) -> tuple[Scenario, Scenario]:
    depth, width = rng.randint(2, 4), _width(rng)
    bad = _spec(rng, depth=depth, width=width, activation="relu", init=KAIMING,
                optimizer={"name": "sgd", "lr": rng.choice([1e-6, 1e-5])})
    good = _spec(rng, depth=depth, width=width, activation="relu", init=KAIMING,
                 optimizer={"name": "momentum", "lr": 0.05})
    return _pair("lr_too_low", {"lr_too_low"}, bad, good)


def oscillating(rng: random.Random) -> tuple[Scenario, Scenario]:
    depth, width = rng.randint(2, 4), _width(rng, high=128)
    bad = _spec(rng, depth=depth, width=width, activation="tanh", init=XAVIER,
                optimizer={"name": "momentum", "lr": rng.choice([2.0, 5.0])})
    good = _spec(rng, depth=depth, width=width, activation="tanh", init=XAVIER,
                 optimizer={"name": "momentum", "lr": 0.02})
    return _pair("oscillating_loss", {"lr_too_high", "divergence", "exploding_gradients",
                                      "saturation", "dead_units"}, bad, good)


def small_data(rng: random.Random) -> tuple[Scenario, Scenario]:
    width = rng.choice([128, 256])
    tiny = {"dataset": "spiral", "options": {"points": rng.choice([20, 30])}, "val_fraction": 0.5}
    bad = _spec(rng, depth=2, width=width, activation="relu", init=KAIMING,
                optimizer={"name": "adam", "lr": 1e-2}, data=tiny, steps=500)
    more = {"dataset": "spiral", "options": {"points": 500}}
    good = _spec(rng, depth=2, width=width, activation="relu", init=KAIMING,
                 optimizer={"name": "adam", "lr": 3e-3}, data=more, steps=500)
    return _pair("small_data_overfit", {"overfitting"}, bad, good)


def sparse_sgd(rng: random.Random) -> tuple[Scenario, Scenario]:
    ctr = {"dataset": "ctr", "options": {"rows": 4000, "cardinality": 500}}
    shape = {"depth": 1, "width": 32, "activation": "relu", "init": {"scheme": "default"},
             "data": ctr, "kind": "embedding_mlp"}
    bad = _spec(rng, optimizer={"name": "sgd", "lr": rng.choice([1e-4, 3e-4])}, **shape)
    good = _spec(rng, optimizer={"name": "adagrad", "lr": 0.05}, **shape)
    # The cause is the optimizer: the run reads as slow (too low a rate, or still falling).
    return _pair("sparse_data_sgd", {"lr_too_low", "not_converged"}, bad, good)


MAKERS: tuple[Maker, ...] = (zero_init, deep_sigmoid, small_std, relu_xavier, lr_high, lr_low,
                             oscillating, small_data, sparse_sgd)


def generate(seeds: range, count: int, base: int) -> list[Scenario]:
    """`count` pathologies, each with its control, drawn from the seed `base` (in `seeds`)."""
    rng = random.Random(seeds[base % len(seeds)])
    found = []
    for index in range(count):
        maker = MAKERS[index % len(MAKERS)]  # every pathology, in turn
        found += list(maker(random.Random(rng.random())))
    return found


# -- running ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    status: str
    findings: list[Any]
    summary: dict[str, float | None]
    steps: int


def train(spec: Spec) -> Run:
    from tests.diagnosis.harness import record_run  # torch: only in the pool's processes

    record = record_run(spec)
    found = diagnose(record)
    values = record.series("val_loss")[1]
    finite = values[np.isfinite(values)]
    best = float(finite.min()) if len(finite) else None
    return Run(record.status, found, {"best_val_loss": best}, record.final_step)


@dataclass
class Outcome:
    scenario: Scenario
    roots: set[str] = field(default_factory=set)
    alarms: set[str] = field(default_factory=set)
    original_steps: int = 0
    one_round: bool | None = None
    one_round_steps: int = 0
    healed: bool | None = None
    heal_steps: int = 0
    heal_jobs: int = 0
    random_healed: bool | None = None
    random_steps: int = 0
    seconds: float = 0.0


def cured(original: Run, child: Run) -> bool:
    return judge(original.summary, child.status, child.summary, child.findings).outcome == "cured"


def evaluate(scenario: Scenario) -> Outcome:
    started = time.perf_counter()
    original = train(scenario.spec)
    outcome = Outcome(scenario, {f.code for f in original.findings if f.caused_by is None
                                 and f.severity != "info"}, alarms(original.findings) - {
                                     "not_converged"}, original.steps)
    if not scenario.healthy:
        _heal(outcome, original)
        _random_search(outcome, original)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _heal(outcome: Outcome, original: Run) -> None:
    spec, run, jobs = outcome.scenario.spec, original, 0
    for _ in range(MAX_ROUNDS):
        planned = next_round(spec, run.findings)
        if planned is None:
            break
        spec, run = planned.spec, train(planned.spec)
        jobs += 1
        outcome.heal_steps += run.steps
        good = cured(original, run)
        if jobs == 1:
            outcome.one_round, outcome.one_round_steps = good, run.steps
        if good and healthy(run.status, run.findings):
            outcome.healed = True
            break
    outcome.heal_jobs = jobs
    outcome.healed = bool(outcome.healed)
    outcome.one_round = bool(outcome.one_round)


SEARCH_SPACE: dict[str, Callable[[random.Random], Any]] = {
    "model.init.scheme": lambda r: r.choice(["default", "xavier_normal", "kaiming_normal",
                                             "normal"]),
    "model.activation": lambda r: r.choice(["relu", "tanh", "sigmoid", "leaky_relu"]),
    "optimizer.lr": lambda r: float(f"{10 ** r.uniform(-5, 0):.2g}"),
    "model.batch_norm": lambda r: r.random() < 0.5,
    "training.grad_clip": lambda r: r.choice([None, 1.0]),
    "regularization.l2": lambda r: r.choice([0.0, 1e-3]),
    "model.dropout": lambda r: r.choice([0.0, 0.2]),
}


def _random_search(outcome: Outcome, original: Run) -> None:
    """As many random variants (over the fields heal changes) as heal ran jobs, at least one;
    the steps until the first that cures (all of them when none does)."""
    rng = random.Random(str(outcome.scenario.spec))
    for _ in range(max(1, outcome.heal_jobs)):
        spec = copy.deepcopy(outcome.scenario.spec)
        for path, draw in SEARCH_SPACE.items():
            if path == "model.activation" and spec["model"].get("kind") == "embedding_mlp":
                continue
            set_path(spec, path, draw(rng))
        try:
            JobSpec.model_validate(spec)
        except ValueError:
            continue
        run = train(spec)
        outcome.random_steps += run.steps
        if cured(original, run) and healthy(run.status, run.findings):
            outcome.random_healed = True
            return
    outcome.random_healed = False


# -- the report ------------------------------------------------------------------------------------


def report(title: str, outcomes: list[Outcome]) -> None:
    sick = [o for o in outcomes if not o.scenario.healthy]
    controls = [o for o in outcomes if o.scenario.healthy]
    print(f"\n== {title}: {len(outcomes)} scenarios ({len(sick)} pathologies, "
          f"{len(controls)} controls) ==")
    print(f"{'scenario':<26}{'root causes found':<44}{'1 round':>8}{'heal':>6}{'jobs':>5}"
          f"{'random':>8}")
    for o in sick:
        named = "ok" if o.roots & o.scenario.causes else "MISSED"
        print(f"{o.scenario.name:<26}{(', '.join(sorted(o.roots)) or '-')[:36]:<37}{named:>7}"
              f"{_yes(o.one_round):>8}{_yes(o.healed):>6}{o.heal_jobs:>5}"
              f"{_yes(o.random_healed):>8}")
    by_kind: Counter[str] = Counter()
    named_kind: Counter[str] = Counter()
    for o in sick:
        by_kind[o.scenario.name] += 1
        named_kind[o.scenario.name] += bool(o.roots & o.scenario.causes)
    print(f"\n{'pathology':<26}{'runs':>5}{'named by its cause':>20}")
    for kind in sorted(by_kind):
        print(f"{kind:<26}{by_kind[kind]:>5}{named_kind[kind] / by_kind[kind]:>20.0%}")
    codes: Counter[str] = Counter(code for o in sick for code in o.roots)
    print("\nroot-cause codes raised on pathologies: "
          + ", ".join(f"{c} {codes[c]}" for c in CODES if codes[c]))
    noisy = [o for o in controls if o.alarms]
    print(f"\nfalse alarms: {len(noisy)} of {len(controls)} controls "
          f"({_share(len(noisy), len(controls))}) with a warning or error"
          + (": " + "; ".join(f"{o.scenario.name} {sorted(o.alarms)}" for o in noisy)
             if noisy else ""))
    named = sum(bool(o.roots & o.scenario.causes) for o in sick)
    print(f"named by its cause: {named}/{len(sick)} ({_share(named, len(sick))}) "
          "[target: all]")
    base = sum(o.original_steps for o in sick) or 1
    one = sum(bool(o.one_round) for o in sick)
    healed = sum(bool(o.healed) for o in sick)
    print(f"cured by one round of remedies: {one}/{len(sick)} ({_share(one, len(sick))}) "
          f"[target >= 90%], compute {sum(o.one_round_steps for o in sick) / base:.2f}x "
          "the original runs' steps")
    print(f"healed within {MAX_ROUNDS} rounds: {healed}/{len(sick)} ({_share(healed, len(sick))})"
          f" [target >= 98%; AutoTrainer 97.33%], compute "
          f"{sum(o.heal_steps for o in sick) / base:.2f}x")
    random_ok = sum(bool(o.random_healed) for o in sick)
    heal_spent, random_spent = (sum(o.heal_steps for o in sick),
                                sum(o.random_steps for o in sick))
    print(f"random search, same fields, same number of jobs: {random_ok}/{len(sick)} "
          f"({_share(random_ok, len(sick))}) reached a healthy job, compute "
          f"{random_spent / base:.2f}x")
    print(f"training steps per healthy job reached (all steps spent / jobs reached): heal "
          f"{heal_spent / max(1, healed):.0f}, random search "
          f"{random_spent / max(1, random_ok):.0f}")


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def run_set(scenarios: list[Scenario], workers: int) -> list[Outcome]:
    if workers <= 1:
        return [evaluate(s) for s in scenarios]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(evaluate, scenarios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a handful of scenarios (tests)")
    parser.add_argument("--pathologies", type=int, default=20,
                        help="held-out pathologies (each with its control; default 20: 40 "
                        "scenarios)")
    parser.add_argument("--tuning", type=int, default=9, help="tuning-set pathologies")
    parser.add_argument("--seed", type=int, default=0, help="picks the seeds of both sets")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    args = parser.parse_args()
    held_out, tuning = (3, 0) if args.quick else (args.pathologies, args.tuning)
    started = time.perf_counter()
    if tuning:
        outcomes = run_set(generate(TUNING_SEEDS, tuning, args.seed), args.workers)
        report("tuning seeds", outcomes)
    outcomes = run_set(generate(HELD_OUT_SEEDS, held_out, args.seed), args.workers)
    report("held-out seeds (the figures that count)", outcomes)
    print(f"\n{time.perf_counter() - started:.0f} s with {args.workers} worker process(es)")


if __name__ == "__main__":
    main()
