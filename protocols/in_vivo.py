"""Test 3, in vitro → in vivo: train on every measured cell-line entry, test on a target set's rows.

``in-vivo`` appends the target set (PDX, TCGA; ``synthetic-vivo`` for the synthetic set) below the
cell lines on the shared drugs and tests on every measured target entry. ``transfer`` does the same
from GDSC to CCLE on their shared drugs: the real-data stand-in for Test 3 while no PDX/TCGA
expression is available. Cell lines present in both sets are reported; by default they are dropped
from the training rows (``drop_overlap="source"``) so that no test cell line was seen in training.
The validation split holds out a fraction of the training rows (all their measured entries), the same
logic as the test rows.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from drbench.datasets import Dataset, combine
from drbench.errors import UsageError
from drbench.folds import Fold
from drbench.protocols.base import Option, Protocol
from drbench.protocols.sampling import VALID, rng_for

log = logging.getLogger("drbench.protocols")

DEFAULT_TARGET = {"synthetic": "synthetic-vivo", "gdsc": "pdx"}


def stable_log(x: np.ndarray) -> np.ndarray:
    """Natural log of the positive entries (NaN elsewhere), computed by the C library's ``log`` one value at a time.

    Not ``np.log``: numpy's vectorised log differs in the last bit between numpy versions and CPU code paths
    (numpy 2.4.6 on the session-5 AVX-512 machine disagreed with libm on ~0.1% of random values), and these feed the
    dataset's content hash, hence every job key: with ``np.log`` a new numpy made the recorded transfer runs
    unrecognisable.
    """
    a = np.asarray(x, dtype=float)
    out = np.full(a.shape, np.nan)
    pos = a > 0  # NaN compares False: stays NaN
    out[pos] = [math.log(v) for v in a[pos].tolist()]
    return out


def _source_rows(dataset: Dataset) -> np.ndarray:
    src = dataset.meta.get("source_name")
    if src is None:
        raise UsageError(f"dataset {dataset.name!r} is not a source+target union; the protocol's prepare() builds one")
    return dataset.cell_domain == src


def _fold(protocol: Protocol, dataset: Dataset, seed: int, carve_valid: bool, valid_fraction: float) -> Fold:
    src = _source_rows(dataset)
    meas = dataset.measured
    train = meas & src[:, None]
    test = meas & ~src[:, None]
    valid = np.zeros_like(train)
    vrows = np.zeros(0, dtype=np.int64)
    if carve_valid:
        rows = np.flatnonzero(src & train.any(1))
        nv = max(1, int(round(valid_fraction * len(rows))))
        vrows = np.sort(rng_for(seed, 0, VALID).choice(rows, size=nv, replace=False))
        valid[vrows] = train[vrows]
        train[vrows] = False
    return Fold(protocol.name, 0, seed, train, valid, test, held_out_cells=np.flatnonzero(~src),
                valid_cells=vrows, entity_axis=protocol.entity_axis)


class InVivo(Protocol):
    name = "in-vivo"
    paper_test = "Test 3"
    kind = "in-vivo"
    entity_axis = 1
    description = "train on all measured cell-line entries; test on every measured entry of a target set (rows appended)"
    options = {
        "target": Option("", "target set: pdx or tcga (gdsc), synthetic-vivo (synthetic); default by dataset"),
        "valid_fraction": Option(0.1, "fraction of training rows held out (all their entries) for validation",
                                 greater_than=0, less_than=1),
    }

    def prepare(self, dataset, load, target="", valid_fraction=0.1):
        target = target or DEFAULT_TARGET.get(dataset.name, "")
        if not target:
            raise UsageError(f"protocol in-vivo needs a target set for dataset {dataset.name!r}: "
                             "pass --option target=NAME (pdx, tcga, synthetic-vivo)")
        return combine(dataset, load(target))

    def folds(self, dataset, seed, carve_valid=True, target="", valid_fraction=0.1):
        return [_fold(self, dataset, seed, carve_valid, valid_fraction)]


class Transfer(Protocol):
    name = "transfer"
    paper_test = "Test 3 (stand-in)"
    kind = "in-vivo"
    entity_axis = 1
    description = "GDSC → CCLE on shared drugs; overlapping cell lines dropped from training by default"
    options = {
        "target": Option("ccle", "target cell-line set"),
        "drop_overlap": Option("source", "cell lines in both sets: drop from 'source' rows, 'target' rows, or 'none'",
                               choices=("source", "target", "none")),
        "valid_fraction": Option(0.1, "fraction of training rows held out for validation", greater_than=0, less_than=1),
    }

    def prepare(self, dataset, load, target="ccle", drop_overlap="source", valid_fraction=0.1):
        tgt = load(target)
        if tgt.name == "ccle":  # raw µM in the data; the transfer compares on ln IC50 like GDSC (zeros have no log)
            tgt = tgt.with_labels(tgt.binary, stable_log(tgt.ic50))
        overlap = sorted(set(dataset.cell_alias) & set(tgt.cell_alias))
        log.info("transfer %s -> %s: %d cell lines are in both sets (drop_overlap=%s)",
                 dataset.name, tgt.name, len(overlap), drop_overlap)
        src = dataset
        if drop_overlap == "source":
            src = dataset.subset(rows=~np.isin(dataset.cell_alias, overlap))
        elif drop_overlap == "target":
            tgt = tgt.subset(rows=~np.isin(tgt.cell_alias, overlap))
        out = combine(src, tgt)
        meta = dict(out.meta, overlap_cells=len(overlap), drop_overlap=drop_overlap,
                    target_ic50_unit="ln IC50 (µM), from raw CCLE IC50 > 0")
        return out._replace(meta=meta)

    def folds(self, dataset, seed, carve_valid=True, target="ccle", drop_overlap="source", valid_fraction=0.1):
        return [_fold(self, dataset, seed, carve_valid, valid_fraction)]
