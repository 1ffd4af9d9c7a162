"""Your own screen in the long layout: one folder of small CSV files that pandas writes in a few lines.

``<folder>/responses.csv`` (required)
    One row per measured (cell, drug) pair: columns ``cell_id``, ``drug_id`` and ``ln_ic50`` and/or ``label``
    (1 = sensitive, 0 = resistant). A row needs a label or an ln IC50; where ``label`` is empty the label is
    derived from ``thresholds.csv`` as in GDSC (docs/method-specs.md §1): sensitive ⇔ ln IC50 < the drug's
    threshold. A given label is used as given.
``<folder>/thresholds.csv`` (optional)
    ``drug_id, threshold`` on the ln IC50 scale; needed for every drug with a row that has no label.
``<folder>/cell_<view>.csv`` (one per cell view, e.g. ``cell_expression.csv``; optional)
    First column the cell id, one column per feature, every value a finite number. A cell line with a response
    but no row in some view is dropped (WARNING with the count and first ids), as the built-in loaders drop
    cell lines without expression.
``<folder>/drug_fingerprint.csv`` (optional)
    First column the drug id, one column per bit, every value 0 or 1 (any width; the built-ins use 920 bits).
``<folder>/drug_smiles.csv`` (optional)
    ``drug_id, smiles``. Where ``drug_fingerprint.csv`` is missing, or lacks a drug, the fingerprints of
    **every** drug are computed from its SMILES with RDKit (:data:`MORGAN`: Morgan, radius 2, 920 bits), so
    that one matrix never mixes two kinds of fingerprint (a WARNING names the drugs the table lacks). A drug
    without a fingerprint row and without a parsable SMILES is an error; with neither file the dataset has no
    ``fingerprint`` block, and methods that need one are reported as unable to run on it.
``<folder>/cell_meta.csv`` (optional)
    ``cell_id, tissue``: the tissue of each cell line ("" where unknown).
``<folder>/dataset.json`` (optional)
    ``{"name": ..., "ic50_unit": ..., "ic50_range": [low, high]}``: the dataset's name (default: the folder's
    name), what ``ln_ic50`` holds and its valid range (default ln IC50 in µM, [-20, 20] as for GDSC).

Every file is checked as the built-in loaders check theirs, with one-line errors naming file, row and column:
in the long files (responses, thresholds, SMILES, cell_meta) the row is the line number in the file (the
header is line 1), in the wide tables (cell views, fingerprints) it is the cell or drug id. A dataset may not
carry a built-in dataset's name (see :func:`drbench.datasets.load_dataset`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from drbench.datasets.core import Dataset
from drbench.datasets.files import FLOAT32, ZERO_ONE, ValueRange, check_unique, numeric, read_table
from drbench.datasets.mtigcn_layout import GDSC_LN_IC50
from drbench.errors import DataError

log = logging.getLogger("drbench.datasets")

RESPONSES = "responses.csv"
#: the fingerprint computed from SMILES where drug_fingerprint.csv is missing or incomplete
MORGAN = {"kind": "Morgan (RDKit rdFingerprintGenerator)", "radius": 2, "bits": 920}
_DATASET_KEYS = {"name", "ic50_unit", "ic50_range"}
_SHOW_IDS = 5


def is_long_layout(path) -> bool:
    return (Path(path) / RESPONSES).is_file()


def _require_columns(df: pd.DataFrame, path: Path, required, one_of=()) -> None:
    missing = [c for c in required if c not in df.columns]
    if one_of and not any(c in df.columns for c in one_of):
        missing.append(" or ".join(one_of))
    if missing:
        raise DataError(f"{path}: missing required column(s) {missing}; found {list(df.columns)[:8]}")


def _ids(df: pd.DataFrame, col: str, path: Path) -> pd.Series:
    ids = df[col].astype("string").str.strip()
    empty = ids.isna() | (ids == "")
    if empty.any():
        raise DataError(f"{path}: empty {col} at row {str(df.index[int(np.argmax(empty.to_numpy()))])!r}")
    return ids.astype(str)


def _by_line(df: pd.DataFrame) -> pd.DataFrame:
    """Rows indexed by their line number in the file (the header is line 1)."""
    return df.set_axis([str(i + 2) for i in range(len(df))], axis=0)


def _settings(folder: Path) -> tuple[str, str, ValueRange]:
    path = folder / "dataset.json"
    if not path.exists():
        return folder.resolve().name, GDSC_LN_IC50.meaning, GDSC_LN_IC50
    try:
        cfg = json.loads(path.read_text())
    except (ValueError, OSError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if not isinstance(cfg, dict) or set(cfg) - _DATASET_KEYS:
        raise DataError(f"{path}: expected an object with keys {sorted(_DATASET_KEYS)}, found "
                        f"{sorted(cfg) if isinstance(cfg, dict) else type(cfg).__name__}")
    for key in ("name", "ic50_unit"):
        value = cfg.get(key, "-")
        if not isinstance(value, str) or not value.strip() or (key == "name" and ("/" in value or "\\" in value)):
            raise DataError(f"{path}: {key} must be a non-empty text" + (" without / or \\" if key == "name" else "")
                            + f", found {value!r}")
    unit = str(cfg.get("ic50_unit", GDSC_LN_IC50.meaning))
    rng = cfg.get("ic50_range", [GDSC_LN_IC50.low, GDSC_LN_IC50.high])
    ok = (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, (int, float)) for v in rng)
          and np.isfinite(rng).all() and rng[0] < rng[1])
    if not ok:
        raise DataError(f"{path}: ic50_range must be [low, high] with finite low < high, found {rng!r}")
    return str(cfg.get("name", folder.resolve().name)), unit, ValueRange(float(rng[0]), float(rng[1]), unit)


def _thresholds(path: Path, valid: ValueRange) -> dict:
    if not path.exists():
        return {}
    df = _by_line(read_table(path, index_col=None, dtype={"drug_id": str}))
    _require_columns(df, path, ["drug_id", "threshold"])
    ids = _ids(df, "drug_id", path)
    check_unique(ids, path, "drug")
    values = numeric(df[["threshold"]], path, valid, allow_nan=False, what="threshold")[:, 0]
    return dict(zip(ids, values))


def _responses(folder: Path, valid: ValueRange):
    """(cell ids, drug ids, binary, ic50, thresholds per drug) from responses.csv and thresholds.csv."""
    path = folder / RESPONSES
    df = _by_line(read_table(path, index_col=None, dtype={"cell_id": str, "drug_id": str}))
    _require_columns(df, path, ["cell_id", "drug_id"], one_of=("ln_ic50", "label"))
    cells, drugs = _ids(df, "cell_id", path), _ids(df, "drug_id", path)
    pairs = pd.Series(list(zip(cells, drugs)), index=df.index)
    dup = pairs.duplicated(keep=False)
    if dup.any():
        lines = list(pairs.index[dup][:2])
        c, d = pairs[lines[0]]
        raise DataError(f"{path}: duplicate (cell_id, drug_id) pair ({c!r}, {d!r}) at rows {lines[0]!r} and "
                        f"{lines[1]!r}; give one measurement per pair")
    n = len(df)
    ic50 = (numeric(df[["ln_ic50"]], path, valid, allow_nan=True, what="ln IC50")[:, 0]
            if "ln_ic50" in df.columns else np.full(n, np.nan))
    label = (numeric(df[["label"]], path, ZERO_ONE, allow_nan=True, what="label")[:, 0].copy()
             if "label" in df.columns else np.full(n, np.nan))
    empty = np.isnan(ic50) & np.isnan(label)
    if empty.any():
        raise DataError(f"{path}: row {df.index[int(np.argmax(empty))]!r} has neither ln_ic50 nor label")
    thr_path = folder / "thresholds.csv"
    thresholds = _thresholds(thr_path, valid)
    derive = np.flatnonzero(np.isnan(label))
    for i in derive:
        if drugs.iat[i] not in thresholds:
            raise DataError(f"{path}: row {df.index[i]!r} (drug {drugs.iat[i]!r}) has no label, and "
                            f"{thr_path.name} has no threshold for that drug to derive it from its ln IC50")
        label[i] = float(ic50[i] < thresholds[drugs.iat[i]])
    cell_ids, drug_ids = pd.unique(cells), pd.unique(drugs)
    r = pd.Index(cell_ids).get_indexer(cells)
    c = pd.Index(drug_ids).get_indexer(drugs)
    binary = np.full((len(cell_ids), len(drug_ids)), np.nan)
    ic50_m = np.full_like(binary, np.nan)
    binary[r, c], ic50_m[r, c] = label, ic50
    thr = np.array([thresholds.get(d, np.nan) for d in drug_ids])
    return np.asarray(cell_ids), np.asarray(drug_ids), binary, ic50_m, thr


def _cell_views(folder: Path, cell_ids, dataset: str):
    """Feature blocks of every cell_<view>.csv and the mask of cell lines having a row in all of them."""
    blocks, names, keep = {}, {}, np.ones(len(cell_ids), dtype=bool)
    frames = {}
    for path in sorted(folder.glob("cell_*.csv")) + sorted(folder.glob("cell_*.csv.gz")):
        view = path.name.split(".")[0][len("cell_"):]
        if view == "meta":
            continue
        df = read_table(path)
        check_unique(df.index, path, "cell")
        check_unique(df.columns, path, "feature")
        has = np.array([c in df.index for c in cell_ids])
        if not has.all():
            gone = [str(c) for c in np.asarray(cell_ids)[~has]]
            log.warning("%s: dropped %d of %d cell lines without a row in %s (first: %s)", dataset, len(gone),
                        len(cell_ids), path.name, ", ".join(gone[:_SHOW_IDS]))
        keep &= has
        frames[view] = (path, df)
    if not keep.any():
        raise DataError(f"{folder}: no cell line of {RESPONSES} has a row in every cell_<view>.csv "
                        f"({', '.join(p.name for p, _ in frames.values())}); are the cell ids the same?")
    kept = np.asarray(cell_ids)[keep]
    for view, (path, df) in frames.items():
        sub = df.reindex(kept)
        blocks[view] = numeric(sub, path, FLOAT32, allow_nan=False, what=f"{view} value").astype(np.float32)
        names[view] = np.asarray(df.columns)
    return blocks, names, keep


def _smiles(path: Path, drug_ids) -> np.ndarray:
    if not path.exists():
        return np.full(len(drug_ids), "", dtype=object)
    df = _by_line(read_table(path, index_col=None, dtype={"drug_id": str, "smiles": str}))
    _require_columns(df, path, ["drug_id", "smiles"])
    ids = _ids(df, "drug_id", path)
    check_unique(ids, path, "drug")
    m = dict(zip(ids, df["smiles"].fillna("").astype(str).str.strip()))
    return np.array([m.get(d, "") for d in drug_ids], dtype=object)


def morgan_fingerprints(smiles, drug_ids, path: Path) -> np.ndarray:
    """The :data:`MORGAN` fingerprint of each SMILES; an empty or unparsable one is an error naming the drug."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN["radius"], fpSize=MORGAN["bits"])
    out = np.zeros((len(drug_ids), MORGAN["bits"]), dtype=np.float32)
    for j, (d, s) in enumerate(zip(drug_ids, smiles)):
        mol = Chem.MolFromSmiles(s) if s else None
        if mol is None:
            raise DataError(f"{path}: drug {str(d)!r} needs a fingerprint computed from its SMILES, but its smiles "
                            + (f"{s!r} cannot be parsed by RDKit" if s else "is missing"))
        out[j] = gen.GetFingerprintAsNumPy(mol)
    return out


