import os
from pathlib import Path

import numpy as np
import pytest
import torch

from drbench.datasets import make_synthetic
from drbench.execution import run_job
from drbench.methods import get_method
from drbench.methods.common import exp_similarity, full_kernel, sparse_kernel
from drbench.methods.mofgcn import (MOFGCN, RollingMeanStop, cell_similarity, drug_similarity,
                                    normalised_adjacency, snf_fusion)
from drbench.protocols import get_protocol
from drbench.testing import parametrize_with_checks
from drbench.view import build_train_view

DATA = Path(os.environ.get("DRBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _fold(ds, protocol="random", **opts):
    p = get_protocol(protocol)
    return p.folds(ds, 0, **p.resolve_options(opts))[0]


@parametrize_with_checks([get_method("mofgcn")])
def test_conformance(check):
    check()


def test_defaults_follow_the_reference_per_dataset():
    g, c = MOFGCN.defaults_for({"dataset": "gdsc"}), MOFGCN.defaults_for({"dataset": "ccle"})
    assert (g["k"], g["n_hid2"], g["alpha"], g["lr"]) == (11, 36, 5.74, 5e-4)
    assert (c["k"], c["n_hid2"], c["alpha"], c["lr"]) == (2, 64, 8.70, 1e-3)
    assert MOFGCN.defaults_for({"dataset": "synthetic"}) == g


def test_kernels_and_block_diagonal_features():
    ds = make_synthetic(n_cells=40, n_drugs=12, n_genes=30, seed=0)
    expr = torch.tensor(ds.cell_features["expression"], dtype=torch.float64)
    s = exp_similarity(expr, 2.0)
    np.testing.assert_allclose(full_kernel(s).sum(1).numpy(), 1.0, rtol=1e-12)
    k = sparse_kernel(s, 5)
    np.testing.assert_allclose(k.sum(1).numpy(), 1.0, rtol=1e-12)
    assert ((k > 0).sum(1) == 5).all()
    # identity views of the gene-only driver: constant exp(-sqrt(2)/8) off the diagonal
    ident = exp_similarity(torch.eye(6, dtype=torch.float64), 2.0, normalize=False).numpy()
    np.testing.assert_allclose(ident[~np.eye(6, dtype=bool)], np.exp(-np.sqrt(2) / 8), rtol=1e-12)
    # the fused cell similarity follows the documented simultaneous update
    fused = cell_similarity(ds.cell_features["expression"], 2.0, 5, 3)
    views = [s, exp_similarity(torch.eye(40, dtype=torch.float64), 2.0, normalize=False)]
    views.append(views[1].clone())
    np.testing.assert_allclose(fused.numpy(), snf_fusion(views, 5, 3).numpy())
    p = [full_kernel(v) for v in views]
    kk = [sparse_kernel(v, 5) for v in views]
    p1 = [kk[0] @ ((p[1] + p[2]) / 2) @ kk[0].T, kk[1] @ ((p[0] + p[2]) / 2) @ kk[1].T,
          kk[2] @ ((p[0] + p[1]) / 2) @ kk[2].T]
    np.testing.assert_allclose(snf_fusion(views, 5, 1).numpy(), (sum(p1) / 3).numpy(), rtol=1e-12)
    d = drug_similarity(ds.drug_features["fingerprint"])
    np.testing.assert_allclose(d.sum(1).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(torch.diag(d).numpy(), 0.5)
    view = build_train_view(ds, _fold(ds), MOFGCN.capabilities, seed=0)
    adj, feat = MOFGCN(k=5).build_inputs(view)
    assert feat.shape == (52, 52)
    assert (feat[:40, 40:] == 0).all() and (feat[40:, :40] == 0).all()
    np.testing.assert_allclose(feat[40:, 40:].numpy(), d.numpy())


def test_normalised_adjacency_formula():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    adj = normalised_adjacency(a).numpy()
    at = np.block([[np.eye(3), a.numpy()], [a.numpy().T, np.eye(2)]])
    deg = at.sum(1)
    expect = np.eye(5) + at / np.sqrt(np.outer(deg, deg))
    np.testing.assert_allclose(adj, expect)
    assert adj[2, 2] == pytest.approx(2.0)  # an isolated cell: 1 + its normalised self-loop


def test_rolling_mean_stop_rule():
    stop = RollingMeanStop(window=3)
    scores = [0.5, 0.6, 0.7, 0.8, 0.75, 0.9, 0.1]
    flags = [stop.push(i * 20, s, i) for i, s in enumerate(scores)]
    # window means: [.6 .7 .75 .8167 .6...]; the first drop comes with the last score
    assert flags == [False] * 6 + [True]
    epoch, score, state = stop.best()
    assert (epoch, score, state) == (100, 0.9, 5)  # best of the 3 evaluations before the last
    s2 = RollingMeanStop(window=8)
    s2.push(0, 0.9, "e0")
    s2.push(20, 0.6, "e20")
    s2.push(40, 0.7, "e40")
    assert s2.best()[2] == "e20"  # window before the last: epochs 0 and 20; epoch 0 is skipped


def test_learns_synthetic_responses():
    ds = make_synthetic(n_cells=120, n_drugs=30, n_genes=80, seed=1)
    res = run_job(MOFGCN, {"k": 5}, ds, _fold(ds), seed=0, keep_predictions=False)
    assert res.status == "finished", res.traceback
    assert res.metrics["auc"] > 0.65  # (mean-effects: 0.655 on this fold; an untrained model: ~0.5)
    assert res.fit_info["best_valid_auc"] > 0.7
    assert res.fit_info["epochs_run"] < 1000  # the rolling-mean rule stopped it
    assert res.fit_info["best_epoch"] % 20 == 0


def test_without_validation_entries_trains_the_budget():
    ds = make_synthetic(n_cells=50, n_drugs=14, n_genes=30, seed=2)
    p = get_protocol("random")
    fold = p.folds(ds, 0, carve_valid=False, **p.resolve_options({}))[0]
    assert not fold.valid.any()
    view = build_train_view(ds, fold, MOFGCN.capabilities, seed=0)
    m = MOFGCN(**{**MOFGCN.fast_params(), "epochs": 30}).fit(view)
    assert m.fit_info_["epochs_run"] == 30 and m.fit_info_["best_epoch"] == 29


@pytest.mark.realdata
def test_gdsc_smoke():
    if not (DATA / "gdsc").is_dir():
        pytest.skip(f"no GDSC data under {DATA}")
    from drbench.datasets import load_dataset

    ds = load_dataset("gdsc", DATA)
    params = {**MOFGCN.defaults_for({"dataset": "gdsc"}), "epochs": 81}
    res = run_job(get_method("mofgcn"), params, ds, _fold(ds), seed=0, keep_predictions=False)
    assert res.status == "finished", res.traceback
    assert res.metrics["auc"] > 0.65
