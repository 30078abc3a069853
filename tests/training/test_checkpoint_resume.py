"""Checkpoints: atomic, safe to load, complete enough that a resumed run equals an unbroken one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from engine_support import Recorder, make_spec, tiny_dataset

import training.checkpoint as checkpoint
from training import train
from training.checkpoint import CheckpointError, fingerprint, load_checkpoint, save_checkpoint

# Dropout, batch norm, a schedule and Adam: every kind of state a resume must restore.
SECTIONS: dict[str, Any] = {
    "model": {"hidden": [12, 12], "dropout": 0.2, "batch_norm": True},
    "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
    "schedule": {"name": "cosine", "warmup_steps": 4},
    "training": {"steps": 30, "batch_size": 20, "eval_every": 5, "seed": 3},
    "telemetry": {"snapshot_every": 10},
}


def test_a_resumed_run_equals_an_unbroken_one(tmp_path: Path) -> None:
    data, spec, path = tiny_dataset(), make_spec(**SECTIONS), tmp_path / "run.pt"
    unbroken = Recorder()
    expected = train(spec, unbroken.callbacks(), dataset=data)

    first = Recorder(stop_after=15)
    stopped = train(
        spec, first.callbacks(), dataset=data, checkpoint_path=path, checkpoint_every=15
    )
    assert stopped.status == "stopped" and stopped.steps_done == 15
    assert first.checkpoints == [15]  # the stop at a checkpoint step writes it once

    second = Recorder()
    resumed = train(spec, second.callbacks(), dataset=data, checkpoint_path=path, resume=True)
    assert resumed.status == "succeeded" and resumed.steps_done == 30
    assert sorted(second.metrics) == list(range(16, 31))
    expected_tail = {step: m for step, m in unbroken.without_timing().items() if step > 15}
    assert second.without_timing() == expected_tail
    assert second.snapshots == {s: v for s, v in unbroken.snapshots.items() if s > 15}
    assert resumed.summary == expected.summary  # best_* carried over from the first attempt


def test_metrics_up_to_a_checkpoint_are_reported_before_it(tmp_path: Path) -> None:
    recorder = Recorder()
    spec = make_spec(training={"steps": 12, "eval_every": 100}, telemetry={"snapshot_every": 100})
    train(
        spec,
        recorder.callbacks(),
        dataset=tiny_dataset(),
        checkpoint_path=tmp_path / "c.pt",
        checkpoint_every=4,
    )
    assert recorder.checkpoints == [4, 8, 12]
    for step in recorder.checkpoints:
        position = recorder.events.index(("checkpoint", step))
        reported = {s for kind, s in recorder.events[:position] if kind == "metrics"}
        assert reported == set(range(1, step + 1))


def test_stopping_writes_a_checkpoint_then_reports_stopped(tmp_path: Path) -> None:
    recorder = Recorder(stop_after=6)
    path = tmp_path / "c.pt"
    result = train(make_spec(), recorder.callbacks(), dataset=tiny_dataset(), checkpoint_path=path)
    assert result.status == "stopped" and recorder.checkpoints == [6]
    assert load_checkpoint(path, make_spec())["step"] == 6


def test_checkpoints_load_with_weights_only_and_hold_plain_data(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    train(make_spec(**SECTIONS), dataset=tiny_dataset(), checkpoint_path=path, checkpoint_every=10)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 30 and state["format"] == checkpoint.FORMAT
    assert set(state) >= {"model", "optimizer", "sampler", "generators", "summary", "fingerprint"}
    assert all(
        isinstance(v, torch.Tensor) and v.dtype == torch.uint8 for v in state["generators"].values()
    )
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_an_interrupted_write_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, spec = tmp_path / "c.pt", make_spec()
    save_checkpoint(path, {"step": 1, "fingerprint": fingerprint(spec)})

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "fingerprint": fingerprint(spec)})
    assert load_checkpoint(path, spec)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_resuming_another_spec_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    train(
        make_spec(training={"steps": 5}),
        dataset=tiny_dataset(),
        checkpoint_path=path,
        checkpoint_every=5,
    )
    other = make_spec(training={"steps": 10}, model={"hidden": [16, 8]})
    with pytest.raises(CheckpointError, match="different"):
        train(other, dataset=tiny_dataset(), checkpoint_path=path, resume=True)
    longer = train(
        make_spec(training={"steps": 10}), dataset=tiny_dataset(), checkpoint_path=path, resume=True
    )
    assert longer.steps_done == 10  # more steps is the same run, continued


def test_resume_without_a_checkpoint_starts_fresh(tmp_path: Path) -> None:
    recorder = Recorder()
    train(
        make_spec(training={"steps": 3}),
        recorder.callbacks(),
        dataset=tiny_dataset(),
        checkpoint_path=tmp_path / "none.pt",
        resume=True,
    )
    assert sorted(recorder.metrics) == [1, 2, 3]
