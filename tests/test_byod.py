"""Bring your own dataset: the long layout, DrEval's layout (through ``drbench data import-dreval``) and datasets
from packages (entry-point group ``drbench.datasets``). Each layout runs a sweep end to end; every bad input is
one line naming file, row and column (exit 2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drbench.cli import main
from drbench.datasets import load_dataset, make_synthetic, plugin_datasets
from drbench.datasets.dreval import import_dreval
from drbench.datasets.long_layout import MORGAN

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CN1C=NC2=C1C(=O)N(C)C(=O)N2C", "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
          "OC(=O)c1ccccc1OC(C)=O"]


def synthetic_screen():
    return make_synthetic(n_cells=40, n_drugs=6, n_genes=12, n_invivo=0, seed=3)


def write_long(ds, folder: Path, label: bool = True, fingerprints: bool = True) -> Path:
    """``ds`` in the long layout: responses, thresholds, expression, fingerprints, SMILES and tissue."""
    folder.mkdir(parents=True, exist_ok=True)
    i, j = np.nonzero(ds.measured)
    resp = pd.DataFrame({"cell_id": ds.cell_ids[i], "drug_id": ds.drug_ids[j], "ln_ic50": ds.ic50[i, j]})
    if label:
        resp["label"] = ds.binary[i, j].astype(int)
    resp.to_csv(folder / "responses.csv", index=False)
    pd.DataFrame({"drug_id": ds.drug_ids, "threshold": ds.thresholds}).to_csv(folder / "thresholds.csv", index=False)
    pd.DataFrame(ds.cell_features["expression"], index=pd.Index(ds.cell_ids, name="cell_id"),
                 columns=ds.cell_feature_names["expression"]).to_csv(folder / "cell_expression.csv")
    if fingerprints:
        pd.DataFrame(ds.drug_features["fingerprint"].astype(int), index=pd.Index(ds.drug_ids, name="drug_id")).to_csv(
            folder / "drug_fingerprint.csv")
    pd.DataFrame({"drug_id": ds.drug_ids, "smiles": SMILES[:len(ds.drug_ids)]}).to_csv(folder / "drug_smiles.csv",
                                                                                       index=False)
    pd.DataFrame({"cell_id": ds.cell_ids, "tissue": ds.cell_tissue}).to_csv(folder / "cell_meta.csv", index=False)
    return folder


@pytest.fixture
def screen(tmp_path):
    return write_long(synthetic_screen(), tmp_path / "myscreen")


def aligned(ds, ref):
    """``ds``'s label and IC50 matrices in ``ref``'s row and column order."""
    r = pd.Index(ds.cell_ids).get_indexer(ref.cell_ids)
    c = pd.Index(ds.drug_ids).get_indexer(ref.drug_ids)
    assert (r >= 0).all() and (c >= 0).all()
    return ds.binary[np.ix_(r, c)], ds.ic50[np.ix_(r, c)], r, c


def one_error_line(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drbench: error: ") and "Traceback" not in err[0], err
    return err[0]


def sweep(dataset: str, tmp_path: Path, *extra) -> list[str]:
    return ["run", "--methods", "mean-effects,global-mean,srmf", "--protocol", "random", "--dataset", dataset,
            "--tracking-uri", f"sqlite:///{tmp_path}/db", "--folds", "0", "-q", *extra]


# ---------------------------------------------------------------------------------------------- the long layout
def test_the_long_layout_holds_what_was_written(screen):
    ref = synthetic_screen()
    ds = load_dataset(str(screen))
    assert ds.name == "myscreen" and ds.shape == ref.shape
    binary, ic50, r, c = aligned(ds, ref)
    np.testing.assert_array_equal(binary, ref.binary)
    np.testing.assert_allclose(ic50, ref.ic50, rtol=1e-12)
    np.testing.assert_allclose(ds.cell_features["expression"][r], ref.cell_features["expression"], rtol=1e-6)
    np.testing.assert_array_equal(ds.drug_features["fingerprint"][c], ref.drug_features["fingerprint"])
    np.testing.assert_array_equal(ds.cell_tissue[r], ref.cell_tissue)
    np.testing.assert_array_equal(ds.thresholds[c], ref.thresholds)
    assert ds.meta["fingerprint_source"].startswith("drug_fingerprint.csv")


def test_a_sweep_runs_end_to_end_on_the_long_layout(screen, tmp_path, capsys):
    assert main(sweep(str(screen), tmp_path)) == 0
    out = capsys.readouterr().out
    assert "3 jobs planned" in out and "3 finished now, 0 failed" in out
    assert main(["data", "info", str(screen)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["name"], info["cells"], info["drugs"]) == ("myscreen", 40, 6)
    assert info["cell_features"] == {"expression": [40, 12]} and info["drug_features"] == {"fingerprint": [6, 920]}


def test_a_name_under_the_data_directory_finds_the_folder_and_data_list_shows_it(screen, capsys):
    ds = load_dataset("myscreen", data_dir=screen.parent)
    assert ds.shape == (40, 6)
    assert main(["data", "list", "--data-dir", str(screen.parent)]) == 0
    assert any(line.startswith("myscreen") and "long layout" in line for line in capsys.readouterr().out.splitlines())


def test_labels_are_derived_from_thresholds_where_absent(tmp_path):
    ref = synthetic_screen()
    folder = write_long(ref, tmp_path / "s", label=False)
    binary, _, _, _ = aligned(load_dataset(str(folder)), ref)
    np.testing.assert_array_equal(binary, ref.binary)  # the synthetic labels are ln IC50 < threshold
    # a given label wins over the threshold, row by row
    resp = pd.read_csv(folder / "responses.csv", dtype={"cell_id": str, "drug_id": str})
    resp["label"] = np.nan
    resp.loc[0, "label"] = 1 - float(resp.loc[0, "ln_ic50"] < ref.thresholds[list(ref.drug_ids).index(resp.drug_id[0])])
    resp.to_csv(folder / "responses.csv", index=False)
    ds = load_dataset(str(folder))
    i, j = list(ds.cell_ids).index(resp.cell_id[0]), list(ds.drug_ids).index(resp.drug_id[0])
    assert ds.binary[i, j] == resp.loc[0, "label"]


def test_fingerprints_are_computed_from_smiles_where_the_table_is_missing_or_incomplete(tmp_path, caplog):
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=920)
    expected = np.array([gen.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in SMILES])
    ref = synthetic_screen()
    folder = write_long(ref, tmp_path / "s", fingerprints=False)
    ds = load_dataset(str(folder))
    c = pd.Index(ds.drug_ids).get_indexer(ref.drug_ids)
    np.testing.assert_array_equal(ds.drug_features["fingerprint"][c], expected)
    assert MORGAN["bits"] == 920 and "Morgan radius 2, 920 bits" in ds.meta["fingerprint_source"]
    # a table lacking one drug: every drug gets the SMILES fingerprint (one kind per matrix), with a warning
    pd.DataFrame(ref.drug_features["fingerprint"][1:].astype(int), index=pd.Index(ref.drug_ids[1:], name="drug_id")
                 ).to_csv(folder / "drug_fingerprint.csv")
    with caplog.at_level(logging.WARNING, logger="drbench.datasets"):
        ds = load_dataset(str(folder))
    np.testing.assert_array_equal(ds.drug_features["fingerprint"][c], expected)
    assert any("has no row for 1 drugs" in r.getMessage() and ref.drug_ids[0] in r.getMessage() for r in caplog.records)


def test_a_tissue_row_for_an_unknown_cell_id_is_warned_about(screen, caplog):
    """A mistyped id in cell_meta.csv leaves its cell line without a tissue: the loader says which ids matched none."""
    meta = pd.read_csv(screen / "cell_meta.csv", dtype=str)
    meta.loc[0, "cell_id"] = "NOT-A-CELL"
    meta.to_csv(screen / "cell_meta.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="drbench.datasets"):
        ds = load_dataset(str(screen))
    assert any("cell_meta.csv: 1 of" in r.getMessage() and "(first: NOT-A-CELL)" in r.getMessage()
               for r in caplog.records)
    assert (ds.cell_tissue == "").sum() >= 1  # the cell line the row was meant for has no tissue now


def test_a_response_without_a_feature_row_drops_the_cell_line_with_a_warning(screen, caplog):
    expr = pd.read_csv(screen / "cell_expression.csv", index_col=0)
    expr.drop(index=expr.index[[3, 7]]).to_csv(screen / "cell_expression.csv")
    with caplog.at_level(logging.WARNING, logger="drbench.datasets"):
        ds = load_dataset(str(screen))
    assert ds.shape[0] == 38 and ds.meta["dropped_cell_ids"] == [expr.index[3], expr.index[7]]
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "dropped 2 of 40 cell lines without a row in cell_expression.csv" in msg and expr.index[3] in msg


# ---------------------------------------------------------------------------------------------- bad input
def _edit(folder: Path, file: str, row: int, col: str, value) -> None:
    """Set one cell of a CSV (``row`` counts data rows from 0; it is on line row + 2)."""
    df = pd.read_csv(folder / file, dtype=str, keep_default_na=False)
    df.loc[row, col] = value
    df.to_csv(folder / file, index=False)


BAD = [
    # (file, edit, words the one line must hold)
    ("responses.csv", ("ln_ic50", 2, "abc"), ["non-numeric ln IC50 'abc'", "row '4'", "column 'ln_ic50'"]),
    ("responses.csv", ("ln_ic50", 0, "inf"), ["non-finite ln IC50", "row '2'", "column 'ln_ic50'"]),
    ("responses.csv", ("ln_ic50", 5, "1e6"), ["within the documented range [-20, 20]", "row '7'"]),
    ("responses.csv", ("label", 1, "2"), ["labels must be 0 or 1", "row '3'", "column 'label'"]),
    ("responses.csv", ("cell_id", 4, ""), ["empty cell_id", "row '6'"]),
    ("thresholds.csv", ("threshold", 1, "x"), ["thresholds.csv", "non-numeric threshold 'x'", "row '3'"]),
    ("cell_expression.csv", ("G0003", 2, "nan?"), ["cell_expression.csv", "non-numeric", "column 'G0003'"]),
    ("drug_fingerprint.csv", ("5", 1, "2"), ["drug_fingerprint.csv", "0 or 1", "column '5'"]),
]


@pytest.mark.parametrize("file,edit,words", BAD, ids=[f"{b[0]}-{b[1][0]}-{b[1][2]}" for b in BAD])
def test_a_bad_value_is_one_line_naming_file_row_and_column(screen, capsys, file, edit, words):
    col, row, value = edit
    if file == "cell_expression.csv" or file == "drug_fingerprint.csv":
        df = pd.read_csv(screen / file, index_col=0, dtype=str)
        df.iloc[row, list(df.columns).index(col)] = value
        df.to_csv(screen / file)
    else:
        _edit(screen, file, row, col, value)
    line = one_error_line(["data", "info", str(screen)], capsys)
    assert file in line
    for w in words:
        assert w in line, line


def test_a_duplicate_pair_is_one_line_naming_both_rows(screen, capsys):
    resp = pd.read_csv(screen / "responses.csv", dtype=str)
    pd.concat([resp, resp.iloc[[1]]]).to_csv(screen / "responses.csv", index=False)
    line = one_error_line(["data", "info", str(screen)], capsys)
    assert "duplicate (cell_id, drug_id) pair" in line and "rows '3' and " f"'{len(resp) + 2}'" in line


def test_a_missing_column_and_another_delimiter_are_one_line(screen, capsys):
    resp = pd.read_csv(screen / "responses.csv", dtype=str)
    resp.drop(columns=["drug_id"]).to_csv(screen / "responses.csv", index=False)
    line = one_error_line(["data", "info", str(screen)], capsys)
    assert "responses.csv: missing required column(s) ['drug_id']" in line
    resp.drop(columns=["ln_ic50", "label"]).to_csv(screen / "responses.csv", index=False)
    assert "['ln_ic50 or label']" in one_error_line(["data", "info", str(screen)], capsys)
    resp.to_csv(screen / "responses.csv", index=False, sep=";")
    line = one_error_line(["data", "info", str(screen)], capsys)
    assert "responses.csv" in line and "semicolon-separated" in line


def test_a_missing_threshold_for_a_drug_that_needs_one_is_one_line(tmp_path, capsys):
    ref = synthetic_screen()
    folder = write_long(ref, tmp_path / "s", label=False)
    thr = pd.read_csv(folder / "thresholds.csv", dtype={"drug_id": str})
    thr[thr.drug_id != ref.drug_ids[2]].to_csv(folder / "thresholds.csv", index=False)
    line = one_error_line(["data", "info", str(folder)], capsys)
    assert f"(drug '{ref.drug_ids[2]}') has no label" in line and "no threshold" in line and "row '" in line


def test_an_unparsable_smiles_needed_for_a_fingerprint_is_one_line(tmp_path, capsys):
    folder = write_long(synthetic_screen(), tmp_path / "s", fingerprints=False)
    _edit(folder, "drug_smiles.csv", 3, "smiles", "C1CC(")
    line = one_error_line(["data", "info", str(folder)], capsys)
    assert "drug_smiles.csv" in line and "'C1CC('" in line and "cannot be parsed" in line


def test_a_folder_without_responses_and_an_unknown_name_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "not a dataset folder (no responses.csv" in one_error_line(["data", "info", str(tmp_path / "empty")], capsys)
    line = one_error_line(["data", "info", "no-such-screen", "--data-dir", str(tmp_path)], capsys)
    assert "unknown dataset 'no-such-screen'" in line and "gdsc" in line


def test_a_bad_dataset_json_is_one_line(screen, capsys):
    (screen / "dataset.json").write_text(json.dumps({"name": "x", "ic50_range": [5, 1]}))
    assert "ic50_range must be [low, high]" in one_error_line(["data", "info", str(screen)], capsys)
    (screen / "dataset.json").write_text(json.dumps({"name": "x", "ic50_range": [-100, 100], "unit": "?"}))
    assert "dataset.json: expected an object with keys" in one_error_line(["data", "info", str(screen)], capsys)
    for cfg, fragment in [({"name": 3}, "name must be a non-empty text without / or \\, found 3"),
                          ({"name": " "}, "name must be a non-empty text"),
                          ({"name": "a/b"}, "found 'a/b'"),
                          ({"ic50_unit": ["ln", "uM"]}, "ic50_unit must be a non-empty text, found ['ln', 'uM']")]:
        (screen / "dataset.json").write_text(json.dumps(cfg))
        assert fragment in one_error_line(["data", "info", str(screen)], capsys), cfg


def test_dataset_json_sets_the_name_and_the_valid_range(screen):
    _edit(screen, "responses.csv", 0, "ln_ic50", "30")
    (screen / "dataset.json").write_text(json.dumps({"name": "lab-screen", "ic50_unit": "ln IC50 (nM)",
                                                     "ic50_range": [-40, 40]}))
    ds = load_dataset(str(screen))
    assert ds.name == "lab-screen" and ds.meta["ic50_unit"] == "ln IC50 (nM)" and np.nanmax(ds.ic50) == 30


# ---------------------------------------------------------------------------------------------- DrEval's layout
def write_dreval(ref, folder: Path) -> Path:
    """``ref`` as a DrEval custom dataset: <name>.csv, gene_expression.csv and drug_smiles.csv."""
    folder.mkdir(parents=True)
    i, j = np.nonzero(ref.measured)
    pd.DataFrame({"cell_line_name": ref.cell_ids[i], "pubchem_id": ref.drug_ids[j], "drug_name": ref.drug_names[j],
                  "tissue": ref.cell_tissue[i], "LN_IC50": ref.ic50[i, j], "AUC": 0.5}).to_csv(
        folder / "LAB.csv", index=False)
    expr = pd.DataFrame(ref.cell_features["expression"], columns=ref.cell_feature_names["expression"])
    expr.insert(0, "cell_line_name", ref.cell_ids)
    expr.insert(0, "cellosaurus_id", [f"CVCL_{k}" for k in range(len(ref.cell_ids))])
    expr.to_csv(folder / "gene_expression.csv", index=False)
    pd.DataFrame({"pubchem_id": ref.drug_ids, "canonical_smiles": SMILES}).to_csv(folder / "drug_smiles.csv",
                                                                                  index=False)
    return folder / "LAB.csv"


def test_a_dreval_dataset_is_imported_and_runs_end_to_end(tmp_path, capsys):
    ref = synthetic_screen()
    src = write_dreval(ref, tmp_path / "dreval" / "LAB")
    dest = tmp_path / "lab"
    assert main(["data", "import-dreval", str(src), str(dest)]) == 0
    ds = load_dataset(str(dest))
    binary, ic50, r, c = aligned(ds, ref)
    np.testing.assert_allclose(ic50, ref.ic50, rtol=1e-12)
    z = (ref.ic50 - np.nanmean(ref.ic50, 0)) / np.nanstd(ref.ic50, 0)
    np.testing.assert_array_equal(binary, np.where(ref.measured, (z < -0.8).astype(float), np.nan))
    np.testing.assert_allclose(ds.cell_features["expression"][r], ref.cell_features["expression"], rtol=1e-6)
    np.testing.assert_array_equal(ds.cell_tissue[r], ref.cell_tissue)
    assert ds.drug_features["fingerprint"].shape == (6, 920) and "LN_IC50" in ds.meta["ic50_unit"]
    capsys.readouterr()
    assert main(sweep(str(dest), tmp_path)) == 0
    assert "3 finished now, 0 failed" in capsys.readouterr().out


def test_dreval_import_refuses_bad_input_in_one_line(tmp_path, capsys):
    src = write_dreval(synthetic_screen(), tmp_path / "LAB")
    df = pd.read_csv(src, dtype=str)
    df.drop(columns=["cell_line_name"]).to_csv(src, index=False)
    line = one_error_line(["data", "import-dreval", str(src), str(tmp_path / "out")], capsys)
    assert "LAB.csv: missing required column(s) ['cell_line_name or cell_line_id']" in line
    pd.concat([df, df.iloc[[0]]]).to_csv(src, index=False)
    line = one_error_line(["data", "import-dreval", str(src), str(tmp_path / "out")], capsys)
    assert "duplicate" in line and "rows '2' and " f"'{len(df) + 2}'" in line
    df.loc[3, "LN_IC50"] = "high"
    df.to_csv(src, index=False)
    line = one_error_line(["data", "import-dreval", str(src), str(tmp_path / "out")], capsys)
    assert "non-numeric LN_IC50 'high' at row '5', column 'LN_IC50'" in line
    assert "larger values mean more sensitive" in one_error_line(
        ["data", "import-dreval", str(src), str(tmp_path / "out"), "--measure", "pEC50"], capsys)


# ---------------------------------------------------------------------------------------------- from packages
def test_a_dataset_registered_by_a_package_loads_by_name_and_is_listed(monkeypatch, capsys, tmp_path):
    seen = []

    def load(data_dir):
        seen.append(data_dir)
        return synthetic_screen()

    reg = plugin_datasets()
    reg.add("lab-plugin", load, provider="lab-pkg")
    try:
        assert main(["data", "list"]) == 0
        assert any(ln.startswith("lab-plugin") and "lab-pkg" in ln for ln in capsys.readouterr().out.splitlines())
        assert load_dataset("lab-plugin", data_dir="somewhere").shape == (40, 6) and seen == ["somewhere"]
        assert main(sweep("lab-plugin", tmp_path)) == 0
        assert "3 finished now, 0 failed" in capsys.readouterr().out
        reg.add("not-a-dataset", lambda data_dir: "oops", provider="lab-pkg")
        assert "returned str, not a drbench Dataset" in one_error_line(["data", "info", "not-a-dataset"], capsys)
    finally:
        reg.remove("lab-plugin")
        reg.remove("not-a-dataset")


def test_a_feature_table_matching_no_cell_line_is_one_line(screen, capsys):
    expr = pd.read_csv(screen / "cell_expression.csv", index_col=0)
    expr.set_axis([f"other-{k}" for k in range(len(expr))], axis=0).to_csv(screen / "cell_expression.csv")
    line = one_error_line(["data", "info", str(screen)], capsys)
    assert "no cell line of responses.csv has a row in every cell_<view>.csv (cell_expression.csv)" in line


def test_a_folder_named_like_a_built_in_dataset_must_be_renamed(tmp_path, capsys):
    folder = write_long(synthetic_screen(), tmp_path / "gdsc")
    line = one_error_line(["data", "info", str(folder)], capsys)
    assert "dataset name 'gdsc' is a built-in dataset's" in line and "dataset.json" in line
    (folder / "dataset.json").write_text(json.dumps({"name": "my-gdsc-screen"}))
    assert load_dataset(str(folder)).name == "my-gdsc-screen"


def test_dreval_import_reads_the_cell_line_id_and_drug_id_columns_of_other_versions(tmp_path):
    ref = synthetic_screen()
    src = write_dreval(ref, tmp_path / "LAB")
    pd.read_csv(src, dtype=str).drop(columns=["pubchem_id"]).rename(
        columns={"cell_line_name": "cell_line_id", "drug_name": "drug_id"}).to_csv(src, index=False)
    expr = pd.read_csv(src.parent / "gene_expression.csv", dtype={"cell_line_name": str})
    expr.rename(columns={"cell_line_name": "cell_line_id"}).to_csv(src.parent / "gene_expression.csv", index=False)
    ds = load_dataset(str(import_dreval(src, tmp_path / "lab")))
    names = dict(zip(ref.drug_names, ref.drug_ids))
    assert sorted(names[d] for d in ds.drug_ids) == sorted(ref.drug_ids) and ds.shape == ref.shape
    assert "fingerprint" not in ds.drug_features  # drug names: DrEval's SMILES are keyed by PubChem id
    r = pd.Index(ds.cell_ids).get_indexer(ref.cell_ids)
    np.testing.assert_allclose(ds.cell_features["expression"][r], ref.cell_features["expression"], rtol=1e-6)
