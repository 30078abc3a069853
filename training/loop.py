"""The training loop: one spec in, callbacks out, a RunResult back.

Read ``Trainer.run`` top to bottom: every iteration is one optimizer update, numbered from 1.
Step s reports the loss, accuracy, gradient norm and learning rate of update s; validation at s
runs after update s; a snapshot at s shows the weights, gradients and activations that update s
started from and computed (before the optimizer moved anything), so the three kinds agree.

Determinism: the model is initialized from the seed (in a forked global RNG, so the caller's RNG
is left alone), and batching, dropout and augmentation each draw from their own seeded
torch.Generator, saved in checkpoints. The same spec and seed give bit-identical metrics on CPU.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from gradlab_contract.models import Layer, Snapshot
from gradlab_contract.shapes import total_steps
from gradlab_contract.spec import JobSpec

from training.augment import make_augmenter
from training.batches import BatchSampler
from training.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from training.data import Dataset, load_dataset
from training.evaluate import evaluate
from training.gradients import FlatGradients, clip_gradients, gradient_norm
from training.kept import BestWeights, TrainedModel
from training.optim import build_optimizer, keeps_lr, lr_factor, penalty
from training.probes import ActivationRecorder, collect, summarize
from training.runtime import (
    denormals_flushed,
    generator,
    resolve_device,
    seeded_model,
    stream_seeds,
)
from training.step_metrics import (
    FLUSH_SECONDS,
    FLUSH_STEPS,
    MetricBuffer,
    SummaryTracker,
    first_nonfinite_loss,
    update_ratios,
)
from training.stopping import EarlyStopper
from training.types import RunResult, RunStatus, TrainingCallbacks


def train(
    spec: JobSpec,
    callbacks: TrainingCallbacks | None = None,
    *,
    dataset: Dataset | None = None,
    data_root: Path | None = None,
    upload_path: Path | None = None,
    checkpoint_path: Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    initial_weights: dict[str, torch.Tensor] | None = None,
) -> RunResult:
    """Train ``spec`` and report through ``callbacks``, all called on this thread.

    ``dataset`` is used as given, else loaded from the spec. A checkpoint is written to
    ``checkpoint_path`` every ``checkpoint_every`` steps and when should_stop() says so; with
    ``resume`` and an existing checkpoint, training continues after the checkpoint's step.
    ``initial_weights`` (a state dict of the same architecture: a warm start) replace the
    initialization; a resumed checkpoint replaces them in turn.
    """
    if checkpoint_every is not None and checkpoint_path is None:
        raise ValueError("checkpoint_every needs a checkpoint_path")
    if dataset is None:
        seed = spec.training.seed
        dataset = load_dataset(spec.data, seed=seed, data_root=data_root, upload_path=upload_path)
    device = resolve_device(spec.training.device)
    with denormals_flushed(device):
        trainer = Trainer(spec, dataset, device, callbacks or TrainingCallbacks())
        trainer.checkpoint_path, trainer.checkpoint_every = checkpoint_path, checkpoint_every
        if initial_weights is not None:
            trainer.model.load_state_dict(initial_weights)  # strict: same layers and shapes
        if resume and checkpoint_path is not None and checkpoint_path.exists():
            trainer.restore(load_checkpoint(checkpoint_path, spec))
        return trainer.run()


class Trainer:
    """The state of one run and the loop over it; ``train`` is the way in."""

    def __init__(
        self, spec: JobSpec, data: Dataset, device: torch.device, callbacks: TrainingCallbacks
    ) -> None:
        self.spec, self.device, self.callbacks = spec, device, callbacks
        self.shape = data.shape
        self.x_train, self.y_train = data.x_train.to(device), data.y_train.to(device)
        self.x_val, self.y_val = data.x_val.to(device), data.y_val.to(device)
        self.total = total_steps(spec, self.shape.n_train)
        self.model = seeded_model(spec, data).to(device)
        self.layers = self.model.layers()
        self.weights = [layer.weight for layer in self.layers]
        self.params = list(self.model.parameters())
        self.ratio_names = [f"update_ratio/{layer.name}" for layer in self.layers]
        self.optimizer = build_optimizer(self.model, self.weights, spec.optimizer)
        self.lr_factor = lr_factor(spec.schedule, self.total)
        self.constant_lr = spec.optimizer.lr if keeps_lr(spec.schedule) else None
        seeds = stream_seeds(spec.training.seed)
        self.generators = {name: generator(seeds[name], device) for name in ("dropout", "augment")}
        self.model.set_dropout_generator(self.generators["dropout"])
        batches = generator(seeds["batches"], device)
        self.sampler = BatchSampler(len(self.y_train), spec.training.batch_size, batches)
        self.augment = make_augmenter(spec.data.augment, self.shape.kind)
        self.bf16 = spec.training.precision == "bf16"
        self.grads = FlatGradients.for_params(self.params)
        self.metrics, self.summary = MetricBuffer(), SummaryTracker()
        self.data, self.best = data, BestWeights()
        self.step = 0
        early = spec.training.early_stopping
        self.stopper = EarlyStopper(early) if early is not None else None
        self.checkpoint_path: Path | None = None
        self.checkpoint_every: int | None = None
        self._checkpointed = -1
        self._snapshots: tuple[int, list[Snapshot]] | None = None
        self._flushed_at = time.perf_counter()

    def run(self) -> RunResult:
        callbacks = self.callbacks
        if callbacks.on_layers:
            callbacks.on_layers(self.layer_infos())
        while self.step < self.total:
            step = self.step + 1
            self._train_step(step)
            self.step = step
            if step % self.spec.training.eval_every == 0 or step == self.total:
                self.metrics.add_extra(step, *self._evaluate())
            if self._flush_due(step) and (diverged := self._flush()) is not None:
                return self._diverged(diverged)
            if self._checkpoint_due(step):
                self._checkpoint()
            if callbacks.on_progress:
                callbacks.on_progress(step, self.total)
            if self.stopper is not None and self.stopper.exhausted:
                return self._hand_over(self._stopped_early())
            if callbacks.should_stop is not None and callbacks.should_stop():
                return self._stop()
        return self._hand_over(self._result("succeeded", self.step))

    def _hand_over(self, result: RunResult) -> RunResult:
        """A run that succeeded (to its last step or stopped early) hands over its model."""
        if self.callbacks.on_trained:
            self.callbacks.on_trained(self.trained())
        return result

    def _train_step(self, step: int) -> None:
        started = time.perf_counter()
        probing = self._is_snapshot_step(step)
        x, y = self._batch()
        record = probing and "activation" in self.spec.telemetry.kinds
        logits, loss, activations = self._forward(x, y, record=record)
        extra = penalty(self.weights, self.spec.regularization)  # trained on, not in train_loss
        self._zero_grad()
        (loss if extra is None else loss + extra).backward()
        if probing:
            self._probe(step, activations)  # the weights and gradients this update starts from
        norm = self._gradient_norm()
        lr = self._set_lr(step)
        before = [w.detach().clone() for w in self.weights] if probing else None
        self.optimizer.step()
        host = {"lr": lr, "step_time": time.perf_counter() - started}
        self.metrics.add(
            step, loss=loss.detach(), logits=logits.detach(), targets=y, gradient_norm=norm,
            host=host,
        )
        if before is not None:
            self.metrics.add_extra(step, self.ratio_names, update_ratios(self.weights, before))

    def _zero_grad(self) -> None:
        if self.grads is not None:
            self.grads.zero()
        else:
            self.optimizer.zero_grad(set_to_none=True)

    def _gradient_norm(self) -> torch.Tensor:
        """The global gradient norm, taken before clipping (which needs it now)."""
        clip = self.spec.training.grad_clip
        if self.grads is not None:
            return self.grads.norm() if clip is None else self.grads.clip(clip)
        grads = [p.grad for p in self.params if p.grad is not None]
        return gradient_norm(grads) if clip is None else clip_gradients(grads, clip)

    def _forward(
        self, x: torch.Tensor, y: torch.Tensor, *, record: bool
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Logits, loss and (when recording) the hidden layers' activations."""
        if not record and not self.bf16:  # the common step: no context managers to enter
            logits = self.model(x)
            return logits, F.cross_entropy(logits, y), {}
        with ActivationRecorder(self.layers if record else []) as recorder, self._autocast():
            logits = self.model(x)
        if logits.dtype != torch.float32:
            logits = logits.float()  # under bf16 autocast: loss and metrics in fp32
        return logits, F.cross_entropy(logits, y), recorder.outputs

    def _autocast(self) -> AbstractContextManager[object]:
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _set_lr(self, step: int) -> float:
        """The schedule is a pure function of the step (no scheduler state to checkpoint), and
        setting a float costs less than LambdaLR.step(). A constant lr is the one the optimizer
        was built with (and a checkpoint restores): nothing to set, ~1% of a small MLP's step."""
        if self.constant_lr is not None:
            return self.constant_lr
        lr = self.spec.optimizer.lr * self.lr_factor(step - 1)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        indices = self.sampler.next()
        x, y = self.x_train[indices], self.y_train[indices]
        if self.augment is not None:
            x = self.augment(x, self.generators["augment"])
        return x, y

    def _is_snapshot_step(self, step: int) -> bool:
        every, kinds = self.spec.telemetry.snapshot_every, self.spec.telemetry.kinds
        return bool(kinds) and (step == 1 or step % every == 0 or step == self.total)

    def _probe(self, step: int, activations: dict[str, torch.Tensor]) -> None:
        telemetry = self.spec.telemetry
        probes = collect(self.layers, list(telemetry.kinds), activations)
        activation = self.spec.model.activation
        snapshots = summarize(step, probes, bins=telemetry.bins, activation=activation)
        self._snapshots = (step, snapshots)

    def _evaluate(self) -> tuple[list[str], torch.Tensor]:
        with_auc = self.shape.kind == "categorical" and self.shape.num_classes == 2
        metrics = evaluate(
            self.model, self.x_val, self.y_val, autocast=self._autocast, with_auc=with_auc
        )
        return list(metrics), torch.stack([value.float() for value in metrics.values()])

    def _flush_due(self, step: int) -> bool:
        return (
            self._snapshots is not None
            or step % self.spec.training.eval_every == 0
            or len(self.metrics) >= FLUSH_STEPS
            or step == self.total
            or self._checkpoint_due(step)
            or time.perf_counter() - self._flushed_at >= FLUSH_SECONDS
        )

    def _flush(self) -> int | None:
        """Report pending metrics (then the pending snapshot) up to the first non-finite training
        loss; return that step, or None."""
        drained = self.metrics.drain()
        diverged = first_nonfinite_loss(drained)
        for step, metrics in drained:
            if diverged is not None and step > diverged:
                break
            self.summary.update(metrics)
            if step == self.step and self.stopper is None:  # flushed at once, with its weights
                self.best.offer(step, metrics, self.model)
            if self.callbacks.on_metrics:
                self.callbacks.on_metrics(step, metrics)
            self._watch_best(step, metrics)
        pending, self._snapshots = self._snapshots, None
        wanted = pending and pending[1] and (diverged is None or pending[0] <= diverged)
        if wanted and pending and self.callbacks.on_snapshots:
            self.callbacks.on_snapshots(*pending)
        self._flushed_at = time.perf_counter()
        return diverged

    def _checkpoint_due(self, step: int) -> bool:
        return self.checkpoint_every is not None and step % self.checkpoint_every == 0

    def _checkpoint(self) -> None:
        """Write the state after self.step; every metric up to it has been reported already."""
        if self.checkpoint_path is None or self._checkpointed == self.step:
            return
        save_checkpoint(self.checkpoint_path, self.state_dict())
        self._checkpointed = self.step
        if self.callbacks.on_checkpoint:
            self.callbacks.on_checkpoint(self.step)

    def _stop(self) -> RunResult:
        diverged = self._flush()
        if diverged is not None:
            return self._diverged(diverged)
        self._checkpoint()
        return self._result("stopped", self.step, f"stopped on request after step {self.step}")

    def _watch_best(self, step: int, metrics: dict[str, float]) -> None:
        """Feed early stopping; an evaluation step is flushed in its own iteration, so on_best
        sees the model holding the weights that scored best."""
        if self.stopper is None:
            return
        self.stopper.observe(step, metrics)
        if not self.stopper.improved:
            return
        if step == self.step:  # the model holds this evaluation's weights: the ones kept
            self.best.take(step, self.model)
        if self.callbacks.on_best:
            self.callbacks.on_best(step)

    def _stopped_early(self) -> RunResult:
        assert self.stopper is not None
        return self._result("succeeded", self.step, self.stopper.reason(self.step),
                            stopped_early=True)

    def _diverged(self, step: int) -> RunResult:
        return self._result("diverged", step, f"non-finite training loss at step {step}")

    def _result(
        self, status: RunStatus, steps_done: int, reason: str | None = None, *,
        stopped_early: bool = False,
    ) -> RunResult:
        summary = dict(self.summary.values)
        best_step = self.stopper.best_step if self.stopper is not None else None
        return RunResult(status, steps_done, self.total, str(self.device), summary, reason,
                         stopped_early=stopped_early, best_step=best_step)

    def trained(self) -> TrainedModel:
        """The finished model, moved to the CPU in eval mode, with the best step's weights."""
        model = self.model.to("cpu").eval()
        return TrainedModel(model, self.step, self.best.step, self.best.state, self.data)

    def layer_infos(self) -> list[Layer]:
        return [
            Layer(
                name=layer.name, type=layer.type, shape=list(layer.weight.shape),
                parameters=layer.parameters, depth=layer.depth,
            )
            for layer in self.layers
        ]

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, numbers and dicts only: loadable with torch.load(weights_only=True)."""
        return {
            "step": self.step,
            "fingerprint": fingerprint(self.spec),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "generators": {name: g.get_state() for name, g in self.generators.items()},
            "summary": self.summary.state_dict(),
            "best": self.best.state_dict(),
            **({"stopper": self.stopper.state_dict()} if self.stopper is not None else {}),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        for name, stream in self.generators.items():
            stream.set_state(state["generators"][name])
        self.summary.load_state_dict(state["summary"])
        self.best.load_state_dict(state.get("best", {}))
        if self.stopper is not None and "stopper" in state:
            self.stopper.load_state_dict(state["stopper"])
        self.step = self._checkpointed = int(state["step"])
