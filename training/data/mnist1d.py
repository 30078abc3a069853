"""MNIST-1D (Greydanus, 2020), generated offline by the mnist1d package.

Only ``mnist1d.data.make_dataset`` is used: ``get_dataset`` downloads, and a worker must never
reach the network.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
from gradlab_contract.spec import Mnist1dOptions

from training.data._arrays import Split, rng_for

CLASSES = 10
SEQUENCE_LENGTH = 40


def generate(options: Mnist1dOptions, seed: int, n_train: int, n_val: int) -> Split:
    """The generator's own 80/20 split, its test part as the validation set, inputs (N, 1, 40).

    It makes ``samples // 10`` sequences per class, so for a sample count that is not a multiple
    of ten we generate the next multiple and cut both parts to the sizes shapes.data_shape promises.
    """
    # Imported here: mnist1d pulls in matplotlib and requests, which only this set needs.
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = math.ceil(options.samples / CLASSES) * CLASSES
    args.seed = int(rng_for(seed, "mnist1d").integers(2**32 - 1))
    data = _with_global_random_state_kept(lambda: make_dataset(args))
    x_train, x_val = data["x"][:n_train], data["x_test"][:n_val]
    if len(x_train) != n_train or len(x_val) != n_val:
        raise RuntimeError(
            f"mnist1d made {len(x_train)}+{len(x_val)} rows, expected {n_train}+{n_val}"
        )
    return Split(
        x_train[:, None, :].copy(),
        data["y"][:n_train].astype(np.int64),
        x_val[:, None, :].copy(),
        data["y_test"][:n_val].astype(np.int64),
    )


def _with_global_random_state_kept(make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """make_dataset reseeds numpy's and Python's global generators; put them back afterwards so
    the generator leaves no trace on anyone else's randomness."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        return make()
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
