"""Test 2, new cell line / new drug: held-out rows (or columns) are removed from training entirely.

Eligible entities have at least ``min_positives`` positives (10, the rule the reference code used:
658 cell lines and 227 drugs on the full GDSC matrix). A held-out entity's test entries are all its
positives plus as many of its negatives. Default: grouped K-fold over the eligible entities (each held
out once); ``per_target=True`` makes one fold per entity as the paper did (``n_targets`` samples some).
The validation split holds out further eligible training entities the same way.
"""

from __future__ import annotations

import math

import numpy as np

from drbench.errors import UsageError
from drbench.folds import Fold
from drbench.protocols.base import Option, Protocol
from drbench.protocols.sampling import (TEST, VALID, eligible_entities, entity_entries, kfold_groups,
                                        remove_entities, rng_for)


class NewEntity(Protocol):
    paper_test = "Test 2"
    per_entity_headline = True
    options = {
        "n_folds": Option(5, "grouped folds over the eligible entities", minimum=2),
        "min_positives": Option(10, "an entity is eligible with at least this many positives", minimum=1),
        "per_target": Option(False, "one fold per eligible entity (the paper's protocol)"),
        "n_targets": Option(0, "with per_target: sample this many targets (0 = all)", minimum=0),
        "valid_fraction": Option(0.1, "fraction of the remaining eligible entities held out for validation",
                                 greater_than=0, less_than=1),
    }

    def check_options(self, options: dict) -> None:
        """``n_targets`` only samples per-target folds and ``n_folds`` only sizes grouped ones: a value other than
        the default where it would be ignored is refused, not silently dropped."""
        default = {k: o.default for k, o in self.options.items()}
        if options["n_targets"] != default["n_targets"] and not options["per_target"]:
            raise UsageError(f"protocol {self.name!r}: option n_targets samples per-target folds; give "
                             f"per_target=true (--per-target) with it, or leave it out")
        if options["n_folds"] != default["n_folds"] and options["per_target"]:
            raise UsageError(f"protocol {self.name!r}: option n_folds sets grouped folds; with per_target each "
                             f"eligible entity is its own fold, so leave n_folds out")

    def eligible(self, dataset, min_positives=10):
        return eligible_entities(dataset.binary, self.entity_axis, min_positives)

    def folds(self, dataset, seed, carve_valid=True, n_folds=5, min_positives=10, per_target=False,
              n_targets=0, valid_fraction=0.1):
        b = dataset.binary
        axis = self.entity_axis
        what = "cell lines" if axis == 0 else "drugs"
        elig = self.eligible(dataset, min_positives)
        if per_target:
            targets = elig
            if n_targets:
                targets = np.sort(rng_for(seed, 99).choice(elig, size=min(n_targets, len(elig)), replace=False))
            groups = [np.array([t]) for t in targets]
        else:
            if len(elig) < n_folds:
                raise UsageError(f"{dataset.name}: only {len(elig)} eligible {what} (>= {min_positives} positives); "
                                 f"cannot make {n_folds} grouped folds")
            groups = [elig[g] for g in kfold_groups(len(elig), n_folds, seed)]
        out = []
        for k, held in enumerate(groups):
            test = entity_entries(b, held, axis, rng_for(seed, k, TEST))
            train = remove_entities(dataset.measured, held, axis)
            valid = np.zeros_like(train)
            vents = np.zeros(0, dtype=np.int64)
            if carve_valid:
                rest = np.setdiff1d(elig, held)
                nv = min(len(rest), max(1, math.ceil(valid_fraction * len(rest)))) if len(rest) else 0
                rng = rng_for(seed, k, VALID)
                vents = np.sort(rng.choice(rest, size=nv, replace=False)) if nv else vents
                valid = entity_entries(b, vents, axis, rng)
                train = remove_entities(train, vents, axis)
            label = ""
            if per_target:
                ids = dataset.cell_ids if axis == 0 else dataset.drug_ids
                label = str(ids[held[0]])
            kw = {"held_out_cells": held} if axis == 0 else {"held_out_drugs": held}
            vkw = {"valid_cells": vents} if axis == 0 else {"valid_drugs": vents}
            out.append(Fold(self.name, k, seed, train, valid, test, entity_axis=axis, label=label, **kw, **vkw))
        return out


class NewCellLine(NewEntity):
    name = "new-cell-line"
    entity_axis = 0
    kind = "new-cell-line"
    description = "held-out cell lines (>= 10 positives) removed from training; metrics per cell line"


class NewDrug(NewEntity):
    name = "new-drug"
    entity_axis = 1
    kind = "new-drug"
    description = "held-out drugs (>= 10 positives) removed from training; metrics per drug"
