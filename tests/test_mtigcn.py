"""MTIGCN and its ablations: conformance, the per-test hyperparameter table, the loss terms each
ablation really drops, the paper/reference options, and a real-data smoke test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from drbench.datasets import make_synthetic
from drbench.errors import UsageError
from drbench.methods.bipartite_gcn import GCNConfig, fit_bipartite
from drbench.methods.mtigcn import MTIGCN, MTIGCNNoAuxiliary, MTIGCNNoIC50, MTIGCNNoSimilarity
from drbench.protocols import get_protocol
from drbench.registry import get_method
from drbench.testing import parametrize_with_checks
from drbench.view import build_query, build_train_view

NAMES = ["mtigcn", "mtigcn-a", "mtigcn-b", "mtigcn-ab"]
TINY = dict(hidden=16, out=16, epochs=20, eval_every=5, patience=None)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _view(seed=0, protocol="random", cls=MTIGCN, **kw):
    args = dict(n_cells=80, n_drugs=24, n_genes=60, rank=4, pos_rate=0.25, n_invivo=10, invivo_drugs=4, seed=seed)
    args.update(kw)
    ds = make_synthetic(**args)
    fold = get_protocol(protocol).folds(ds, seed, n_folds=5)[0]
    return ds, fold, build_train_view(ds, fold, cls.capabilities, seed=seed, context={})


@parametrize_with_checks([get_method(name) for name in NAMES])
def test_conformance(check):
    check()


def test_capabilities_of_each_variant():
    assert get_method("mtigcn").capabilities.tasks == {"classification", "regression"}
    assert get_method("mtigcn-b").capabilities.tasks == {"classification", "regression"}
    assert get_method("mtigcn-a").capabilities.tasks == {"classification"}
    assert get_method("mtigcn-ab").capabilities.tasks == {"classification"}
    for name in NAMES:
        caps = get_method(name).capabilities
        assert caps.transductive and caps.selects and caps.needs == {"expression", "fingerprint"}


def test_defaults_follow_the_reference_table():
    d = MTIGCN.defaults_for
    g1 = d({"dataset": "gdsc", "protocol": "random"})
    assert (g1["hidden"], g1["out"], g1["alpha"], g1["epochs"]) == (1024, 1024, 0.25, 2000)
    assert (g1["a"], g1["b"], g1["c"], g1["d"]) == (0.25, 0.1, 0.25, 0.75)
    c1 = d({"dataset": "ccle", "protocol": "random"})
    assert (c1["hidden"], c1["out"], c1["alpha"]) == (512, 512, 0.45)
    for proto in ("new-cell-line", "new-drug"):
        t2 = d({"dataset": "ccle", "protocol": proto})
        assert (t2["a"], t2["b"], t2["c"], t2["d"], t2["epochs"], t2["alpha"]) == (0.1, 0.1, 0.25, 0.75, 2000, 0.45)
    for proto in ("in-vivo", "transfer"):
        t3 = d({"dataset": "gdsc", "target": "pdx", "protocol": proto})
        assert (t3["hidden"], t3["alpha"], t3["epochs"]) == (1024, 0.1, 1000)
        assert (t3["a"], t3["b"], t3["c"], t3["d"]) == (0.01, 0.1, 0.1, 0.75)
    # the init defaults are the GDSC Test 1 row and the reference options
    m = MTIGCN()
    assert (m.a, m.b, m.c, m.d, m.epochs, m.alpha, m.gamma) == (0.25, 0.1, 0.25, 0.75, 2000, 0.25, 8.0)
    assert (m.cell_sim_sigma, m.shared_sim_projection, m.sim_activation, m.ic50_scale, m.heldout_stats) == \
        (2.0, True, "sigmoid", 15.0, True)


@pytest.mark.parametrize("cls,zeroed", [(MTIGCNNoIC50, ("a",)), (MTIGCNNoSimilarity, ("b", "c")),
                                        (MTIGCNNoAuxiliary, ("a", "b", "c"))])
def test_ablation_weights_are_zero_in_every_setting(cls, zeroed):
    for ctx in ({}, {"dataset": "gdsc", "protocol": "random"}, {"dataset": "ccle", "protocol": "new-drug"},
                {"dataset": "gdsc", "protocol": "in-vivo"}):
        params = {**cls().get_params(), **cls.defaults_for(ctx)}
        assert all(params[k] == 0 for k in zeroed)
        assert params["d"] == 0.75
        assert all(params[k] > 0 for k in ("a", "b", "c") if k not in zeroed)
    _, _, view = _view()
    with pytest.raises(UsageError, match="ablation"):
        cls(**TINY, **{zeroed[0]: 0.5}).fit(view)


def test_ablations_really_drop_their_terms():
    _, _, view = _view()
    full = MTIGCN(**TINY).fit(view)
    ab = MTIGCNNoAuxiliary(**TINY).fit(view)
    explicit = MTIGCN(**TINY, a=0.0, b=0.0, c=0.0).fit(view)
    np.testing.assert_array_equal(ab.score_, explicit.score_)
    assert not np.allclose(full.score_, ab.score_)
    assert ab.ic50_ is None and MTIGCNNoIC50(**TINY).fit(view).ic50_ is None
    # without similarity terms the similarity options cannot matter; with them they do
    nb1 = MTIGCNNoSimilarity(**TINY, cell_sim_sigma=2.0).fit(view)
    nb2 = MTIGCNNoSimilarity(**TINY, cell_sim_sigma=0.3, sim_activation="corr").fit(view)
    np.testing.assert_array_equal(nb1.score_, nb2.score_)
    assert nb1.ic50_ is not None
    f1 = MTIGCN(**TINY, cell_sim_sigma=2.0, b=1.0).fit(view)
    f2 = MTIGCN(**TINY, cell_sim_sigma=0.3, b=1.0).fit(view)
    assert not np.allclose(f1.score_, f2.score_)
    # without the IC50 term, the IC50 scale cannot matter for classification
    a1 = MTIGCNNoIC50(**TINY, ic50_scale=15.0).fit(view)
    a2 = MTIGCNNoIC50(**TINY, ic50_scale=1.0).fit(view)
    np.testing.assert_array_equal(a1.score_, a2.score_)


def test_paper_form_options_run_and_change_the_model():
    _, _, view = _view()
    ref = MTIGCN(**TINY).fit(view)
    paper = MTIGCN(**TINY, cell_sim_sigma=3.0, shared_sim_projection=False, sim_activation="corr",
                   ic50_scale=1.0).fit(view)
    assert np.isfinite(paper.score_).all() and np.isfinite(paper.ic50_).all()
    assert np.abs(paper.ic50_).max() <= 1.0 + 1e-6 and np.abs(ref.ic50_).max() <= 15.0 + 1e-5
    assert not np.allclose(ref.score_, paper.score_)
    with pytest.raises(UsageError, match="sim_activation"):
        MTIGCN(**TINY, sim_activation="tanh").fit(view)


def test_compact_basis_starts_from_the_same_outputs():
    _, _, view = _view(n_genes=200)  # more genes than cell lines: the compact basis has rank 80
    genes = MTIGCN(**{**TINY, "epochs": 0}).fit(view)
    compact = MTIGCN(**{**TINY, "epochs": 0}, input_basis="compact").fit(view)
    np.testing.assert_allclose(genes.score_, compact.score_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(genes.ic50_, compact.ic50_, rtol=1e-4, atol=1e-4)
    assert compact.fit_info_["n_input_features"] < genes.fit_info_["n_input_features"]


def test_bf16_precision_is_close_to_fp32_and_keeps_float32_scores():
    """``precision="bf16"``: the dense products in bfloat16, everything else float32. Same initial outputs up to
    bfloat16 rounding, scores not quantised to bfloat16's 8 bits, and it learns as well on synthetic data."""
    _, _, view = _view(n_cells=160, n_drugs=40, n_genes=120)
    e0 = {**TINY, "epochs": 0}
    exact, low = MTIGCN(**e0).fit(view), MTIGCN(**e0, precision="bf16").fit(view)
    assert low.fit_info_["low_precision"] == 1 and exact.fit_info_["low_precision"] == 0
    assert not np.array_equal(exact.score_, low.score_)  # really a different arithmetic
    np.testing.assert_allclose(low.score_, exact.score_, atol=0.02)
    np.testing.assert_allclose(low.ic50_, exact.ic50_, atol=0.5)
    assert len(np.unique(low.score_)) > 0.9 * low.score_.size  # float32 resolution, not 256 levels
    fits = {p: MTIGCN(hidden=64, out=64, epochs=150, eval_every=5, patience=None, precision=p).fit(view)
            for p in ("fp32", "bf16")}
    auc = {p: m.fit_info_["best_valid_auc"] for p, m in fits.items()}
    assert auc["bf16"] > 0.7 and abs(auc["bf16"] - auc["fp32"]) < 0.03, auc
    with pytest.raises(UsageError, match="precision"):
        MTIGCN(**TINY, precision="fp16").fit(view)


