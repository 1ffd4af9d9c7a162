"""Hardening of data, method boundary and file writing: every bad number or file shape is one clear line on
stderr (exit 2), dropped cell lines are said, a method cannot change what the next job sees, and every file
drbench writes is replaced atomically with the usual permissions."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drbench import atomic, leaderboard
from drbench.api import Capabilities, Method, Prediction
from drbench.cli import main
from drbench.datasets import make_synthetic
from drbench.execution import run_job
from drbench.protocols import get_protocol
from drbench.view import build_query, build_train_view

# ---------------------------------------------------------------------------------------------- a tiny bundle
GDSC_CELLS, GDSC_DRUGS = ["101", "102", "103", "104"], ["11", "22", "33"]
CCLE_CELLS, CCLE_DRUGS = ["A_LUNG", "B_SKIN", "C_LUNG"], ["11", "22"]
PATIENTS = ["0", "1", "2"]
GENES = [f"G{i}" for i in range(5)]


def _frame(values, index, columns) -> pd.DataFrame:
    return pd.DataFrame(values, index=index, columns=columns)


def _fingerprints(rng, drugs) -> pd.DataFrame:
    return _frame(rng.integers(0, 2, size=(len(drugs), 920)), drugs, [str(i) for i in range(920)])


def write_bundle(root: Path) -> Path:
    """gdsc/, ccle/, pdx/ and tcga/ in the MTIGCN layout, each valid and a few rows long."""
    rng = np.random.default_rng(0)
    g = root / "gdsc"
    g.mkdir(parents=True)
    null = np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0]])
    _frame(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]]), GDSC_CELLS, GDSC_DRUGS).to_csv(g / "cell_drug_binary.csv")
    _frame(null, GDSC_CELLS, GDSC_DRUGS).to_csv(g / "null_mask.csv")
    _frame(np.where(null == 1, np.nan, rng.normal(size=(4, 3)).round(3)), GDSC_CELLS, GDSC_DRUGS).to_csv(g / "cell_drug.csv")
    _frame({"Threshold": [0.1, -0.2, 0.3]}, GDSC_DRUGS, None).to_csv(g / "threshold.csv")
    _fingerprints(rng, GDSC_DRUGS).to_csv(g / "drug_feature.csv")
    _frame(rng.normal(size=(4, 5)).round(3), GDSC_CELLS, GENES).to_csv(g / "cell_exprs.csv.gz")
    c = root / "ccle"
    c.mkdir()
    _frame(np.array([[1, 0], [0, 0], [0, 1]]), CCLE_CELLS, CCLE_DRUGS).to_csv(c / "cell_drug_binary.csv")
    _frame(np.array([[0.5, 8.0], [0.0, 3.25], [7.5, 0.01]]), CCLE_CELLS, CCLE_DRUGS).to_csv(c / "cell_drug.csv")
    _fingerprints(rng, CCLE_DRUGS).to_csv(c / "drug_feature.csv")
    _frame(rng.normal(size=(3, 5)).round(3), CCLE_CELLS, GENES).to_csv(c / "cell_exprs.csv.gz")
    for name, resp, nm in (("pdx", "pdx_response.csv", "pdx_null_mask.csv"),
                           ("tcga", "patient_drug_binary.csv", "null_mask.csv")):
        d = root / name
        d.mkdir()
        _frame(np.array([[1, 0], [0, 0], [0, 1]]), PATIENTS, CCLE_DRUGS).to_csv(d / resp)
        _frame(np.array([[0, 1], [0, 0], [1, 0]]), PATIENTS, CCLE_DRUGS).to_csv(d / nm)
        _fingerprints(rng, CCLE_DRUGS).to_csv(d / "drug_feature.csv")
    return root


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_bundle(tmp_path / "data")


def _read_text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode() if path.name.endswith(".gz") else path.read_text()


def _write_text(path: Path, text: str) -> None:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def set_cell(path: Path, row: str, col: str, text: str) -> None:
    """Replace one cell of a CSV by ``text`` (as written in the file), keeping every other text as it is."""
    df = pd.read_csv(io.StringIO(_read_text(path)), index_col=0, dtype=str, keep_default_na=False)
    df.loc[row, col] = text
    buf = io.StringIO()
    df.to_csv(buf)
    _write_text(path, buf.getvalue())


def one_error_line(argv, capsys) -> str:
    """Run the CLI; it must exit 2 with exactly one line on stderr (no traceback). Returns the line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drbench: error: ") and "Traceback" not in err[0], err
    return err[0]


