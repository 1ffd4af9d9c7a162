"""DeepDSC: conformance, autoencoder rows and scaling, both heads learn, selection on view.valid only."""

import numpy as np
import pytest
import torch

from drbench.datasets import make_synthetic
from drbench.execution import run_job
from drbench.methods import get_method
from drbench.methods.deepdsc import DeepDSC, minmax_stats
from drbench.methods.training import auc
from drbench.protocols import get_protocol
from drbench.testing import parametrize_with_checks, tiny_dataset
from drbench.view import build_query, build_train_view

SMALL = {"ae_hidden": (64, 32, 16), "ae_epochs": 10, "ae_batch_size": 32, "hidden": (64, 32, 16),
         "epochs": 25, "batch_size": 256, "patience": 6}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fold(protocol, ds, seed=0, **opts):
    p = get_protocol(protocol)
    return p.folds(ds, seed, **p.resolve_options(opts))[0]


def _view(ds, fold, **kw):
    return build_train_view(ds, fold, DeepDSC.capabilities, seed=0, **kw)


@parametrize_with_checks([get_method("deepdsc")])
def test_conformance(check):
    check()


def test_capabilities():
    caps = DeepDSC.capabilities
    assert not caps.transductive and caps.selects and caps.regression
    assert caps.protocols == {"random", "new-cell-line", "new-drug", "in-vivo", "new-pair"}


def test_minmax_is_proper_and_fitted_on_autoencoder_rows():
    x = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 6.0], [2.0, 5.0, 4.0]], dtype=np.float32)
    lo, span = minmax_stats(x)
    z = (x - lo) / span
    np.testing.assert_allclose(z[:, 0], [0.0, 1.0, 0.5])  # (x - min) / (max - min), not / max
    np.testing.assert_allclose(z[:, 2], [0.0, 1.0, 0.5])
    assert np.all(z[:, 1] == 0)  # constant gene → 0, no division by zero

    cells, _ = tiny_dataset()
    fold = _fold("new-cell-line", cells, n_folds=3, min_positives=3)
    view = _view(cells, fold)
    m = DeepDSC(**DeepDSC.fast_params()).fit(view)
    train_rows = np.flatnonzero(view.visible_cells & view.train.any(1))
    x = cells.cell_features["expression"][train_rows]
    np.testing.assert_allclose(m.mm_lo_, x.min(0), rtol=1e-6)
    np.testing.assert_allclose(m.mm_span_, x.max(0) - x.min(0), rtol=1e-5)
    assert m.fit_info_["ae_rows"] == len(train_rows)


def _encoder_params(m):
    return torch.cat([p.detach().ravel() for p in m.encoder_.parameters()])


def test_autoencoder_uses_training_cells_only_by_default():
    cells, _ = tiny_dataset()
    fold = _fold("new-cell-line", cells, n_folds=3, min_positives=3)
    assert len(fold.valid_cells) and len(fold.held_out_cells)
    # validation cells are visible (label-free) but have no training entries; held-out cells are hidden
    expr = cells.cell_features["expression"].copy()
    expr[fold.valid_cells] += 5.0 * np.random.default_rng(1).normal(size=expr[fold.valid_cells].shape)
    expr[fold.held_out_cells] *= -3.0
    changed = cells._replace(cell_features={"expression": expr.astype(np.float32)})
    fp = DeepDSC.fast_params()
    a = DeepDSC(**fp).fit(_view(cells, fold))
    b = DeepDSC(**fp).fit(_view(changed, fold))
    assert torch.equal(_encoder_params(a), _encoder_params(b))
    np.testing.assert_array_equal(a.mm_lo_, b.mm_lo_)
    # with ae_cells="visible" the validation cells enter the autoencoder, so the same change matters
    c = DeepDSC(**fp, ae_cells="visible").fit(_view(cells, fold))
    d = DeepDSC(**fp, ae_cells="visible").fit(_view(changed, fold))
    assert c.fit_info_["ae_rows"] == a.fit_info_["ae_rows"] + len(fold.valid_cells)
    assert not torch.equal(_encoder_params(c), _encoder_params(d))


def test_unknown_ae_cells_is_an_error():
    cells, _ = tiny_dataset()
    with pytest.raises(Exception, match="ae_cells"):
        DeepDSC(**DeepDSC.fast_params(), ae_cells="all").fit(_view(cells, _fold("random", cells)))