def test_precision_at_fp32_leaves_the_published_job_keys_unchanged():
    """``precision`` was added after runs were published: at "fp32" it is not part of the job key."""
    from drbench.runner import job_key, key_params, method_params

    for name in ("mtigcn", "nihgcn", "mtigcn-ab"):
        cls = get_method(name)
        params = method_params(cls, {"dataset": "gdsc", "protocol": "random"}, {})
        assert params["precision"] == "fp32"
        before = {k: v for k, v in params.items() if k != "precision"}  # the params the published runs hashed
        key = lambda p: job_key(name, p, "h", "m", 0, "validation", "random")  # noqa: E731
        assert key(key_params(cls, params)) == key(before)
        bf16 = method_params(cls, {"dataset": "gdsc", "protocol": "random"}, {"precision": "bf16"})
        assert key(key_params(cls, bf16)) != key(before)


def test_no_nan_with_constant_genes_and_empty_fingerprints():
    ds, fold, view = _view()
    x = np.array(view.cell_features["expression"], copy=True)
    x[:, :5] = 1.0  # zero-variance genes
    fp = np.array(view.drug_features["fingerprint"], copy=True)
    fp[0] = 0.0  # an empty fingerprint
    v = type(view)(**{**view.__dict__, "cell_features": {"expression": x}, "drug_features": {"fingerprint": fp}})
    m = MTIGCN(**{**TINY, "patience": None}, heldout_stats=True).fit(v)
    assert np.isfinite(m.score_).all() and np.isfinite(m.ic50_).all()


