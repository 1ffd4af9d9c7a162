"""The label firewall: the runner builds a :class:`TrainView` holding only the labels a method may use.

Labels outside ``train | valid`` are replaced by NaN in *copies* of the label matrices; the test
labels are not in any array the method receives. In the honest mode ``valid`` is the validation split
carved from training entries. In the replication mode (``selection="test"``) ``valid`` is the fold's
test entries, as the reference code selected epochs on them; such runs are tagged and marked on every
table.

An inductive (non-transductive) method does not see the features (nor the tissue) of held-out entities (Test 2's
held-out cell lines or drugs, the transfer target's cell lines) — except in the replication mode, where
the held-out entities of the test entries are the selection set: the reference code scored them, with
their features, after every epoch, so the view shows those features (their labels are in ``valid``
anyway). Without them an inductive method would select its epoch on rows of missing features.

Every array a method receives (in the view and in the :class:`Query`) is :func:`~drbench.datasets.core.frozen`:
numeric and id arrays cannot be made writable, SMILES (object arrays) are the method's own read-only copies, so
a method cannot change what the next job sees. Feature blocks without hidden rows are the dataset's own (frozen)
arrays, not copies; the dicts holding them are new for every call.
"""

from __future__ import annotations

import numpy as np

from drbench.api import Capabilities, Query, TrainView
from drbench.context import RunContext
from drbench.datasets import Dataset
from drbench.datasets.core import frozen
from drbench.errors import UsageError
from drbench.folds import Fold

SELECTIONS = ("validation", "test")


def _hide_rows(block: dict, hidden: np.ndarray) -> dict:
    """A new dict of the blocks with the ``hidden`` rows set to NaN (the dataset's frozen arrays where none is)."""
    out = {}
    for k, v in block.items():
        if hidden.any():
            v = np.array(v, dtype=np.float32, copy=True)
            v[hidden] = np.nan
            v = frozen(v)
        out[k] = v
    return out


def build_train_view(dataset: Dataset, fold: Fold, capabilities: Capabilities, *, seed: int = 0,
                     device: str = "cpu", selection: str = "validation",
                     context: RunContext | dict | None = None) -> TrainView:
    if selection not in SELECTIONS:
        raise UsageError(f"unknown selection mode {selection!r}; choose one of: {', '.join(SELECTIONS)}")
    valid = fold.test if selection == "test" else fold.valid
    allowed = fold.train | valid
    binary = np.where(allowed, dataset.binary, np.nan)
    ic50 = np.where(allowed, dataset.ic50, np.nan)
    m, n = dataset.shape
    visible_cells = np.ones(m, dtype=bool)
    visible_drugs = np.ones(n, dtype=bool)
    if not capabilities.transductive:
        visible_cells[fold.held_out_cells] = False
        visible_drugs[fold.held_out_drugs] = False
        if selection == "test":  # the selection entries must be scorable with their features (module docstring)
            visible_cells |= valid.any(axis=1)
            visible_drugs |= valid.any(axis=0)
    cell_features = _hide_rows(dataset.cell_features, ~visible_cells)
    drug_features = _hide_rows(dataset.drug_features, ~visible_drugs)
    smiles = np.where(visible_drugs, dataset.smiles, "").astype(object)
    if isinstance(context, RunContext):  # a sweep's context: the one defaults_for saw, unchanged
        ctx = context
    else:  # a direct call (check_method, a notebook): the fold's setting, updated by ``context``
        ctx = {"dataset": dataset.meta.get("source_name", dataset.name), "target": dataset.meta.get("target_name", ""),
               "dataset_full": dataset.name, "protocol": fold.protocol, "selection": selection, **(context or {})}
    return TrainView(
        cell_ids=dataset.cell_ids, drug_ids=dataset.drug_ids,
        binary=frozen(binary), ic50=frozen(ic50), train=frozen(fold.train), valid=frozen(valid),
        cell_features=cell_features, drug_features=drug_features, smiles=frozen(smiles),
        thresholds=dataset.thresholds, visible_cells=frozen(visible_cells), visible_drugs=frozen(visible_drugs),
        seed=int(seed), device=device, context=ctx,
        cell_tissue=frozen(np.where(visible_cells, dataset.cell_tissue, "")),
    )


def build_query(dataset: Dataset, mask: np.ndarray) -> Query:
    rows, cols = np.nonzero(mask)
    return Query(rows=frozen(rows), cols=frozen(cols), cell_features=dict(dataset.cell_features),
                 drug_features=dict(dataset.drug_features), smiles=frozen(dataset.smiles),
                 cell_tissue=dataset.cell_tissue)
