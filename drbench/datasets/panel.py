"""A seeded random subset of a dataset's expression genes (``drbench run --genes N --gene-seed S``).

It bounds how much a method's score depends on the size of the expression panel (the MTIGCN paper used about
17k genes; the data bundle has 5,778). Only the expression block changes: labels, ids and every other block are
kept, so the protocols' folds (made from the labels alone) are the same masks as the full panel's, and panel runs
pair with full-panel runs fold by fold. The cut changes the dataset's content hash, hence every job key.
"""

from __future__ import annotations

import numpy as np

from drbench.datasets.core import Dataset
from drbench.errors import UsageError

BLOCK = "expression"


def gene_subset(dataset: Dataset, n: int, seed: int = 0) -> Dataset:
    """``dataset`` with ``n`` of its expression genes, drawn without replacement by ``numpy.random.default_rng(seed)``
    and kept in their original order. ``n`` equal to the panel size returns ``dataset`` itself (the full panel).

    The cut is recorded in ``meta`` as ``genes`` and ``gene_seed`` (see :func:`panel_label`). Raises
    :class:`UsageError` when the dataset has no expression block or ``n`` is not 1 .. the panel size.
    """
    if BLOCK not in dataset.cell_features:
        raise UsageError(f"--genes: dataset {dataset.name!r} has no {BLOCK} block to cut; its cell features: "
                         f"{', '.join(sorted(dataset.cell_features)) or 'none'}")
    size = dataset.cell_features[BLOCK].shape[1]
    if not 1 <= n <= size:
        raise UsageError(f"--genes {n}: dataset {dataset.name!r} has {size} {BLOCK} genes; give 1 to {size} "
                         "(0 or no --genes: all of them)")
    if n == size:
        return dataset
    keep = np.sort(np.random.default_rng(seed).choice(size, size=n, replace=False))
    names = dict(dataset.cell_feature_names)
    if BLOCK in names and len(names[BLOCK]) == size:
        names[BLOCK] = names[BLOCK][keep]
    return dataset._replace(cell_features={**dataset.cell_features, BLOCK: dataset.cell_features[BLOCK][:, keep]},
                            cell_feature_names=names,
                            meta={**dataset.meta, "genes": int(n), "gene_seed": int(seed), "genes_of": int(size)})


def panel_label(dataset: Dataset) -> str:
    """``"genes=N"`` for a dataset cut by :func:`gene_subset` (``"genes=N,gene_seed=S"`` for a seed other than 0),
    "" for a full panel: the suffix that gives panel runs their own board rows (``nihgcn[genes=1000]``)."""
    if "genes" not in dataset.meta:
        return ""
    seed = dataset.meta["gene_seed"]
    return f"genes={dataset.meta['genes']}" + (f",gene_seed={seed}" if seed else "")


__all__ = ["gene_subset", "panel_label"]
