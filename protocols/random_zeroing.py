"""Test 1, random zeroing: 5-fold cross-validation over the measured positives.

Test entries of a fold: one fifth of the positives plus as many negatives drawn uniformly from all
measured negatives (1:1, as the reference ``RandomSampler``). Every other measured entry trains.
The validation split is carved from the training entries with the same logic (a fraction of the
training positives plus as many training negatives).
"""

from __future__ import annotations

import numpy as np

from drbench.folds import Fold
from drbench.protocols.base import Option, Protocol
from drbench.protocols.sampling import TEST, VALID, balanced_negatives, entry_split, kfold_groups, rng_for


class RandomZeroing(Protocol):
    name = "random"
    paper_test = "Test 1"
    description = "5-fold CV over measured positives; test = held-out positives + as many random negatives"
    kind = "random"
    entity_axis = 1
    options = {
        "n_folds": Option(5, "number of folds over the positives", minimum=2),
        "valid_fraction": Option(0.1, "fraction of training positives (plus as many negatives) carved for validation",
                                 greater_than=0, less_than=1),
    }

    def folds(self, dataset, seed, carve_valid=True, n_folds=5, valid_fraction=0.1):
        b = dataset.binary
        pos = np.flatnonzero(b == 1)
        neg = np.flatnonzero(b == 0)
        measured = dataset.measured
        out = []
        for k, idx in enumerate(kfold_groups(len(pos), n_folds, seed)):
            test = np.zeros(b.shape, dtype=bool)
            test.flat[pos[idx]] = True
            test.flat[balanced_negatives(neg, len(idx), rng_for(seed, k, TEST))] = True
            train = measured & ~test
            valid = np.zeros_like(train)
            if carve_valid:
                valid = entry_split(train & (b == 1), train & (b == 0), valid_fraction, rng_for(seed, k, VALID))
                train &= ~valid
            out.append(Fold(self.name, k, seed, train, valid, test, entity_axis=self.entity_axis))
        return out
