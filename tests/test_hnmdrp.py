import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from drbench.datasets import make_synthetic
from drbench.errors import UnsupportedProtocolError
from drbench.execution import run_job
from drbench.methods import get_method
from drbench.methods.hnmdrp import HNMDRP, filter_similarity, flow_normalise, hnmdrp_scores
from drbench.protocols import get_protocol
from drbench.testing import method_checks, parametrize_with_checks
from drbench.view import build_train_view

DATA = Path(os.environ.get("DRBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _fold(ds, protocol="random", **opts):
    p = get_protocol(protocol)
    return p.folds(ds, 0, **p.resolve_options(opts))[0]


@parametrize_with_checks([get_method("hnmdrp")])
def test_conformance(check):
    check()


def test_declared_protocols_are_the_ones_checked():
    checked = {name.split("[")[1][:-1] for name, _ in method_checks(HNMDRP) if "[" in name}
    assert checked == HNMDRP.capabilities.protocols == {"random", "new-drug"}


def test_new_cell_line_is_refused():
    ds = make_synthetic(n_cells=60, n_drugs=20, n_genes=40, seed=0)
    fold = _fold(ds, "new-cell-line", n_folds=3, min_positives=3)
    view = build_train_view(ds, fold, HNMDRP.capabilities, seed=0)
    with pytest.raises(UnsupportedProtocolError, match="new-cell-line"):
        HNMDRP().fit(view)


def test_filter_and_normalisation():
    s = np.array([[1.0, 0.2, 0.995], [0.2, 1.0, 0.5], [0.995, 0.5, 1.0]])
    f = filter_similarity(s, 0.3, 0.99)
    np.testing.assert_allclose(f, [[1.0, 0.0, 0.99], [0.0, 1.0, 0.5], [0.99, 0.5, 1.0]])
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    expect = np.array([[1 / (np.sqrt(3 * 4) + 0.001), 2 / (np.sqrt(3 * 6) + 0.001)],
                       [3 / (np.sqrt(7 * 4) + 0.001), 4 / (np.sqrt(7 * 6) + 0.001)]])
    np.testing.assert_allclose(flow_normalise(m), expect)


def _hand_normalise(m):
    out = np.empty_like(m)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            out[i, j] = m[i, j] / (np.sqrt(m[i].sum() * m[:, j].sum()) + 0.001)
    return out


def test_tiny_matrix_matches_hand_computed_steps():
    cd = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 1]], dtype=float)
    s_c = filter_similarity(np.array([[1, .8, .1, .5], [.8, 1, .4, .2], [.1, .4, 1, .6], [.5, .2, .6, 1]]), 0.3)
    s_d = filter_similarity(np.array([[1, .7, .2], [.7, 1, .35], [.2, .35, 1]]), 0.3)
    dt = np.array([[1, 0], [1, 1], [0, 1]], dtype=float)
    decay = 0.7
    # initial step (no iteration): DR2 = CD · N(S_D DT DTᵀ)
    rr2 = _hand_normalise(s_d @ dt @ dt.T)
    got0, it0 = hnmdrp_scores(cd, s_c, s_d, dt, None, decay=decay, max_iter=0)
    assert it0 == 0
    np.testing.assert_allclose(got0, cd @ rr2)
    # one iteration of the MATLAB loop
    rr1 = _hand_normalise(cd.T @ s_c @ cd @ s_d)
    dr1, rt1 = cd @ rr2, rr1 @ dt
    rr2b = _hand_normalise(s_d @ rt1 @ rt1.T)
    rr1b = _hand_normalise(dr1.T @ s_c @ dr1 @ s_d)
    dr2 = decay * dr1 @ rr2b + (1 - decay) * cd
    got1, it1 = hnmdrp_scores(cd, s_c, s_d, dt, None, decay=decay, max_iter=1)
    assert it1 == 1
    np.testing.assert_allclose(got1, dr2)
    # a second iteration uses the updated RT (RR1·RT1 blend) as well
    rt2 = decay * rr1b @ rt1 + (1 - decay) * dt
    dr3 = decay * dr2 @ _hand_normalise(s_d @ rt2 @ rt2.T) + (1 - decay) * cd
    got2, _ = hnmdrp_scores(cd, s_c, s_d, dt, None, decay=decay, max_iter=2)
    np.testing.assert_allclose(got2, dr3)
    # the cell line with no positives (row 2) stays all zero
    assert (got2[2] == 0).all()
    # an explicit identity target similarity is the same as None
    np.testing.assert_allclose(hnmdrp_scores(cd, s_c, s_d, dt, np.eye(2), max_iter=2)[0], got2)