def _fingerprints(folder: Path, drug_ids, smiles, dataset: str):
    """(fingerprint block or None, how it was made)."""
    fp_path, smi_path = folder / "drug_fingerprint.csv", folder / "drug_smiles.csv"
    morgan = f"computed from {smi_path.name}: Morgan radius {MORGAN['radius']}, {MORGAN['bits']} bits (RDKit)"
    if fp_path.exists():
        df = read_table(fp_path)
        check_unique(df.index, fp_path, "drug")
        lacking = [str(d) for d in drug_ids if d not in df.index]
        if not lacking:
            return numeric(df.reindex(drug_ids), fp_path, ZERO_ONE, allow_nan=False,
                           what="fingerprint bit").astype(np.float32), f"{fp_path.name} ({df.shape[1]} bits)"
        if not smi_path.exists():
            raise DataError(f"{fp_path} has no row for {len(lacking)} drug id(s) of {RESPONSES} (e.g. "
                            f"{lacking[:3]}) and there is no {smi_path.name} to compute fingerprints from")
        numeric(df, fp_path, ZERO_ONE, allow_nan=False, what="fingerprint bit")  # still a valid file
        log.warning("%s: %s has no row for %d drugs (first: %s); the fingerprints of all %d drugs are %s",
                    dataset, fp_path.name, len(lacking), ", ".join(lacking[:_SHOW_IDS]), len(drug_ids), morgan)
        return morgan_fingerprints(smiles, drug_ids, smi_path), morgan
    if smi_path.exists():
        return morgan_fingerprints(smiles, drug_ids, smi_path), morgan
    return None, "none (no drug_fingerprint.csv or drug_smiles.csv)"


