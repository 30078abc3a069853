"""What the engine's telemetry costs: the same model and data trained by a bare PyTorch loop and
by ``training.train``, in alternating blocks in one process, printing instrumented/bare ratios.

The bare loop is what one would write by hand: a seeded permutation per epoch, forward,
cross-entropy, backward, Adam, and the same validation pass at the same cadence (validation is
part of training, not telemetry). Both build the same network from the same seed and run with
denormals flushed, so the ratio isolates metrics, probes and callbacks.

The blocks are short and interleaved: the engine trains one long run, and every BLOCK of its
steps its progress callback trains the bare loop for BLOCK steps of its own, timed apart. The
engine's time is the run's time minus the bare loop's. On a shared VM the speed of the machine
drifts by tens of percent within seconds; whole-run blocks (a run of the engine, then one of the
bare loop) measured that drift as much as the telemetry, while blocks of a few tens of
milliseconds see the same machine. A run also amortizes what every run pays once (building
the model, the snapshots of the first and last step) as a real job does.

Targets: <= 1.03 at the default cadence (snapshots and validation every 50 steps), <= 1.10 with
every probe every 10 steps. The "no probes" rows have no target: they train with telemetry.kinds
empty, so what they print is the cost of the per-step metrics alone (loss, accuracy, gradient
norm, lr and step time every step), the floor under the cases with probes.

Run: .venv/bin/python bench/overhead.py [--rounds N] [--steps N] [--threads N] [--only TEXT].
--threads 1 (what the issue notes report) keeps a busy neighbour from stalling an OpenMP op; the
CPU-time ratio is printed beside the wall one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from gradlab_contract.spec import JobSpec

from training import TrainingCallbacks, train
from training.data import Dataset, load_dataset
from training.evaluate import EVAL_BATCH
from training.model import build_model

BLOCK = 25  # steps of each loop between switches
MLP: dict[str, Any] = {"kind": "mlp", "hidden": [64, 64]}
CNN: dict[str, Any] = {
    "kind": "cnn",
    "conv": [{"channels": 16, "pool": "max"}, {"channels": 32, "pool": "max"}],
    "hidden": [64],
}
EVERY_KIND = ("gradient", "weight", "activation")  # the default telemetry.kinds
CASES: list[tuple[str, dict[str, Any], int, tuple[str, ...], float | None]] = [
    ("mlp, default cadence (50)", MLP, 50, EVERY_KIND, 1.03),
    ("cnn, default cadence (50)", CNN, 50, EVERY_KIND, 1.03),
    ("mlp, every probe every 10", MLP, 10, EVERY_KIND, 1.10),
    ("cnn, every probe every 10", CNN, 10, EVERY_KIND, 1.10),
    ("mlp, no probes", MLP, 50, (), None),
    ("cnn, no probes", CNN, 50, (), None),
]


def make_spec(
    model: dict[str, Any], steps: int, snapshot_every: int, kinds: tuple[str, ...] = EVERY_KIND
) -> JobSpec:
    return JobSpec.model_validate(
        {
            "data": {"dataset": "mnist1d"},
            "model": model,
            "optimizer": {"name": "adam", "lr": 1e-3},
            "training": {"steps": steps, "batch_size": 64, "eval_every": 50, "device": "cpu"},
            "telemetry": {"snapshot_every": snapshot_every, "kinds": list(kinds)},
        }
    )


class BareLoop:
    """A hand-written loop, trained a block at a time: no metrics, no probes, validation at the
    engine's cadence."""

    def __init__(self, spec: JobSpec, data: Dataset) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(spec.training.seed)  # as the engine seeds
            self.model = build_model(spec.model, data.shape)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=spec.optimizer.lr)
        self.generator = torch.Generator().manual_seed(spec.training.seed)
        self.data, self.batch = data, spec.training.batch_size
        self.eval_every = spec.training.eval_every
        self.order, self.cursor, self.step = self._permutation(), 0, 0

    def _permutation(self) -> torch.Tensor:
        return torch.randperm(len(self.data.y_train), generator=self.generator)

    def train(self, steps: int) -> None:
        data, batch = self.data, self.batch
        for _ in range(steps):
            self.step += 1
            if self.cursor + batch > len(data.y_train):
                self.order, self.cursor = self._permutation(), 0
            indices = self.order[self.cursor : self.cursor + batch]
            self.cursor += batch
            loss = F.cross_entropy(self.model(data.x_train[indices]), data.y_train[indices])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.step % self.eval_every == 0:
                validate(self.model, data)