def info(name: str, root: Path) -> list[str]:
    return ["data", "info", name, "--data-dir", str(root)]


# ---------------------------------------------------------------------------------------------- bad numbers
BAD_NUMBERS = [
    # (dataset, file, row, column, text written, words the message must hold)
    ("gdsc", "cell_exprs.csv.gz", "103", "G3", "inf", "non-finite expression value inf"),
    ("gdsc", "cell_exprs.csv.gz", "102", "G1", "-inf", "non-finite expression value -inf"),
    ("gdsc", "cell_exprs.csv.gz", "104", "G0", "1e309", "non-finite expression value inf"),  # overflows float64
    ("gdsc", "cell_exprs.csv.gz", "101", "G4", "1e308", "float32 range"),  # finite, but inf once cast
    ("gdsc", "cell_exprs.csv.gz", "103", "G2", "nan", "missing expression value"),
    ("gdsc", "cell_drug.csv", "102", "22", "inf", "non-finite IC50 inf"),
    ("gdsc", "cell_drug.csv", "101", "11", "1e6", "ln IC50"),
    ("gdsc", "cell_drug.csv", "104", "33", "-25", "[-20, 20]"),
    ("gdsc", "threshold.csv", "22", "Threshold", "inf", "non-finite threshold inf"),
    ("gdsc", "threshold.csv", "33", "Threshold", "nan", "missing threshold"),
    ("gdsc", "threshold.csv", "11", "Threshold", "1e6", "ln IC50"),
    ("gdsc", "cell_drug_binary.csv", "103", "22", "inf", "non-finite label inf"),
    ("gdsc", "null_mask.csv", "102", "11", "2", "null-mask flags must be 0 or 1; found 2"),
    ("gdsc", "drug_feature.csv", "22", "7", "inf", "non-finite fingerprint bit inf"),
    ("gdsc", "drug_feature.csv", "33", "919", "0.5", "fingerprint bits must be 0 or 1; found 0.5"),
    ("ccle", "cell_drug.csv", "B_SKIN", "22", "-1", "[0, 8]"),
    ("ccle", "cell_drug.csv", "A_LUNG", "11", "1e6", "IC50 µM (raw, capped at 8)"),
    ("ccle", "cell_drug.csv", "C_LUNG", "22", "-inf", "non-finite IC50 -inf"),
    ("ccle", "cell_drug.csv", "C_LUNG", "11", "", "missing IC50"),
    ("ccle", "cell_exprs.csv.gz", "B_SKIN", "G2", "-1e300", "float32 range"),
    ("pdx", "pdx_response.csv", "1", "22", "inf", "non-finite label inf"),
    ("tcga", "null_mask.csv", "2", "11", "nan", "missing null-mask flag"),
    ("tcga", "patient_drug_binary.csv", "0", "22", "-1", "labels must be 0 or 1; found -1"),
]


@pytest.mark.parametrize("name, file, row, col, text, words", BAD_NUMBERS,
                         ids=[f"{c[0]}/{c[1]}={c[4] or 'empty'}" for c in BAD_NUMBERS])
def test_a_bad_number_is_one_line_naming_file_row_and_column(bundle, capsys, name, file, row, col, text, words):
    set_cell(bundle / name / file, row, col, text)
    line = one_error_line(info(name, bundle), capsys)
    assert file in line and f"row {row!r}" in line and f"column {col!r}" in line and words in line, line


@pytest.mark.realdata
def test_the_real_bundle_is_within_its_documented_ranges(data_dir, gdsc, ccle):
    """The ranges refuse nothing of the real bundle, and loading it gives the content hashes the published
    boards key their runs by."""
    from drbench.datasets import load_dataset

    hashes = {"gdsc": gdsc.content_hash, "ccle": ccle.content_hash,
              **{name: load_dataset(name, data_dir).content_hash for name in ("pdx", "tcga")}}
    assert {k: v[:12] for k, v in hashes.items()} == {"gdsc": "1a5bddf18363", "ccle": "1bedf7c07b71",
                                                      "pdx": "d41b6308253b", "tcga": "76d328a4001d"}
    assert ccle.meta["dropped_cells"] == 108 and len(ccle.meta["dropped_cell_ids"]) == 108


