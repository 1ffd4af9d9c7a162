"""New pair (double cold): cell lines and drugs held out together; test pairs have both unseen.

Eligible cell lines and drugs have at least ``min_positives`` positives (Test 2's rule). Both sets are
split into ``n_folds`` seeded groups (sklearn KFold, as Test 2); fold k holds out cell group k *and*
drug group k. Its test entries are the measured pairs of a held-out cell line and a held-out drug,
balanced per held-out drug as in Test 2: all its positives among the held-out cell lines plus as many of
its negatives there. Training keeps only the pairs whose cell line and drug are both outside the held-out
groups: a pair with one held-out entity is used nowhere. Metrics are also averaged per held-out drug
(``entity_axis`` 1): a drug has about three times as many test pairs as a cell line on GDSC.

The validation split is carved the same way: a ``valid_fraction`` of the remaining eligible cell lines
and of the remaining eligible drugs, their pairs balanced per drug, and every pair of either removed
from training, so validation is double cold too.
"""

from __future__ import annotations

import math

import numpy as np

from drbench.errors import UsageError
from drbench.folds import Fold
from drbench.protocols.base import Option, Protocol
from drbench.protocols.sampling import TEST, VALID, eligible_entities, entity_entries, kfold_groups, rng_for

DRUG_AXIS = 1


def pair_entries(binary: np.ndarray, cells: np.ndarray, drugs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pairs of ``cells`` × ``drugs``: per drug, all its positives there plus as many of its negatives there."""
    inside = np.full(binary.shape, np.nan)
    inside[np.ix_(cells, drugs)] = binary[np.ix_(cells, drugs)]
    return entity_entries(inside, drugs, DRUG_AXIS, rng)


def without(mask: np.ndarray, cells: np.ndarray, drugs: np.ndarray) -> np.ndarray:
    """``mask`` with every pair of ``cells`` (rows) or ``drugs`` (columns) removed."""
    out = mask.copy()
    out[cells, :] = False
    out[:, drugs] = False
    return out


def _sample(rest: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    n = min(len(rest), max(1, math.ceil(fraction * len(rest)))) if len(rest) else 0
    return np.sort(rng.choice(rest, size=n, replace=False)) if n else np.zeros(0, dtype=np.int64)


class NewPair(Protocol):
    name = "new-pair"
    kind = "new-pair"
    paper_test = "beyond (double cold)"
    entity_axis = DRUG_AXIS
    per_entity_headline = True
    description = ("cell lines and drugs held out together (grouped K-fold on both axes); "
                   "test = pairs with both unseen; metrics per drug")
    options = {
        "n_folds": Option(5, "grouped folds; fold k holds out cell group k and drug group k", minimum=2),
        "min_positives": Option(10, "a cell line or drug is eligible with at least this many positives", minimum=1),
        "valid_fraction": Option(0.1, "fraction of the remaining eligible cell lines and drugs held out for "
                                      "validation", greater_than=0, less_than=1),
    }

    def eligible(self, dataset, min_positives=10) -> tuple[np.ndarray, np.ndarray]:
        """(eligible cell lines, eligible drugs)."""
        return eligible_entities(dataset.binary, 0, min_positives), eligible_entities(dataset.binary, 1, min_positives)

    def folds(self, dataset, seed, carve_valid=True, n_folds=5, min_positives=10, valid_fraction=0.1):
        b = dataset.binary
        cells, drugs = self.eligible(dataset, min_positives)
        for what, elig in (("cell lines", cells), ("drugs", drugs)):
            if len(elig) < n_folds:
                raise UsageError(f"{dataset.name}: only {len(elig)} eligible {what} (>= {min_positives} positives); "
                                 f"cannot make {n_folds} grouped folds (lower --option min_positives or n_folds)")
        cell_groups = [cells[g] for g in kfold_groups(len(cells), n_folds, seed)]
        drug_groups = [drugs[g] for g in kfold_groups(len(drugs), n_folds, seed)]
        out = []
        for k, (hc, hd) in enumerate(zip(cell_groups, drug_groups)):
            test = pair_entries(b, hc, hd, rng_for(seed, k, TEST))
            train = without(dataset.measured, hc, hd)
            valid = np.zeros_like(train)
            vc = vd = np.zeros(0, dtype=np.int64)
            if carve_valid:
                rng = rng_for(seed, k, VALID)
                vc = _sample(np.setdiff1d(cells, hc), valid_fraction, rng)
                vd = _sample(np.setdiff1d(drugs, hd), valid_fraction, rng)
                valid = pair_entries(b, vc, vd, rng)
                train = without(train, vc, vd)
            out.append(Fold(self.name, k, seed, train, valid, test, held_out_cells=hc, held_out_drugs=hd,
                            valid_cells=vc, valid_drugs=vd, entity_axis=DRUG_AXIS))
        return out
