"""Synthetic sparse click data: the setting where per-parameter step sizes (AdaGrad, Adam) beat
plain SGD.

Each row has ``fields`` categorical features; within a field category k (0 = most frequent) is
drawn with probability proportional to (k + 1) ** -skew, so a few categories are common and most
are rare. Every category gets its own weight from the same normal distribution, so a rare
category predicts the click as strongly as a common one; the click is
Bernoulli(sigmoid(bias + sum of the row's weights)). With one learning rate for all parameters,
SGD barely moves the embeddings of rare categories (they are in few batches), while adaptive
methods scale their steps up: on the default set Adam reaches a clearly better validation AUC
(tests/training/test_data.py checks it on a small model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gradlab_contract.spec import CtrOptions

from training.data._arrays import Pool, rng_for

# The logit's spread (weights are N(0, SIGNAL**2 / fields), so the sum over fields has about
# this standard deviation) and its offset: about one row in three is a click, the best possible
# AUC is about 0.85, far enough from 0.5 that optimizers can be told apart.
SIGNAL = 2.0
BIAS = -1.0


@dataclass(frozen=True)
class CtrData:
    """The generated rows with the true model behind them (tests check the labels against it)."""

    x: np.ndarray  # int32 (rows, fields): category ids, small in memory for the cache
    y: np.ndarray  # int64 (rows,): 1 for a click
    weights: np.ndarray  # float64 (fields, cardinality)

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + self.y.nbytes + self.weights.nbytes

    def logits(self) -> np.ndarray:
        return _logits(self.x, self.weights)

    def pool(self) -> Pool:
        return Pool(self.x, self.y)


def generate(options: CtrOptions, seed: int) -> CtrData:
    rng = rng_for(seed, "ctr")
    x = _skewed_categories(rng, options)
    weights = rng.normal(
        0.0, SIGNAL / np.sqrt(options.fields), (options.fields, options.cardinality)
    )
    clicks = rng.random(options.rows) < 1.0 / (1.0 + np.exp(-_logits(x, weights)))
    return CtrData(x, clicks.astype(np.int64), weights)


def _logits(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = np.full(len(x), BIAS)
    for field, field_weights in enumerate(weights):  # per field: no (rows, fields) float copy
        total += field_weights[x[:, field]]
    return total


def _skewed_categories(rng: np.random.Generator, options: CtrOptions) -> np.ndarray:
    """Zipf-like ids by inverting the cumulative distribution. Id order equals frequency rank;
    embeddings do not care about id order, so no permutation is spent on hiding it."""
    ranks = np.arange(1, options.cardinality + 1, dtype=np.float64)
    cumulative = np.cumsum(ranks**-options.skew)
    cumulative /= cumulative[-1]
    x = np.empty((options.rows, options.fields), dtype=np.int32)
    for field in range(options.fields):  # one field at a time bounds the float64 temporaries
        ids = np.searchsorted(cumulative, rng.random(options.rows), side="right")
        x[:, field] = np.minimum(ids, options.cardinality - 1)  # guards rounding of the last bin
    return x
