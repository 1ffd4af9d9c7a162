"""The bipartite interaction GCN shared by NIHGCN and MTIGCN (``docs/method-specs.md`` §4.1–4.2).

One module holds the whole model family so that NIHGCN, MTIGCN and its ablations differ only in
hyperparameters (loss weights, layer sizes, α, epochs):

* **Graph** (``normalized_adjacency``): from the training-positive adjacency ``A`` (m×n),
  ``deg_c = rowsum(A)+1``, ``deg_d = colsum(A)+1``, ``L_c = D_c^-½ A D_d^-½`` and
  ``L_d = D_d^-½ Aᵀ D_c^-½ = L_cᵀ`` (so only ``L_c`` is stored), self terms ``1/deg + 1`` kept as
  vectors (the reference's diagonal matrices, applied as a row scaling).
* **Encoder**: ``C = BN(Linear(G→h)(X_c))``, ``D = BN(Linear(F→h)(X_d))``;
  ``gcn_c = self_c·C + L_c D``, ``gcn_d = self_d·D + L_d C``; neighbourhood interaction
  ``ni = gcn ⊙ own``; ``H = ReLU(Linear(h→f)((1−α)·gcn + α·ni))``. BatchNorm1d in training mode
  throughout (batch statistics), as the reference.
* **Heads**: classification ``sigmoid(γ·Corr(H_c, H_d))``; IC50 regression
  ``ic50_scale·Corr(W_rc H_c, W_rd H_d)``; similarity reconstruction ``act(Corr(W_s H, W_s H))`` for
  cells and drugs (one projection shared by both, or separate ones).
* **Loss**: ``a·MSE_train(IC50) + b·MSE(S_c) + c·MSE(S_d) + d·BCE_train``. A zero weight skips its
  head entirely (no forward cost).
* **Training**: Adam, full batch, one step per epoch; the prediction of epoch ``e`` is the output of
  the forward pass before step ``e`` (as the reference records it), so selecting an epoch costs no
  extra forward pass. The validation AUC (on ``view.valid`` entries only) is computed every
  ``eval_every`` epochs with the training kit's torch AUC and :class:`~drbench.methods.training.EpochSelector`
  keeps the best epoch's score (and IC50) matrices. Without usable validation entries the last epoch is kept.

Speed choices that leave the maths unchanged: the z-scored expression is one contiguous float32
tensor computed once; ``L_c``, the self terms and the similarity targets are computed once per fit;
the diagonal self terms are row scalings, not m×m matrix products; ``L_d`` is ``L_cᵀ``; the Gram
matrix of the similarity head has a symmetric backward (one matmul instead of two); evaluation reuses
the training forward pass. ``input_basis="compact"`` is an *option* that changes the optimisation
(Adam on a rotated first-layer weight, see ``_compact_basis``); the default keeps the reference
parametrisation.

``precision="bf16"`` is a speed *option* (default ``"fp32"``, the exact maths): the dense layers (gene and
fingerprint input layers, the h→f layers, the IC50 and similarity projections; ~80% of an epoch's
FLOPs) multiply in bfloat16 with float32 accumulation, float32 master weights, Adam and bias adds; the
graph products, BatchNorm, the correlation decoders, the similarity Gram and the losses stay float32, so
the predicted scores keep float32 resolution. Fast on CPUs with AVX512-BF16/AMX (measured: README,
Performance); on CPUs without them bfloat16 matmuls may be emulated and give no speed-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from drbench.errors import UsageError
from drbench.methods.common import (corr, exp_similarity, jaccard, masked_bce, masked_mse, torch_device,
                                    training_adjacency, zscore_columns)
from drbench.methods.training import EpochSelector, can_select, make_optimizer, seeded, torch_auc
from drbench.params import check_choice

SimActivation = Literal["sigmoid", "corr"]
InputBasis = Literal["genes", "compact"]
Precision = Literal["fp32", "bf16"]


# ---------------------------------------------------------------------------------------------- graph
def normalized_adjacency(adj: torch.Tensor):
    """``(L_c, self_c, self_d)`` from a 0/1 training adjacency (m×n); ``L_d = L_c.T``.

    ``L_c = diag(deg_c^-½) A diag(deg_d^-½)`` with ``deg = degree + 1``; ``self = 1/deg + 1``.
    """
    adj = adj.float()
    deg_c = adj.sum(1) + 1.0
    deg_d = adj.sum(0) + 1.0
    lc = deg_c.rsqrt()[:, None] * adj * deg_d.rsqrt()[None, :]
    return lc.contiguous(), 1.0 / deg_c + 1.0, 1.0 / deg_d + 1.0


# ---------------------------------------------------------------------------------------------- pieces
class _SymGram(torch.autograd.Function):
    """``x xᵀ`` with the symmetric backward ``(g + gᵀ) x`` (one matmul instead of two)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x @ x.T

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g + g.T) @ x


