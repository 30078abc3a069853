"""scikit-learn's handwritten digits: 1,797 real 8x8 images that ship inside the package."""

from __future__ import annotations

import numpy as np

from training.data._arrays import Pool


def load() -> Pool:
    """All rows as (N, 1, 8, 8) grey levels 0..16; the seeded split happens in load_dataset."""
    # Imported here: scikit-learn is slow to import and only this set needs it.
    from sklearn.datasets import load_digits

    digits = load_digits()
    return Pool(digits.images[:, None, :, :].astype(np.float32), digits.target.astype(np.int64))
