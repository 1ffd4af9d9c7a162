"""Datasets: synthetic generator, loaders on a tiny fake MTIGCN layout, and one clear error per bad input."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from drbench.datasets import Dataset, combine, load_dataset, make_synthetic, resolve_data_dir
from drbench.datasets.mtigcn_layout import load_ccle, load_gdsc
from drbench.errors import DataError, MissingFeatureError, UsageError


def test_synthetic_is_gdsc_shaped_and_seeded():
    d = make_synthetic()
    meas = d.measured
    assert d.shape == (240, 60)
    assert 0.17 < 1 - meas.mean() < 0.23  # about 20% unmeasured
    assert 0.10 < (d.binary == 1).sum() / meas.sum() < 0.14  # about 12% positives
    assert d.cell_features["expression"].shape == (240, 400)
    assert d.drug_features["fingerprint"].shape == (60, 920)
    assert set(np.unique(d.drug_features["fingerprint"])) <= {0.0, 1.0}
    assert (np.isnan(d.ic50) == ~meas).all()
    # labels follow the per-drug thresholds
    assert ((d.ic50 < d.thresholds) == (d.binary == 1))[meas].all()
    assert make_synthetic().content_hash == d.content_hash
    assert make_synthetic(seed=1).content_hash != d.content_hash
    assert make_synthetic(n_cells=50, n_drugs=10).shape == (50, 10)


def test_synthetic_invivo_companion_has_labels_only():
    v = make_synthetic(part="invivo")
    assert v.shape == (60, 60)
    assert np.isnan(v.ic50).all()
    assert (v.measured.sum(0) > 0).sum() <= 6  # few drugs
    assert "expression" in v.cell_features


def test_dataset_is_immutable():
    d = make_synthetic(n_cells=20, n_drugs=5)
    with pytest.raises(ValueError):
        d.binary[0, 0] = 1
    with pytest.raises(Exception):
        d.name = "x"


def test_dataset_rejects_non_binary_and_duplicates():
    with pytest.raises(DataError, match="0/1.*cell 'a'.*drug 'y'"):
        Dataset("t", ["a", "b"], ["x", "y"], np.array([[0, 2], [1, 0]]), np.zeros((2, 2)))
    with pytest.raises(DataError, match="duplicate cell ids"):
        Dataset("t", ["a", "a"], ["x"], np.zeros((2, 1)), np.zeros((2, 1)))


def test_combine_appends_rows_on_shared_drugs():
    c = make_synthetic(n_cells=30, n_drugs=8, part="cells")
    v = make_synthetic(n_cells=30, n_drugs=8, part="invivo")
    u = combine(c, v)
    assert u.shape == (30 + v.shape[0], 8)
    assert (u.cell_domain[:30] == "synthetic").all() and (u.cell_domain[30:] == "synthetic-vivo").all()
    assert u.meta["source_name"] == "synthetic"
    assert list(u.cell_names) == [*c.cell_names, *v.cell_names]


def test_missing_feature_error_says_why():
    d = Dataset("pdx", ["a"], ["x"], np.zeros((1, 1)), np.zeros((1, 1)),
                meta={"missing_features": {"expression": "the bundle has no PDX expression"}})
    with pytest.raises(MissingFeatureError, match="no expression.*bundle has no PDX expression"):
        d.require({"expression"})


def test_unknown_dataset_lists_choices():
    with pytest.raises(UsageError, match="choose one of: synthetic"):
        load_dataset("gdsc2")


def test_missing_data_dir_names_the_ways_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DRBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="--data-dir.*DRBENCH_DATA"):
        load_dataset("gdsc", tmp_path / "nowhere")
    (tmp_path / "env" / "gdsc").mkdir(parents=True)
    monkeypatch.setenv("DRBENCH_DATA", str(tmp_path / "env"))
    assert resolve_data_dir("gdsc") == tmp_path / "env"


# ---------------------------------------------------------------------------------------------- fake layout
CELLS = ["101", "102", "103", "104"]
DRUGS = ["11", "22", "33"]


def write_layout(root, *, binary=None, null=None, ic50=None, fp_width=920, expr_cells=CELLS, gz=True):
    d = root / "gdsc"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    b = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]], float) if binary is None else binary
    nm = np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0]]) if null is None else null
    r = np.where(nm == 1, np.nan, rng.normal(size=b.shape)) if ic50 is None else ic50
    pd.DataFrame(b, index=CELLS, columns=DRUGS).to_csv(d / "cell_drug_binary.csv")
    pd.DataFrame(nm, index=CELLS, columns=DRUGS).to_csv(d / "null_mask.csv")
    pd.DataFrame(r, index=CELLS, columns=DRUGS).to_csv(d / "cell_drug.csv")
    pd.DataFrame({"Threshold": [0.1, 0.2, 0.3]}, index=DRUGS).to_csv(d / "threshold.csv")
    pd.DataFrame(rng.integers(0, 2, size=(3, fp_width)), index=DRUGS).to_csv(d / "drug_feature.csv")
    e = pd.DataFrame(rng.normal(size=(len(expr_cells), 5)), index=expr_cells, columns=[f"G{i}" for i in range(5)])
    e.index.name = "cell"
    e.to_csv(d / "cell_exprs.csv.gz", compression="gzip")
    return d


def test_fake_layout_loads_and_drops_cells_without_expression(tmp_path, caplog):
    write_layout(tmp_path, expr_cells=CELLS[:3])
    with caplog.at_level("INFO", logger="drbench.datasets"):
        ds = load_gdsc(tmp_path)
    assert ds.shape == (3, 3)
    assert ds.meta["dropped_cells"] == 1
    assert "dropped 1 of 4" in caplog.text
    assert np.isnan(ds.binary[0, 2]) and ds.binary[0, 0] == 1
    full = load_gdsc(tmp_path, keep_all_cells=True)
    assert full.shape == (4, 3) and "expression" not in full.cell_features
    assert list(ds.cell_names) == list(ds.cell_ids)  # no cell_map.csv: names fall back to the ids


def test_cell_names_come_from_cell_map_and_follow_subsets(tmp_path):
    d = write_layout(tmp_path)
    pd.DataFrame({"cosmic_id": ["101", "103"], "gdsc_name": ["A-1", "C-3"],
                  "deepdr_cell_name": ["A1", "C3"]}).to_csv(d / "cell_map.csv", index=False)
    ds = load_gdsc(tmp_path)
    assert list(ds.cell_names) == ["A-1", "102", "C-3", "104"]  # gdsc_name; the id where the row is missing
    assert list(ds.cell_alias) == ["A1", "102", "C3", "104"]  # the cross-dataset key stays the DeepDR name
    assert list(ds.subset(rows=[2, 0]).cell_names) == ["C-3", "A-1"]
    with pytest.raises(DataError, match="cell names"):
        Dataset(name="x", cell_ids=["a", "b"], drug_ids=["d"], binary=np.zeros((2, 1)), ic50=np.zeros((2, 1)),
                cell_names=["only-one"])


def test_error_ids_do_not_line_up(tmp_path):
    d = write_layout(tmp_path)
    nm = pd.read_csv(d / "null_mask.csv", index_col=0)
    nm.index = ["101", "102", "103", "999"]
    nm.to_csv(d / "null_mask.csv")
    with pytest.raises(DataError, match=r"cell ids in .*null_mask.csv do not line up.*'999'"):
        load_gdsc(tmp_path)


def test_error_drug_missing_from_fingerprints(tmp_path):
    d = write_layout(tmp_path)
    fp = pd.read_csv(d / "drug_feature.csv", index_col=0)
    fp.index = ["11", "22", "44"]
    fp.to_csv(d / "drug_feature.csv")
    with pytest.raises(DataError, match=r"drug_feature.csv has no row for 1 drug id.*'33'"):
        load_gdsc(tmp_path)


def test_error_duplicate_ids(tmp_path):
    d = write_layout(tmp_path)
    b = pd.read_csv(d / "cell_drug_binary.csv", index_col=0)
    b.index = ["101", "101", "103", "104"]
    b.to_csv(d / "cell_drug_binary.csv")
    with pytest.raises(DataError, match=r"cell_drug_binary.csv: duplicate cell ids \['101'\]"):
        load_gdsc(tmp_path)


def test_error_non_binary_value(tmp_path):
    b = np.array([[1, 0, 0], [0, 0.5, 0], [0, 0, 0], [1, 0, 1]], float)
    write_layout(tmp_path, binary=b)
    with pytest.raises(DataError, match=r"cell_drug_binary.csv: labels must be 0 or 1; found 0.5 at row '102', column '22'"):
        load_gdsc(tmp_path)


def test_error_positive_where_unmeasured(tmp_path):
    b = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 1]], float)
    write_layout(tmp_path, binary=b)
    with pytest.raises(DataError, match=r"positive label at row '101', column '33'.*null_mask.csv marks that pair as unmeasured"):
        load_gdsc(tmp_path)


def test_error_fingerprint_width(tmp_path):
    write_layout(tmp_path, fp_width=881)
    with pytest.raises(DataError, match=r"drug_feature.csv: fingerprints must have 920 bits per drug, found 881"):
        load_gdsc(tmp_path)


def test_error_truncated_gzip(tmp_path):
    d = write_layout(tmp_path)
    raw = (d / "cell_exprs.csv.gz").read_bytes()
    (d / "cell_exprs.csv.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cannot read .*cell_exprs.csv.gz: the file is unreadable or truncated"):
        load_gdsc(tmp_path)


def test_error_truncated_csv_row(tmp_path):
    d = write_layout(tmp_path)
    text = (d / "cell_drug_binary.csv").read_text().rstrip("\n")
    (d / "cell_drug_binary.csv").write_text(text[: text.rfind(",")] + "\n")  # last row loses its last field
    with pytest.raises(DataError, match=r"cell_drug_binary.csv: missing label at row '104', column '33'.*truncated"):
        load_gdsc(tmp_path)


def test_error_unreadable_file(tmp_path):
    d = write_layout(tmp_path)
    (d / "cell_drug_binary.csv").write_bytes(b"\xff\xfe\x00garbage\x00\n\x01\x02")
    with pytest.raises(DataError, match=r"cell_drug_binary.csv"):
        load_gdsc(tmp_path)


def test_error_missing_file(tmp_path):
    d = write_layout(tmp_path)
    (d / "threshold.csv").unlink()
    with pytest.raises(DataError, match=r"missing file: .*threshold.csv"):
        load_gdsc(tmp_path)


def test_error_nan_in_expression(tmp_path):
    d = write_layout(tmp_path)
    e = pd.read_csv(d / "cell_exprs.csv.gz", index_col=0)
    e.iloc[2, 3] = np.nan
    e.to_csv(d / "cell_exprs.csv.gz", compression="gzip")
    with pytest.raises(DataError, match=r"missing expression value at row '103', column 'G3'"):
        load_gdsc(tmp_path)


def test_error_ic50_disagrees_with_null_mask(tmp_path):
    r = np.ones((4, 3))
    write_layout(tmp_path, ic50=r)
    with pytest.raises(DataError, match=r"cell_drug.csv: IC50 at row '101', column '33' is present but .*unmeasured"):
        load_gdsc(tmp_path)


# ---------------------------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_gdsc_matches_the_bundle(gdsc):
    assert gdsc.shape == (961, 228)
    assert gdsc.meta["dropped_cells"] == 1
    assert gdsc.cell_features["expression"].shape == (961, 5778)
    assert (gdsc.binary == 1).sum() == 20831
    assert sum(bool(s) for s in gdsc.smiles) == 225
    assert dict(zip(gdsc.cell_ids, gdsc.cell_names))["683665"] == "MC-CAR"  # cell_map.csv, gdsc_name
    thr = gdsc.thresholds
    meas = gdsc.measured
    assert ((gdsc.ic50 < thr) == (gdsc.binary == 1))[meas].mean() > 0.999  # labels follow the thresholds (aligned by CID)


@pytest.mark.realdata
def test_real_patient_sets_load_labels_without_expression(data_dir):
    pdx = load_dataset("pdx", data_dir)
    tcga = load_dataset("tcga", data_dir)
    assert pdx.measured.sum() == 191 and (pdx.binary == 1).sum() == 24
    assert tcga.measured.sum() == 430 and (tcga.binary == 1).sum() == 201
    with pytest.raises(MissingFeatureError, match="no expression.*PDX expression"):
        pdx.require({"expression"})


@pytest.mark.realdata
def test_real_ccle_raw_ic50(data_dir):
    full = load_ccle(data_dir, keep_all_cells=True)
    assert full.shape == (436, 24) and full.measured.all() and (full.binary == 1).sum() == 1696
    ccle = load_dataset("ccle", data_dir)
    assert ccle.shape == (328, 24)
    assert np.nanmax(ccle.ic50) == 8.0


def test_tissue_comes_from_the_cosmic_info_and_is_empty_where_unknown(tmp_path):
    d = write_layout(tmp_path)
    assert (load_gdsc(tmp_path).cell_tissue == "").all()  # no annotation file: every tissue unknown
    info = pd.DataFrame({"SAMPLE_NAME": ["A", "B", "D"], "COSMIC_ID": [101, 102, 104], "GDSC1": ["skin", None, "bone"]})
    info.to_csv(d / "gdsctools_cosmic_info.csv.gz", index=False, compression="gzip")
    ds = load_gdsc(tmp_path)
    assert list(ds.cell_tissue) == ["skin", "", "", "bone"]  # 102 has no value, 103 no row
    assert ds.summary()["cells_without_tissue_first"] == ["102", "103"]
    assert list(ds.subset(rows=[3, 0]).cell_tissue) == ["bone", "skin"]
    info.rename(columns={"GDSC1": "tissue"}).to_csv(d / "gdsctools_cosmic_info.csv.gz", index=False, compression="gzip")
    with pytest.raises(DataError, match="gdsctools_cosmic_info.csv.gz: expected columns 'COSMIC_ID' and 'GDSC1'"):
        load_gdsc(tmp_path)
    pd.concat([info, info.iloc[:1]]).to_csv(d / "gdsctools_cosmic_info.csv.gz", index=False, compression="gzip")
    with pytest.raises(DataError, match=r"duplicate cell ids \['101'\]"):
        load_gdsc(tmp_path)


def test_numbers_are_read_correctly_rounded_whatever_the_pandas_version(tmp_path):
    """A data file's decimals are parsed to the nearest double (as Python's float() does), so that the content
    hash does not depend on the machine: pandas 3.0's default parser put 23,809 of GDSC's ln IC50 values one unit in
    the last place off (and changed the hash of a GPU machine's runs)."""
    from drbench.datasets.files import read_table

    rng = np.random.default_rng(7)
    texts = [f"{m:.17g}" for m in rng.normal(0, 3, 5000) * 10.0 ** rng.integers(-3, 4, 5000)]
    path = tmp_path / "values.csv"
    path.write_text("id,v\n" + "".join(f"r{i},{t}\n" for i, t in enumerate(texts)))
    got = read_table(path)["v"].to_numpy()
    assert np.array_equal(got, np.array([float(t) for t in texts]))
