"""Leaderboards from recorded runs (CSV regenerates the markdown exactly) and the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from drbench import leaderboard
from drbench.cli import main
from drbench.runner import SweepSpec, run_sweep


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One recorded store shared by the tests of this module (its own sqlite file)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('lb')}/mlflow.db"
    for sel in ("validation", "test"):
        run_sweep(SweepSpec(methods="global-mean,drug-mean,cell-mean,mean-effects", protocol="random",
                            dataset="synthetic", selection=sel, progress=False, tracking_uri=uri))
    run_sweep(SweepSpec(methods="mean-effects", protocol="new-drug", dataset="synthetic", progress=False,
                        tracking_uri=uri))
    return uri


def test_markdown_regenerates_exactly_from_the_csv(recorded, tmp_path):
    out = tmp_path / "lb" / "synthetic.md"
    md = leaderboard.build(out=str(out), tracking_uri=recorded)
    assert out.read_text() == md
    df = pd.read_csv(leaderboard.csv_path(out))
    assert len(df[df["status"] == "finished"]) == 45
    again = leaderboard.build(from_csv=str(leaderboard.csv_path(out)))
    assert again == md
    for name in ("global-mean", "drug-mean", "cell-mean", "mean-effects"):
        assert name in md
    assert "## synthetic — random (Test 1)" in md and "## synthetic — new-drug (Test 2)" in md
    assert "Replication mode" in md and "mean-effects‡" in md  # replication runs are marked
    assert "Regression (IC50)" in md


def test_table_values_are_the_fold_means_and_sds(recorded, tmp_path):
    out = tmp_path / "t.md"
    md = leaderboard.build(out=str(out), protocol="random", tracking_uri=recorded)
    df = pd.read_csv(leaderboard.csv_path(out))
    me = df[(df["method"] == "cell-mean") & (df["selection"] == "validation")]["auc"]
    assert f"{me.mean():.3f} ± {me.std(ddof=1):.3f}" in md
    assert "new-drug" not in md  # filtered


def test_not_supported_methods_are_listed_not_dropped(tmp_path):
    import drbench
    from drbench.api import Capabilities, Method, Prediction
    from drbench.registry import methods

    @drbench.register("test-random-only")
    class RandomOnly(Method):
        capabilities = Capabilities(protocols={"random"})

        def fit(self, view):
            return self

        def predict(self, query):
            return Prediction(np.full(len(query), 0.5))

    try:
        run_sweep(SweepSpec(methods="mean-effects", protocol="new-drug", dataset="synthetic", progress=False))
        md = leaderboard.build(out=str(tmp_path / "x.md"))
        row = next(line for line in md.splitlines() if "test-random-only" in line)
        assert "not supported" in row
    finally:
        methods().remove("test-random-only")


def test_cli_run_and_leaderboard(tmp_path, capsys):
    assert main(["run", "--methods", "mean-effects,drug-mean", "--protocol", "random", "-q", "--folds", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "4 jobs planned" in out and "mean-effects" in out
    assert main(["run", "--methods", "mean-effects,drug-mean", "--protocol", "random", "-q", "--folds", "0-1"]) == 0
    assert "4 already finished" in capsys.readouterr().out
    md = tmp_path / "lb.md"
    assert main(["leaderboard", "--out", str(md)]) == 0
    assert "mean-effects" in md.read_text()
    capsys.readouterr()
    # a filter no recorded run matches is a mistyped name: one line with what the store has, no empty board written
    for flag, value, have in (("--dataset", "gdcs", "synthetic"), ("--protocol", "new-drug", "random")):
        typo = tmp_path / f"typo{flag}.md"
        assert main(["leaderboard", "--out", str(typo), flag, value]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"drbench: error: {flag} {value!r}: no finished run of that {flag[2:]} in the store; "
                       f"its runs have: {have}"]
        assert not typo.exists() and not typo.with_suffix(".csv").exists()
    assert main(["leaderboard", "--out", str(md), "--dataset", "synthetic", "--protocol", "random"]) == 0


@pytest.mark.parametrize("argv,msg", [
    (["run", "--methods", "mtigcnn", "--protocol", "random"], "unknown method(s) ['mtigcnn']; choose from: all"),
    (["run", "--methods", "all", "--protocol", "randm"], "unknown protocol 'randm'; choose one of"),
    (["run", "--methods", "drug-mean", "--protocol", "random", "--dataset", "gdcs"], "unknown dataset 'gdcs'"),
    (["run", "--methods", "drug-mean", "--protocol", "random", "--set", "epochs=3"], "METHOD.PARAM=VALUE"),
    (["run", "--methods", "drug-mean", "--protocol", "random", "--option", "folds=3"], "no option(s) ['folds']"),
    (["data", "info", "gdsc", "--data-dir", "/nonexistent"], "not found"),
    (["leaderboard", "--from-csv", "/nonexistent.csv"], "cannot read leaderboard CSV"),
])
def test_cli_errors_are_one_clear_line(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_cli_listings(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "mean-effects" in out and "drbench" in out
    assert main(["protocols"]) == 0
    out = capsys.readouterr().out
    assert "new-cell-line" in out and "Test 2" in out and "--option per_target" in out
    assert main(["data", "list"]) == 0
    assert "synthetic" in capsys.readouterr().out
    assert main(["data", "info", "synthetic"]) == 0
    assert '"cells": 240' in capsys.readouterr().out


def test_plots_are_drawn_and_linked(recorded, tmp_path):
    out = tmp_path / "p" / "board.md"
    md = leaderboard.build(out=str(out), tracking_uri=recorded, protocol="random", plots=True)
    curves = out.parent / "board-synthetic-random-curves.png"
    runtime = out.parent / "board-synthetic-random-runtime.png"
    assert curves.stat().st_size > 10_000 and runtime.stat().st_size > 5_000
    assert "![ROC and precision-recall curves](board-synthetic-random-curves.png)" in md
    assert leaderboard.build(from_csv=str(leaderboard.csv_path(out)), out=str(out)) == md  # same page from the CSV


def test_runs_with_non_default_hyperparameters_get_their_own_row(tmp_path):
    """A method run in another setting (--set) is a separate row, never pooled into the default's mean ± SD."""
    uri = f"sqlite:///{tmp_path}/v.db"
    base = dict(methods="drug-mean", protocol="random", dataset="synthetic", progress=False, tracking_uri=uri)
    run_sweep(SweepSpec(**base))
    run_sweep(SweepSpec(**base, params={"drug-mean": {"smoothing": 1.0}}))  # the default: same jobs, nothing new
    rep = run_sweep(SweepSpec(**base, params={"drug-mean": {"smoothing": 5.0}}))
    assert rep.finished == 5
    out = tmp_path / "v.md"
    md = leaderboard.build(out=str(out), tracking_uri=uri)
    df = pd.read_csv(leaderboard.csv_path(out))
    fin = df[df["status"] == "finished"]
    assert fin.groupby("method").size().to_dict() == {"drug-mean": 5, "drug-mean[smoothing=5.0]": 5}
    assert "| drug-mean[smoothing=5.0] |" in md and "(10)" not in md
    assert leaderboard.build(from_csv=str(leaderboard.csv_path(out))) == md


