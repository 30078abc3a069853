"""What the engine's telemetry costs: the same model and data trained by a bare PyTorch loop and
by ``training.train``, in alternating blocks in one process, printing instrumented/bare ratios.

The bare loop is what one would write by hand: a seeded permutation per epoch, forward,
cross-entropy, backward, Adam, and the same validation pass at the same cadence (validation is
part of training, not telemetry). Both build the same network from the same seed and run with
denormals flushed, so the ratio isolates metrics, probes and callbacks.

Targets: <= 1.03 at the default cadence (snapshots and validation every 50 steps), <= 1.10 with
every probe every 10 steps. Run: .venv/bin/python bench/overhead.py [--rounds N] [--steps N]
[--threads N]. On a machine shared with other work, --threads 1 and the CPU-time ratio are the
numbers to trust: with two OpenMP threads a busy neighbour stalls every parallel op.

What remains on small models is per-op dispatch (~2-5 us an op on a CPU like a 2-core VM): each
step adds the gradient norms (one _foreach_norm) and the bookkeeping of its metrics; a snapshot
is ~30 small ops per tensor, i.e. one to three steps of a 7k-parameter MLP.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from gradlab_client.spec import JobSpec

from training import TrainingCallbacks, train
from training.data import Dataset, load_dataset
from training.evaluate import EVAL_BATCH
from training.model import build_model

MLP: dict[str, Any] = {"kind": "mlp", "hidden": [64, 64]}
CNN: dict[str, Any] = {
    "kind": "cnn",
    "conv": [{"channels": 16, "pool": "max"}, {"channels": 32, "pool": "max"}],
    "hidden": [64],
}
CASES = [
    ("mlp, default cadence (50)", MLP, 50, 1.03),
    ("cnn, default cadence (50)", CNN, 50, 1.03),
    ("mlp, every probe every 10", MLP, 10, 1.10),
    ("cnn, every probe every 10", CNN, 10, 1.10),
]


def make_spec(model: dict[str, Any], steps: int, snapshot_every: int) -> JobSpec:
    return JobSpec.model_validate(
        {
            "data": {"dataset": "mnist1d"},
            "model": model,
            "optimizer": {"name": "adam", "lr": 1e-3},
            "training": {"steps": steps, "batch_size": 64, "eval_every": 50, "device": "cpu"},
            "telemetry": {"snapshot_every": snapshot_every},
        }
    )


def bare_loop(spec: JobSpec, data: Dataset) -> None:
    """A hand-written loop: no metrics, no probes, validation at the same cadence."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(spec.training.seed)  # as the engine seeds
        model = build_model(spec.model, data.shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.optimizer.lr)
    generator = torch.Generator().manual_seed(spec.training.seed)
    n, batch = len(data.y_train), spec.training.batch_size
    order, cursor = torch.randperm(n, generator=generator), 0
    steps = spec.training.steps or 0
    for step in range(1, steps + 1):
        if cursor + batch > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        indices = order[cursor : cursor + batch]
        cursor += batch
        loss = F.cross_entropy(model(data.x_train[indices]), data.y_train[indices])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % spec.training.eval_every == 0 or step == steps:
            validate(model, data)


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


def engine(spec: JobSpec, data: Dataset) -> None:
    """The engine with callbacks that receive everything (and keep nothing)."""
    callbacks = TrainingCallbacks(
        on_layers=lambda layers: None,
        on_metrics=lambda step, metrics: None,
        on_snapshots=lambda step, snapshots: None,
        on_progress=lambda step, total: None,
        should_stop=lambda: False,
    )
    train(spec, callbacks, dataset=data)


def timed(run: Any, spec: JobSpec, data: Dataset) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one block."""
    wall, cpu = time.perf_counter(), time.process_time()
    run(spec, data)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(spec: JobSpec, data: Dataset, rounds: int) -> dict[str, float]:
    """Alternate bare and engine blocks (after one warm-up pair). Returns the median per-round
    ratio of wall times and of CPU times, and the bare loop's wall milliseconds per step.

    The CPU-time ratio is the steadier one on a shared machine: it does not count the time the
    process waits for a core, which hits whichever block happens to run at that moment."""
    torch.set_flush_denormal(True)  # the engine does this itself; give the bare loop the same
    timed(bare_loop, spec, data)
    timed(engine, spec, data)
    wall, cpu, bare_wall = [], [], []
    for index in range(rounds):
        # Swap the order each round so a slow patch of the machine hits both sides alike.
        pair = (bare_loop, engine) if index % 2 == 0 else (engine, bare_loop)
        times = {run.__name__: timed(run, spec, data) for run in pair}
        (bare_w, bare_c), (eng_w, eng_c) = times["bare_loop"], times["engine"]
        wall.append(eng_w / bare_w)
        cpu.append(eng_c / bare_c)
        bare_wall.append(bare_w)
    torch.set_flush_denormal(False)
    steps = spec.training.steps or 1
    return {
        "wall": statistics.median(wall),
        "cpu": statistics.median(cpu),
        "bare_ms": 1e3 * statistics.median(bare_wall) / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=250, help="steps per block")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(make_spec(MLP, 1, 50).data, seed=0)
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {threads} threads, {args.rounds} rounds x {args.steps} steps"
    )
    print("instrumented/bare, median over rounds: wall-clock ratio, CPU-time ratio")
    for name, model, every, target in CASES:
        result = measure(make_spec(model, args.steps, every), data, args.rounds)
        print(
            f"{name:28s} wall {result['wall']:.3f}  cpu {result['cpu']:.3f}  "
            f"(bare {result['bare_ms']:.2f} ms/step, target <= {target:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