def _row_normalise(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    xc = x - x.mean(1, keepdim=True)
    return xc / (xc.norm(dim=1, keepdim=True) + eps)


def self_corr(x: torch.Tensor) -> torch.Tensor:
    """``Corr(x, x)`` (same value as ``common.corr(x, x)``) with the cheap symmetric backward."""
    return _SymGram.apply(_row_normalise(x))


def _batch_norm(x: torch.Tensor, weight, bias, rows: torch.Tensor | None, eps: float = 1e-5):
    """BatchNorm1d in training mode; statistics over ``rows`` (all rows if None), applied to every row."""
    if rows is None:
        return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)
    ref = x[rows]
    mean = ref.mean(0, keepdim=True)
    var = ref.var(0, unbiased=False, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps) * weight + bias


def _compact_basis(x: torch.Tensor, rtol: float = 1e-6):
    """``x = x̃ Vᵀ`` with ``x̃ = U S`` (m×r) and orthonormal ``V`` (G×r), r = numerical rank.

    ``x W`` equals ``x̃ (Vᵀ W)`` exactly; training the r×h matrix ``Vᵀ W`` instead of the G×h matrix
    ``W`` gives the same model class and the same initial outputs, but a different Adam trajectory
    (Adam and weight decay act per coordinate), hence an option, not the default.
    """
    u, s, vh = torch.linalg.svd(x.double(), full_matrices=False)
    keep = s > rtol * s.max()
    return (u[:, keep] * s[keep]).float().contiguous(), vh[keep].T.float().contiguous()