def test_learns_classification_and_ic50_on_synthetic():
    ds, fold, view = _view(n_cells=160, n_drugs=40, n_genes=120)
    m = MTIGCN(hidden=64, out=64, epochs=150, eval_every=5, patience=None).fit(view)
    assert m.fit_info_["best_valid_auc"] > 0.7
    q = build_query(ds, fold.test)
    pred = m.predict(q)
    y = ds.ic50[q.rows, q.cols]
    ok = np.isfinite(y)
    assert pearsonr(y[ok], pred.ic50[ok])[0] > 0.4


def test_predict_is_pure_and_indexes_the_kept_matrices():
    ds, fold, view = _view()
    m = MTIGCN(**TINY).fit(view)
    q = build_query(ds, fold.test)
    p = m.predict(q)
    np.testing.assert_array_equal(p.score, m.score_[q.rows, q.cols])
    np.testing.assert_array_equal(p.ic50, m.ic50_[q.rows, q.cols])
    assert set(m.fit_info_) >= {"epochs_run", "best_epoch", "best_valid_auc", "seconds_per_epoch"}
    assert all(isinstance(v, (int, float)) for v in m.fit_info_.values())


def test_loss_is_the_weighted_sum_of_the_terms():
    """Zero learning rate: the training loss logged at epoch 0 equals a·MSE + b·MSE_c + c·MSE_d + d·BCE
    computed by hand from one forward pass."""
    from drbench.methods.bipartite_gcn import BipartiteGCN, prepare_inputs
    from drbench.methods.common import masked_bce, masked_mse

    _, _, view = _view()
    w = dict(w_ic50=0.3, w_sim_cell=0.2, w_sim_drug=0.4, w_bce=0.6)
    cfg = GCNConfig(hidden=8, out=8, epochs=0, log_every=1, **w)
    res = fit_bipartite(view, cfg)
    inp = prepare_inputs(view, cfg, torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(view.seed)
        model = BipartiteGCN(inp["xc"].shape[1], inp["xd"].shape[1], 8, 8, cfg.alpha, cfg.gamma, True, True, True,
                             15.0, "sigmoid", 15.0)
    with torch.no_grad():
        hc, hd = model.encode(inp["xc"], inp["xd"], inp["lc"], inp["sc"], inp["sd"])
        sc, sd = model.similarities(hc, hd, True, True)
        total = (0.3 * masked_mse(model.regress(hc, hd), inp["ic50"], inp["ic50_mask"])
                 + 0.2 * masked_mse(sc, inp["s_c"]) + 0.4 * masked_mse(sd, inp["s_d"])
                 + 0.6 * masked_bce(model.classify(hc, hd), inp["y"], inp["train"]))
    assert res.trace["loss"][0][1] == pytest.approx(float(total), rel=1e-5)


@pytest.mark.realdata
def test_real_gdsc_smoke(gdsc):
    from drbench.execution import run_job

    fold = get_protocol("random").folds(gdsc, 0)[0]
    params = {**MTIGCN.defaults_for({"dataset": "gdsc", "protocol": "random"}), "epochs": 3, "eval_every": 1}
    res = run_job(MTIGCN, params, gdsc, fold, seed=0)
    assert res.status == "finished", res.traceback
    assert 0.5 < res.metrics["auc"] <= 1.0 and np.isfinite(res.metrics["pcc"])
    assert res.fit_info["epochs_run"] == 4
