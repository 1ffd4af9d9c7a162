"""The label firewall (TrainView) and the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from drbench import metrics
from drbench.api import Capabilities
from drbench.datasets import make_synthetic
from drbench.errors import UsageError
from drbench.protocols import get_protocol
from drbench.view import build_query, build_train_view

TRANSDUCTIVE = Capabilities(transductive=True)
INDUCTIVE = Capabilities(transductive=False)


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(n_cells=80, n_drugs=30)


def test_view_holds_no_label_outside_train_and_valid(ds):
    f = get_protocol("random").folds(ds, 0)[0]
    v = build_train_view(ds, f, TRANSDUCTIVE)
    allowed = f.train | f.valid
    assert np.isnan(v.binary[~allowed]).all() and np.isnan(v.ic50[~allowed]).all()
    assert np.array_equal(v.binary[allowed], ds.binary[allowed])
    assert f.test.any() and np.isnan(v.binary[f.test]).all()
    with pytest.raises(ValueError):
        v.binary[0, 0] = 1  # read-only copies
    assert v.binary.base is not ds.binary


def test_replication_mode_puts_test_entries_in_valid(ds):
    p = get_protocol("random")
    f = p.folds(ds, 0, carve_valid=False)[0]
    v = build_train_view(ds, f, TRANSDUCTIVE, selection="test")
    assert np.array_equal(v.valid, f.test)
    assert v.context["selection"] == "test"
    with pytest.raises(UsageError, match="validation, test"):
        build_train_view(ds, f, TRANSDUCTIVE, selection="best")


def test_inductive_methods_do_not_see_held_out_features(ds):
    f = get_protocol("new-cell-line").folds(ds, 0, n_folds=3, min_positives=3)[0]
    vi = build_train_view(ds, f, INDUCTIVE)
    vt = build_train_view(ds, f, TRANSDUCTIVE)
    held = f.held_out_cells
    assert np.isnan(vi.cell_features["expression"][held]).all()
    assert not vi.visible_cells[held].any() and vi.visible_cells.sum() == ds.shape[0] - len(held)
    assert np.isfinite(vt.cell_features["expression"]).all()
    q = build_query(ds, f.test)
    assert np.isfinite(q.cell_features["expression"][q.rows]).all()  # predict gets the features


@pytest.mark.parametrize("protocol, axis", [("new-cell-line", 0), ("new-drug", 1)])
def test_replication_mode_shows_an_inductive_method_the_features_it_selects_on(ds, protocol, axis):
    """--select test scores the test entries every epoch (as the reference did): their held-out entities'
    features must be in the view, or an inductive method selects on rows of missing features."""
    p = get_protocol(protocol)
    f = p.folds(ds, 0, carve_valid=False, n_folds=3, min_positives=3)[0]
    v = build_train_view(ds, f, INDUCTIVE, selection="test")
    held = f.held_out_cells if axis == 0 else f.held_out_drugs
    block = v.cell_features["expression"] if axis == 0 else v.drug_features["fingerprint"]
    visible = v.visible_cells if axis == 0 else v.visible_drugs
    assert len(held) and visible[held].all() and np.isfinite(block[held]).all()
    if axis == 1:
        assert (v.smiles[held] == ds.smiles[held]).all()
    assert np.isnan(v.binary[~(f.train | f.test)]).all()  # labels: still only train + the selection entries
    hf = p.folds(ds, 0, n_folds=3, min_positives=3)[0]
    assert np.array_equal(hf.test, f.test)  # both modes hold out the same entities
    honest = build_train_view(ds, hf, INDUCTIVE)
    assert not (honest.visible_cells if axis == 0 else honest.visible_drugs)[held].any()


def test_auc_auprc_known_values():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    m, notes = metrics.classification(y, s)
    assert m["auc"] == pytest.approx(0.75)
    assert m["auprc"] == pytest.approx((1 + 2 / 3) / 2)  # average precision, step-wise
    assert notes == []


def test_regression_metrics_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.0, 2.0, 3.0, 5.0])
    m, _ = metrics.regression(y, p)
    assert m["pcc"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    assert m["scc"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(0.5)


@pytest.mark.parametrize("y,s,reason", [
    (np.array([1, 1, 1]), np.array([0.1, 0.2, 0.3]), "one class"),
    (np.array([0, 1, 1]), np.array([0.5, 0.5, 0.5]), "constant prediction"),
    (np.array([0, 1]), np.array([0.5, np.nan]), "NaN"),
])
def test_degenerate_cases_give_nan_with_a_reason(y, s, reason):
    m, notes = metrics.classification(y, s)
    assert np.isnan(m["auc"]) and np.isnan(m["auprc"])
    assert any(reason in n for n in notes)


def test_per_entity_means_skip_undefined_entities():
    ent = np.array([0, 0, 0, 0, 1, 1])
    y = np.array([0, 1, 0, 1, 1, 1])  # entity 1 has one class only
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.4])
    means, counts = metrics.per_entity(ent, y, s)
    assert means["auc_entity"] == pytest.approx(1.0)
    assert counts["n_entities_auc"] == 1


def test_fast_metrics_equal_sklearn_and_scipy_with_ties():
    from scipy import stats
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 300))
        y = rng.integers(0, 2, n)
        y[0], y[1] = 0, 1
        s = np.round(rng.random(n), int(rng.integers(1, 3)))  # many ties
        assert metrics.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
        assert metrics.average_precision(y, s) == pytest.approx(average_precision_score(y, s))
        a, b = rng.normal(size=n), rng.normal(size=n)
        assert metrics.pearson(a, b) == pytest.approx(stats.pearsonr(a, b)[0])
        m, _ = metrics.regression(a, np.round(b, 1))
        assert m["scc"] == pytest.approx(stats.spearmanr(a, np.round(b, 1))[0])
