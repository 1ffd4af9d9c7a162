"""The IC50 metrics beyond the mean effects (issue 23): residual PCC / SCC and per-drug PCC, on simulated data
with a known answer, through the runner, and on a board."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drbench import leaderboard, metrics
from drbench.datasets import make_synthetic
from drbench.execution import run_job
from drbench.protocols import get_protocol
from drbench.registry import get_method
from drbench.view import build_query, build_train_view
from drbench.api import Capabilities

from boardcsv import write_board_csv


def _additive(n_cells=60, n_drugs=12, seed=0):
    """ic50 = mu + cell effect + drug effect + interaction (the interaction has mean 0 along both axes)."""
    rng = np.random.default_rng(seed)
    cell, drug = rng.normal(0, 1.0, n_cells), rng.normal(0, 3.0, n_drugs)
    inter = rng.normal(0, 0.5, (n_cells, n_drugs))
    inter -= inter.mean(0, keepdims=True)
    inter -= inter.mean(1, keepdims=True)
    return 2.0 + cell[:, None] + drug[None, :], inter


def test_mean_effects_fit_on_full_training_matrix_recovers_the_additive_part():
    add, inter = _additive()
    mu, cell, drug = metrics.mean_effects_ic50(add + inter, np.ones(add.shape, bool))
    assert np.allclose(mu + cell[:, None] + drug[None, :], add)


def test_mean_effects_uses_only_training_entries_and_zero_for_unseen_entities():
    ic50 = np.array([[1.0, 3.0], [5.0, 100.0]])
    train = np.array([[True, True], [False, False]])  # cell 1 held out: its 100 must not count
    mu, cell, drug = metrics.mean_effects_ic50(ic50, train)
    assert mu == 2.0 and np.allclose(cell, [0.0, 0.0]) and np.allclose(drug, [-1.0, 1.0])


def test_residual_pcc_is_one_for_the_interaction_and_nan_for_the_mean_effects_alone():
    add, inter = _additive()
    y = (add + inter).ravel()
    drug = np.tile(np.arange(add.shape[1]), add.shape[0])
    base = add.ravel()
    perfect, notes = metrics.normalized(y, y, base, drug)
    assert perfect["pcc_resid"] == pytest.approx(1.0) and perfect["scc_resid"] == pytest.approx(1.0)
    assert perfect["pcc_drug"] == pytest.approx(1.0) and not notes
    means_only, notes = metrics.normalized(y, base, base, drug)
    assert np.isnan(means_only["pcc_resid"]) and "equals the mean effects" in notes[0]
    # the mean effects alone: pooled PCC is high (drug means vary), per-drug PCC only what cell means explain
    pooled = metrics.pearson(y, base)
    full, b = add + inter, add
    expected = np.mean([np.corrcoef(full[:, j], b[:, j])[0, 1] for j in range(add.shape[1])])
    assert means_only["pcc_drug"] == pytest.approx(expected) and means_only["pcc_drug"] < pooled - 0.05


def test_residual_pcc_near_zero_for_noise_around_the_mean_effects():
    add, inter = _additive(n_cells=300, n_drugs=20, seed=3)
    rng = np.random.default_rng(5)
    y, base = (add + inter).ravel(), add.ravel()
    drug = np.tile(np.arange(add.shape[1]), add.shape[0])
    m, _ = metrics.normalized(y, base + rng.normal(0, 0.5, base.shape), base, drug)
    assert abs(m["pcc_resid"]) < 0.05  # ~6,000 pairs: SE ≈ 0.013
    assert metrics.pearson(y, base + rng.normal(0, 0.5, base.shape)) > 0.9  # while pooled PCC looks excellent


def test_per_drug_pcc_is_the_mean_of_within_drug_correlations():
    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    drug = np.repeat([0, 1], 20)
    p = np.r_[y[:20], -y[20:]]  # drug 0 perfectly ordered, drug 1 perfectly reversed
    m, _ = metrics.normalized(y, p, np.zeros(40), drug)
    assert m["pcc_drug"] == pytest.approx(0.0, abs=1e-12)
    p2 = np.r_[y[:20], y[20:] + rng.normal(0, 1, 20)]
    m2, _ = metrics.normalized(y, p2, np.zeros(40), drug)
    assert m2["pcc_drug"] == pytest.approx((1.0 + np.corrcoef(y[20:], p2[20:])[0, 1]) / 2)


def test_the_mean_effects_baseline_and_the_metric_agree():
    """The metric's baseline is the mean-effects method's IC50: that method scores 'no residual'."""
    ds = make_synthetic(n_cells=80, n_drugs=30)
    fold = get_protocol("random").folds(ds, 0)[0]
    view = build_train_view(ds, fold, Capabilities(transductive=False))
    m = get_method("mean-effects")().fit(view)
    q = build_query(ds, fold.test)
    rows, cols = q.rows, q.cols
    mu, cell, drug = metrics.mean_effects_ic50(ds.ic50, fold.train)
    assert np.allclose(m.predict(q).ic50, mu + cell[rows] + drug[cols])


@pytest.mark.parametrize("protocol, opts", [("random", {}), ("new-cell-line", {"n_folds": 3, "min_positives": 3})])
def test_runner_records_normalized_metrics_for_ic50_methods_only(protocol, opts):
    ds = make_synthetic(n_cells=80, n_drugs=30)
    fold = get_protocol(protocol).folds(ds, 0, **opts)[0]
    srmf = run_job(get_method("srmf"), {"max_iter": 20}, ds, fold, seed=0)
    assert srmf.status == "finished"
    for k in metrics.NORMALIZED:
        assert np.isfinite(srmf.metrics[k]) and -1 <= srmf.metrics[k] <= 1
    assert 0 < srmf.metrics[metrics.NORMALIZED_COUNT] <= 30
    me = run_job(get_method("mean-effects"), {}, ds, fold, seed=0)
    assert np.isnan(me.metrics["pcc_resid"])
    # random: the cell effects order each drug's test pairs; new cell line: they are 0 (unseen cells), so the
    # mean-effects IC50 is constant within a drug and per-drug PCC is undefined
    assert np.isfinite(me.metrics["pcc_drug"]) if protocol == "random" else np.isnan(me.metrics["pcc_drug"])
    hn = run_job(get_method("hnmdrp"), {}, ds, fold, seed=0) if protocol == "random" else None
    if hn is not None:  # classification only: no IC50, no normalized metric
        assert hn.status == "finished" and not set(metrics.NORMALIZED) & set(hn.metrics)


def test_board_shows_the_normalized_table_and_names_runs_without_it():
    rows = []
    for m, base in (("a", 0.30), ("b", 0.10), ("drug-mean", 0.0)):
        for f in range(5):
            rows.append({"method": m, "status": "finished", "dataset": "d", "protocol": "random", "selection": "validation",
                         "seed": 0, "fold": f, "headline": "pooled", "transductive": "false",
                         "tasks": "classification,regression", "auc": 0.7 + base / 10 + f / 1000, "auprc": 0.3,
                         "pcc": 0.9, "scc": 0.9, "rmse": 1.0, "pcc_resid": base + f / 1000, "scc_resid": base,
                         "pcc_drug": base + 0.1, "fit_seconds": 1.0, "peak_rss_mb": 1.0, "job_key": f"{m}{f}"})
    rows.append(dict(rows[0], method="old", pcc_resid=np.nan, scc_resid=np.nan, pcc_drug=np.nan, job_key="old0"))
    # computed, all undefined (a constant prediction): not "recorded before drbench computed them"
    rows.append(dict(rows[0], method="constant", pcc_resid=np.nan, scc_resid=np.nan, pcc_drug=np.nan, n_drugs_pcc=0,
                     job_key="c0"))
    df = pd.DataFrame(rows)
    for c in leaderboard.CSV_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    md = leaderboard.render(df)
    section = md.split("IC50 beyond the mean effects")[1]
    assert "PCC beyond mean effects" in section and "per-drug PCC" in section
    table = [l for l in section.splitlines() if l.startswith("| 1 |")]
    assert table and "| a |" in table[0]
    assert "Runs without these metrics (recorded before drbench computed them): old (1)." in section


def test_compare_on_a_normalized_metric(tmp_path, capsys):
    from drbench.cli import main

    rng = np.random.default_rng(0)
    rows = []
    for m, level in (("a", 0.30), ("b", 0.10)):
        for f in range(5):
            v = level + rng.normal(0, 0.002)
            rows.append({"method": m, "status": "finished", "dataset": "d", "protocol": "new-drug",
                         "selection": "validation", "seed": 0, "fold": f, "headline": "entity",
                         "tasks": "classification,regression", "auc": 0.7, "auc_entity": 0.7, "pcc_resid": v,
                         "pcc_drug": v, "mask_sha256": f"m{f}", "job_key": f"{m}{f}"})
    write_board_csv(tmp_path / "nd.csv", rows)
    assert main(["compare", "a", "b", "--board", "nd", "--boards-dir", str(tmp_path), "--metric", "pcc_resid"]) == 0
    out = capsys.readouterr().out
    assert "PCC beyond mean effects" in out and "a is better than b" in out
    assert "no per-entity form" in out  # pcc_resid is pooled within a fold even on a per-entity board
    assert main(["compare", "a", "b", "--board", "nd", "--boards-dir", str(tmp_path), "--metric", "pcc_x"]) == 2
    assert "pcc_resid" in capsys.readouterr().err


def test_a_constant_prediction_has_no_normalized_metric():
    """Residuals of a constant prediction are just minus the baseline: correlating them would score the baseline,
    not the method (global-mean, or cell-mean on unseen cell lines)."""
    add, inter = _additive()
    y, base = (add + inter).ravel(), add.ravel()
    drug = np.tile(np.arange(add.shape[1]), add.shape[0])
    m, _ = metrics.normalized(y, np.full_like(y, 2.0), base, drug)
    assert all(np.isnan(m[k]) for k in metrics.NORMALIZED)
    assert m[metrics.NORMALIZED_COUNT] == 0  # computed, none defined: told apart from "not computed"
