"""DeepCDR: conformance, exactness of the per-entity tricks, drug-branch routing, learning on synthetic data."""

import numpy as np
import pytest
import torch

from drbench.datasets import make_synthetic
from drbench.execution import run_job
from drbench.methods import get_method
from drbench.methods.deepcdr import CDRNet, DeepCDR, GraphBank, GraphBranch
from drbench.methods.deepcdr import weighted_batch_norm
from drbench.methods.deepdsc import DeepDSC
from drbench.methods.molgraph import mol_graph
from drbench.protocols import get_protocol
from drbench.testing import parametrize_with_checks, tiny_dataset
from drbench.view import build_query, build_train_view

# fusion 200 instead of 300 keeps the per-pair convolution head cheap (300 → 151 ... → 6 becomes 200 → 51 ... → 1)
SMALL = {"units": (32, 32), "drug_dim": 16, "cell_hidden": 32, "cell_dim": 16, "fusion": 200, "epochs": 20,
         "batch_size": 128, "patience": 6}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fold(protocol, ds, seed=0, **opts):
    p = get_protocol(protocol)
    return p.folds(ds, seed, **p.resolve_options(opts))[0]


def _view(ds, fold):
    return build_train_view(ds, fold, DeepCDR.capabilities, seed=0)


def _query(q, smiles=None, fp=None):
    return type(q)(rows=q.rows, cols=q.cols, cell_features=q.cell_features,
                   drug_features={"fingerprint": q.drug_features["fingerprint"] if fp is None else fp},
                   smiles=q.smiles if smiles is None else smiles)


@parametrize_with_checks([get_method("deepcdr")])
def test_conformance(check):
    check()


# ------------------------------------------------------------------ exactness of the speed tricks
def test_weighted_batch_norm_equals_batch_norm_on_the_expanded_batch():
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    w = torch.tensor([1, 3, 2, 1, 4])
    bn1 = torch.nn.BatchNorm1d(4, momentum=0.1)
    with torch.no_grad():
        bn1.weight.uniform_(0.5, 2.0)
        bn1.bias.uniform_(-1, 1)
    bn2 = torch.nn.BatchNorm1d(4, momentum=0.1)
    bn2.load_state_dict(bn1.state_dict())
    out = weighted_batch_norm(x, w, bn1)
    ref = bn2(torch.repeat_interleave(x, w, dim=0))
    torch.testing.assert_close(torch.repeat_interleave(out, w, dim=0), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn1.running_mean, bn2.running_mean)
    torch.testing.assert_close(bn1.running_var, bn2.running_var)
    bn1.eval(), bn2.eval()
    torch.testing.assert_close(weighted_batch_norm(x, w, bn1), bn2(x))


def _dense_reference(branch, smiles, weights, max_atoms):
    """The reference computation: every pair's drug padded to max_atoms slots, BN over all slots, mean pool."""
    xs, adjs = [], []
    for s, w in zip(smiles, weights):
        x, a = mol_graph(s).padded(max_atoms)
        xs += [x] * int(w)
        adjs += [a] * int(w)
    h, a = torch.tensor(np.stack(xs)), torch.tensor(np.stack(adjs))
    for lin, bn in zip(branch.lins, branch.bns):
        h = torch.relu(a @ lin(h))
        b, s, d = h.shape
        h = bn(h.reshape(b * s, d)).reshape(b, s, d)
    return h.mean(1)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_graph_branch_equals_padded_reference(mode):
    torch.manual_seed(0)
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "OC(=O)c1ccccc1OC(C)=O"]
    weights = torch.tensor([1, 3, 2, 5])
    max_atoms = 16
    fast = GraphBranch(units=(8, 8), out_dim=5, dropout=0.0, max_atoms=max_atoms)
    ref = GraphBranch(units=(8, 8), out_dim=5, dropout=0.0, max_atoms=max_atoms)
    ref.load_state_dict(fast.state_dict())
    if mode == "eval":  # give the running statistics some non-trivial values first
        with torch.no_grad():
            for a, b in zip(fast.bns, ref.bns):
                a.running_mean.uniform_(0, 1)
                a.running_var.uniform_(0.5, 2)
                b.load_state_dict(a.state_dict())
        fast.eval(), ref.eval()
    bank = GraphBank(smiles)
    x, adj, owner = bank.batch(np.arange(len(smiles)))
    out = fast(x, adj, owner, torch.as_tensor(bank.n_atoms), weights)
    expected = _dense_reference(ref, smiles, weights, max_atoms)
    idx = torch.repeat_interleave(torch.arange(len(smiles)), weights)
    torch.testing.assert_close(out[idx], expected, rtol=1e-4, atol=1e-5)
    for a, b in zip(fast.bns, ref.bns):
        torch.testing.assert_close(a.running_mean, b.running_mean)
        torch.testing.assert_close(a.running_var, b.running_var)


