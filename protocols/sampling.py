"""Sampler logic shared by the protocols (the reference samplers of MTIGCN, re-implemented).

Randomness: every draw uses ``numpy.random.default_rng`` seeded from a tuple that names what it is
for (seed, fold, purpose), so the test draw of a fold never depends on whether a validation split is
carved, and two runs with the same seed give the same masks.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold

TEST, VALID = 0, 1


def rng_for(seed: int, *path: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *map(int, path)])


def kfold_groups(n_items: int, n_folds: int, seed: int) -> list[np.ndarray]:
    """Indices 0..n_items-1 split into ``n_folds`` shuffled groups (sklearn KFold, ``random_state=seed``)."""
    if n_items < n_folds:
        raise ValueError(f"cannot make {n_folds} folds from {n_items} items")
    kf = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [test for _, test in kf.split(np.arange(n_items))]


def balanced_negatives(pool_flat: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` entries drawn uniformly without replacement from ``pool_flat`` (all of them if fewer)."""
    if n >= len(pool_flat):
        return np.asarray(pool_flat)
    return rng.choice(pool_flat, size=n, replace=False)


def entry_split(positive: np.ndarray, negative: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A mask of ``fraction`` of the positive entries plus as many negative entries (uniform)."""
    out = np.zeros(positive.shape, dtype=bool)
    pos = np.flatnonzero(positive)
    k = int(round(fraction * len(pos)))
    if k == 0:
        return out
    chosen = rng.choice(pos, size=k, replace=False)
    out.flat[chosen] = True
    out.flat[balanced_negatives(np.flatnonzero(negative), k, rng)] = True
    return out


def entity_entries(binary: np.ndarray, entities: np.ndarray, axis: int, rng: np.random.Generator) -> np.ndarray:
    """For each entity (row if axis=0, column if axis=1): all its positives plus as many of its negatives."""
    out = np.zeros(binary.shape, dtype=bool)
    view = out if axis == 0 else out.T
    b = binary if axis == 0 else binary.T
    for e in entities:
        pos = np.flatnonzero(b[e] == 1)
        neg = np.flatnonzero(b[e] == 0)
        view[e, pos] = True
        view[e, balanced_negatives(neg, len(pos), rng)] = True
    return out


def eligible_entities(binary: np.ndarray, axis: int, min_positives: int) -> np.ndarray:
    """Rows (axis 0) or columns (axis 1) with at least ``min_positives`` positives."""
    counts = (binary == 1).sum(axis=1 - axis)
    return np.flatnonzero(counts >= min_positives)


def remove_entities(mask: np.ndarray, entities: np.ndarray, axis: int) -> np.ndarray:
    out = mask.copy()
    if axis == 0:
        out[entities, :] = False
    else:
        out[:, entities] = False
    return out
