"""gradlab's training core: pure PyTorch, no HTTP, queue, database or settings.

``train(spec, callbacks)`` runs a job and reports through TrainingCallbacks. The types import
without torch (the service and diagnosis may read them); ``train`` loads torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training.types import RunResult, TrainingCallbacks

if TYPE_CHECKING:
    from training.loop import train

__all__ = ["RunResult", "TrainingCallbacks", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from training.loop import train

        return train
    raise AttributeError(f"module 'training' has no attribute {name!r}")
