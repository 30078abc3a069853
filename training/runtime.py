"""What a run needs around the loop: its device, a seeded model, its RNG streams."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from gradlab_contract.spec import JobSpec

from training.data import Dataset
from training.initialization import initialize
from training.model import ProbedNetwork
from training.models import build_network


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when there is one; asking for CUDA without one is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("training.device is 'cuda' but this machine has no CUDA device")
    return torch.device(name)


@contextmanager
def denormals_flushed(device: torch.device) -> Iterator[None]:
    """Subnormal floats are ~100x slower on x86 CPUs; a deep net initialized with std 0.01 is
    full of them and trains ~4x slower. Flushing them to zero changes no result that matters.
    The flag is per thread and has no getter: it is set for the run and cleared after it."""
    if device.type != "cpu":
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def seeded_model(spec: JobSpec, data: Dataset) -> ProbedNetwork:
    """The spec's network, initialized from the spec's seed.

    PyTorch's default initialization draws from the global CPU RNG: it is seeded inside a fork,
    which gives the caller its RNG state back. (Not torch.manual_seed: that also queues a CUDA
    seeding and records a traceback for it, ~1.5 ms a run.)
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(spec.training.seed)
        model = build_network(spec.model, data.shape)
        initialize(model, spec.model.init, spec.model.activation)
    return model


def generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def stream_seeds(seed: int) -> dict[str, int]:
    """One seed per random stream: batches, dropout and augmentation draw independently, so
    turning on augmentation does not change the batches (and no two job seeds share a stream)."""
    return {"batches": 4 * seed, "dropout": 4 * seed + 1, "augment": 4 * seed + 2}
