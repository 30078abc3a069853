"""Downsampling that keeps what a reader must see: tsdownsample's MinMaxLTTB for the shape, plus
the points no chart may lose.

MinMaxLTTB (Van Der Donckt et al., 2023) pre-selects each bucket's min and max and runs LTTB on
those: the curve keeps its visual shape at any zoom. LTTB keeps one point per bucket, so it may
drop a one-step spike beside a larger one; the series' ends (a live chart must end at the latest
value), its lowest and highest finite points and its first non-finite point (a divergence's
onset) are therefore always kept, and LTTB fills the rest of the budget.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from tsdownsample import MinMaxLTTBDownsampler

from store.series.codec import Steps, Values

_LTTB_MIN_OUT = 3  # tsdownsample refuses fewer
_DOWNSAMPLER = MinMaxLTTBDownsampler()


def keep_shape(steps: Steps, values: Values, max_points: int) -> npt.NDArray[np.intp]:
    """Indexes (sorted, unique, at most max_points) of the points to draw; NaN is non-finite."""
    n = len(steps)
    if n <= max_points:
        return np.arange(n)
    finite = np.isfinite(values)
    must = _must_keep(values, finite)[:max_points]
    left = max_points - len(must)
    chosen = np.asarray(must, dtype=np.intp)
    finite_at = np.flatnonzero(finite)
    if left >= _LTTB_MIN_OUT and len(finite_at) > left:
        picked = _DOWNSAMPLER.downsample(steps[finite_at], values[finite_at], n_out=left)
        chosen = np.union1d(chosen, finite_at[picked.astype(np.intp)])
    elif left > 0:
        chosen = np.union1d(chosen, _spread(finite_at, left))
    return np.unique(chosen)  # |must| + left == max_points at most


def _must_keep(values: Values, finite: npt.NDArray[np.bool_]) -> list[int]:
    """Both ends, the lowest finite point, the first non-finite point, the highest finite point:
    in this order of priority, without repeats."""
    n = len(values)
    wanted = [0, n - 1]
    if finite.any():
        wanted.append(int(np.argmin(np.where(finite, values, np.inf))))
    if not finite.all():
        wanted.append(int(np.argmin(finite)))
    if finite.any():
        wanted.append(int(np.argmax(np.where(finite, values, -np.inf))))
    return list(dict.fromkeys(wanted))


def _spread(indexes: npt.NDArray[np.intp], count: int) -> npt.NDArray[np.intp]:
    """`count` indexes evenly spread (a budget too small for LTTB)."""
    if len(indexes) <= count:
        return indexes
    return indexes[np.linspace(0, len(indexes) - 1, count).round().astype(np.intp)]
