import os
from pathlib import Path

import numpy as np
import pytest

from drbench.datasets import make_synthetic
from drbench.execution import run_job
from drbench.methods import get_method
from drbench.methods.srmf import SRMF, estimate_thresholds, factorise, row_update, srmf_loss
from drbench.protocols import get_protocol
from drbench.testing import parametrize_with_checks
from drbench.view import build_query, build_train_view

DATA = Path(os.environ.get("DRBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _fold(ds, protocol="random", **opts):
    p = get_protocol(protocol)
    return p.folds(ds, 0, **p.resolve_options(opts))[0]


@parametrize_with_checks([get_method("srmf")])
def test_conformance(check):
    check()


def test_batched_row_update_equals_per_row_solves():
    rng = np.random.default_rng(1)
    n_rows, n_cols, k = 7, 11, 3
    u, v = rng.normal(size=(n_rows, k)), rng.normal(size=(n_cols, k))
    w = (rng.random((n_rows, n_cols)) < 0.6).astype(float)
    w[2] = 0.0  # a row without observed entries: only the regularisers remain
    y = rng.normal(size=(n_rows, n_cols))
    s = rng.random((n_rows, n_rows))
    s = (s + s.T) / 2
    lam_l, lam_s = 0.3, 0.7
    got = row_update(u, v, w, w * y, s, lam_l, lam_s)
    for i in range(n_rows):
        obs = w[i] > 0
        b = v[obs].T @ v[obs] + 2 * lam_s * u.T @ u + lam_l * np.eye(k)
        rhs = (w[i] * y[i]) @ v + 2 * lam_s * s[i] @ u
        np.testing.assert_allclose(got[i], np.linalg.solve(b, rhs), rtol=1e-10, atol=1e-12)


def test_recovers_planted_low_rank_matrix_and_loss_decreases():
    rng = np.random.default_rng(0)
    n_d, n_c, r = 30, 80, 3
    y = rng.normal(size=(n_d, r)) @ rng.normal(size=(n_c, r)).T / np.sqrt(r)
    w = (rng.random(y.shape) < 0.6).astype(float)
    zeros_d, zeros_c = np.zeros((n_d, n_d)), np.zeros((n_c, n_c))
    u, v, info, hist = factorise(y, w, zeros_d, zeros_c, k=r, lambda_l=1e-3, lambda_d=0.0, lambda_c=0.0,
                                 max_iter=200, tol=1e-10, seed=0)
    pred = u @ v.T
    held = w == 0
    rel = np.sqrt(np.mean((pred[held] - y[held]) ** 2)) / np.std(y[held])
    assert rel < 0.05, rel
    # alternating exact minimisation: the loss never increases without the similarity terms
    h = np.array(hist)
    assert (np.diff(h) <= 1e-9 * h[:-1]).all()
    assert h[-1] < 1e-3 * h[0]
    assert info["best_loss"] == pytest.approx(srmf_loss(u, v, w, y, zeros_d, zeros_c, 1e-3, 0.0, 0.0))


def test_similarity_terms_are_in_the_objective():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=(4, 2)), rng.normal(size=(5, 2))
    w, y = np.ones((4, 5)), rng.normal(size=(4, 5))
    s_d, s_c = np.eye(4), np.eye(5)
    base = srmf_loss(u, v, w, y, s_d, s_c, 0.1, 0.0, 0.0)
    full = srmf_loss(u, v, w, y, s_d, s_c, 0.1, 0.5, 0.25)
    expect = base + 0.5 * np.sum((s_d - u @ u.T) ** 2) + 0.25 * np.sum((s_c - v @ v.T) ** 2)
    assert full == pytest.approx(expect)


def test_thresholds_given_or_estimated_from_training_labels():
    ic50 = np.array([[1.0, 5.0, 2.0, np.nan], [3.0, 6.0, 2.5, np.nan], [4.0, 7.0, 9.0, np.nan]])
    binary = np.array([[1, 0, 1, np.nan], [0, 0, 1, np.nan], [0, 0, 0, np.nan]], dtype=float)
    train = np.ones_like(binary, dtype=bool)
    given = np.array([np.nan, np.nan, 2.75, np.nan])
    thr = estimate_thresholds(ic50, binary, train, given)
    assert thr[0] == pytest.approx(2.0)  # midpoint of largest positive (1) and smallest negative (3)
    assert thr[1] == pytest.approx(5.0)  # only negatives: the smallest negative
    assert thr[2] == pytest.approx(2.75)  # the dataset's threshold wins
    assert thr[3] == pytest.approx(np.median([2.0, 5.0, 2.75]))  # no labels: median of the others
    # validation / test entries never enter the estimate
    train2 = train.copy()
    train2[0, 0] = False
    assert estimate_thresholds(ic50, binary, train2, given)[0] == pytest.approx(3.0)  # only negatives left


def test_new_drugs_are_not_constant_with_lambda_d():
    ds = make_synthetic(n_cells=80, n_drugs=24, n_genes=60, seed=2)
    fold = _fold(ds, "new-drug", n_folds=3, min_positives=3)
    view = build_train_view(ds, fold, SRMF.capabilities, seed=0)
    q = build_query(ds, fold.test)
    for lam, constant in ((0.0, True), (0.05, False)):
        m = SRMF(k=6, lambda_d=lam, max_iter=20).fit(view)
        held = m.ic50_[:, fold.held_out_drugs]
        spread = np.ptp(held, axis=0)
        assert (spread < 1e-8).all() == constant
        assert np.isfinite(m.predict(q).score).all()


def test_binary_target_gives_scores_but_no_ic50():
    ds = make_synthetic(n_cells=60, n_drugs=20, n_genes=50, seed=4)
    fold = _fold(ds)
    view = build_train_view(ds, fold, SRMF.capabilities, seed=0)
    m = SRMF(target="binary", k=5, max_iter=10).fit(view)
    pred = m.predict(build_query(ds, fold.test))
    assert pred.ic50 is None
    assert pred.score.min() >= 0 and pred.score.max() <= 1
    with pytest.raises(Exception, match="target"):
        SRMF(target="auc").fit(view)


def test_learns_synthetic_responses():
    ds = make_synthetic(n_cells=120, n_drugs=30, n_genes=80, seed=1)
    fold = _fold(ds)
    res = run_job(SRMF, {"k": 10}, ds, fold, seed=0, keep_predictions=False)
    assert res.status == "finished", res.traceback
    assert res.metrics["auc"] > 0.75
    assert res.metrics["pcc"] > 0.6


@pytest.mark.realdata
def test_gdsc_smoke():
    if not (DATA / "gdsc").is_dir():
        pytest.skip(f"no GDSC data under {DATA}")
    from drbench.datasets import load_dataset

    ds = load_dataset("gdsc", DATA)
    res = run_job(get_method("srmf"), {"max_iter": 10}, ds, _fold(ds), seed=0, keep_predictions=False)
    assert res.status == "finished", res.traceback
    assert res.metrics["auc"] > 0.75
    assert res.metrics["pcc"] > 0.8
