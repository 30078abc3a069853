"""Augmentation: each transform does what its name says, draws only from the generator it is
given, never changes its input, and is off unless asked for."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from gradlab_contract.shapes import DataKind
from gradlab_contract.spec import AugmentSpec

from training.augment import Augmenter, make_augmenter

BATCH = 64


def augmenter(kind: DataKind, **settings: Any) -> Augmenter:
    made = make_augmenter(AugmentSpec(**settings), kind)
    assert made is not None
    return made


def generator(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def positive_batch(*shape: int) -> torch.Tensor:
    """Distinct non-zero values, so a zero can only be fill and a value has one position."""
    return torch.arange(1, BATCH * torch.Size(shape).numel() + 1, dtype=torch.float32).view(
        BATCH, *shape
    )


def moved(example: torch.Tensor, moves: tuple[int, ...]) -> torch.Tensor:
    """The example moved by ``moves`` along its spatial axes, zero filled (reference version)."""
    out = example
    for axis, move in enumerate(moves, start=1):
        out = torch.roll(out, move, dims=axis)
        length = out.shape[axis]
        lost = range(move) if move >= 0 else range(length + move, length)
        for index in lost:
            out = out.index_fill(axis, torch.tensor([index]), 0.0)
    return out


def find_move(before: torch.Tensor, after: torch.Tensor, reach: int) -> tuple[int, ...] | None:
    spatial = before.dim() - 1
    candidates = torch.cartesian_prod(*[torch.arange(-reach, reach + 1)] * spatial).view(
        -1, spatial
    )
    for move in candidates.tolist():
        if torch.equal(moved(before, tuple(move)), after):
            return tuple(move)
    return None


@pytest.mark.parametrize("kind", ["vector", "sequence", "image", "categorical"])
def test_nothing_is_enabled_by_default(kind: DataKind) -> None:
    assert make_augmenter(AugmentSpec(), kind) is None


@pytest.mark.parametrize("shape", [(2, 12), (2, 6, 6)], ids=["sequence", "image"])
def test_shift_moves_each_example_within_reach_with_zero_fill(shape: tuple[int, ...]) -> None:
    kind: DataKind = "sequence" if len(shape) == 2 else "image"
    x = positive_batch(*shape)
    out = augmenter(kind, shift=2)(x, generator())
    moves = [find_move(before, after, reach=2) for before, after in zip(x, out, strict=True)]
    assert None not in moves
    assert len(set(moves)) > 3  # examples move independently, so most really move


def test_a_shift_longer_than_the_example_still_leaves_content() -> None:
    out = augmenter("sequence", shift=64)(positive_batch(1, 40), generator())
    assert (out != 0).any(dim=-1).all()


@pytest.mark.parametrize("shape", [(3, 10), (3, 8, 8)], ids=["sequence", "image"])
def test_crop_padding_is_a_window_of_the_zero_padded_example(shape: tuple[int, ...]) -> None:
    kind: DataKind = "sequence" if len(shape) == 2 else "image"
    x = positive_batch(*shape)
    out = augmenter(kind, crop_padding=2)(x, generator())
    assert out.shape == x.shape
    padded = F.pad(x, [2, 2] * (len(shape) - 1))
    offsets = set()
    for example, result in zip(padded, out, strict=True):
        windows = [
            offset
            for offset in torch.cartesian_prod(*[torch.arange(5)] * (len(shape) - 1))
            .view(-1, len(shape) - 1)
            .tolist()
            if torch.equal(_window(example, offset, shape[1:]), result)
        ]
        assert len(windows) == 1
        offsets.add(tuple(windows[0]))
    assert len(offsets) > 3


def _window(example: torch.Tensor, offset: list[int], size: tuple[int, ...]) -> torch.Tensor:
    index = (slice(None), *(slice(o, o + s) for o, s in zip(offset, size, strict=True)))
    return example[index]


def test_hflip_mirrors_about_half_the_examples_and_leaves_the_rest() -> None:
    x = torch.randn(200, 3, 5, 5)
    out = augmenter("image", hflip=True)(x, generator())
    flipped = torch.tensor([torch.equal(o, e.flip(-1)) for o, e in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, e) for o, e in zip(out, x, strict=True)])
    assert torch.all(flipped ^ kept)  # each exactly one of the two
    assert 0.35 < flipped.float().mean() < 0.65


def test_noise_is_additive_gaussian_of_the_given_std() -> None:
    x = torch.full((BATCH, 2, 50), 3.0)
    out = augmenter("sequence", noise_std=0.5)(x, generator())
    noise = out - x
    assert abs(noise.mean().item()) < 0.02
    assert abs(noise.std().item() - 0.5) < 0.02


def test_noise_is_all_a_vector_takes() -> None:
    x = torch.zeros(BATCH, 2)
    assert not torch.equal(augmenter("vector", noise_std=0.1)(x, generator()), x)
    for settings in ({"shift": 1}, {"crop_padding": 1}, {"cutout": 1}, {"hflip": True}):
        with pytest.raises(ValueError, match="only noise_std"):
            make_augmenter(AugmentSpec(**settings), "vector")


def test_cutout_zeroes_one_square_in_every_channel_of_each_image() -> None:
    x = positive_batch(3, 10, 10)
    out = augmenter("image", cutout=4)(x, generator())
    zeros = out == 0
    assert torch.equal(zeros[:, 0], zeros[:, 1]) and torch.equal(zeros[:, 0], zeros[:, 2])
    for hole in zeros[:, 0]:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert hole.sum() == 16 and len(rows) == len(cols) == 4
        assert rows[-1] - rows[0] == 3 and cols[-1] - cols[0] == 3  # contiguous
    assert torch.equal(out[~zeros], x[~zeros])
    assert len({tuple(h.nonzero()[0].tolist()) for h in zeros[:, 0]}) > 5  # the place varies


def test_cutout_on_a_sequence_zeroes_one_span_and_is_capped_at_its_length() -> None:
    x = positive_batch(1, 20)
    spans = (augmenter("sequence", cutout=5)(x, generator()) == 0).squeeze(1)
    for span in spans:
        where = span.nonzero().flatten()
        assert len(where) == 5 and where[-1] - where[0] == 4
    assert len({int(span.int().argmax()) for span in spans}) > 5
    whole = augmenter("sequence", cutout=32)(positive_batch(1, 20), generator())
    assert torch.all(whole == 0)


def test_same_generator_seed_same_result_other_seed_other_result() -> None:
    apply = augmenter("image", shift=2, crop_padding=1, hflip=True, cutout=3, noise_std=0.1)
    x = torch.randn(BATCH, 3, 8, 8)
    first, again = apply(x, generator(7)), apply(x, generator(7))
    assert torch.equal(first, again)
    assert not torch.equal(first, apply(x, generator(8)))
    assert first.shape == x.shape and first.dtype == x.dtype


def test_the_input_batch_is_never_changed() -> None:
    x = torch.randn(BATCH, 3, 8, 8)
    before = x.clone()
    augmenter("image", shift=2, crop_padding=1, hflip=True, cutout=3, noise_std=0.1)(x, generator())
    assert torch.equal(x, before)


def test_transforms_a_kind_cannot_take_are_refused() -> None:
    with pytest.raises(ValueError, match="categorical"):
        make_augmenter(AugmentSpec(noise_std=0.1), "categorical")
    with pytest.raises(ValueError, match="hflip"):
        make_augmenter(AugmentSpec(hflip=True), "sequence")


def test_a_batch_of_the_wrong_rank_or_type_is_refused() -> None:
    apply = augmenter("image", noise_std=0.1)
    with pytest.raises(ValueError, match="4 dims"):
        apply(torch.zeros(BATCH, 8, 8), generator())
    with pytest.raises(ValueError, match="floating point"):
        apply(torch.zeros(BATCH, 1, 8, 8, dtype=torch.int64), generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_the_batch_device_with_a_device_generator() -> None:
    apply = augmenter("image", shift=2, crop_padding=1, hflip=True, cutout=3, noise_std=0.1)
    x = torch.randn(BATCH, 3, 8, 8, device="cuda")
    first = apply(x, generator(3, "cuda"))
    assert first.device == x.device
    assert torch.equal(first, apply(x, generator(3, "cuda")))
