"""Data augmentation (lecture section 5): random transformations of each training batch, so a
small set looks larger to the network.

The augmenter works on a batch already on its device, with a torch.Generator on that same
device, and draws one random value per example per transform: no Python loop over examples.
It never changes its input in place (the batch may be a view of the data set). Augmentation
runs after normalization, so "zero fill" fills with the training mean under standardize.

Order: crop_padding, shift, hflip, cutout, noise. Geometric moves first so cutout's hole and the
noise are not moved or half cut off by them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from gradlab_contract.shapes import DataKind, augment_problem
from gradlab_contract.spec import AugmentSpec

Augmenter = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

# Dimensions that carry position, after (batch, channels); 0 for a plain feature vector.
_SPATIAL_DIMS: dict[str, int] = {"vector": 0, "sequence": 1, "image": 2}


def make_augmenter(augment: AugmentSpec, kind: DataKind) -> Augmenter | None:
    """The batch transform a spec asks for, or None when it asks for none.

    Raises ValueError for a transform the kind of data cannot take (anything but noise on
    vectors, a flip of a sequence, anything on categorical ids), rather than skipping it silently.
    """
    if not augment.enabled:
        return None
    _check_supported(augment, kind)
    steps: list[Augmenter] = []
    if augment.crop_padding:
        steps.append(partial(random_crop, padding=augment.crop_padding))
    if augment.shift:
        steps.append(partial(random_shift, max_shift=augment.shift))
    if augment.hflip:
        steps.append(random_hflip)
    if augment.cutout:
        steps.append(partial(cutout, size=augment.cutout))
    if augment.noise_std:
        steps.append(partial(add_noise, std=augment.noise_std))
    batch_dims = 2 + _SPATIAL_DIMS[kind]

    def apply(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if batch.dim() != batch_dims or not batch.is_floating_point():
            raise ValueError(
                f"a {kind} batch must be floating point with {batch_dims} dims, "
                f"got {batch.dtype} {tuple(batch.shape)}"
            )
        for step in steps:
            batch = step(batch, generator)
        return batch

    return apply


def random_shift(x: torch.Tensor, generator: torch.Generator, *, max_shift: int) -> torch.Tensor:
    """Move each example by a random whole number of positions in [-max_shift, max_shift] along
    every spatial axis independently; what moves out is lost, what comes in is zero."""
    return _translate(x, [_random_moves(x, generator, max_shift, dim) for dim in _spatial(x)])


def random_crop(x: torch.Tensor, generator: torch.Generator, *, padding: int) -> torch.Tensor:
    """Zero-pad by ``padding`` on every side, then crop a random window of the original size.

    The window at offset o (uniform in 0..2*padding) of the padded example is the example moved
    by padding - o, uniform in [-padding, padding]: so this is computed as a zero-filled move,
    without building the padded batch. It is the same transform as a shift; the spec keeps both
    names because the lecture's CIFAR recipe is written as pad-and-crop.
    """
    return _translate(x, [_random_moves(x, generator, padding, dim) for dim in _spatial(x)])


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror left-right (the last axis) each example with probability one half."""
    chosen = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(_per_example(chosen, x), x.flip(-1), x)


def cutout(x: torch.Tensor, generator: torch.Generator, *, size: int) -> torch.Tensor:
    """Zero a size x size square (a span of ``size`` in a sequence) at a random place in each
    example, in all channels. The hole lies wholly inside the example, so exactly size**d
    positions are zeroed (size is capped at the example's extent)."""
    hole = torch.ones((), dtype=torch.bool, device=x.device)
    for dim in _spatial(x):
        length = x.shape[dim]
        width = min(size, length)
        start = torch.randint(
            0, length - width + 1, (x.shape[0],), generator=generator, device=x.device
        )
        position = torch.arange(length, device=x.device)
        inside = (position >= start[:, None]) & (position < start[:, None] + width)
        hole = hole & _along(inside, x, dim)
    return x.masked_fill(hole, 0.0)


def add_noise(x: torch.Tensor, generator: torch.Generator, *, std: float) -> torch.Tensor:
    """Add independent Gaussian noise of standard deviation ``std`` to every value."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * noise


def _check_supported(augment: AugmentSpec, kind: DataKind) -> None:
    problem = augment_problem(augment, kind)  # the same rule the service applies on submit
    if problem is not None:
        raise ValueError(f"{problem[0]}: {problem[1]}")


def _spatial(x: torch.Tensor) -> range:
    return range(2, x.dim())


def _random_moves(
    x: torch.Tensor, generator: torch.Generator, reach: int, dim: int
) -> torch.Tensor:
    """One move per example, uniform in [-reach, reach], capped at the axis length - 1: a longer
    move would leave an example of zeros only."""
    reach = min(reach, x.shape[dim] - 1)
    return torch.randint(-reach, reach + 1, (x.shape[0],), generator=generator, device=x.device)


def _translate(x: torch.Tensor, shifts: list[torch.Tensor]) -> torch.Tensor:
    """out[..., i] = x[..., i - shift] where that is inside the example, else 0; one shift per
    example and spatial axis."""
    for dim, shift in zip(_spatial(x), shifts, strict=True):
        length = x.shape[dim]
        source = torch.arange(length, device=x.device) - shift[:, None]  # (batch, length)
        inside = (source >= 0) & (source < length)
        index = _along(source.clamp(0, length - 1), x, dim).expand_as(x)
        x = x.gather(dim, index).masked_fill(~_along(inside, x, dim), 0.0)
    return x


def _along(values: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """A (batch, length) tensor viewed so that it broadcasts against x along axis ``dim``."""
    view = [x.shape[0]] + [1] * (x.dim() - 1)
    view[dim] = values.shape[1]
    return values.view(view)


def _per_example(flags: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return flags.view([x.shape[0]] + [1] * (x.dim() - 1))
