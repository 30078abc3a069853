"""Training batches: a fixed batch size drawn from a stream of seeded permutations.

Each pass over the data is a fresh permutation; the last batch of a pass is topped up from the
next one, so every batch has the same size (cheap per-step bookkeeping, no one-example batches
that batch norm cannot handle) while the number of steps stays shapes.total_steps.
"""

from __future__ import annotations

from typing import Any

import torch


class BatchSampler:
    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n = n
        self.batch_size = min(batch_size, n)
        self.generator = generator
        self.order = self._permutation()
        self.cursor = 0

    def _permutation(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=self.generator, device=self.generator.device)

    def next(self) -> torch.Tensor:
        """Indices of the next batch."""
        end = self.cursor + self.batch_size
        if end <= self.n:
            indices = self.order[self.cursor : end]
            self.cursor = end
            return indices
        head = self.order[self.cursor :]
        self.order = self._permutation()
        self.cursor = self.batch_size - len(head)
        return torch.cat([head, self.order[: self.cursor]])

    def state_dict(self) -> dict[str, Any]:
        generator = self.generator.get_state()
        return {"order": self.order.cpu(), "cursor": self.cursor, "generator": generator}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order = state["order"].to(self.generator.device)
        self.cursor = int(state["cursor"])
        self.generator.set_state(state["generator"])