def test_fold_curves_match_sklearn_and_are_monotone():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from drbench.plots import CURVE_POINTS, fold_curves

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = y * 0.8 + rng.normal(size=400)
    c = fold_curves(y, s)
    assert c["roc"][0] == pytest.approx(roc_auc_score(y, s)) and c["pr"][0] == pytest.approx(average_precision_score(y, s))
    roc, pr = c["roc"][1], c["pr"][1]
    assert len(roc) == len(pr) == CURVE_POINTS and roc[0] == 0.0 and roc[-1] == 1.0
    assert (np.diff(roc) >= 0).all() and (np.diff(pr) <= 1e-12).all()  # interpolated precision never rises
    assert fold_curves(y, np.ones(400)) is None and fold_curves(np.ones(400), s) is None


def test_curves_survive_a_redraw_from_a_store_without_the_runs(recorded, tmp_path, monkeypatch):
    """Run predictions live in the store that made them; the curve kept beside the picture does not."""
    from drbench import plots

    out = tmp_path / "p" / "board.md"
    leaderboard.build(out=str(out), tracking_uri=recorded, protocol="random", plots=True)
    kept = out.parent / "board-synthetic-random-curves.csv"
    rows = pd.read_csv(kept)
    # every honest run with a curve (global-mean's constant prediction has none), ROC and PR each
    assert set(rows["method"]) == {"drug-mean", "cell-mean", "mean-effects"} and len(rows) == 3 * 5 * 2
    before = kept.read_text()
    drawn = {}
    monkeypatch.setattr(plots, "curves", lambda rows, path, title, n_runs=None, missing=(): drawn.update(
        rows=rows, n_runs=n_runs, missing=missing))
    empty = f"sqlite:///{tmp_path}/empty.db"
    leaderboard.build(out=str(out), tracking_uri=empty, protocol="random", plots=True, merge_csv=True)
    assert kept.read_text() == before
    assert set(drawn["rows"]["method"]) == {"drug-mean", "cell-mean", "mean-effects"} and drawn["missing"] == []
    # a run whose curve was never kept and whose store is not read is named, not silently left out
    rows[rows["method"] != "cell-mean"].to_csv(kept, index=False)
    leaderboard.build(out=str(out), tracking_uri=empty, protocol="random", plots=True, merge_csv=True)
    assert drawn["missing"] == ["cell-mean"] and drawn["n_runs"]["drug-mean"] == 5


