"""Early stopping: watch one validation metric and say when it stopped improving.

Pure Python over the host floats the loop reports (no device sync of its own): the loop feeds
every reported metric row, and evaluation steps are flushed in the iteration that evaluated, so
the best step's weights are the ones the model holds when `improved` turns True (callbacks'
on_best). Patience counts evaluations, the steps that report the metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gradlab_contract.spec import EarlyStoppingSpec


@dataclass
class EarlyStopper:
    spec: EarlyStoppingSpec
    best: float | None = None
    best_step: int | None = None
    waited: int = 0  # evaluations since the best one
    improved: bool = False  # the last observed evaluation was a new best

    def observe(self, step: int, metrics: dict[str, float]) -> None:
        value = metrics.get(self.spec.metric)
        self.improved = False
        if value is None:
            return
        self.improved = math.isfinite(value) and self._better(value)
        if self.improved:
            self.best, self.best_step, self.waited = value, step, 0
        else:
            self.waited += 1

    @property
    def exhausted(self) -> bool:
        """Patience ran out: `patience` evaluations in a row without improvement."""
        return self.waited >= self.spec.patience

    def reason(self, step: int) -> str:
        return (f"early stopping: {self.spec.metric} did not improve by more than "
                f"{self.spec.min_delta:g} for {self.waited} evaluations (best {self.best:.4g} "
                f"at step {self.best_step}; stopped after step {step})")

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.spec.direction == "min":
            return value < self.best - self.spec.min_delta
        return value > self.best + self.spec.min_delta

    def state_dict(self) -> dict[str, float | int | None]:
        return {"best": self.best, "best_step": self.best_step, "waited": self.waited}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        best, best_step, waited = state.get("best"), state.get("best_step"), state.get("waited")
        self.best = None if best is None else float(best)
        self.best_step = None if best_step is None else int(best_step)
        self.waited = int(waited or 0)