def test_atom_pooling_averages_real_atoms_only():
    torch.manual_seed(0)
    branch = GraphBranch(units=(8,), out_dim=4, dropout=0.0, max_atoms=100, pool="atoms").eval()
    bank = GraphBank(["CCO"])
    x, adj, owner = bank.batch(np.array([0]))
    out = branch(x, adj, owner, torch.as_tensor(bank.n_atoms), torch.ones(1, dtype=torch.long))
    g = mol_graph("CCO")
    h, a = torch.tensor(g.features), torch.tensor(g.adjacency)
    for lin, bn in zip(branch.lins, branch.bns):
        h = bn(torch.relu(a @ lin(h)))
    torch.testing.assert_close(out[0], h.mean(0))


def test_fusion_head_shapes():
    net = CDRNet(n_genes=10, fp_dim=920)
    x = torch.zeros(2, 1, 300)
    shapes = []
    for layer in net.conv:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv1d, torch.nn.MaxPool1d)):
            shapes.append(x.shape[-1])
    assert shapes == [151, 75, 71, 23, 19, 6]
    assert x.shape == (2, 30) and net.out.in_features == 30


# ------------------------------------------------------------------ drug-branch routing
def _fitted(branch="graph", **kw):
    cells, _ = tiny_dataset()
    fold = _fold("random", cells)
    m = DeepCDR(**{**DeepCDR.fast_params(), "drug_branch": branch, **kw}).fit(_view(cells, fold))
    return cells, fold, m


def test_drug_without_smiles_uses_the_fingerprint_branch():
    cells, fold, m = _fitted("graph")
    no_smiles = np.flatnonzero(cells.smiles == "")
    assert len(no_smiles) == 1
    j = no_smiles[0]
    uses = m.drug_uses_graph(cells.smiles)
    assert not uses[j] and uses[np.arange(len(uses)) != j].all()
    assert m.fit_info_["fingerprint_drugs"] == 1 and m.fit_info_["graph_drugs"] == cells.shape[1] - 1
    q = build_query(cells, fold.test)
    base = m.predict(q).score
    on_j, other = q.cols == j, q.cols != j
    assert on_j.any()
    # changing the fallback drug's fingerprint moves its scores; a graph drug's fingerprint is not used
    fp = cells.drug_features["fingerprint"].copy()
    fp[j] = 1 - fp[j]
    k = int(q.cols[other][0])
    fp[k] = 1 - fp[k]
    moved = m.predict(_query(q, fp=fp)).score
    assert not np.allclose(moved[on_j], base[on_j])
    np.testing.assert_allclose(moved[other], base[other], rtol=1e-6, atol=1e-7)
    # ... whereas its SMILES is
    smiles = cells.smiles.copy()
    sel = q.cols == k
    smiles[k] = "c1ccc2ccccc2c1N(C)C"
    changed = m.predict(_query(q, smiles=smiles)).score
    assert not np.allclose(changed[sel], base[sel])
    # an unparsable SMILES also falls back to fingerprints
    assert not m.drug_uses_graph(["C1CC("])[0]


