"""The loops bench/overhead.py measures the engine against: a bare hand-written loop, and the
same loop instrumented as the peers instrument it.

- WandbWatchLoop emulates `wandb.watch(model, log=..., log_freq=K)` with `wandb.log` of loss and
  accuracy every step, as wandb 0.2x's wandb/integration/torch/wandb_torch.py does it: a tensor
  hook on every parameter that runs on every backward and, every K-th call, logs the gradient's
  statistics; a forward hook on the model that, every K-th forward, logs every parameter's.
  "Logging a tensor's statistics" is what `log_tensor_stats` does: flatten, drop NaN and Inf,
  `.min().item()` and `.max().item()` for the bounds, a 64-bin `histc`, copy to the host, and a
  `wandb.Histogram` row (counts and bin edges as lists). `wandb.log` reads loss and accuracy
  with `.item()` each step and the row is serialized to JSON (wandb hands it to its service
  process; JSON stands for that copy). No network, no files: what runs in the training process.
- TensorBoardLoop uses TensorBoard's real SummaryWriter (the `bench` extra): `add_scalar` of
  loss and accuracy every step and `add_histogram` of every parameter's gradient and values
  every K steps, into a temporary folder.

Kinds map as far as the peers go: "gradient" -> gradients, "weight" -> parameters; neither peer
records activations, so rows whose kinds include activations give the engine more to do.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from typing import Any

import torch
import torch.nn.functional as F
from gradlab_contract.spec import JobSpec

from training.data import Dataset
from training.evaluate import EVAL_BATCH
from training.model import build_model

WANDB_BINS = 64  # wandb.watch's default num_bins


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
            y = data.y_train[indices]
            logits = self.model(data.x_train[indices])
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.after_backward()
            self.optimizer.step()
            self.after_step(loss, logits, y)
            if self.step % self.eval_every == 0:
                validate(self.model, data)

    def after_backward(self) -> None:
        """What an instrumented loop does between backward and the update."""

    def after_step(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """What an instrumented loop logs once the step is done."""

    def close(self) -> None:
        """Release what the instrumentation holds."""


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


class WandbWatchLoop(BareLoop):
    """The bare loop under wandb.watch(log=..., log_freq=every) and a wandb.log per step."""

    def __init__(self, spec: JobSpec, data: Dataset, every: int, kinds: tuple[str, ...]) -> None:
        super().__init__(spec, data)
        self.every, self.pending, self.rows = every, {}, io.StringIO()
        self.started = time.time()
        self.handles: list[Any] = []
        if "gradient" in kinds:
            for name, parameter in self.model.named_parameters():
                self.handles.append(parameter.register_hook(self._gradient_hook(name)))
        if "weight" in kinds:
            self.forwards = 0
            self.handles.append(self.model.register_forward_hook(self._parameters_hook))

    def _gradient_hook(self, name: str) -> Any:
        calls = [0]

        def hook(grad: torch.Tensor) -> None:
            calls[0] += 1
            if calls[0] % self.every == 0:  # wandb's log_track_update
                self._log_tensor_stats(grad.data, f"gradients/{name}")

        return hook

    def _parameters_hook(self, module: torch.nn.Module, *_: Any) -> None:
        self.forwards += 1
        if self.forwards % self.every == 0:
            for name, parameter in module.named_parameters():
                self._log_tensor_stats(parameter.data, f"parameters/{name}")

    def _log_tensor_stats(self, tensor: torch.Tensor, name: str) -> None:
        flat = tensor.reshape(-1)
        flat = flat[~torch.isnan(flat)]
        flat = flat[~torch.isinf(flat)]
        if flat.numel() == 0:
            return
        low, high = flat.min().item(), flat.max().item()
        if low == high:
            low, high = low - 0.5, high + 0.5
        counts = flat.histc(bins=WANDB_BINS, min=low, max=high).cpu().detach().clone()
        edges = torch.linspace(low, high, steps=WANDB_BINS + 1)
        self.pending[name] = {"_type": "histogram", "values": counts.tolist(),
                              "bins": edges.tolist()}

    def after_step(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        accuracy = (logits.argmax(dim=1) == y).float().mean()
        row = {"loss": loss.item(), "accuracy": accuracy.item(), **self.pending,
               "_step": self.step, "_runtime": time.time() - self.started,
               "_timestamp": time.time()}
        self.rows.write(json.dumps(row) + "\n")
        self.pending = {}
        if self.rows.tell() > 1 << 24:  # keep memory flat: the service process took the rows
            self.rows = io.StringIO()

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


class TensorBoardLoop(BareLoop):
    """The bare loop logging to TensorBoard: scalars every step, histograms every `every`."""

    def __init__(self, spec: JobSpec, data: Dataset, every: int, kinds: tuple[str, ...]) -> None:
        from torch.utils.tensorboard import SummaryWriter  # the bench extra: pip install .[bench]

        super().__init__(spec, data)
        self.every = every
        self.gradients, self.weights = "gradient" in kinds, "weight" in kinds
        self.folder = tempfile.TemporaryDirectory(prefix="gradlab-bench-tb-")
        self.writer = SummaryWriter(self.folder.name)

    def after_backward(self) -> None:
        if self.gradients and (self.step % self.every == 0):
            for name, parameter in self.model.named_parameters():
                if parameter.grad is not None:
                    self.writer.add_histogram(f"gradients/{name}", parameter.grad, self.step)

    def after_step(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        accuracy = (logits.argmax(dim=1) == y).float().mean()
        self.writer.add_scalar("loss", loss.item(), self.step)
        self.writer.add_scalar("accuracy", accuracy.item(), self.step)
        if self.weights and self.step % self.every == 0:
            for name, parameter in self.model.named_parameters():
                self.writer.add_histogram(f"parameters/{name}", parameter, self.step)

    def close(self) -> None:
        self.writer.close()
        self.folder.cleanup()