def _tissues(path: Path, cell_ids) -> np.ndarray:
    if not path.exists():
        return np.full(len(cell_ids), "")
    df = _by_line(read_table(path, index_col=None, dtype={"cell_id": str, "tissue": str}))
    _require_columns(df, path, ["cell_id", "tissue"])
    ids = _ids(df, "cell_id", path)
    check_unique(ids, path, "cell")
    m = dict(zip(ids, df["tissue"].fillna("").astype(str).str.strip()))
    loaded = {str(c) for c in cell_ids}
    stray = [i for i in m if i not in loaded]
    if stray:  # a mistyped id leaves its cell line without a tissue: say so, as for the cell views
        log.warning("%s: %d of %d cell ids are not among the %d cell lines loaded (first: %s); their tissue is unused",
                    path, len(stray), len(m), len(loaded), ", ".join(stray[:5]))
    return np.array([m.get(str(c), "") for c in cell_ids])


def load_long_layout(folder) -> Dataset:
    """The dataset in ``folder`` (see the module docstring for the layout and its checks)."""
    folder = Path(folder)
    if not is_long_layout(folder):
        raise DataError(f"{folder}: not a dataset folder (no {RESPONSES})")
    name, unit, valid = _settings(folder)
    cells, drugs, binary, ic50, thr = _responses(folder, valid)
    blocks, names, keep = _cell_views(folder, cells, name)
    dropped = [str(c) for c in cells[~keep]]
    smiles = _smiles(folder / "drug_smiles.csv", drugs)
    fp, fp_source = _fingerprints(folder, drugs, smiles, name)
    return Dataset(
        name=name,
        cell_ids=cells[keep],
        drug_ids=drugs,
        binary=binary[keep],
        ic50=ic50[keep],
        cell_features=blocks,
        cell_feature_names=names,
        drug_features={} if fp is None else {"fingerprint": fp},
        smiles=smiles,
        thresholds=thr,
        cell_tissue=_tissues(folder / "cell_meta.csv", cells[keep]),
        meta={
            "source": f"long layout at {folder}",
            "ic50_unit": unit,
            "fingerprint_source": fp_source,
            "dropped_cells": len(dropped),
            "dropped_cell_ids": dropped,
            "cells_in_response": int(len(cells)),
        },
    )


__all__ = ["load_long_layout", "is_long_layout", "morgan_fingerprints", "MORGAN", "RESPONSES"]
