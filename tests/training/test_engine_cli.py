"""training.cli.train_command, the example specs, and the package's import surface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_support import tiny_dataset

import training.cli as cli
from training.cli import load_spec, train_command

ROOT = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = {
    "data": {"dataset": "spiral"},
    "model": {"hidden": [8]},
    "training": {"steps": 12, "batch_size": 16, "eval_every": 5, "device": "cpu"},
    "telemetry": {"snapshot_every": 5, "bins": 4},
}


@pytest.fixture(autouse=True)
def _tiny_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command loads data through the spec; give it the tiny set instead of a real one."""
    import training.loop as loop

    monkeypatch.setattr(
        loop, "load_dataset", lambda data, **kwargs: tiny_dataset("vector", input_shape=(2,))
    )


def _write(tmp_path: Path, spec: dict[str, Any], name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def test_a_successful_run_writes_metrics_snapshots_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert train_command(_write(tmp_path, SPEC), out) == 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 13))
    assert "val_accuracy" in metrics[4] and "train_loss" in metrics[0]
    snapshots = [json.loads(line) for line in (out / "snapshots.jsonl").read_text().splitlines()]
    assert {s["step"] for s in snapshots} == {1, 5, 10, 12}
    assert set(snapshots[0]) == {
        "step",
        "kind",
        "layer",
        "depth",
        "stats",
        "histogram",
        "log_histogram",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["steps_done"] == 12
    assert summary["spec"]["model"]["hidden"] == [8]
    assert [layer["name"] for layer in summary["layers"]] == ["fc1", "out"]


def test_divergence_exits_3_and_writes_valid_json(tmp_path: Path) -> None:
    spec = {
        **SPEC,
        "optimizer": {"name": "sgd", "lr": 1e4},
        "model": {"hidden": [8], "activation": "linear"},
    }
    out = tmp_path / "out"
    assert train_command(_write(tmp_path, spec), out) == 3
    lines = (out / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])  # strict JSON: the non-finite loss is written as null
    assert last["train_loss"] is None
    assert json.loads((out / "summary.json").read_text())["status"] == "diverged"


def test_a_bad_spec_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        train_command(_write(tmp_path, {**SPEC, "model": {"activation": "nope"}}), tmp_path / "out")
        == 1
    )
    assert "activation" in capsys.readouterr().err
    assert train_command(tmp_path / "missing.json", tmp_path / "out") == 1


def test_a_failing_run_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(cli, "train", broken)
    assert train_command(_write(tmp_path, SPEC), tmp_path / "out") == 1


def test_yaml_specs_are_read(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    assert load_spec(path).training.steps == 12


@pytest.mark.parametrize("name", ["mnist1d_mlp.json", "mnist1d_cnn.json"])
def test_example_specs_are_valid(name: str) -> None:
    spec = load_spec(ROOT / "examples" / name)
    assert spec.data.dataset == "mnist1d"


def test_the_types_import_without_torch() -> None:
    code = (
        "import sys, training, training.types; assert 'torch' not in sys.modules; "
        "training.train; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_ctrl_c_checkpoints_and_resume_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    original = cli._Recorder.progress

    def interrupt_at_5(self: cli._Recorder, step: int, total: int) -> None:
        original(self, step, total)
        if step == 5 and not (tmp_path / "out" / "checkpoint.pt").exists():
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cli._Recorder, "progress", interrupt_at_5)
    spec, out = _write(tmp_path, SPEC), tmp_path / "out"
    assert train_command(spec, out) == 130
    assert (out / "checkpoint.pt").exists()
    assert train_command(spec, out, resume=True) == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))
