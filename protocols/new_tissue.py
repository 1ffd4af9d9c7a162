"""New tissue (leave-tissue-out): every cell line of the held-out tissue is removed from training.

Tissues come from ``Dataset.cell_tissue``; cell lines without one ("") are never tested (they train in
every fold), nor are tissues without an eligible cell line (at least ``min_positives`` positives, Test
2's rule). A tissue with at least ``min_cells`` eligible cell lines is one fold; smaller tissues are
shuffled (seeded) and packed into groups of at least ``min_cells``, a remainder joining the smallest
group. ``tissues`` names the tissues to hold out instead, one fold each. Test entries: for each eligible
cell line of the held-out tissue(s), all its positives plus as many of its negatives (Test 2's balance);
its ineligible cell lines are removed from training but not tested. Metrics are also averaged per
held-out cell line.

The validation split holds out one other tissue group (drawn per fold, seeded) the same way, so
selection also sees unseen tissues.
"""

from __future__ import annotations

import numpy as np

from drbench.errors import UsageError
from drbench.folds import Fold
from drbench.protocols.base import Option, Protocol
from drbench.protocols.sampling import TEST, VALID, eligible_entities, entity_entries, remove_entities, rng_for

CELL_AXIS = 0


def tissue_groups(counts: dict[str, int], min_cells: int, rng: np.random.Generator) -> list[list[str]]:
    """Tissues (name → eligible cell lines) as groups: each tissue with ``min_cells`` or more alone (largest
    first); the others shuffled and packed until a group reaches ``min_cells``; a remainder joins the smallest group."""
    big = sorted((t for t, n in counts.items() if n >= min_cells), key=lambda t: (-counts[t], t))
    small = sorted(t for t, n in counts.items() if 0 < n < min_cells)
    groups = [[t] for t in big]
    packed, current = [], []
    for t in rng.permutation(small).tolist():
        current.append(t)
        if sum(counts[x] for x in current) >= min_cells:
            packed.append(current)
            current = []
    groups += packed
    if current:
        if groups:
            smallest = min(groups, key=lambda g: (sum(counts[x] for x in g), g))
            smallest.extend(current)
        else:
            groups.append(current)
    return groups


class NewTissue(Protocol):
    name = "new-tissue"
    kind = "new-cell-line"
    paper_test = "beyond (LTO)"
    entity_axis = CELL_AXIS
    per_entity_headline = True
    description = ("leave-tissue-out: each fold removes every cell line of a tissue (or of a group of small ones); "
                   "metrics per cell line")
    options = {
        "min_cells": Option(15, "eligible cell lines a fold needs; smaller tissues are grouped", minimum=1),
        "tissues": Option("", "comma-separated tissues to hold out, one fold each (default: all, grouped)"),
        "min_positives": Option(10, "a cell line is tested with at least this many positives", minimum=1),
    }

    def groups(self, dataset, seed, min_cells=15, tissues="", min_positives=10) -> list[list[str]]:
        """The held-out tissue groups, one per fold."""
        counts = self._eligible_counts(dataset, min_positives)
        if not any(counts.values()):
            raise UsageError(f"{dataset.name}: no cell line with a tissue has >= {min_positives} positives, so "
                             f"leave-tissue-out has nothing to test (lower --option min_positives)")
        if not tissues:
            return tissue_groups(counts, min_cells, rng_for(seed, 98))
        named = tissues.split(",") if isinstance(tissues, str) else list(tissues)  # CLI: "a,b"; Python: also a list
        named = [str(t).strip() for t in named if str(t).strip()]
        bad = [t for t in named if t not in counts]
        if bad:
            raise UsageError(f"{dataset.name}: unknown tissue(s) {bad}; its tissues are: {', '.join(sorted(counts))}")
        empty = [t for t in named if counts[t] == 0]
        if empty:
            raise UsageError(f"{dataset.name}: tissue(s) {empty} have no cell line with >= {min_positives} positives")
        return [[t] for t in named]

    @staticmethod
    def _eligible_counts(dataset, min_positives) -> dict[str, int]:
        if not dataset.has_tissue:
            raise UsageError(f"dataset {dataset.name!r} has no tissue annotation; protocol new-tissue needs one")
        elig = np.zeros(dataset.shape[0], dtype=bool)
        elig[eligible_entities(dataset.binary, CELL_AXIS, min_positives)] = True
        known = np.unique(dataset.cell_tissue[dataset.cell_tissue != ""])
        return {str(t): int((elig & (dataset.cell_tissue == t)).sum()) for t in known}

    def folds(self, dataset, seed, carve_valid=True, min_cells=15, tissues="", min_positives=10):
        b, tissue = dataset.binary, dataset.cell_tissue
        elig = eligible_entities(b, CELL_AXIS, min_positives)
        groups = self.groups(dataset, seed, min_cells, tissues, min_positives)
        counts = self._eligible_counts(dataset, min_positives)
        out = []
        for k, group in enumerate(groups):
            held = np.flatnonzero(np.isin(tissue, group))
            test = entity_entries(b, np.intersect1d(held, elig), CELL_AXIS, rng_for(seed, k, TEST))
            train = remove_entities(dataset.measured, held, CELL_AXIS)
            valid = np.zeros_like(train)
            vcells = np.zeros(0, dtype=np.int64)
            if carve_valid:
                rng = rng_for(seed, k, VALID)
                rest = {t: n for t, n in counts.items() if t not in group}
                candidates = tissue_groups(rest, min_cells, rng)
                if candidates:
                    vgroup = candidates[int(rng.integers(len(candidates)))]
                    vcells = np.flatnonzero(np.isin(tissue, vgroup))
                    valid = entity_entries(b, np.intersect1d(vcells, elig), CELL_AXIS, rng)
                    train = remove_entities(train, vcells, CELL_AXIS)
            out.append(Fold(self.name, k, seed, train, valid, test, held_out_cells=held, valid_cells=vcells,
                            entity_axis=CELL_AXIS, label="+".join(group)))
        return out
