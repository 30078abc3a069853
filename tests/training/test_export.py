"""What a run keeps (training/kept.py) and its exports (training/export.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from gradlab_contract.spec import JobSpec
from safetensors.torch import load_file

from training import TrainingCallbacks, train
from training.export import (
    ExportError,
    export_onnx,
    export_torchscript,
    inference_module,
    raw_validation_inputs,
    save_weights,
)
from training.kept import TrainedModel

SPECS = {
    "mlp": {"data": {"dataset": "spiral"}, "model": {"hidden": [16]},
            "training": {"steps": 60, "eval_every": 10, "batch_size": 32}},
    "cnn": {"data": {"dataset": "digits"},
            "model": {"kind": "cnn", "conv": [{"channels": 4, "pool": "max"}], "hidden": [16],
                      "batch_norm": True, "dropout": 0.1},
            "training": {"steps": 30, "eval_every": 10, "batch_size": 32}},
    "ctr": {"data": {"dataset": "ctr"}, "model": {"kind": "embedding_mlp", "hidden": [8]},
            "training": {"steps": 20, "eval_every": 10, "batch_size": 64}},
}


def _trained(name: str, **extra: object) -> tuple[TrainedModel, dict[str, float]]:
    got: list[TrainedModel] = []
    result = train(JobSpec.model_validate(SPECS[name]), TrainingCallbacks(on_trained=got.append),
                   **extra)  # type: ignore[arg-type]
    assert result.status == "succeeded" and len(got) == 1
    return got[0], result.summary


def _accuracy(logits: torch.Tensor | np.ndarray, labels: torch.Tensor) -> float:
    predicted = torch.as_tensor(logits).argmax(dim=1)
    return float((predicted == labels).float().mean())


@pytest.mark.parametrize("name", ["mlp", "cnn", "ctr"])
def test_exports_take_raw_inputs_and_match_torch(name: str, tmp_path: Path) -> None:
    trained, summary = _trained(name)
    best = inference_module(trained, "best")
    inputs = raw_validation_inputs(trained.dataset, rows=100_000)
    assert export_torchscript(best, inputs, tmp_path / "m.pt") <= 1e-4
    assert export_onnx(best, inputs, tmp_path / "m.onnx") <= 1e-4
    labels = trained.dataset.y_val
    # Raw rows through the preprocessing give back the validation accuracy the run recorded.
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    (logits,) = session.run(None, {"x": inputs.numpy()})
    assert _accuracy(logits, labels) == pytest.approx(summary["best_val_accuracy"], abs=1e-4)
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    assert _accuracy(scripted(inputs[:7]), labels[:7]) == _accuracy(best(inputs[:7]), labels[:7])


def test_best_weights_are_those_of_the_best_evaluation(tmp_path: Path) -> None:
    trained, summary = _trained("mlp")
    assert trained.best_step is not None and trained.best_step % 10 == 0
    with torch.no_grad():
        final = inference_module(trained, "final")(raw_validation_inputs(trained.dataset))
    assert _accuracy(final, trained.dataset.y_val) == pytest.approx(
        summary["final_val_accuracy"], abs=1e-4)
    save_weights(trained.weights("best"), tmp_path / "w.safetensors", {"step": "1"})
    loaded = load_file(str(tmp_path / "w.safetensors"))
    assert loaded.keys() == trained.best_state.keys()  # type: ignore[union-attr]


def test_best_survives_a_resume(tmp_path: Path) -> None:
    spec = JobSpec.model_validate(SPECS["mlp"])
    checkpoint = tmp_path / "c.pt"
    whole, _ = _trained("mlp")
    stops = iter([False] * 35 + [True])
    train(spec, TrainingCallbacks(should_stop=lambda: next(stops)), checkpoint_path=checkpoint,
          checkpoint_every=1000)
    got: list[TrainedModel] = []
    train(spec, TrainingCallbacks(on_trained=got.append), checkpoint_path=checkpoint,
          checkpoint_every=1000, resume=True)
    assert got[0].best_step == whole.best_step
    for name, value in whole.weights("best").items():
        assert torch.equal(value, got[0].weights("best")[name])


def test_a_mismatch_is_an_export_error(tmp_path: Path) -> None:
    trained, _ = _trained("mlp")
    module = inference_module(trained, "best")
    inputs = raw_validation_inputs(trained.dataset)

    class Noisy(torch.nn.Module):  # differs run to run: no export can match it
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) + torch.rand(1)

    with pytest.raises(ExportError, match="differ"):
        export_torchscript(Noisy(), inputs, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()