@torch.no_grad()
def validate(model: torch.nn.Module, data: Dataset) -> tuple[float, float]:
    model.eval()
    loss, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
    for start in range(0, len(data.y_val), EVAL_BATCH):
        x, y = data.x_val[start : start + EVAL_BATCH], data.y_val[start : start + EVAL_BATCH]
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
    model.train()
    return loss.item() / len(data.y_val), correct.item() / len(data.y_val)


def interleaved(spec: JobSpec, data: Dataset) -> dict[str, float]:
    """One engine run of spec.training.steps steps with a bare block after every BLOCK of its
    steps. Returns wall and CPU seconds of each side."""
    bare = BareLoop(spec, data)
    spent = {"bare_wall": 0.0, "bare_cpu": 0.0}

    def on_progress(step: int, total: int) -> None:
        if step % BLOCK == 0:
            wall, cpu = time.perf_counter(), time.thread_time()
            bare.train(BLOCK)
            spent["bare_wall"] += time.perf_counter() - wall
            spent["bare_cpu"] += time.thread_time() - cpu

    callbacks = TrainingCallbacks(  # callbacks that receive everything (and keep nothing)
        on_layers=lambda layers: None,
        on_metrics=lambda step, metrics: None,
        on_snapshots=lambda step, snapshots: None,
        on_progress=on_progress,
        should_stop=lambda: False,
    )
    wall, cpu = time.perf_counter(), time.thread_time()
    train(spec, callbacks, dataset=data)
    spent["engine_wall"] = time.perf_counter() - wall - spent["bare_wall"]
    spent["engine_cpu"] = time.thread_time() - cpu - spent["bare_cpu"]
    return spent


def measure(spec: JobSpec, data: Dataset, rounds: int) -> dict[str, float]:
    """The median over rounds of the engine/bare ratio of wall and of CPU (thread) time, and the
    bare loop's wall milliseconds per step."""
    torch.set_flush_denormal(True)  # the engine does this itself; give the bare loop the same
    interleaved(make_spec(spec.model.model_dump(), 2 * BLOCK, 50), data)  # warm-up
    results = [interleaved(spec, data) for _ in range(rounds)]
    torch.set_flush_denormal(False)
    steps = spec.training.steps or 1
    return {
        "wall": statistics.median(r["engine_wall"] / r["bare_wall"] for r in results),
        "cpu": statistics.median(r["engine_cpu"] / r["bare_cpu"] for r in results),
        "bare_ms": 1e3 * statistics.median(r["bare_wall"] for r in results) / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000, help="steps per run (a multiple of 50)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    if args.steps % 50:
        parser.error("--steps must be a multiple of 50 (validation and snapshot cadences)")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(make_spec(MLP, 1, 50).data, seed=0)
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {threads} threads, {args.rounds} rounds x {args.steps} "
        f"steps, blocks of {BLOCK}"
    )
    print("instrumented/bare, median over rounds: wall-clock ratio, CPU-time ratio")
    for name, model, every, kinds, target in CASES:
        if args.only not in name:
            continue
        result = measure(make_spec(model, args.steps, every, kinds), data, args.rounds)
        goal = "no target: metrics only" if target is None else f"target <= {target:.2f}"
        print(
            f"{name:28s} wall {result['wall']:.3f}  cpu {result['cpu']:.3f}  "
            f"(bare {result['bare_ms']:.2f} ms/step, {goal})",
            flush=True,
        )


if __name__ == "__main__":
    main()
