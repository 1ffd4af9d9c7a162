"""NIHGCN and the shared bipartite GCN module: conformance, the graph/encoder equations,
epoch selection on validation entries, held-out statistics, and learning on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from drbench.datasets import make_synthetic
from drbench.methods.bipartite_gcn import (BipartiteGCN, GCNConfig, _compact_basis, fit_bipartite,
                                           normalized_adjacency, self_corr)
from drbench.methods.common import corr
from drbench.methods.nihgcn import NIHGCN
from drbench.protocols import get_protocol
from drbench.registry import get_method
from drbench.testing import parametrize_with_checks
from drbench.view import build_train_view

SMALL = dict(hidden=32, out=32, eval_every=1, patience=None)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _synthetic_view(protocol="random", seed=0, method=NIHGCN, **ds_kw):
    kw = dict(n_cells=80, n_drugs=24, n_genes=60, rank=4, pos_rate=0.25, n_invivo=10, invivo_drugs=4, seed=seed)
    kw.update(ds_kw)
    ds = make_synthetic(**kw)
    p = get_protocol(protocol)
    opts = {"n_folds": 5} if protocol == "random" else {"n_folds": 3, "min_positives": 3}
    fold = p.folds(ds, seed, **opts)[0]
    return ds, fold, build_train_view(ds, fold, method.capabilities, seed=seed, context={})


@parametrize_with_checks([get_method("nihgcn")])
def test_conformance(check):
    check()


def test_capabilities():
    caps = get_method("nihgcn").capabilities
    assert caps.tasks == {"classification"} and caps.transductive and caps.selects
    assert caps.needs == {"expression", "fingerprint"}
    assert caps.protocols == {"random", "new-cell-line", "new-drug", "in-vivo", "new-pair"}


def test_normalized_adjacency_on_a_tiny_matrix():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    lc, sc, sd = normalized_adjacency(a)
    deg_c, deg_d = np.array([2.0, 3.0, 1.0]), np.array([3.0, 2.0])
    expected = np.array([[1 / np.sqrt(2 * 3), 0], [1 / np.sqrt(3 * 3), 1 / np.sqrt(3 * 2)], [0, 0]])
    np.testing.assert_allclose(lc.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(sc.numpy(), 1 / deg_c + 1, rtol=1e-6)
    np.testing.assert_allclose(sd.numpy(), 1 / deg_d + 1, rtol=1e-6)
    # L_d of the spec (diag(deg_d^-1/2) A^T diag(deg_c^-1/2)) is L_c transposed
    ld = np.diag(deg_d ** -0.5) @ a.numpy().T @ np.diag(deg_c ** -0.5)
    np.testing.assert_allclose(lc.numpy().T, ld, rtol=1e-6)


def test_encoder_matches_the_reference_equations_with_dense_diagonals():
    torch.manual_seed(0)
    m, n, g, fbits, h, f, alpha = 7, 5, 9, 11, 6, 4, 0.3
    model = BipartiteGCN(g, fbits, h, f, alpha, 8.0, ic50_head=False, sim_head=False,
                         shared_sim_projection=True, ic50_scale=15.0, sim_activation="sigmoid", sim_scale=15.0)
    xc, xd = torch.randn(m, g), (torch.rand(n, fbits) > 0.5).float()
    a = (torch.rand(m, n) > 0.6).float()
    lc, sc, sd = normalized_adjacency(a)
    hc, hd = model.encode(xc, xd, lc, sc, sd)
    # the spec's form: dense self matrices, explicit L_d, BatchNorm1d in training mode
    bn_c, bn_d = torch.nn.BatchNorm1d(h), torch.nn.BatchNorm1d(h)
    bn_c.load_state_dict(model.bn_cell.state_dict())
    bn_d.load_state_dict(model.bn_drug.state_dict())
    c, d = bn_c(model.fc_cell(xc)), bn_d(model.fc_drug(xd))
    deg_c, deg_d = a.sum(1) + 1, a.sum(0) + 1
    ld = torch.diag(deg_d ** -0.5) @ a.T @ torch.diag(deg_c ** -0.5)
    gc = torch.diag(1 / deg_c + 1) @ c + lc @ d
    gd = torch.diag(1 / deg_d + 1) @ d + ld @ c
    ref_hc = torch.relu(model.lin_cell((1 - alpha) * gc + alpha * gc * c))
    ref_hd = torch.relu(model.lin_drug((1 - alpha) * gd + alpha * gd * d))
    torch.testing.assert_close(hc, ref_hc, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hd, ref_hd, rtol=1e-5, atol=1e-5)
    prob = model.classify(hc, hd)
    torch.testing.assert_close(prob, torch.sigmoid(8.0 * corr(ref_hc, ref_hd)), rtol=1e-5, atol=1e-6)


def test_self_corr_value_and_gradient_match_autograd_corr():
    x1 = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    w = torch.randn(6, 6, dtype=torch.float64)
    (self_corr(x1) * w).sum().backward()
    (corr(x2, x2) * w).sum().backward()
    torch.testing.assert_close(self_corr(x1.detach()), corr(x2.detach(), x2.detach()))
    torch.testing.assert_close(x1.grad, x2.grad)


def test_compact_basis_reconstructs_the_input():
    x = torch.randn(12, 40)
    xt, v = _compact_basis(x)
    assert xt.shape == (12, 12) and v.shape == (40, 12)
    torch.testing.assert_close(xt @ v.T, x, rtol=1e-4, atol=1e-4)
    w = torch.randn(40, 7)
    torch.testing.assert_close(xt @ (v.T @ w), x @ w, rtol=1e-4, atol=1e-4)


def test_selector_returns_the_best_validation_epoch():
    _, _, view = _synthetic_view()
    cfg = GCNConfig(**SMALL, epochs=25)
    res = fit_bipartite(view, cfg)
    hist = res.trace["valid_auc"]
    assert len(hist) == 26 and res.info["epochs_run"] == 26
    scores = [s for _, s in hist]
    best = int(np.argmax(scores))  # first maximum, as the selector keeps strict improvements
    assert res.info["best_epoch"] == hist[best][0]
    assert res.info["best_valid_auc"] == pytest.approx(max(scores))
    # the kept scores are the forward pass of that epoch: a fit stopped there without validation gives them
    bare = build_train_view(*_synthetic_view()[:2], NIHGCN.capabilities, seed=0, context={})
    no_valid = type(bare)(**{**bare.__dict__, "valid": np.zeros_like(bare.valid)})
    again = fit_bipartite(no_valid, GCNConfig(**{**SMALL, "epochs": res.info["best_epoch"]}))
    assert again.info["selected_on_valid"] == 0 and again.info["best_epoch"] == res.info["best_epoch"]
    np.testing.assert_allclose(again.score, res.score, rtol=1e-6, atol=1e-7)


def test_eval_every_and_patience_stop_early():
    _, _, view = _synthetic_view()
    res = fit_bipartite(view, GCNConfig(hidden=32, out=32, epochs=400, eval_every=5, patience=20, lr=1e-2))
    epochs = [e for e, _ in res.trace["valid_auc"]]
    assert all(e % 5 == 0 for e in epochs)
    assert res.info["stopped_early"] == 1 and res.info["epochs_run"] < 401
    assert epochs[-1] - res.info["best_epoch"] >= 20  # stopped only after `patience` epochs without improvement


def test_empty_validation_keeps_the_last_epoch():
    _, _, view = _synthetic_view()
    view = type(view)(**{**view.__dict__, "valid": np.zeros_like(view.valid)})
    res = fit_bipartite(view, GCNConfig(**{**SMALL, "patience": 3}, epochs=12))
    assert res.info["best_epoch"] == 12 and res.info["epochs_run"] == 13 and res.info["stopped_early"] == 0


def test_learns_on_synthetic_data():
    ds, fold, view = _synthetic_view(n_cells=160, n_drugs=40, n_genes=120)
    m = NIHGCN(hidden=64, out=64, epochs=150, eval_every=5, patience=None).fit(view)
    assert m.fit_info_["best_valid_auc"] > 0.7
    t = fold.test
    assert roc_auc_score(ds.binary[t], m.score_[t]) > 0.7


@pytest.mark.parametrize("heldout_stats", [True, False])
def test_heldout_stats_option(heldout_stats):
    """With heldout_stats=False, held-out cell lines' features influence no other row's score."""
    ds, fold, view = _synthetic_view("new-cell-line")
    held = fold.held_out_cells
    feats = dict(view.cell_features)
    x = np.array(feats["expression"], copy=True)
    x[held] = x[held] * 3.0 + 5.0
    shifted = type(view)(**{**view.__dict__, "cell_features": {"expression": x}})
    params = dict(hidden=16, out=16, epochs=15, eval_every=5, patience=None, heldout_stats=heldout_stats)
    a = NIHGCN(**params).fit(view).score_
    b = NIHGCN(**params).fit(shifted).score_
    others = np.setdiff1d(np.arange(ds.shape[0]), held)
    if heldout_stats:
        assert not np.allclose(a[others], b[others])  # reference: z-score and BatchNorm span every row
    else:
        np.testing.assert_allclose(a[others], b[others], rtol=1e-5, atol=1e-6)
        assert not np.allclose(a[held], b[held])  # their own scores still come from their features


def test_defaults_for_each_setting():
    d = NIHGCN.defaults_for
    assert d({"dataset": "gdsc", "protocol": "random"}) == {"hidden": 1024, "out": 1024, "alpha": 0.25}
    assert d({"dataset": "ccle", "protocol": "new-drug"}) == {"hidden": 512, "out": 512, "alpha": 0.45}
    assert d({"dataset": "gdsc", "target": "pdx", "protocol": "in-vivo"})["alpha"] == 0.15
    assert d({"dataset": "gdsc", "target": "tcga", "protocol": "in-vivo"})["alpha"] == 0.1
    assert d({"dataset": "synthetic"}) == {}
    m = NIHGCN()
    assert (m.epochs, m.lr, m.weight_decay, m.gamma) == (1000, 1e-3, 1e-5, 8.0)


def test_bad_option_is_a_clear_error():
    from drbench.errors import UsageError

    _, _, view = _synthetic_view()
    with pytest.raises(UsageError, match="input_basis"):
        NIHGCN(input_basis="pca", **{k: v for k, v in SMALL.items()}, epochs=1).fit(view)


@pytest.mark.realdata
def test_real_gdsc_smoke(gdsc):
    from drbench.execution import run_job

    fold = get_protocol("random").folds(gdsc, 0)[0]
    res = run_job(NIHGCN, {**NIHGCN.defaults_for({"dataset": "gdsc"}), "epochs": 3, "eval_every": 1}, gdsc, fold,
                  seed=0)
    assert res.status == "finished", res.traceback
    assert 0.5 < res.metrics["auc"] <= 1.0
    assert res.fit_info["epochs_run"] == 4 and res.fit_info["n_input_features"] == 5778