# ---------------------------------------------------------------------------------------------- model
class BipartiteGCN(nn.Module):
    def __init__(self, in_cell: int, in_drug: int, hidden: int, out: int, alpha: float, gamma: float,
                 ic50_head: bool, sim_head: bool, shared_sim_projection: bool, ic50_scale: float,
                 sim_activation: str, sim_scale: float, low_precision: torch.dtype | None = None):
        super().__init__()
        self.low = low_precision  # None: float32 throughout; else the dtype of the dense layers' products
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.ic50_scale, self.sim_activation, self.sim_scale = float(ic50_scale), sim_activation, float(sim_scale)
        self.fc_cell = nn.Linear(in_cell, hidden)
        self.fc_drug = nn.Linear(in_drug, hidden)
        self.bn_cell = nn.BatchNorm1d(hidden)
        self.bn_drug = nn.BatchNorm1d(hidden)
        self.lin_cell = nn.Linear(hidden, out)
        self.lin_drug = nn.Linear(hidden, out)
        self.reg_cell = nn.Linear(out, out) if ic50_head else None
        self.reg_drug = nn.Linear(out, out) if ic50_head else None
        self.sim_cell = nn.Linear(out, out) if sim_head else None
        self.sim_drug = (nn.Linear(out, out) if sim_head and not shared_sim_projection else None)

    def dense(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """``layer(x)``; with a low precision the product runs in it and the result (and bias) is float32."""
        if self.low is None:
            return layer(x)
        return F.linear(x.to(self.low), layer.weight.to(self.low)).float() + layer.bias

    def encode(self, xc, xd, lc, sc, sd, bn_rows_c=None, bn_rows_d=None):
        c = _batch_norm(self.dense(self.fc_cell, xc), self.bn_cell.weight, self.bn_cell.bias, bn_rows_c,
                        self.bn_cell.eps)
        d = _batch_norm(self.dense(self.fc_drug, xd), self.bn_drug.weight, self.bn_drug.bias, bn_rows_d,
                        self.bn_drug.eps)
        gcn_c = sc[:, None] * c + lc @ d
        gcn_d = sd[:, None] * d + lc.T @ c
        a = self.alpha
        hc = F.relu(self.dense(self.lin_cell, (1.0 - a) * gcn_c + a * (gcn_c * c)))
        hd = F.relu(self.dense(self.lin_drug, (1.0 - a) * gcn_d + a * (gcn_d * d)))
        return hc, hd

    def classify(self, hc, hd):
        return torch.sigmoid(self.gamma * corr(hc, hd))

    def regress(self, hc, hd):
        return self.ic50_scale * corr(self.dense(self.reg_cell, hc), self.dense(self.reg_drug, hd))

    def _sim(self, x):
        r = self_corr(x)
        return torch.sigmoid(self.sim_scale * r) if self.sim_activation == "sigmoid" else r

    def similarities(self, hc, hd, cells: bool, drugs: bool):
        proj_d = self.sim_drug if self.sim_drug is not None else self.sim_cell  # reference: one shared layer
        return (self._sim(self.dense(self.sim_cell, hc)) if cells else None,
                self._sim(self.dense(proj_d, hd)) if drugs else None)


# ---------------------------------------------------------------------------------------------- fitting
@dataclass
class GCNConfig:
    hidden: int = 1024
    out: int = 1024
    alpha: float = 0.25
    gamma: float = 8.0
    epochs: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-5
    w_ic50: float = 0.0
    w_sim_cell: float = 0.0
    w_sim_drug: float = 0.0
    w_bce: float = 1.0
    ic50_scale: float = 15.0
    cell_sim_sigma: float = 2.0
    shared_sim_projection: bool = True
    sim_activation: str = "sigmoid"
    sim_scale: float = 15.0
    heldout_stats: bool = True
    eval_every: int = 10
    patience: int | None = None
    input_basis: str = "genes"
    precision: str = "fp32"
    log_every: int = 0  # >0: keep the training loss every that many epochs in fit_info (for benchmarks)


@dataclass
class GCNFit:
    score: np.ndarray  # m×n probabilities of the kept epoch
    ic50: np.ndarray | None  # m×n IC50 estimates of the kept epoch, or None without an IC50 head
    info: dict = field(default_factory=dict)  # numbers only (the runner logs them)
    trace: dict = field(default_factory=dict)  # validation AUC history and loss trace (lists)


def _check(cfg: GCNConfig):
    check_choice("sim_activation", cfg.sim_activation, SimActivation)
    check_choice("input_basis", cfg.input_basis, InputBasis)
    check_choice("precision", cfg.precision, Precision)
    if int(cfg.epochs) < 0 or int(cfg.eval_every) < 1:
        raise UsageError("epochs must be >= 0 and eval_every >= 1")
    for k in ("w_ic50", "w_sim_cell", "w_sim_drug", "w_bce"):
        if getattr(cfg, k) < 0:
            raise UsageError(f"loss weight {k} must be >= 0")


def prepare_inputs(view, cfg: GCNConfig, device):
    """Constant tensors of one fit: features, graph, masks and similarity targets (computed once)."""
    expr = np.asarray(view.cell_features["expression"], dtype=np.float32)
    fp = np.asarray(view.drug_features["fingerprint"], dtype=np.float32)
    if np.isnan(expr).any() or np.isnan(fp).any():
        raise UsageError("the bipartite GCN is transductive and needs every entity's features (NaN rows found)")
    tr = np.asarray(view.train) & ~np.isnan(view.binary)
    # rows/cols whose statistics may be used when held-out entities are excluded: those with training entries
    stat_c = torch.as_tensor(tr.any(1), device=device) if not cfg.heldout_stats else None
    stat_d = torch.as_tensor(tr.any(0), device=device) if not cfg.heldout_stats else None
    x_raw = torch.tensor(expr, device=device)
    xc = zscore_columns(x_raw, stat_c).contiguous()
    xd = torch.tensor(fp, device=device).contiguous()
    lc, sc, sd = normalized_adjacency(torch.as_tensor(training_adjacency(view), device=device))
    y = torch.as_tensor(np.nan_to_num(view.binary, nan=0.0), dtype=torch.float32, device=device)
    train = torch.as_tensor(tr, device=device)
    valid_np = np.asarray(view.valid) & ~np.isnan(view.binary)
    valid_idx = torch.as_tensor(np.flatnonzero(valid_np), device=device)
    y_valid = y.reshape(-1)[valid_idx]
    inp = dict(xc=xc, xd=xd, lc=lc, sc=sc, sd=sd, y=y, train=train, valid_idx=valid_idx, y_valid=y_valid,
               stat_c=stat_c, stat_d=stat_d)
    if cfg.w_ic50 > 0:
        ic = np.asarray(view.ic50, dtype=np.float64)
        ic_mask = tr & np.isfinite(ic)
        inp["ic50"] = torch.as_tensor(np.nan_to_num(ic, nan=0.0), dtype=torch.float32, device=device)
        inp["ic50_mask"] = torch.as_tensor(ic_mask, device=device)
        inp["has_ic50"] = bool(ic_mask.any())
    if cfg.w_sim_cell > 0:
        if stat_c is None:
            inp["s_c"] = exp_similarity(x_raw, sigma=cfg.cell_sim_sigma, normalize=True)
        else:  # targets over the training rows only, z-scored on them
            inp["s_c"] = exp_similarity(x_raw[stat_c], sigma=cfg.cell_sim_sigma, normalize=True)
    if cfg.w_sim_drug > 0:
        inp["s_d"] = jaccard(xd if stat_d is None else xd[stat_d])
    return inp


def fit_bipartite(view, cfg: GCNConfig) -> GCNFit:
    """Train the bipartite GCN on ``view.train``, select the epoch on ``view.valid`` AUC; see the module doc."""
    _check(cfg)
    device = torch_device(view.device)
    t_start = time.perf_counter()
    inp = prepare_inputs(view, cfg, device)
    xc, xd = inp["xc"], inp["xd"]
    want_ic50 = cfg.w_ic50 > 0
    want_sc, want_sd = cfg.w_sim_cell > 0, cfg.w_sim_drug > 0
    with seeded(view.seed):  # initial weights depend on view.seed only
        model = BipartiteGCN(xc.shape[1], xd.shape[1], int(cfg.hidden), int(cfg.out), cfg.alpha, cfg.gamma,
                             ic50_head=want_ic50, sim_head=want_sc or want_sd,
                             shared_sim_projection=bool(cfg.shared_sim_projection), ic50_scale=cfg.ic50_scale,
                             sim_activation=cfg.sim_activation, sim_scale=cfg.sim_scale,
                             low_precision=torch.bfloat16 if cfg.precision == "bf16" else None)
        if cfg.input_basis == "compact" and xc.shape[1] > xc.shape[0]:
            xc, basis = _compact_basis(xc)
            gene_layer = model.fc_cell
            model.fc_cell = nn.Linear(basis.shape[1], int(cfg.hidden))
            with torch.no_grad():  # the same initial outputs as the gene-space layer
                model.fc_cell.weight.copy_(gene_layer.weight @ basis)
                model.fc_cell.bias.copy_(gene_layer.bias)
    model = model.to(device)
    if model.low is not None:  # the inputs are constants: cast once, not every epoch
        xc, xd = xc.to(model.low), xd.to(model.low)
    opt = make_optimizer("adam", model.parameters(), cfg.lr, cfg.weight_decay)

    y_valid = inp["y_valid"]
    selecting = can_select(y_valid)
    selector = EpochSelector.every(cfg.eval_every, cfg.patience if selecting else None)
    epochs = int(cfg.epochs)
    losses, last, stopped = [], None, False
    t_loop = time.perf_counter()
    e = 0
    for e in range(epochs + 1):
        hc, hd = model.encode(xc, xd, inp["lc"], inp["sc"], inp["sd"], inp["stat_c"], inp["stat_d"])
        prob = model.classify(hc, hd)
        loss = cfg.w_bce * masked_bce(prob, inp["y"], inp["train"]) if cfg.w_bce > 0 else prob.sum() * 0.0
        ic50 = None
        if want_ic50:
            ic50 = model.regress(hc, hd)
            if inp["has_ic50"]:
                loss = loss + cfg.w_ic50 * masked_mse(ic50, inp["ic50"], inp["ic50_mask"])
        if want_sc or want_sd:
            hsc = hc if inp["stat_c"] is None else hc[inp["stat_c"]]
            hsd = hd if inp["stat_d"] is None else hd[inp["stat_d"]]
            s_c_hat, s_d_hat = model.similarities(hsc, hsd, want_sc, want_sd)
            if want_sc:
                loss = loss + cfg.w_sim_cell * masked_mse(s_c_hat, inp["s_c"])
            if want_sd:
                loss = loss + cfg.w_sim_drug * masked_mse(s_d_hat, inp["s_d"])
        if cfg.log_every and e % cfg.log_every == 0:
            losses.append((e, float(loss.detach())))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at epoch {e}")

        def snapshot(prob=prob, ic50=ic50):
            return (prob.detach().clone(), None if ic50 is None else ic50.detach().clone())

        is_last = e == epochs
        if selecting and selector.due(e, is_last):
            score = torch_auc(y_valid, prob.detach().reshape(-1)[inp["valid_idx"]])
            if selector.update(e, score, snapshot):
                stopped = True
        if is_last or stopped:
            last = snapshot()
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t_end = time.perf_counter()
    epochs_run = e + 1
    prob_k, ic50_k = selector.best_state if selector.selected else last
    info = {
        "epochs_run": epochs_run,
        **selector.info(),
        "stopped_early": int(stopped),
        "selected_on_valid": int(selecting),
        "seconds_per_epoch": (t_end - t_loop) / max(1, epochs_run),
        "setup_seconds": t_loop - t_start,
        "n_input_features": int(xc.shape[1]),
        "low_precision": int(model.low is not None),
    }
    if not selector.selected:  # the last epoch stands
        info.update(best_epoch=e, best_valid_auc=float("nan"))
    if not selecting:
        info.pop("best_valid_auc")  # no validation score to log (NaN would be noise in the run's metrics)
    trace = {"valid_auc": list(selector.history), "loss": losses}
    return GCNFit(score=prob_k.cpu().numpy().astype(np.float64),
                  ic50=None if ic50_k is None else ic50_k.cpu().numpy().astype(np.float64), info=info, trace=trace)


# ---------------------------------------------------------------------------------------------- context
def dataset_and_target(context) -> tuple[str, str]:
    """``(source dataset, target set)`` from a run context, e.g. ``("gdsc", "pdx")`` for in-vivo GDSC→PDX;
    the target is ``""`` when the protocol appends none."""
    return str(context.get("dataset", "") or "").lower(), str(context.get("target", "") or "").lower()


def method_predict(score: np.ndarray, ic50: np.ndarray | None, query):
    """Prediction for the queried pairs from the kept m×n matrices (a transductive method scores every pair)."""
    from drbench.api import Prediction

    rows, cols = np.asarray(query.rows), np.asarray(query.cols)
    return Prediction(score[rows, cols], None if ic50 is None else ic50[rows, cols])
