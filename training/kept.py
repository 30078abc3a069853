"""What a run keeps of its model: the final weights and those of the best evaluation step.

The best step is the one with the highest validation accuracy (a tie goes to the lower
validation loss, then to the earlier step); with training.early_stopping it is early stopping's
best step (its metric, mode and min_delta), so the kept weights are those it reports. The best
weights are copied to the CPU when found, and saved in checkpoints, so a resumed run still knows
the best step before the checkpoint. `BestWeights.step` is the one answer to "which step is
best" that the rest of the core reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from training.data import Dataset

PRIMARY, TIEBREAK = "val_accuracy", "val_loss"


class BestWeights:
    def __init__(self) -> None:
        self.step: int | None = None
        self.score: tuple[float, float] | None = None  # (accuracy, -loss): higher is better
        self.state: dict[str, torch.Tensor] | None = None

    def offer(self, step: int, metrics: dict[str, float], model: nn.Module) -> bool:
        """Keep `model`'s weights when step `step`'s validation metrics beat the best so far."""
        accuracy, loss = metrics.get(PRIMARY), metrics.get(TIEBREAK)
        if accuracy is None or not math.isfinite(accuracy):
            return False
        score = (accuracy, -loss if loss is not None and math.isfinite(loss) else -math.inf)
        if self.score is not None and score <= self.score:
            return False
        self.take(step, model, score)
        return True

    def take(self, step: int, model: nn.Module, score: tuple[float, float] | None = None) -> None:
        """Keep `model`'s weights as the best: early stopping, when set, judges by its own
        metric, mode and min_delta, and the kept best step must be the one it reports."""
        self.step, self.score = step, score
        self.state = {name: value.detach().to("cpu", copy=True)
                      for name, value in model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        if self.step is None or self.state is None:
            return {}
        score = list(self.score) if self.score is not None else None
        return {"step": self.step, "score": score, "weights": self.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.step = int(state["step"])
        if state.get("score") is not None:
            accuracy, loss = state["score"]
            self.score = (float(accuracy), float(loss))
        self.state = dict(state["weights"])


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A finished run's model, handed to TrainingCallbacks.on_trained: the network with its
    final weights (on the CPU, in eval mode), the best step's weights, and the data it was
    trained on (the validation rows check an export; the scaling is its preprocessing)."""

    model: nn.Module
    final_step: int
    best_step: int | None
    best_state: dict[str, torch.Tensor] | None
    dataset: Dataset

    def weights(self, which: str) -> dict[str, torch.Tensor]:
        """"final" or "best" (the final ones when no evaluation was finite)."""
        if which == "best" and self.best_state is not None:
            return self.best_state
        return {name: value.detach().clone() for name, value in self.model.state_dict().items()}

    def step_of(self, which: str) -> int:
        if which == "best" and self.best_step is not None:
            return self.best_step
        return self.final_step
