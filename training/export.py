"""A trained model as files another program can use: weights (safetensors), TorchScript and ONNX.

The exports take raw inputs: the data set's normalization is part of the exported module, so a
caller feeds rows as they were uploaded (or generated) and gets logits back. Each export is
checked before it is kept: run on the validation rows, its outputs must match PyTorch's within
TOLERANCE, else ExportError says by how much. Pure torch (plus onnx and onnxruntime, imported
only here), so the worker decides what to do with a failure: report it, never fail the job.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from training.data import Dataset, Scaling
from training.kept import TrainedModel

TOLERANCE = 1e-4  # max |export - torch| over the validation logits
CHECK_ROWS = 4096  # validation rows an export is checked on (all of them in small sets)


class ExportError(RuntimeError):
    """An export could not be made, or its outputs differ from PyTorch's."""


class Preprocessed(nn.Module):
    """(x - shift) / scale per feature or channel, then the network."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, network: nn.Module, scaling: Scaling, input_ndim: int) -> None:
        super().__init__()
        view = (1, -1) + (1,) * (input_ndim - 2)
        self.register_buffer("shift", torch.tensor(scaling.shift).reshape(view))
        self.register_buffer("scale", torch.tensor(scaling.scale).reshape(view))
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network((x - self.shift) / self.scale)


def inference_module(trained: TrainedModel, which: str) -> nn.Module:
    """The model with `which` ("best" or "final") weights, taking raw inputs, in eval mode."""
    network = copy.deepcopy(trained.model)
    network.load_state_dict(trained.weights(which))
    scaling = trained.dataset.scaling
    module = network if scaling is None else Preprocessed(
        network, scaling, trained.dataset.x_val.dim()
    )
    return module.eval()


def raw_validation_inputs(dataset: Dataset, rows: int = CHECK_ROWS) -> torch.Tensor:
    """The validation rows as they were before normalization (what an export is fed)."""
    x = dataset.x_val[:rows].cpu()
    scaling = dataset.scaling
    if scaling is None:
        return x
    view = (1, -1) + (1,) * (x.dim() - 2)
    return x * torch.tensor(scaling.scale).reshape(view) + torch.tensor(scaling.shift).reshape(view)


def save_weights(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """safetensors: tensors only, nothing to unpickle when they are loaded."""
    from safetensors.torch import save_file

    tensors = {name: value.detach().cpu().contiguous() for name, value in state.items()}
    save_file(tensors, str(path), metadata=metadata)


def export_torchscript(module: nn.Module, inputs: torch.Tensor, path: Path) -> float:
    """Trace `module` to TorchScript at `path`; return the largest difference from PyTorch."""
    with torch.no_grad(), warnings.catch_warnings():
        # torch.jit and the TorchScript-based ONNX exporter warn that they are deprecated; they
        # are what onnxruntime and torch.jit.load users run today (checked below, not trusted).
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            traced = torch.jit.trace(module, inputs[:2], check_trace=False)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
            buffer.seek(0)
            loaded = torch.jit.load(buffer)
        except Exception as error:
            raise ExportError(f"torchscript: {_first_line(error)}") from error
        difference = _max_difference(module(inputs), loaded(inputs))
    _check(difference, "torchscript")
    path.write_bytes(buffer.getvalue())
    return difference


def export_onnx(module: nn.Module, inputs: torch.Tensor, path: Path) -> float:
    """Export `module` to ONNX at `path` (batch size free) and check it with onnxruntime."""
    import onnxruntime

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module, (inputs[:2],), str(path), input_names=["x"], output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
            )
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (outputs,) = session.run(["logits"], {"x": inputs.numpy()})
    except Exception as error:
        path.unlink(missing_ok=True)
        raise ExportError(f"onnx: {_first_line(error)}") from error
    with torch.no_grad():
        difference = _max_difference(module(inputs), torch.from_numpy(outputs))
    if not difference <= TOLERANCE:
        path.unlink(missing_ok=True)
    _check(difference, "onnx")
    return difference


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def _max_difference(expected: torch.Tensor, actual: torch.Tensor) -> float:
    if expected.shape != actual.shape:
        raise ExportError(f"output shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    return float((expected.float() - actual.float()).abs().max()) if expected.numel() else 0.0


def _check(difference: float, kind: str) -> None:
    if not difference <= TOLERANCE:  # also catches NaN
        raise ExportError(
            f"{kind}: outputs differ from PyTorch's by {difference:.3g} on the validation rows "
            f"(tolerance {TOLERANCE:g})"
        )
