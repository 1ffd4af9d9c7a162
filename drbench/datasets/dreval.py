"""Importer of DrEval/drevalpy's custom-dataset layout into the long layout (:mod:`drbench.datasets.long_layout`).

DrEval reads a response CSV ``<path_data>/<name>/<name>.csv`` with one row per (cell line, drug): a cell column
(``cell_line_name``; ``cell_line_id`` in some drevalpy versions), a drug column (``pubchem_id``, else
``drug_id``, else ``drug_name``), a measure column (``LN_IC50``, ``AUC``, ...; with ``_curvecurator``
variants) and optionally ``tissue``; beside it ``gene_expression.csv`` (``cellosaurus_id``, the same cell
column, one column per gene) and ``drug_smiles.csv`` (``pubchem_id``, ``canonical_smiles``; used when the drugs
are PubChem ids).
:func:`import_dreval` writes the same data as a long-layout folder: the measure becomes ``ln_ic50`` (its name
and range recorded in ``dataset.json``), rows without a measure are left out (as DrEval drops NaN responses),
and labels come from per-drug thresholds at the drug's mean − 0.8 standard deviations (population) of the
measure, the CCLE rule (z-score < −0.8; docs/method-specs.md §1), written to ``thresholds.csv`` — lower is
more sensitive, as for ln IC50 and AUC.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from drbench import atomic
from drbench.datasets.files import ValueRange, numeric, read_table
from drbench.datasets.mtigcn_layout import GDSC_LN_IC50
from drbench.errors import DataError, UsageError
from drbench.inputs import check_output_dir

log = logging.getLogger("drbench.datasets")

#: z-score below which a pair is labelled sensitive (the CCLE rule)
Z_SENSITIVE = -0.8
#: measures whose larger values mean more sensitive: a threshold "below" would invert their labels
_HIGHER_IS_SENSITIVE = ("pEC50",)
#: the response CSV's cell and drug id columns, in order of preference
_CELL_COLUMNS = ("cell_line_name", "cell_line_id")
_DRUG_COLUMNS = ("pubchem_id", "drug_id", "drug_name")
_ANY_NUMBER = ValueRange(-1e6, 1e6, "the measure's value")


def import_dreval(response_csv, dest, measure: str = "LN_IC50") -> Path:
    """Write the DrEval dataset of ``response_csv`` (and its feature files beside it) to ``dest`` in the long
    layout; returns ``dest``. ``dest`` must not hold a dataset already."""
    src, dest = Path(response_csv), Path(dest)
    if measure.split("_curvecurator")[0] in _HIGHER_IS_SENSITIVE:
        raise UsageError(f"measure {measure!r}: larger values mean more sensitive; labels are derived as "
                         "'below the drug's threshold', so import LN_IC50, IC50 or AUC instead")
    if (dest / "responses.csv").exists():
        raise UsageError(f"{dest} already holds a dataset (responses.csv); choose an empty folder")
    df = read_table(src, index_col=None, dtype={c: str for c in _CELL_COLUMNS + _DRUG_COLUMNS})
    df = df.set_axis([str(i + 2) for i in range(len(df))], axis=0)
    cell_col = next((c for c in _CELL_COLUMNS if c in df.columns), None)
    drug_col = next((c for c in _DRUG_COLUMNS if c in df.columns), None)
    missing = [" or ".join(names) for names, col in ((_CELL_COLUMNS, cell_col), (_DRUG_COLUMNS, drug_col)) if not col]
    missing += [measure] if measure not in df.columns else []
    if missing:
        raise DataError(f"{src}: missing required column(s) {missing}; found {list(df.columns)[:10]}")
    valid = GDSC_LN_IC50 if measure.startswith("LN_IC50") else _ANY_NUMBER
    values = numeric(df[[measure]], src, valid, allow_nan=True, what=measure)[:, 0]
    keep = ~np.isnan(values)
    if not keep.all():
        log.warning("%s: left out %d of %d rows without %s (first at row %s)", src.name, int((~keep).sum()),
                    len(keep), measure, df.index[int(np.argmax(~keep))])
    out = pd.DataFrame({"cell_id": df[cell_col].to_numpy()[keep], "drug_id": df[drug_col].to_numpy()[keep],
                        "ln_ic50": values[keep]})
    dup = out.duplicated(["cell_id", "drug_id"], keep=False).to_numpy()
    if dup.any():
        rows = list(df.index[keep][dup][:2])
        raise DataError(f"{src}: duplicate ({cell_col}, {drug_col}) pair at rows {rows[0]!r} and {rows[1]!r}; "
                        "give one measurement per pair")
    stats = out.groupby("drug_id", sort=False)["ln_ic50"].agg(["mean", lambda v: v.std(ddof=0)])
    files = {"thresholds.csv": pd.DataFrame({"drug_id": stats.index,
                                             "threshold": stats.iloc[:, 0] + Z_SENSITIVE * stats.iloc[:, 1]})}
    if "tissue" in df.columns:
        meta = df.loc[keep, [cell_col, "tissue"]].drop_duplicates(cell_col)
        files["cell_meta.csv"] = meta.rename(columns={cell_col: "cell_id"})
    expr_path = src.parent / "gene_expression.csv"
    if expr_path.exists():
        e = read_table(expr_path, index_col=None, dtype={cell_col: str})
        if cell_col not in e.columns:
            raise DataError(f"{expr_path}: missing required column(s) [{cell_col!r}]; found {list(e.columns)[:8]}")
        e = e.drop(columns=[c for c in ("cellosaurus_id", *_CELL_COLUMNS) if c in e.columns and c != cell_col])
        files["cell_expression.csv"] = e.rename(columns={cell_col: "cell_id"})[["cell_id", *e.columns.drop(cell_col)]]
    smiles_path = src.parent / "drug_smiles.csv"
    if smiles_path.exists() and drug_col == "pubchem_id":
        sm = read_table(smiles_path, index_col=None, dtype={"pubchem_id": str})
        if not {"pubchem_id", "canonical_smiles"} <= set(sm.columns):
            raise DataError(f"{smiles_path}: missing required column(s) ['pubchem_id', 'canonical_smiles']; "
                            f"found {list(sm.columns)[:8]}")
        files["drug_smiles.csv"] = sm.rename(columns={"pubchem_id": "drug_id", "canonical_smiles": "smiles"})[
            ["drug_id", "smiles"]]
    files["responses.csv"] = out  # last: a folder is a dataset once it has responses.csv
    check_output_dir(dest, "dest").mkdir(parents=True, exist_ok=True)
    cfg = {"name": dest.resolve().name, "ic50_unit": f"{measure} (imported from DrEval {src.name})",
           "ic50_range": [valid.low, valid.high]}
    atomic.write_text(dest / "dataset.json", json.dumps(cfg, indent=2) + "\n")
    for name, frame in files.items():
        atomic.write_csv(frame, dest / name, index=False)
    return dest


__all__ = ["import_dreval", "Z_SENSITIVE"]