# ---------------------------------------------------------------------------------------------- other delimiters
@pytest.mark.parametrize("name, file", [("gdsc", "cell_drug.csv"), ("gdsc", "cell_drug_binary.csv"),
                                        ("gdsc", "null_mask.csv"), ("gdsc", "threshold.csv"),
                                        ("gdsc", "drug_feature.csv"), ("gdsc", "cell_exprs.csv.gz"),
                                        ("ccle", "cell_drug.csv"), ("pdx", "pdx_null_mask.csv")])
@pytest.mark.parametrize("sep, word", [(";", "semicolon"), ("\t", "tab")])
def test_another_delimiter_is_one_line_naming_the_file(bundle, capsys, name, file, sep, word):
    path = bundle / name / file
    df = pd.read_csv(io.StringIO(_read_text(path)), index_col=0, dtype=str, keep_default_na=False)
    buf = io.StringIO()
    df.to_csv(buf, sep=sep, decimal="," if sep == ";" else ".")
    _write_text(path, buf.getvalue())
    line = one_error_line(info(name, bundle), capsys)
    assert f"{file}: expected comma-separated values" in line and word in line, line


# ---------------------------------------------------------------------------------------------- truncation
def _drop_last_row(path: Path) -> None:
    text = _read_text(path)
    lines = text.splitlines(keepends=True)
    _write_text(path, "".join(lines[:-1]))  # cut exactly at a row boundary


@pytest.mark.parametrize("name, file, words", [
    ("gdsc", "cell_drug.csv", "cell_drug.csv has only the first 3 of the 4 cell ids"),
    ("gdsc", "null_mask.csv", "null_mask.csv has only the first 3 of the 4 cell ids"),
    ("gdsc", "cell_drug_binary.csv", "cell_drug_binary.csv has only the first 3 of the 4 cell ids"),
    ("gdsc", "drug_feature.csv", "drug_feature.csv has no row for 1 drug id(s) of the response matrix (e.g. ['33'])"),
    ("gdsc", "threshold.csv", "threshold.csv has no row for 1 drug id(s) of the response matrix (e.g. ['33'])"),
    ("ccle", "cell_drug.csv", "cell_drug.csv has only the first 2 of the 3 cell ids"),
    ("ccle", "cell_drug_binary.csv", "cell_drug_binary.csv has only the first 2 of the 3 cell ids"),
    ("pdx", "pdx_response.csv", "pdx_response.csv has only the first 2 of the 3 cell ids"),
    ("tcga", "null_mask.csv", "null_mask.csv has only the first 2 of the 3 cell ids"),
])
def test_a_file_cut_at_a_row_boundary_is_one_line_naming_it(bundle, capsys, name, file, words):
    _drop_last_row(bundle / name / file)
    line = one_error_line(info(name, bundle), capsys)
    assert words in line, line


def test_an_expression_file_cut_at_a_row_boundary_drops_the_cell_line_with_a_warning(bundle, capsys, caplog):
    _drop_last_row(bundle / "gdsc" / "cell_exprs.csv.gz")
    with caplog.at_level("WARNING", logger="drbench.datasets"):
        assert main(info("gdsc", bundle)) == 0
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "gdsc: dropped 1 of 4 cell lines without a row in cell_exprs.csv.gz (first: 104)" in warnings[0].message
    out = json.loads(capsys.readouterr().out)
    assert out["cells"] == 3 and out["dropped_cells"] == 1 and out["dropped_cell_ids"] == ["104"]


def test_a_mistyped_expression_id_is_named_in_the_warning(bundle, caplog):
    from drbench.datasets.mtigcn_layout import load_ccle

    path = bundle / "ccle" / "cell_exprs.csv.gz"
    _write_text(path, _read_text(path).replace("B_SKIN", "B_SKlN"))
    with caplog.at_level("WARNING", logger="drbench.datasets"):
        ds = load_ccle(bundle)
    assert ("ccle: dropped 1 of 3 cell lines without a row in cell_exprs.csv.gz (first: B_SKIN); "
            "1 expression rows match no cell line (first: B_SKlN)") in caplog.text
    assert ds.meta["dropped_cells"] == 1 and ds.meta["dropped_cell_ids"] == ["B_SKIN"]
    assert list(ds.cell_ids) == ["A_LUNG", "C_LUNG"]