def test_cells_without_training_positives_get_equal_scores():
    ds = make_synthetic(n_cells=80, n_drugs=20, n_genes=50, seed=3)
    fold = _fold(ds)
    view = build_train_view(ds, fold, HNMDRP.capabilities, seed=0)
    m = HNMDRP().fit(view)
    no_pos = ~((view.binary == 1) & view.train).any(1)
    assert no_pos.any()
    rows = m.score_[no_pos]
    assert np.ptp(rows) == 0.0
    assert m.score_.min() == 0.0 and m.score_.max() == 1.0  # min-max scaled over the matrix


def test_new_drugs_scored_through_drug_similarity():
    ds = make_synthetic(n_cells=80, n_drugs=24, n_genes=50, seed=5)
    fold = _fold(ds, "new-drug", n_folds=3, min_positives=3)
    view = build_train_view(ds, fold, HNMDRP.capabilities, seed=0)
    m = HNMDRP().fit(view)
    held = m.score_[:, fold.held_out_drugs]
    assert (np.ptp(held, axis=0) > 0).all()


def test_dataset_targets_block_is_used():
    ds = make_synthetic(n_cells=60, n_drugs=20, n_genes=40, seed=6)
    rng = np.random.default_rng(0)
    targets = (rng.random((20, 7)) < 0.3).astype(np.float32)
    ds2 = dataclasses.replace(ds, drug_features={**ds.drug_features, "targets": targets})
    fold = _fold(ds2)
    view = build_train_view(ds2, fold, HNMDRP.capabilities, seed=0)
    m = HNMDRP().fit(view)
    assert m.fit_info_["n_targets"] == 7 and m.fit_info_["target_source_is_surrogate"] == 0
    sim = np.eye(7) * 0.5 + 0.5
    m2 = HNMDRP(target_similarity=sim).fit(view)
    assert not np.allclose(m.score_, m2.score_)
    m3 = HNMDRP(targets="fingerprint").fit(view)
    assert m3.fit_info_["n_targets"] == 920 and m3.fit_info_["target_source_is_surrogate"] == 1
    with pytest.raises(Exception, match="target_similarity"):
        HNMDRP(target_similarity=np.eye(3)).fit(view)
    view0 = build_train_view(ds, fold, HNMDRP.capabilities, seed=0)
    with pytest.raises(Exception, match="targets"):
        HNMDRP(targets="dataset").fit(view0)


def test_ranks_synthetic_responses_above_chance():
    ds = make_synthetic(n_cells=120, n_drugs=30, n_genes=80, seed=1)
    res = run_job(HNMDRP, {}, ds, _fold(ds), seed=0, keep_predictions=False)
    assert res.status == "finished", res.traceback
    assert res.metrics["auc"] > 0.65


@pytest.mark.realdata
def test_gdsc_smoke():
    if not (DATA / "gdsc").is_dir():
        pytest.skip(f"no GDSC data under {DATA}")
    from drbench.datasets import load_dataset

    ds = load_dataset("gdsc", DATA)
    res = run_job(get_method("hnmdrp"), {"max_iter": 10}, ds, _fold(ds), seed=0, keep_predictions=False)
    assert res.status == "finished", res.traceback
    assert res.metrics["auc"] > 0.65
