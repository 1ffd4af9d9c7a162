"""The training kit: seeding, optimisers, validation selection and the pair-batch trainer.

Every trained built-in method uses these pieces, and a plugin can too (``examples/trained_plugin_example.py``):

* **Seeding** — :func:`seeded` runs a block on torch's global generator seeded with the view's seed (and
  restores the caller's state afterwards), so a method's initial weights depend on ``view.seed`` only;
  :func:`seeded_generator` gives a private generator (batch shuffling).
* **Optimisers** — :func:`make_optimizer` by name: ``"adam"``, ``"adamw"`` (fused kernels where the device
  has them: same update, ~4x faster steps on CPU for large layers) or ``"adamax"``.
* **Selection on the validation split** — :func:`can_select` says whether ``view.valid`` can drive a
  choice (labels of both classes; for a PCC, at least three measured IC50 values); :class:`EpochSelector`
  keeps the best-scoring epoch and its state (weights or predictions), counts evaluations, applies
  ``patience`` and ``eval_every``, and reports the common ``fit_info`` names (``best_epoch``,
  ``best_valid_auc`` / ``best_valid_pcc``, ``evaluations``; methods add ``epochs_run``). Selection reads
  ``view.valid`` only, never test entries.
* **Scores** — :func:`auc` and :func:`pearson` are :mod:`drbench.metrics`' ROC AUC and Pearson with the
  degenerate cases (one class, constant input, fewer than three pairs) returning NaN; :func:`torch_auc`
  is the same AUC computed in torch, for a full-batch loop that keeps its predictions on the device.
* **Pair-batch training** — :func:`pair_data` turns a view into labelled (cell, drug) :class:`Pairs`;
  :func:`fit_pairs` trains any ``net(inputs, rows, cols) -> (logit, standardised IC50)`` on mini-batches
  of them with validation early stopping and best-weight restore; :func:`predict_pairs` scores pairs.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from drbench import metrics
from drbench.errors import UsageError
from drbench.params import check_choice

log = logging.getLogger("drbench.methods.training")

Optimizer = Literal["adam", "adamw", "adamax"]
SelectOn = Literal["auc", "pcc"]


# ---------------------------------------------------------------------------------------------- seeding
@contextlib.contextmanager
def seeded(seed: int):
    """Run a block on torch's global CPU generator seeded with ``seed``; the caller's state is restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def seeded_generator(seed: int) -> torch.Generator:
    """A private CPU generator seeded with ``seed`` (e.g. for ``torch.randperm`` batch orders)."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


# ---------------------------------------------------------------------------------------------- optimisers
def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0, fused: bool = True):
    """``"adam"`` / ``"adamw"`` (the fused kernel where the device has one, unless ``fused=False``) or ``"adamax"``.

    ``weight_decay`` is Adam's L2 term added to the gradient (AdamW's decoupled decay for ``"adamw"``).
    """
    params = list(params)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        if fused:
            try:
                return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
            except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device or dtype
                pass
        return cls(params, lr=lr, weight_decay=weight_decay)
    if name == "adamax":
        return torch.optim.Adamax(params, lr=lr, weight_decay=weight_decay)
    check_choice("optimizer", name, Optimizer)
    raise AssertionError(f"optimizer {name!r} declared but not built")


# ---------------------------------------------------------------------------------------------- scores
def auc(y, score) -> float:
    """ROC AUC (:func:`drbench.metrics.roc_auc`); NaN without both classes or with a non-finite score."""
    y, score = np.asarray(y), np.asarray(score)
    if len(y) == 0 or np.unique(y).size < 2 or not np.isfinite(score).all():
        return float("nan")
    return metrics.roc_auc(y, score)


def pearson(a, b) -> float:
    """Pearson correlation (:func:`drbench.metrics.pearson`); NaN for fewer than 3 pairs or a constant input."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3 or np.std(a) < 1e-12 or np.std(b) < 1e-12:
        return float("nan")
    return metrics.pearson(a, b)


