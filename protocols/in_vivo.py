"""Test 3, in vitro → in vivo: train on every measured cell-line entry, test on a target set's rows.

``in-vivo`` appends the target set (PDX, TCGA; ``synthetic-vivo`` for the synthetic set) below the
cell lines on the shared drugs and tests on every measured target entry. ``transfer`` does the same
between the cell-line sets on their shared drugs, GDSC → CCLE (the real-data stand-in for Test 3 while
no PDX/TCGA expression is available) or CCLE → GDSC; CCLE's raw IC50 (µM) is compared as ln IC50 like
GDSC's, on whichever side it is. Cell lines present in both sets are reported and dropped from one
side so that no test cell line was seen in training: by default (``drop_overlap="auto"``) from the
larger set, which keeps the smaller whole (GDSC → CCLE: from the GDSC training rows; CCLE → GDSC,
where 326 of CCLE's 328 cell lines are in GDSC: from the GDSC test rows).
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
TRANSFER_TARGET = {"gdsc": "ccle", "ccle": "gdsc"}


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


def _ln_ic50(dataset: Dataset) -> Dataset:
    """CCLE with its raw IC50 (µM) as ln IC50, the unit of GDSC (zeros have no log); other sets unchanged."""
    if dataset.name != "ccle":
        return dataset
    return dataset.with_labels(dataset.binary, stable_log(dataset.ic50))


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
    description = "GDSC → CCLE or CCLE → GDSC on shared drugs; cell lines in both sets dropped from the larger"
    options = {
        "target": Option("", "target cell-line set (default: ccle from gdsc, gdsc from ccle)"),
        "drop_overlap": Option("auto", "cell lines in both sets: drop from 'source' rows, 'target' rows, "
                                       "'auto' (the larger set's) or 'none'", choices=("source", "target", "auto", "none")),
        "valid_fraction": Option(0.1, "fraction of training rows held out for validation", greater_than=0, less_than=1),
    }

    def prepare(self, dataset, load, target="", drop_overlap="auto", valid_fraction=0.1):
        target = target or TRANSFER_TARGET.get(dataset.name, "")
        if not target or target == dataset.name:
            raise UsageError(f"protocol transfer needs a target set other than {dataset.name!r}: "
                             "pass --option target=NAME (gdsc or ccle)")
        src, tgt = (_ln_ic50(d) for d in (dataset, load(target)))
        overlap = sorted(set(src.cell_alias) & set(tgt.cell_alias))
        if drop_overlap == "auto":
            drop_overlap = "source" if src.shape[0] >= tgt.shape[0] else "target"
        log.info("transfer %s -> %s: %d cell lines are in both sets (drop_overlap=%s)",
                 src.name, tgt.name, len(overlap), drop_overlap)
        if drop_overlap == "source":
            src = src.subset(rows=~np.isin(src.cell_alias, overlap))
        elif drop_overlap == "target":
            tgt = tgt.subset(rows=~np.isin(tgt.cell_alias, overlap))
        out = combine(src, tgt)
        meta = dict(out.meta, overlap_cells=len(overlap), drop_overlap=drop_overlap,
                    ic50_unit="ln IC50 (µM); CCLE's from its raw IC50 > 0")
        return out._replace(meta=meta)

    def folds(self, dataset, seed, carve_valid=True, target="", drop_overlap="auto", valid_fraction=0.1):
        return [_fold(self, dataset, seed, carve_valid, valid_fraction)]