def test_fingerprint_only_option():
    cells, fold, m = _fitted("fingerprint")
    assert m.fit_info_["graph_drugs"] == 0 and m.fit_info_["fingerprint_drugs"] == cells.shape[1]
    assert not m.drug_uses_graph(cells.smiles).any()
    q = build_query(cells, fold.test)
    base = m.predict(q).score
    smiles = np.array(["CCCCCCN"] * len(cells.smiles), dtype=object)
    np.testing.assert_array_equal(m.predict(_query(q, smiles=smiles)).score, base)
    fp = 1 - cells.drug_features["fingerprint"]
    assert not np.allclose(m.predict(_query(q, fp=fp)).score, base)


def test_bad_options_are_errors():
    cells, _ = tiny_dataset()
    view = _view(cells, _fold("random", cells))
    with pytest.raises(Exception, match="drug_branch"):
        DeepCDR(**DeepCDR.fast_params(), drug_branch="morgan").fit(view)
    with pytest.raises(Exception, match="pool"):
        DeepCDR(**DeepCDR.fast_params(), pool="max").fit(view)
    with pytest.raises(Exception, match="bn_stats"):
        DeepCDR(**DeepCDR.fast_params(), bn_stats="batch").fit(view)


def test_population_bn_stats_are_the_training_pairs_statistics():
    """After fitting, the cell branch's BatchNorm running statistics equal the statistics of its input over
    the training pairs (each cell repeated once per training pair); with ``bn_stats="ema"`` they do not."""
    ds = make_synthetic(n_cells=60, n_drugs=12, n_genes=40, seed=5)
    view = _view(ds, _fold("random", ds))
    params = {**SMALL, "epochs": 2, "patience": None}
    model = DeepCDR(**params).fit(view)
    net = model.net_
    tr = np.asarray(view.train) & ~np.isnan(view.binary)
    rows = np.nonzero(tr)[0]
    x = torch.as_tensor(model._scale(np.asarray(view.cell_features["expression"], dtype=np.float32)))
    with torch.no_grad():
        h = torch.tanh(net.cell1(x[torch.as_tensor(rows)])).double()  # one row per training pair
    mean, var = h.mean(0), h.var(0, unbiased=True)
    assert torch.allclose(net.cell_bn.running_mean.double(), mean, atol=1e-5)
    assert torch.allclose(net.cell_bn.running_var.double(), var, rtol=1e-4, atol=1e-6)
    ema = DeepCDR(**params, bn_stats="ema").fit(view).net_
    with torch.no_grad():
        h2 = torch.tanh(ema.cell1(x[torch.as_tensor(rows)])).double()
    assert not torch.allclose(ema.cell_bn.running_var.double(), h2.var(0), rtol=0.05)


# ------------------------------------------------------------------ learning and selection
def test_learns_on_synthetic_with_the_graph_branch():
    """Synthetic SMILES carry only drug identity, so the GCN must learn it: classification well above chance."""
    ds = make_synthetic(n_cells=160, n_drugs=40, n_genes=200, seed=3)
    fold = _fold("random", ds)
    res = run_job(get_method("deepcdr"), SMALL, ds, fold, seed=0, keep_predictions=False)
    assert res.status == "finished", res.traceback
    assert res.fit_info["graph_drugs"] == 39
    assert res.fit_info["best_valid_auc"] > 0.7
    assert res.metrics["auc"] > 0.65
    assert res.fit_info["epochs_run"] <= res.fit_info["best_epoch"] + SMALL["patience"]


def test_learns_both_heads_on_synthetic_with_fingerprints():
    """Synthetic fingerprints are informative about the drug factors: both heads learn well."""
    ds = make_synthetic(n_cells=160, n_drugs=40, n_genes=200, seed=3)
    fold = _fold("random", ds)
    res = run_job(get_method("deepcdr"), {**SMALL, "drug_branch": "fingerprint"}, ds, fold, seed=0,
                  keep_predictions=False)
    assert res.status == "finished", res.traceback
    base = run_job(get_method("mean-effects"), {}, ds, fold, seed=0, keep_predictions=False)
    assert res.metrics["auc"] > max(0.8, base.metrics["auc"] + 0.05)
    assert res.metrics["pcc"] > 0.6
    assert res.metrics["rmse"] < base.metrics["rmse"]