def test_a_board_keeps_only_the_runs_made_with_its_protocol_options(tmp_path):
    """Per-target and grouped runs of one protocol share dataset and protocol; a board's options keep them apart."""
    from drbench.protocols import get_protocol

    base = dict(methods="drug-mean", protocol="new-cell-line", dataset="synthetic", progress=False)
    run_sweep(SweepSpec(folds=[0], **base))
    run_sweep(SweepSpec(options={"per_target": True, "n_targets": 2}, **base))
    proto = get_protocol("new-cell-line")
    grouped = leaderboard.collect(protocol="new-cell-line", methods=["drug-mean"], options=proto.resolve_options({}))
    per_target = leaderboard.collect(protocol="new-cell-line", methods=["drug-mean"],
                                     options=proto.resolve_options({"per_target": True, "n_targets": 2}))
    everything = leaderboard.collect(protocol="new-cell-line", methods=["drug-mean"])
    assert len(grouped) == 1 and len(per_target) == 2 and len(everything) == 3
    assert set(grouped["job_key"]).isdisjoint(per_target["job_key"])


def test_methods_with_names_lists_what_set_takes(capsys):
    from drbench.cli import main

    assert main(["methods", "srmf", "mtigcn"]) == 0
    out = capsys.readouterr().out
    assert "srmf (drbench): --set srmf.PARAM=VALUE" in out
    assert '  target = "ic50"  [one of \'ic50\', \'binary\']' in out and "  k = 45  [int >= 1]" in out
    assert "  patience = 200  [int >= 1 or None]" in out
    assert "some defaults are set per dataset and protocol" in out  # MTIGCN has defaults_for
    assert main(["methods", "srmf", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["hyperparameters"]["lambda_d"] == {"default": 0.05, "accepts": "float >= 0"}
    assert main(["methods", "nope"]) == 2 and "unknown method(s) ['nope']" in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_command_quietly(monkeypatch, capsys):
    """`drbench methods --json | head -1`: the closed pipe is exit status 141, not a traceback."""
    import sys

    from drbench.cli import main

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["methods", "--json"]) == 141
    assert capsys.readouterr().err == ""