def test_the_command_line_prints_the_drop_warning_and_one_error_line(bundle):
    """The real process: the warning reaches stderr as one line; a bad file is one line and no traceback."""
    _drop_last_row(bundle / "gdsc" / "cell_exprs.csv.gz")
    run = lambda name: subprocess.run([sys.executable, "-m", "drbench.cli", *info(name, bundle)],  # noqa: E731
                                      capture_output=True, text=True, timeout=120)
    set_cell(bundle / "ccle" / "cell_exprs.csv.gz", "A_LUNG", "G0", "inf")
    ok, bad = run("gdsc"), run("ccle")
    assert ok.returncode == 0 and ok.stderr.strip().splitlines() == [
        "WARNING drbench.datasets: gdsc: dropped 1 of 4 cell lines without a row in cell_exprs.csv.gz (first: 104)"]
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert "cell_exprs.csv.gz: non-finite expression value inf at row 'A_LUNG', column 'G0'" in bad.stderr


# ---------------------------------------------------------------------------------------------- method boundary
def _arrays(obj):
    """Every array a method can reach from a view or query: fields, dict entries and their ``.base`` chains."""
    out = []
    for f in fields(obj):
        v = getattr(obj, f.name)
        for a in (v.values() if isinstance(v, dict) else [v]):
            while isinstance(a, np.ndarray):
                out.append(a)
                a = a.base
    return out


def _vandalize(obj) -> int:
    """Turn every reachable array writable and overwrite it; returns how many arrays it could write."""
    written = 0
    for a in _arrays(obj):
        try:
            a.setflags(write=True)
        except ValueError:
            continue
        a[...] = "x" if a.dtype.kind in "OUS" else (a.dtype.type(7) if a.dtype != bool else True)
        written += 1
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, dict):
            for k in list(v):
                v[k] = np.zeros((1, 1), np.float32)
    return written


class Hostile(Method):
    """Overwrites whatever it can reach, in fit and in predict."""

    capabilities = Capabilities(transductive=True, tasks={"classification", "regression"})
    written: list = []

    def fit(self, view):
        Hostile.written.append(_vandalize(view))
        return self

    def predict(self, query):
        n = len(query)
        Hostile.written.append(_vandalize(query))
        return Prediction(np.full(n, 0.5), ic50=np.zeros(n))


def _snapshot(obj) -> dict:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, dict):
            out.update({f"{f.name}.{k}": np.array(a, copy=True) for k, a in v.items() if isinstance(a, np.ndarray)})
        elif isinstance(v, np.ndarray):
            out[f.name] = np.array(v, copy=True)
    return out


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a)


@pytest.mark.parametrize("transductive", [True, False])
def test_a_hostile_method_cannot_change_what_the_next_job_sees(transductive, monkeypatch):
    monkeypatch.setattr(Hostile, "capabilities", Capabilities(transductive=transductive,
                                                              tasks={"classification", "regression"}))
    Hostile.name, Hostile.written = "hostile", []
    ds = make_synthetic(n_cells=40, n_drugs=12)
    fold = get_protocol("new-cell-line").folds(ds, 0, n_folds=3, min_positives=2)[0]
    want_hash = ds.content_hash
    caps = Hostile.capabilities
    view0, query0 = _snapshot(build_train_view(ds, fold, caps)), _snapshot(build_query(ds, fold.score))
    first = run_job(Hostile, {}, ds, fold, seed=0)
    assert first.status == "finished", first.error
    assert first.metrics["n_test"] == int(fold.test.sum())  # scored on the real pairs: query rows/cols intact
    assert len(Hostile.written) == 2  # fit and predict both ran their attack
    assert _same(_snapshot(build_train_view(ds, fold, caps)), view0)
    assert _same(_snapshot(build_query(ds, fold.score)), query0)
    ds.__dict__.pop("_hash")  # recompute from the arrays, not the cached value
    assert ds.content_hash == want_hash == make_synthetic(n_cells=40, n_drugs=12).content_hash


def test_dataset_arrays_cannot_be_made_writable():
    ds = make_synthetic(n_cells=10, n_drugs=4)
    for a in (ds.binary, ds.ic50, ds.cell_ids, ds.thresholds, ds.cell_features["expression"],
              ds.drug_features["fingerprint"], ds.cell_features["expression"].base):
        with pytest.raises(ValueError, match="WRITEABLE"):
            a.setflags(write=True)


# ---------------------------------------------------------------------------------------------- atomic writes
def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if atomic.TEMP_MARK in p.name]


