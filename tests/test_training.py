"""The training kit (``drbench.methods.training``) and the hyperparameters of every built-in method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sklearn.metrics import roc_auc_score

from drbench.methods.training import EpochSelector, Pairs, auc, can_select, fit_pairs, pearson, torch_auc
from drbench.registry import get_method

#: ``get_params()`` of every built-in at its defaults, as published runs recorded them: job keys hash these
#: names and values, so a refactoring must leave them (names, order, values and types) exactly as they are.
BUILTIN_PARAMS = \
{'cell-mean': {'smoothing': 1.0},
 'deepcdr': {'drug_branch': 'graph',
             'units': (256, 256, 256),
             'drug_dim': 100,
             'cell_hidden': 256,
             'cell_dim': 100,
             'fusion': 300,
             'dropout': 0.1,
             'max_atoms': 100,
             'pool': 'padded',
             'standardize': True,
             'epochs': 100,
             'batch_size': 64,
             'lr': 0.001,
             'optimizer': 'adam',
             'weight_decay': 0.0,
             'grad_clip': 0.0,
             'patience': 10,
             'regression_weight': 1.0,
             'select_on': 'auc',
             'max_train_pairs': 0,
             'graph_disk_cache': False,
             'bn_stats': 'population'},
 'deepdsc': {'ae_cells': 'train',
             'ae_hidden': (2000, 1000, 500),
             'ae_epochs': 25,
             'ae_batch_size': 64,
             'ae_lr': 0.001,
             'ae_optimizer': 'adam',
             'ae_l1': 0.0,
             'ae_grad_clip': 1.0,
             'hidden': (1000, 800, 500, 100),
             'dropout': 0.0,
             'epochs': 20,
             'batch_size': 1024,
             'lr': 0.001,
             'optimizer': 'adamax',
             'weight_decay': 0.0,
             'grad_clip': 5.0,
             'patience': 5,
             'regression_weight': 1.0,
             'select_on': 'auc',
             'max_train_pairs': 0},
 'drug-mean': {'smoothing': 1.0},
 'global-mean': {'smoothing': 1.0},
 'graphcdr': {'epochs': 350,
              'lr': 0.001,
              'alpha': 0.3,
              'beta': 0.3,
              'hidden': 256,
              'output': 100,
              'drug_hidden': 256,
              'drug_layers': 3,
              'eval_every': 1,
              'replicate_reference_bugs': False},
 'hnmdrp': {'decay': 0.7,
            'min_sim': 0.3,
            'max_sim': 0.99,
            'thr': 0.0001,
            'max_iter': 30,
            'targets': 'auto',
            'target_similarity': None},
 'mean-effects': {'smoothing': 1.0},
 'mofgcn': {'sigma': 2.0,
            'k': 11,
            'iterates': 3,
            'n_hid1': 192,
            'n_hid2': 36,
            'alpha': 5.74,
            'lr': 0.0005,
            'epochs': 1000,
            'eval_every': 20,
            'window': 8},
 'mtigcn': {'hidden': 1024,
            'out': 1024,
            'alpha': 0.25,
            'gamma': 8.0,
            'epochs': 2000,
            'lr': 0.001,
            'weight_decay': 1e-05,
            'a': 0.25,
            'b': 0.1,
            'c': 0.25,
            'd': 0.75,
            'ic50_scale': 15.0,
            'cell_sim_sigma': 2.0,
            'shared_sim_projection': True,
            'sim_activation': 'sigmoid',
            'sim_scale': 15.0,
            'heldout_stats': True,
            'eval_every': 10,
            'patience': 200,
            'input_basis': 'genes',
            'precision': 'fp32'},
 'mtigcn-a': {'hidden': 1024,
              'out': 1024,
              'alpha': 0.25,
              'gamma': 8.0,
              'epochs': 2000,
              'lr': 0.001,
              'weight_decay': 1e-05,
              'a': 0.0,
              'b': 0.1,
              'c': 0.25,
              'd': 0.75,
              'ic50_scale': 15.0,
              'cell_sim_sigma': 2.0,
              'shared_sim_projection': True,
              'sim_activation': 'sigmoid',
              'sim_scale': 15.0,
              'heldout_stats': True,
              'eval_every': 10,
              'patience': 200,
              'input_basis': 'genes',
              'precision': 'fp32'},
 'mtigcn-ab': {'hidden': 1024,
               'out': 1024,
               'alpha': 0.25,
               'gamma': 8.0,
               'epochs': 2000,
               'lr': 0.001,
               'weight_decay': 1e-05,
               'a': 0.0,
               'b': 0.0,
               'c': 0.0,
               'd': 0.75,
               'ic50_scale': 15.0,
               'cell_sim_sigma': 2.0,
               'shared_sim_projection': True,
               'sim_activation': 'sigmoid',
               'sim_scale': 15.0,
               'heldout_stats': True,
               'eval_every': 10,
               'patience': 200,
               'input_basis': 'genes',
               'precision': 'fp32'},
 'mtigcn-b': {'hidden': 1024,
              'out': 1024,
              'alpha': 0.25,
              'gamma': 8.0,
              'epochs': 2000,
              'lr': 0.001,
              'weight_decay': 1e-05,
              'a': 0.25,
              'b': 0.0,
              'c': 0.0,
              'd': 0.75,
              'ic50_scale': 15.0,
              'cell_sim_sigma': 2.0,
              'shared_sim_projection': True,
              'sim_activation': 'sigmoid',
              'sim_scale': 15.0,
              'heldout_stats': True,
              'eval_every': 10,
              'patience': 200,
              'input_basis': 'genes',
              'precision': 'fp32'},
 'nihgcn': {'hidden': 1024,
            'out': 1024,
            'alpha': 0.25,
            'gamma': 8.0,
            'epochs': 1000,
            'lr': 0.001,
            'weight_decay': 1e-05,
            'heldout_stats': True,
            'eval_every': 10,
            'patience': 200,
            'input_basis': 'genes',
            'precision': 'fp32'},
 'srmf': {'target': 'ic50',
          'k': 45,
          'lambda_l': 0.25,
          'lambda_d': 0.05,
          'lambda_c': 0.25,
          'max_iter': 50,
          'tol': 1e-06,
          'rescale': True}}


@pytest.mark.parametrize("name", sorted(BUILTIN_PARAMS))
def test_builtin_hyperparameters_are_unchanged(name):
    got = get_method(name)().get_params()
    assert repr(got) == repr(BUILTIN_PARAMS[name])  # repr: order and types too (1 and 1.0 hash differently)


def test_fit_pairs_selects_on_pcc_when_asked():
    torch.manual_seed(0)
    net = torch.nn.Module()
    lin = torch.nn.Linear(3, 2)
    net.add_module("lin", lin)
    feats = torch.randn(50, 3)
    net.forward = lambda inputs, r, c: tuple(lin(feats[r]).unbind(1))
    y = (feats[:, 0] > 0).float()

    def pairs(idx):
        idx = torch.as_tensor(idx)
        return Pairs(idx, torch.zeros_like(idx), y[idx], feats[idx, 1], torch.ones(len(idx), dtype=torch.bool))

    info = fit_pairs(net, None, pairs(range(40)), pairs(range(40, 50)), epochs=6, batch_size=8, lr=0.05,
                     patience=None, select_on="pcc")
    assert info["selected_on_valid"] == 1 and 1 <= info["best_epoch"] <= 6
    assert np.isfinite(info["best_valid_pcc"])
    with pytest.raises(Exception, match="select_on"):
        fit_pairs(net, None, pairs(range(40)), pairs(range(40, 50)), epochs=1, batch_size=8, lr=0.05,
                  select_on="loss")


def test_auc_and_torch_auc_equal_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.random(500) + 0.3 * y, 1)  # many ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert torch_auc(torch.tensor(y), torch.tensor(s)) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(torch_auc(torch.ones(4), torch.rand(4)))
    assert np.isnan(auc(np.ones(4), np.random.rand(4))) and np.isnan(auc(y, np.where(y, np.nan, 0.0)))


def test_pearson_is_nan_when_undefined_and_float64_exact():
    a = np.arange(5, dtype=np.float32) * np.float32(1.1)
    assert pearson(a, a[::-1].copy()) == pytest.approx(-1.0, abs=1e-15)  # float32 input, float64 arithmetic
    assert np.isnan(pearson([1.0, 2.0], [2.0, 1.0])) and np.isnan(pearson(np.ones(5), np.arange(5)))


def test_can_select_needs_both_classes_or_three_measured_values():
    assert can_select(torch.tensor([0.0, 1.0])) and not can_select(np.ones(3)) and not can_select(np.zeros(0))
    assert can_select(None, measured=np.array([1, 1, 1], bool)) and not can_select(None, measured=np.ones(2, bool))


def test_epoch_selector_keeps_the_best_state_and_stops_after_patience():
    sel = EpochSelector.every(eval_every=10, patience_epochs=25)  # 25 epochs -> 3 evaluations
    assert sel.patience == 3 and sel.due(20) and not sel.due(25) and sel.due(25, last=True)
    scores = {0: 0.6, 10: 0.7, 20: float("nan"), 30: 0.7, 40: 0.65}
    stops = [sel.update(e, sc, lambda e=e: f"state at {e}") for e, sc in scores.items()]
    assert stops == [False, False, False, False, True]  # NaN and a tie never improve
    assert sel.selected and sel.best_state == "state at 10"
    assert sel.info() == {"best_epoch": 10, "best_valid_auc": 0.7, "evaluations": 5}
    assert not EpochSelector().selected and EpochSelector.every(5).patience is None


def test_predict_pairs_takes_a_querys_read_only_index_arrays_without_a_warning():
    # a Query's rows / cols are read-only arrays; torch warns (once per process) when it wraps one, so the check
    # runs in a fresh interpreter that turns warnings into errors
    import subprocess
    import sys

    code = """
import warnings
import numpy as np, torch
from torch import nn
from drbench.methods.training import predict_pairs
class Net(nn.Module):
    def __init__(self):
        super().__init__(); self.w = nn.Parameter(torch.tensor([0.5, -1.0]))
    def forward(self, inputs, rows, cols):
        return inputs[0][rows] * self.w[0] + inputs[1][cols], inputs[0][rows] - inputs[1][cols] * self.w[1]
inputs = (torch.arange(4.0), torch.arange(3.0) / 3)
rows, cols = np.array([0, 3, 2, 1]), np.array([2, 0, 1, 1])
rows.setflags(write=False); cols.setflags(write=False)
warnings.simplefilter("error")
p, t = predict_pairs(Net(), inputs, rows, cols)
q, u = predict_pairs(Net(), inputs, torch.as_tensor(rows.copy()), torch.as_tensor(cols.copy()))
assert np.array_equal(p, q) and np.array_equal(t, u) and p.shape == (4,), (p, q)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