def test_learns_both_heads_on_synthetic():
    ds = make_synthetic(n_cells=160, n_drugs=40, n_genes=200, seed=3)
    fold = _fold("random", ds, seed=0)
    res = run_job(get_method("deepdsc"), SMALL, ds, fold, seed=0, keep_predictions=False)
    assert res.status == "finished", res.traceback
    base = run_job(get_method("mean-effects"), {}, ds, fold, seed=0, keep_predictions=False)
    assert res.fit_info["best_valid_auc"] > 0.7
    assert res.metrics["auc"] > max(0.75, base.metrics["auc"] + 0.05)
    assert res.metrics["pcc"] > 0.6  # the IC50 head is trained too
    assert res.metrics["rmse"] < base.metrics["rmse"]
    assert res.fit_info["epochs_run"] <= res.fit_info["best_epoch"] + SMALL["patience"]


def test_early_stopping_restores_the_best_validation_epoch():
    ds = make_synthetic(n_cells=160, n_drugs=40, n_genes=200, seed=3)
    fold = _fold("random", ds, seed=0)
    view = _view(ds, fold)
    m = DeepDSC(**{**SMALL, "epochs": 12, "patience": None}).fit(view)
    assert m.fit_info_["epochs_run"] == 12 and m.fit_info_["selected_on_valid"] == 1
    # the kept weights score the validation pairs with the recorded best AUC
    q = build_query(ds, fold.valid)
    p = m.predict(q)
    assert auc(ds.binary[q.rows, q.cols], p.score) == pytest.approx(m.fit_info_["best_valid_auc"], abs=1e-6)


def test_empty_validation_trains_the_fixed_budget():
    ds = make_synthetic(n_cells=80, n_drugs=20, n_genes=50, seed=1)
    p = get_protocol("random")
    fold = p.folds(ds, 0, carve_valid=False, **p.resolve_options({}))[0]
    assert not fold.valid.any()
    m = DeepDSC(**{**DeepDSC.fast_params(), "epochs": 5, "patience": 1}).fit(_view(ds, fold))
    assert m.fit_info_["epochs_run"] == 5 and m.fit_info_["selected_on_valid"] == 0


def test_validation_labels_never_enter_the_loss():
    """Changing every validation label leaves the training trajectory unchanged (only the selection sees them)."""
    ds = make_synthetic(n_cells=80, n_drugs=20, n_genes=50, seed=1)
    fold = _fold("random", ds)
    b = ds.binary.copy()
    b[fold.valid] = 1 - b[fold.valid]
    r = ds.ic50.copy()
    r[fold.valid] += 7.0
    flipped = ds.with_labels(b, r)
    params = {**DeepDSC.fast_params(), "epochs": 4, "patience": None}
    a = DeepDSC(**params).fit(_view(ds, fold))
    c = DeepDSC(**params).fit(_view(flipped, fold))
    assert a.fit_info_["final_train_loss"] == c.fit_info_["final_train_loss"]
    assert a.ic50_mean_ == c.ic50_mean_ and a.ic50_sd_ == c.ic50_sd_
    assert a.fit_info_["best_valid_auc"] != c.fit_info_["best_valid_auc"]  # the validation labels did change


def test_predict_is_inductive_for_unseen_cells():
    """New-cell-line: held-out cells are NaN at fit time, but their features in the query drive the score."""
    cells, _ = tiny_dataset()
    fold = _fold("new-cell-line", cells, n_folds=3, min_positives=3)
    view = _view(cells, fold)
    assert np.isnan(view.cell_features["expression"][fold.held_out_cells]).all()
    m = DeepDSC(**DeepDSC.fast_params()).fit(view)
    q = build_query(cells, fold.test)
    p1 = m.predict(q)
    assert np.isfinite(p1.score).all() and np.isfinite(p1.ic50).all()
    expr = cells.cell_features["expression"].copy()
    expr[fold.held_out_cells] = expr[fold.held_out_cells][::-1]
    q2 = type(q)(rows=q.rows, cols=q.cols, cell_features={"expression": expr}, drug_features=q.drug_features,
                 smiles=q.smiles)
    assert not np.allclose(m.predict(q2).score, p1.score)


@pytest.mark.realdata
def test_real_gdsc_smoke(data_dir):
    from drbench.datasets import load_dataset

    ds = load_dataset("gdsc", data_dir)
    fold = _fold("random", ds)
    params = {**DeepDSC.defaults_for({"dataset": "gdsc"}), "ae_epochs": 1, "ae_hidden": (256, 128, 64),
              "hidden": (128, 64, 32), "epochs": 2, "max_train_pairs": 20000}
    res = run_job(get_method("deepdsc"), params, ds, fold, seed=0, keep_predictions=False, n_threads=1)
    assert res.status == "finished", res.traceback
    assert res.fit_info["train_pairs"] == 20000
    assert res.metrics["auc"] > 0.6 and np.isfinite(res.metrics["rmse"])
