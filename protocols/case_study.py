"""Test 5, case study: train on every measured entry and score every unmeasured pair.

There are no test labels; the runner records the scores of the unmeasured pairs and writes the top-k
cell lines per drug. A validation split is carved from the measured entries as in Test 1.
"""

from __future__ import annotations

import numpy as np

from drbench.folds import Fold
from drbench.protocols.base import Option, Protocol
from drbench.protocols.sampling import VALID, entry_split, rng_for


class CaseStudy(Protocol):
    name = "case-study"
    paper_test = "Test 5"
    kind = "random"
    scores_unlabelled = True
    description = "train on all measured entries; rank the unmeasured pairs (top-k cell lines per drug)"
    options = {
        "top_k": Option(10, "cell lines per drug in the written ranking", minimum=1),
        "valid_fraction": Option(0.1, "fraction of positives (plus as many negatives) carved for validation",
                                 greater_than=0, less_than=1),
    }

    def folds(self, dataset, seed, carve_valid=True, top_k=10, valid_fraction=0.1):
        b = dataset.binary
        train = dataset.measured.copy()
        valid = np.zeros_like(train)
        if carve_valid:
            valid = entry_split(b == 1, b == 0, valid_fraction, rng_for(seed, 0, VALID))
            train &= ~valid
        test = np.zeros_like(train)
        return [Fold(self.name, 0, seed, train, valid, test, score=~dataset.measured)]