def _fail_half_way(write):
    """A writer that writes half of its content, then fails as a full disk would."""
    def failing(self, data, *a, **kw):
        write(self, data[: len(data) // 2], *a, **kw)
        raise OSError(28, "No space left on device")
    return failing


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_atomic_write_gives_a_normal_file_under_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        atomic.write_text(tmp_path / "a.md", "new\n")
    finally:
        os.umask(old)
    assert (tmp_path / "a.md").read_text() == "new\n"
    assert (tmp_path / "a.md").stat().st_mode & 0o777 == 0o666 & ~mask
    assert _temp_files(tmp_path) == []


def _board_csv(path: Path) -> None:
    row = {c: np.nan for c in leaderboard.CSV_COLUMNS}
    row.update(method="drug-mean", status="finished", dataset="synthetic", protocol="random", selection="validation",
               seed=0, fold=0, auc=0.7, auprc=0.3, transductive="false", tasks="classification", headline="pooled",
               fit_seconds=1.0, peak_rss_mb=10.0, job_key="k0", run_id="r0")
    pd.DataFrame([row], columns=leaderboard.CSV_COLUMNS).to_csv(path, index=False)


def test_a_failed_markdown_write_leaves_the_old_board(tmp_path, monkeypatch):
    csv, md = tmp_path / "board.csv", tmp_path / "board.md"
    _board_csv(csv)
    md.write_text("old board\n")
    monkeypatch.setattr(Path, "write_text", _fail_half_way(Path.write_text))
    with pytest.raises(OSError, match="No space left"):
        leaderboard.build(from_csv=str(csv), out=str(md))
    assert md.read_text() == "old board\n" and _temp_files(tmp_path) == []


def test_a_failed_csv_write_leaves_the_old_csv(tmp_path, monkeypatch):
    csv, md = tmp_path / "board.csv", tmp_path / "board.md"
    _board_csv(csv)
    before = csv.read_bytes()
    real = pd.DataFrame.to_csv

    def failing(self, path=None, *a, **kw):
        real(self.iloc[: len(self) // 2], path, *a, **kw)
        raise OSError(28, "No space left on device")

    rows = leaderboard.read_csv(csv)
    monkeypatch.setattr(leaderboard, "collect", lambda *a, **kw: rows)  # the rows the store would give
    monkeypatch.setattr(pd.DataFrame, "to_csv", failing)
    with pytest.raises(OSError, match="No space left"):
        leaderboard.build(out=str(md))
    assert csv.read_bytes() == before and not md.exists() and _temp_files(tmp_path) == []


def test_a_failed_picture_write_leaves_the_old_picture(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from drbench.plots import runtime_bars

    png = tmp_path / "runtime.png"
    png.write_bytes(b"old picture")
    real = Figure.savefig

    def failing(self, fname, *a, **kw):
        real(self, fname, *a, **kw)
        with open(fname, "r+b") as f:
            f.truncate(10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", failing)
    df = pd.DataFrame({"method": ["a", "b"], "fit_seconds": [1.0, 2.0]})
    with pytest.raises(OSError, match="No space left"):
        runtime_bars(df, png, "t")
    assert png.read_bytes() == b"old picture" and _temp_files(tmp_path) == []
    monkeypatch.setattr(Figure, "savefig", real)
    runtime_bars(df, png, "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the temporary name kept the suffix savefig reads


# ---------------------------------------------------------------------------------------------- --out
def test_leaderboard_out_csv_is_refused_and_the_csv_kept(tmp_path, capsys):
    csv = tmp_path / "board.csv"
    _board_csv(csv)
    before = csv.read_bytes()
    line = one_error_line(["leaderboard", "--from-csv", str(csv), "--out", str(csv)], capsys)
    assert "--out" in line and "board.md" in line
    assert csv.read_bytes() == before
    fresh = tmp_path / "fresh.csv"
    one_error_line(["leaderboard", "--out", str(fresh)], capsys)
    assert not fresh.exists()


@pytest.mark.parametrize("exists", [True, False])
def test_leaderboard_out_folder_fails_before_writing_anything(tmp_path, capsys, exists):
    folder = tmp_path / "boards"
    if exists:
        folder.mkdir()
    line = one_error_line(["leaderboard", "--out", f"{folder}/"], capsys)
    assert "is a folder" in line and str(folder / "board.md") in line
    assert sorted(p.name for p in tmp_path.iterdir()) == (["boards"] if exists else [])
    if exists:
        assert list(folder.iterdir()) == []
        one_error_line(["leaderboard", "--out", str(folder)], capsys)  # an existing folder without the slash
        assert sorted(p.name for p in tmp_path.iterdir()) == ["boards"]
