"""The classic two-dimensional spiral of CS231n (https://cs231n.github.io/neural-networks-case-study/):
one arm per class, not linearly separable, so a linear model fails and a small MLP succeeds."""

from __future__ import annotations

import numpy as np
from gradlab_contract.spec import SpiralOptions

from training.data._arrays import Pool, rng_for

# Each arm turns through this many radians, as in the original.
_TURN = 4.0


def generate(options: SpiralOptions, seed: int) -> Pool:
    """``points`` per class, radius growing linearly along each arm, angle jittered by ``noise``."""
    rng = rng_for(seed, "spiral")
    classes, points = options.classes, options.points
    radius = np.tile(np.linspace(0.0, 1.0, points), classes)
    arm = np.repeat(np.arange(classes), points)
    along = np.tile(np.linspace(0.0, _TURN, points), classes)
    angle = arm * _TURN + along + rng.standard_normal(classes * points) * options.noise
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return Pool(x.astype(np.float32), arm.astype(np.int64))
