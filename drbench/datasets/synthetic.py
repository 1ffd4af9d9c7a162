"""A seeded synthetic dataset shaped like GDSC, with an optional in-vivo companion.

Low-rank latent factors drive ln IC50 (cell effect + drug effect + interaction + noise); a pair is
sensitive when its IC50 lies below a per-drug threshold chosen so that about ``pos_rate`` of measured
pairs are positive. Expression is a noisy linear image of the cell factors (so it is informative),
fingerprints are thresholded projections of the drug factors, and SMILES are small valid molecules.
The in-vivo companion has extra rows from the same model (with a batch shift in expression), few
measured drugs and binary labels only, so Test 3 runs end to end without patient data.
Each cell line has a tissue (``tissue_0`` ...), the largest of a random projection of its latent
factors (so tissue carries signal), drawn from its own generator so that the labels and features do not
depend on it; about 3% of cell lines have none (""), as real annotations have gaps.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from drbench.datasets.core import Dataset

FINGERPRINT_BITS = 920
_FRAGMENTS = ["C", "C", "N", "O", "C(C)", "C(=O)", "c1ccccc1", "C(F)", "S", "C(Cl)", "c1ccncc1", "CC"]


def _smiles(rng: np.random.Generator) -> str:
    k = int(rng.integers(3, 9))
    return "C" + "".join(rng.choice(_FRAGMENTS, size=k))


@lru_cache(maxsize=8)
def _generate(n_cells, n_drugs, n_genes, rank, pos_rate, missing_rate, n_invivo, invivo_drugs, n_tissues, seed):
    rng = np.random.default_rng(seed)
    total = n_cells + n_invivo
    u = rng.normal(size=(total, rank))
    v = rng.normal(size=(n_drugs, rank))
    cell_effect = rng.normal(scale=1.0, size=total)
    drug_effect = rng.normal(loc=2.0, scale=1.5, size=n_drugs)
    ic50 = drug_effect[None, :] + cell_effect[:, None] + 1.2 * (u @ v.T) + rng.normal(scale=0.6, size=(total, n_drugs))
    # expression: informative about u and the cell effect, plus noise; z-scored per cell like the real panel
    w = rng.normal(size=(rank + 1, n_genes))
    expr = np.hstack([u, cell_effect[:, None]]) @ w + rng.normal(scale=1.0, size=(total, n_genes))
    expr[n_cells:] += rng.normal(scale=0.5, size=n_genes)  # batch shift for the in-vivo rows
    expr = (expr - expr.mean(1, keepdims=True)) / expr.std(1, keepdims=True)
    # fingerprints: sparse bits from drug factors
    wf = rng.normal(size=(rank, FINGERPRINT_BITS))
    logits = v @ wf + rng.normal(scale=1.0, size=(n_drugs, FINGERPRINT_BITS)) - 2.2
    fp = (logits > 0).astype(np.float32)
    # per-drug thresholds on the cell-line rows
    thresholds = np.quantile(ic50[:n_cells], pos_rate, axis=0)
    binary = (ic50 < thresholds[None, :]).astype(float)
    measured = rng.random((total, n_drugs)) >= missing_rate
    # in-vivo rows: only a few drugs measured, labels only
    vivo_cols = rng.choice(n_drugs, size=min(invivo_drugs, n_drugs), replace=False)
    vivo_meas = np.zeros((n_invivo, n_drugs), dtype=bool)
    vivo_meas[:, vivo_cols] = rng.random((n_invivo, len(vivo_cols))) < 0.35
    measured[n_cells:] = vivo_meas
    binary[~measured] = np.nan
    ic50 = np.where(measured, ic50, np.nan)
    smiles = np.array([_smiles(rng) for _ in range(n_drugs)], dtype=object)
    smiles[-1] = ""  # one drug without a SMILES, like the antibodies in GDSC
    trng = np.random.default_rng([seed, 1])  # a separate stream: adding tissues changed no other value
    tissue = np.array([f"tissue_{t}" for t in np.argmax(u @ trng.normal(size=(rank, n_tissues)), axis=1)])
    tissue[trng.random(total) < 0.03] = ""
    return ic50, binary, expr.astype(np.float32), fp, thresholds, smiles, tissue


def make_synthetic(
    n_cells: int = 240,
    n_drugs: int = 60,
    n_genes: int = 400,
    rank: int = 6,
    pos_rate: float = 0.12,
    missing_rate: float = 0.2,
    seed: int = 0,
    n_invivo: int = 60,
    invivo_drugs: int = 6,
    n_tissues: int = 6,
    part: str = "cells",
) -> Dataset:
    """The synthetic cell-line set (``part="cells"``) or its in-vivo companion (``part="invivo"``)."""
    ic50, binary, expr, fp, thr, smiles, tissue = _generate(
        n_cells, n_drugs, n_genes, rank, pos_rate, missing_rate, n_invivo, invivo_drugs, n_tissues, seed
    )
    rows = slice(0, n_cells) if part == "cells" else slice(n_cells, n_cells + n_invivo)
    prefix = "CL" if part == "cells" else "PT"
    m = n_cells if part == "cells" else n_invivo
    name = "synthetic" if part == "cells" else "synthetic-vivo"
    return Dataset(
        name=name,
        cell_ids=np.array([f"{prefix}{i:04d}" for i in range(m)]),
        drug_ids=np.array([f"D{j:03d}" for j in range(n_drugs)]),
        binary=binary[rows],
        ic50=ic50[rows] if part == "cells" else np.full((m, n_drugs), np.nan),
        cell_features={"expression": expr[rows]},
        cell_feature_names={"expression": np.array([f"G{g:04d}" for g in range(n_genes)])},
        drug_features={"fingerprint": fp},
        smiles=smiles,
        thresholds=thr,
        drug_names=np.array([f"drug{j:03d}" for j in range(n_drugs)]),
        cell_names=np.array([f"{prefix.lower()}-line-{i}" for i in range(m)]),
        cell_tissue=tissue[rows] if part == "cells" else None,
        meta={"source": f"synthetic(seed={seed})", "ic50_unit": "ln IC50 (synthetic)"},
    )