def torch_auc(y: torch.Tensor, s: torch.Tensor) -> float:
    """:func:`auc` computed in torch on the tensors' device (ranks with ties averaged); NaN if one class."""
    y = y.reshape(-1).double()
    s = s.reshape(-1).double()
    n_pos = float(y.sum())
    n_neg = float(y.numel() - n_pos)
    if n_pos == 0 or n_neg == 0 or not bool(torch.isfinite(s).all()):
        return float("nan")
    order = torch.argsort(s)
    s_sorted = s[order]
    _, counts = torch.unique_consecutive(s_sorted, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg_rank = ends - (counts.double() - 1.0) / 2.0  # 1-based average rank of each tie group
    ranks = torch.empty_like(s)
    ranks[order] = torch.repeat_interleave(avg_rank, counts)
    r_pos = float(ranks[y == 1].sum())
    return (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


# ---------------------------------------------------------------------------------------------- selection
def can_select(labels, measured=None) -> bool:
    """Whether validation entries can drive a selection: 0/1 ``labels`` of both classes (AUC), or, when the
    boolean IC50 mask ``measured`` is given, at least three measured IC50 values (PCC)."""
    if measured is not None:
        return int(np.asarray(measured).sum()) >= 3
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return labels.size > 0 and np.unique(labels).size == 2


@dataclass
class EpochSelector:
    """Keeps the best epoch by a validation score (higher is better) and says when to evaluate and to stop.

    ``patience`` counts evaluations without improvement (None: never stop early); :meth:`every` builds
    one from a patience in epochs. A score must beat the best to count as an improvement; NaN never does.
    :meth:`update` stores ``state_fn()`` (weights or predictions) at each new best. With no evaluation
    (nothing to select on) ``best_state`` stays None and the method keeps its last epoch.
    """

    patience: int | None = None
    eval_every: int = 1
    metric: str = "auc"
    best_score: float = -math.inf
    best_epoch: int = -1
    best_state: object = None
    evaluations: int = 0
    since_best: int = 0
    history: list = field(default_factory=list)

    @classmethod
    def every(cls, eval_every: int, patience_epochs: int | None = None, **kw) -> "EpochSelector":
        """Evaluate every ``eval_every`` epochs; stop after ``patience_epochs`` epochs without improvement."""
        evals = max(1, math.ceil(int(patience_epochs) / int(eval_every))) if patience_epochs else None
        return cls(patience=evals, eval_every=int(eval_every), **kw)

    def due(self, step: int, last: bool = False) -> bool:
        """Whether to evaluate after ``step`` optimiser steps: every ``eval_every`` steps and at the last."""
        return last or step % self.eval_every == 0

    def update(self, epoch: int, score: float, state_fn) -> bool:
        """Record ``score`` at ``epoch``; ``state_fn()`` snapshots what to keep. Returns True to stop."""
        self.evaluations += 1
        self.history.append((epoch, score))
        if not math.isnan(score) and score > self.best_score:
            self.best_score, self.best_epoch, self.best_state = score, epoch, state_fn()
            self.since_best = 0
        else:
            self.since_best += 1
        return self.patience is not None and self.since_best >= self.patience

    @property
    def selected(self) -> bool:
        """Whether an evaluated epoch was kept (False: nothing to select on, the last epoch stands)."""
        return self.best_state is not None

    def info(self) -> dict:
        """The selection's ``fit_info`` entries: ``best_epoch``, ``best_valid_<metric>``, ``evaluations``."""
        return {"best_epoch": self.best_epoch, f"best_valid_{self.metric}": self.best_score,
                "evaluations": self.evaluations}


# ---------------------------------------------------------------------------------------------- pairs
@dataclass
class Pairs:
    """Labelled (cell, drug) pairs: binary label, standardised IC50 (0 where missing) and its mask."""

    rows: torch.Tensor
    cols: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    t_mask: torch.Tensor

    def __len__(self):
        return int(self.rows.shape[0])


def pair_data(view, max_train_pairs: int = 0, seed: int = 0):
    """(train pairs, valid pairs, ic50 mean, ic50 sd) from a view.

    Training pairs: ``view.train`` entries with a binary label; their measured IC50 values give the
    standardisation. Validation pairs come from ``view.valid`` only. ``max_train_pairs > 0`` keeps a seeded
    random subset of the training pairs (for smoke tests).
    """
    lab = ~np.isnan(view.binary)
    tr = view.train & lab
    va = view.valid & lab
    r, c = np.nonzero(tr)
    if max_train_pairs and len(r) > max_train_pairs:
        keep = np.sort(np.random.default_rng(seed).choice(len(r), size=int(max_train_pairs), replace=False))
        r, c = r[keep], c[keep]
    ic = view.ic50[r, c]
    ok = np.isfinite(ic)
    mu = float(ic[ok].mean()) if ok.any() else 0.0
    sd = float(ic[ok].std()) if ok.sum() > 1 else 1.0
    sd = sd if sd > 1e-8 else 1.0

    def make(rr, cc):
        b = view.binary[rr, cc]
        v = view.ic50[rr, cc]
        m = np.isfinite(v)
        return Pairs(torch.as_tensor(rr, dtype=torch.long), torch.as_tensor(cc, dtype=torch.long),
                     torch.as_tensor(b, dtype=torch.float32),
                     torch.as_tensor(np.where(m, (v - mu) / sd, 0.0), dtype=torch.float32),
                     torch.as_tensor(m))

    vr, vc = np.nonzero(va)
    return make(r, c), make(vr, vc), mu, sd


def unique_index(idx: torch.Tensor):
    """(sorted unique values, inverse index, counts) — deterministic on CPU."""
    return torch.unique(idx, sorted=True, return_inverse=True, return_counts=True)


@torch.no_grad()
def predict_pairs(net: nn.Module, inputs, rows, cols, chunk: int = 32768):
    """(probabilities, standardised IC50) of pairs as float64 arrays, in eval mode, in chunks. ``rows`` / ``cols``:
    index tensors, or integer arrays such as a Query's read-only ``rows`` / ``cols`` (copied, so torch does not
    wrap a read-only buffer)."""
    rows, cols = (x if torch.is_tensor(x) else torch.from_numpy(np.array(x, dtype=np.int64)) for x in (rows, cols))
    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    ps, ts = [], []
    for s in range(0, len(rows), chunk):
        logit, reg = net(inputs, rows[s:s + chunk].to(dev), cols[s:s + chunk].to(dev))
        ps.append(torch.sigmoid(logit).cpu())
        ts.append(reg.cpu())
    net.train(was)
    if not ps:
        return np.zeros(0), np.zeros(0)
    return torch.cat(ps).double().numpy(), torch.cat(ts).double().numpy()


def fit_pairs(net: nn.Module, inputs, train: Pairs, valid: Pairs, *, epochs: int, batch_size: int, lr: float,
              optimizer: str = "adam", weight_decay: float = 0.0, grad_clip: float | None = None,
              patience: int | None = 10, regression_weight: float = 1.0, select_on: str = "auc",
              seed: int = 0, device=torch.device("cpu"), min_batch: int = 2, after_epoch=None) -> dict:
    """Train ``net(inputs, rows, cols) -> (logit, standardised ic50)`` on mini-batches of training pairs.

    Loss = BCE(logit, label) + ``regression_weight`` · MSE over pairs with a measured IC50. After every
    epoch the validation pairs are scored; ``select_on`` ("auc" of the classification head or "pcc" of
    the IC50 head) drives early stopping (``patience`` epochs without improvement) and the restored
    best weights. Without usable validation pairs the full ``epochs`` budget is trained and the last
    weights kept. Batches are drawn with a generator seeded by ``seed``. ``after_epoch()``, if given, runs
    after each epoch's optimiser steps and before the validation scoring (DeepCDR sets its BatchNorm
    statistics there). Returns fit information (numbers only; epochs count from 1): ``epochs_run``,
    ``best_epoch``, ``best_valid_auc`` and ``best_valid_pcc`` (at the kept epoch), ``selected_on_valid``, ...
    """
    check_choice("select_on", select_on, SelectOn)
    opt = make_optimizer(optimizer, net.parameters(), lr, weight_decay)
    gen = seeded_generator(seed)
    n = len(train)
    if n == 0:
        raise UsageError("no training pairs with a label in the view")
    bs = max(1, min(int(batch_size), n))
    selecting = len(valid) > 0 and can_select(valid.y, valid.t_mask if select_on == "pcc" else None)
    sel = EpochSelector(patience=patience if selecting else None, metric=select_on)
    use_reg = regression_weight > 0 and bool(train.t_mask.any())
    vy = valid.y.numpy()
    vmask = valid.t_mask.numpy()
    vt = valid.t.numpy()
    history_auc, history_pcc, losses = [], [], []
    epochs_run = 0
    t0 = time.perf_counter()
    for epoch in range(1, int(epochs) + 1):
        net.train()
        perm = torch.randperm(n, generator=gen)
        starts = list(range(0, n, bs))
        if len(starts) > 1 and n - starts[-1] < min_batch:  # fold a tiny tail into the previous batch
            starts.pop()
        total, count = 0.0, 0
        for i, s in enumerate(starts):
            e = starts[i + 1] if i + 1 < len(starts) else n
            idx = perm[s:e]
            r, c = train.rows[idx].to(device), train.cols[idx].to(device)
            y = train.y[idx].to(device)
            logit, reg = net(inputs, r, c)
            loss = F.binary_cross_entropy_with_logits(logit, y)
            if use_reg:
                m = train.t_mask[idx].to(device)
                if bool(m.any()):
                    loss = loss + regression_weight * F.mse_loss(reg[m], train.t[idx].to(device)[m])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        losses.append(total / max(count, 1))
        epochs_run = epoch
        if not math.isfinite(losses[-1]):
            log.warning("non-finite training loss at epoch %d; stopping", epoch)
            break
        if after_epoch is not None:
            after_epoch()
        if len(valid):
            p, t = predict_pairs(net, inputs, valid.rows.to(device), valid.cols.to(device))
            valid_auc = auc(vy, p)
            valid_pcc = pearson(vt[vmask], t[vmask])
            history_auc.append(valid_auc)
            history_pcc.append(valid_pcc)
            log.info("epoch %d: train loss %.4f, valid AUC %.4f, valid PCC %.4f (%.0f s)", epoch, losses[-1],
                     valid_auc, valid_pcc, time.perf_counter() - t0)
            if selecting:
                score = valid_auc if select_on == "auc" else valid_pcc
                if sel.update(epoch, score, lambda: copy.deepcopy(net.state_dict())):
                    break
    if sel.selected:
        net.load_state_dict(sel.best_state)
    best = sel.best_epoch if sel.selected else epochs_run
    info = {"epochs_run": epochs_run, "best_epoch": best, "train_pairs": n, "valid_pairs": len(valid),
            "batch_size": bs, "final_train_loss": losses[-1] if losses else float("nan"),
            "train_seconds": time.perf_counter() - t0, "selected_on_valid": int(sel.selected)}
    if history_auc:
        k = best - 1
        info["best_valid_auc"] = history_auc[k] if 0 <= k < len(history_auc) else float("nan")
        info["best_valid_pcc"] = history_pcc[k] if 0 <= k < len(history_pcc) else float("nan")
    return info