def test_new_drug_scores_unseen_drugs_from_their_graph():
    cells, _ = tiny_dataset()
    fold = _fold("new-drug", cells, n_folds=3, min_positives=3)
    view = _view(cells, fold)
    held = fold.held_out_drugs
    assert (view.smiles[held] == "").all()  # hidden at fit time
    m = DeepCDR(**DeepCDR.fast_params()).fit(view)
    q = build_query(cells, fold.test)
    p = m.predict(q)
    assert np.isfinite(p.score).all() and np.isfinite(p.ic50).all()
    with_graph = [j for j in held if cells.smiles[j]]
    assert m.drug_uses_graph(cells.smiles[with_graph]).all()


@pytest.mark.parametrize("protocol", ["new-cell-line", "new-drug"])
def test_replication_selects_on_the_scores_it_reports(protocol):
    """With --select test the selection entries are the test entries, so the validation AUC of the
    restored epoch is the reported test AUC (it was not while held-out features were hidden at fit time)."""
    ds = make_synthetic(n_cells=120, n_drugs=30, n_genes=100, seed=5)
    p = get_protocol(protocol)
    fold = p.folds(ds, 0, carve_valid=False, **p.resolve_options({"n_folds": 3, "min_positives": 3}))[0]
    params = {**SMALL, "epochs": 6, "patience": 3, "drug_branch": "fingerprint"}
    res = run_job(get_method("deepcdr"), params, ds, fold, seed=0, selection="test", keep_predictions=False)
    assert res.status == "finished", res.traceback
    assert res.fit_info["valid_pairs"] == int(fold.test.sum())
    assert res.fit_info["best_valid_auc"] == pytest.approx(res.metrics["auc"], abs=1e-6)


@pytest.mark.realdata
def test_real_gdsc_smoke(data_dir):
    from drbench.datasets import load_dataset

    ds = load_dataset("gdsc", data_dir)
    fold = _fold("random", ds)
    params = {**DeepCDR.defaults_for({"dataset": "gdsc"}), "epochs": 1, "max_train_pairs": 8000,
              "batch_size": 1024, "units": (64, 64), "cell_hidden": 64}
    res = run_job(get_method("deepcdr"), params, ds, fold, seed=0, keep_predictions=False, n_threads=1)
    assert res.status == "finished", res.traceback
    assert res.fit_info["train_pairs"] == 8000 and res.fit_info["fingerprint_drugs"] >= 1
    assert res.metrics["auc"] > 0.55 and np.isfinite(res.metrics["rmse"])


def test_shared_drug_protocols_get_the_small_data_budget():
    """Transfer / in-vivo train on GDSC x the target's shared drugs (~5.5k pairs), not on ~165k: the GDSC
    large-batch budget (8 epochs of batch 2048) would leave them ~24 optimiser steps."""
    assert DeepCDR.defaults_for({"dataset": "gdsc", "protocol": "random"})["batch_size"] == 2048
    for protocol in ("transfer", "in-vivo"):
        assert DeepCDR.defaults_for({"dataset": "gdsc", "protocol": protocol}) == DeepCDR.defaults_for({"dataset": "ccle"})
        assert DeepDSC.defaults_for({"dataset": "gdsc", "protocol": protocol}) == DeepDSC.defaults_for({"dataset": "ccle"})
    assert DeepDSC.defaults_for({"dataset": "gdsc", "protocol": "new-drug"})["ae_epochs"] == 15
    # the synthetic demo keeps its short budget in every protocol
    assert DeepCDR.defaults_for({"dataset": "synthetic", "protocol": "in-vivo"})["epochs"] == 20
