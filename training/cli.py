"""Train a spec locally, without the service: ``train_command(spec, out_dir)``.

Writes to ``out_dir``:
- metrics.jsonl: one JSON object per step, ``{"step": 12, "train_loss": ..., "lr": ..., ...}``
  with every metric reported for that step (validation and update ratios on their steps);
- snapshots.jsonl: one Snapshot per line (step, kind, layer, depth, stats, histogram, ...);
- summary.json: the RunResult (status, steps_done, total_steps, device, summary, reason), the
  layers, the elapsed seconds and the spec;
- checkpoint.pt: written when the run is interrupted (Ctrl-C); ``resume=True`` continues it.
Numbers that are NaN or infinite (a diverged step) are written as null, so every line is valid
JSON. Exit codes: 0 succeeded, 3 diverged, 130 interrupted, 1 error (bad spec, failed run).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import IO, Any

from gradlab_contract.models import Layer, Snapshot
from gradlab_contract.spec import JobSpec
from pydantic import ValidationError

from training.loop import train
from training.types import RunResult, TrainingCallbacks

EXIT_CODES = {"succeeded": 0, "diverged": 3, "stopped": 130}


def load_spec(path: Path) -> JobSpec:
    """A JSON spec, or YAML when the file ends in .yaml/.yml and PyYAML is installed."""
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError("reading YAML specs needs PyYAML (pip install pyyaml)") from None
        return JobSpec.model_validate(yaml.safe_load(text))
    return JobSpec.model_validate_json(text)


def train_command(
    spec_path: Path, out_dir: Path, *, data_root: Path | None = None, resume: bool = False
) -> int:
    try:
        spec = load_spec(spec_path)
    except (OSError, ValueError, ValidationError) as exc:
        print(f"error: {spec_path}: {exc}", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _Recorder(out_dir, resume=resume) as recorder, _interruptible() as interrupted:
        callbacks = TrainingCallbacks(
            on_layers=recorder.layers,
            on_metrics=recorder.metrics,
            on_snapshots=recorder.snapshots,
            on_progress=recorder.progress,
            should_stop=interrupted.is_set,
        )
        try:
            result = train(
                spec,
                callbacks,
                data_root=data_root,
                checkpoint_path=out_dir / "checkpoint.pt",
                resume=resume,
            )
        except Exception as exc:  # the command's contract: report and exit 1, never a traceback
            print(f"\nerror: training failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    _write_summary(
        out_dir / "summary.json", result, recorder.layer_infos, spec, time.perf_counter() - started
    )
    print(
        f"\n{result.status} after {result.steps_done}/{result.total_steps} steps: {_brief(result)}",
        file=sys.stderr,
    )
    return EXIT_CODES[result.status]


class _Recorder:
    """Appends callbacks' reports to the JSONL files and draws a progress bar on a terminal."""

    def __init__(self, out_dir: Path, *, resume: bool) -> None:
        mode = "a" if resume else "w"
        self._metrics: IO[str] = (out_dir / "metrics.jsonl").open(mode)
        self._snapshots: IO[str] = (out_dir / "snapshots.jsonl").open(mode)
        self._bar = sys.stderr.isatty()
        self._drawn_at = 0.0
        self._loss: float | None = None
        self.layer_infos: list[Layer] = []

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._metrics.close()
        self._snapshots.close()

    def layers(self, layers: list[Layer]) -> None:
        self.layer_infos = layers

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._metrics.write(_json({"step": step, **metrics}) + "\n")
        self._loss = metrics.get("train_loss", self._loss)

    def snapshots(self, step: int, snapshots: list[Snapshot]) -> None:
        self._snapshots.writelines(_json(snapshot.model_dump()) + "\n" for snapshot in snapshots)

    def progress(self, step: int, total: int) -> None:
        now = time.monotonic()
        if not self._bar or (now - self._drawn_at < 0.1 and step != total):
            return
        self._drawn_at = now
        done = int(30 * step / total)
        loss = "" if self._loss is None else f" loss {self._loss:.4f}"
        sys.stderr.write(f"\r[{'=' * done}{' ' * (30 - done)}] {step}/{total}{loss}")
        sys.stderr.flush()


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """Ctrl-C asks the run to stop (it checkpoints and returns) instead of killing it."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be set from the main thread
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        flag.set()

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_summary(
    path: Path, result: RunResult, layers: list[Layer], spec: JobSpec, seconds: float
) -> None:
    document = {
        **asdict(result),
        "elapsed_seconds": round(seconds, 3),
        "layers": [layer.model_dump() for layer in layers],
        "spec": spec.model_dump(mode="json"),
    }
    path.write_text(_json(document, indent=2) + "\n")


def _brief(result: RunResult) -> str:
    shown = ("final_val_accuracy", "best_val_accuracy", "final_val_loss", "final_train_loss")
    parts = [f"{key} {result.summary[key]:.4f}" for key in shown if key in result.summary]
    return result.reason or ", ".join(parts)


def _json(value: Any, indent: int | None = None) -> str:
    return json.dumps(_finite(value), indent=indent, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.cli", description="Train a job spec locally."
    )
    parser.add_argument("spec", type=Path, help="a JSON (or YAML) job spec")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for metrics, snapshots, summary"
    )
    parser.add_argument("--data-root", type=Path, default=None, help="where cifar10 lives")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    args = parser.parse_args(argv)
    return train_command(args.spec, args.out, data_root=args.data_root, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
