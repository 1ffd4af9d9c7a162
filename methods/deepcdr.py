"""DeepCDR (Liu et al., Bioinformatics 2020): drug GCN ⊕ expression MLP → convolutional fusion head.

Follows method-specs §4.5, expression-only cell branch (the PAPER fairness mode):

* **Drug branch (graph)**: the molecular graph from RDKit (:mod:`drbench.methods.molgraph`: 75-d
  DeepChem-style atom features, ``D^-1/2 (A+I) D^-1/2``), GraphConv ``Â (X W + b)`` 75 → 256 → 256 → 256
  → 100, each followed by ReLU, BatchNorm and Dropout 0.1, then **global average pooling over
  ``max_atoms`` = 100 slots** as the reference (``pool="padded"``): padded slots have zero features and
  only a self loop, so each carries the same vector per layer; it is computed once and enters the BN
  statistics and the mean with its multiplicity (exactly the padded computation, except that dropout is
  not applied to the padded slots). ``pool="atoms"`` averages over the real atoms only.
* **Drug branch (fingerprint)**: 920 → 256 (ReLU) → Dropout 0.1 → 100 (ReLU). Used for drugs without a
  usable SMILES (``view.smiles == ""`` or unparsable), or for every drug with ``drug_branch="fingerprint"``
  (the paper's "fingerprints only" setting). No BatchNorm here: a batch often holds a single fallback
  drug, whose batch statistics would be degenerate.
* **Cell branch**: expression (z-scored per gene with statistics of the training cells, a label-free
  step) → Dense(256) tanh → BatchNorm → Dropout 0.1 → Dense(100) ReLU.
* **Fusion**: [drug 100 ⊕ cell 100] → Dense(300) tanh → Dropout 0.1 → Conv1d(1→30, k150) ReLU → MaxPool 2 →
  Conv1d(30→10, k5) ReLU → MaxPool 3 → Conv1d(10→5, k5) ReLU → MaxPool 3 → Dropout 0.1 → flatten (30) →
  Dropout 0.2 → 2 outputs: sensitivity logit (sigmoid, BCE) and IC50 (linear, MSE on training pairs with
  a measured IC50, standardised targets). The heads share everything up to the last layer; the loss is
  ``BCE + regression_weight · MSE`` (see :func:`drbench.methods.training.fit_pairs`).

Keras defaults of the reference are kept where they matter: Glorot-uniform weights with zero biases,
BatchNorm momentum 0.99 (torch ``momentum=0.01``) and epsilon 1e-3, Adam lr 1e-3.

BatchNorm statistics used at prediction time (``bn_stats``): ``"population"`` (default) sets the running
mean and variance of every BatchNorm layer, after each epoch, to the exact statistics of the training pairs
(one pass over the unique training cells and drugs weighted by their numbers of training pairs, dropout off;
the "precise BN" of Wu & Johnson 2021); ``"ema"`` keeps the reference's exponential running averages. With
the reference's 0.99 momentum the running averages need thousands of steps to forget their initial values;
the GDSC budget below takes ~80 steps per epoch, and on GDSC fold 0 (40k training pairs, 2 epochs) the EMA
statistics gave validation PCC 0.27 against 0.76 with population statistics (validation AUC 0.704 / 0.705).

Speed: the cell branch runs once per unique cell of a batch and the drug branch once per unique drug
(BatchNorm statistics weighted by each entity's number of pairs in the batch, so they equal the
per-pair statistics of the reference); dropout masks in the branches are therefore shared by the pairs of
one entity within a batch. Training and selection: :func:`drbench.methods.training.fit_pairs` (early
stopping on ``view.valid`` only: validation AUC of the classification head by default, ``select_on="pcc"``
for the IC50 head as the regression reference did).

Budgets (``defaults_for``): the reference trains batch 64, Adam lr 1e-3, up to 100 epochs, patience 10 —
kept for CCLE and the synthetic data. On GDSC (~165k training pairs) every optimiser step recomputes the
GCN over ~225 drugs (~7k atoms), so steps, not pairs, dominate: batch 2048, lr 2e-3, at most 8 epochs,
patience 3, to fit one fold in about 10 minutes on 2 cores (see ``benchmarks/bench_deep.py``). The transfer and
in-vivo protocols train on GDSC × the target's shared drugs (~5.5k pairs) and keep the reference budget.
"""

from __future__ import annotations


from typing import Literal

import numpy as np
import torch
from torch import nn

from drbench.api import Capabilities, Method, Prediction, Query, TrainView
from drbench.methods.common import (expression_matrix, fingerprint_matrix, finite_rows, torch_device,
                                    training_cells)
from drbench.methods.deepdsc import PROTOCOLS, SHARED_DRUG_PROTOCOLS
from drbench.methods.training import Optimizer, SelectOn, fit_pairs, pair_data, predict_pairs, seeded, unique_index
from drbench.methods.molgraph import N_ATOM_FEATURES, mol_graph
from drbench.params import DropoutRate, check_choice, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

BN_MOMENTUM = 0.01  # Keras momentum 0.99
BN_EPS = 1e-3
BNStats = Literal["population", "ema"]
DrugBranch = Literal["graph", "fingerprint"]
Pool = Literal["padded", "atoms"]


def weighted_batch_norm(x: torch.Tensor, w: torch.Tensor | None, bn: nn.BatchNorm1d,
                        extra: tuple | None = None):
    """BatchNorm1d over rows of ``x`` where row i stands for ``w[i]`` identical rows.

    In training mode the batch statistics are the weighted mean and (biased) variance, exactly those of
    the expanded batch; the running statistics are updated as BatchNorm1d would on that batch.
    ``extra=(row, weight)`` adds one more row (1 × d) with its multiplicity (DeepCDR's padded atom slots);
    the function then returns ``(x_normalised, row_normalised)``. ``w=None`` means weight 1 per row.
    """
    if not bn.training:
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        b = bn.bias - bn.running_mean * a
        out = torch.addcmul(b, x, a)
        return (out, torch.addcmul(b, extra[0], a)) if extra is not None else out
    w = torch.ones(x.shape[0], dtype=x.dtype, device=x.device) if w is None else w.to(x.dtype)
    total = w.sum()
    s1 = w @ x
    s2 = w @ (x * x)
    if extra is not None:
        row, rw = extra
        rw = rw.to(x.dtype)
        total = total + rw
        s1 = s1 + rw * row[0]
        s2 = s2 + rw * row[0] * row[0]
    mean = s1 / total
    var = (s2 / total - mean * mean).clamp_min(0.0)
    with torch.no_grad():
        mom = bn.momentum if bn.momentum is not None else 0.1
        unbiased = var * (total / (total - 1)) if float(total) > 1 else var
        bn.running_mean.mul_(1 - mom).add_(mom * mean.detach())
        bn.running_var.mul_(1 - mom).add_(mom * unbiased.detach())
        bn.num_batches_tracked += 1
    a = bn.weight / torch.sqrt(var + bn.eps)
    b = bn.bias - mean * a
    out = torch.addcmul(b, x, a)
    return (out, torch.addcmul(b, extra[0], a)) if extra is not None else out


def _glorot(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class GraphBank:
    """The molecular graphs of a list of drugs, flattened for block-diagonal message passing.

    ``has_graph[j]`` says whether drug j has a graph; :meth:`batch` gathers the atoms and edges of a
    subset of drugs with batch-local atom indices.
    """

    def __init__(self, smiles, disk_cache=False):
        graphs = [mol_graph(s, disk_cache=disk_cache) if isinstance(s, str) and s else None for s in smiles]
        self.has_graph = np.array([g is not None for g in graphs], dtype=bool)
        self.n_atoms = np.array([g.n_atoms if g is not None else 0 for g in graphs], dtype=np.int64)
        self.atom_start = np.concatenate([[0], np.cumsum(self.n_atoms)[:-1]]).astype(np.int64)
        feats = [g.features for g in graphs if g is not None]
        self.x = torch.as_tensor(np.concatenate(feats) if feats else np.zeros((0, N_ATOM_FEATURES), np.float32))
        self.edges = [g.edges() if g is not None else None for g in graphs]

    def batch(self, drugs: np.ndarray):
        """(atom feature rows, sparse normalised adjacency, owner) for ``drugs`` (all with graphs):
        the block-diagonal ``Â`` of the gathered atoms; ``owner[k]`` = position in ``drugs`` of atom k."""
        atom_idx, owner, src, dst, val = [], [], [], [], []
        offset = 0
        for k, d in enumerate(drugs):
            n, s0 = int(self.n_atoms[d]), int(self.atom_start[d])
            atom_idx.append(np.arange(s0, s0 + n))
            owner.append(np.full(n, k))
            r, c, v = self.edges[d]
            dst.append(r + offset)
            src.append(c + offset)
            val.append(v)
            offset += n
        cat = lambda a, dt: torch.as_tensor(np.concatenate(a).astype(dt))  # noqa: E731
        adj = torch.sparse_coo_tensor(torch.stack([cat(dst, np.int64), cat(src, np.int64)]), cat(val, np.float32),
                                      (offset, offset), check_invariants=False).coalesce()
        return self.x[cat(atom_idx, np.int64)], adj, cat(owner, np.int64)


class GraphBranch(nn.Module):
    def __init__(self, units=(256, 256, 256), out_dim: int = 100, dropout: float = 0.1, max_atoms: int = 100,
                 pool: str = "padded"):
        super().__init__()
        dims = [N_ATOM_FEATURES, *units, out_dim]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm1d(b, momentum=BN_MOMENTUM, eps=BN_EPS) for b in dims[1:])
        self.drop = nn.Dropout(dropout)
        self.max_atoms = max_atoms
        self.pool = pool

    def forward(self, x, adj, owner, n_atoms, drug_weight):
        """Embeddings (U × out) of U drugs: ``adj`` the sparse block-diagonal Â of their atoms, ``owner``
        each atom's drug, ``n_atoms`` (U,), ``drug_weight`` (U,) = pairs per drug in the batch."""
        padded = self.pool == "padded"
        n_pad = (self.max_atoms - n_atoms).clamp_min(0).to(x.dtype)
        atom_w = drug_weight[owner].to(x.dtype)
        pad_w = (drug_weight.to(x.dtype) * n_pad).sum()
        h = x
        p = torch.zeros(1, x.shape[1], dtype=x.dtype, device=x.device)  # a padded slot: zero features
        for lin, bn in zip(self.lins, self.bns):
            h = torch.relu(torch.sparse.mm(adj, lin(h)))
            if padded:
                p = torch.relu(lin(p))  # the padding block of Â is the identity
                h, p = weighted_batch_norm(h, atom_w, bn, extra=(p, pad_w))
            else:
                h = weighted_batch_norm(h, atom_w, bn)
            h = self.drop(h)
        u = n_atoms.shape[0]
        s = torch.zeros(u, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, owner, h)
        if padded:
            s = s + n_pad[:, None] * p
            denom = torch.clamp(n_atoms.to(h.dtype), min=float(self.max_atoms))
        else:
            denom = n_atoms.to(h.dtype).clamp_min(1.0)
        return s / denom[:, None]


class CDRNet(nn.Module):
    def __init__(self, n_genes: int, fp_dim: int, units=(256, 256, 256), drug_dim: int = 100,
                 cell_hidden: int = 256, cell_dim: int = 100, fusion: int = 300, dropout: float = 0.1,
                 max_atoms: int = 100, pool: str = "padded"):
        super().__init__()
        self.graph = GraphBranch(units, drug_dim, dropout, max_atoms, pool)
        self.fp = nn.Sequential(nn.Linear(fp_dim, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, drug_dim),
                                nn.ReLU())
        self.cell1 = nn.Linear(n_genes, cell_hidden)
        self.cell_bn = nn.BatchNorm1d(cell_hidden, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.cell2 = nn.Linear(cell_hidden, cell_dim)
        self.drop = nn.Dropout(dropout)
        self.fuse = nn.Linear(drug_dim + cell_dim, fusion)
        self.conv = nn.Sequential(
            nn.Conv1d(1, 30, 150), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(30, 10, 5), nn.ReLU(), nn.MaxPool1d(3),
            nn.Conv1d(10, 5, 5), nn.ReLU(), nn.MaxPool1d(3),
            nn.Dropout(dropout), nn.Flatten(), nn.Dropout(0.2),
        )
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, 1, fusion)).shape[1]
        self.out = nn.Linear(flat, 2)
        _glorot(self)

    def cells(self, x, weight=None):
        h = torch.tanh(self.cell1(x))
        h = self.drop(weighted_batch_norm(h, weight, self.cell_bn))
        return torch.relu(self.cell2(h))

    def drugs(self, inputs, uc: torch.Tensor, counts: torch.Tensor):
        bank, fps, use_graph = inputs["bank"], inputs["fps"], inputs["use_graph"]
        ucn = uc.cpu().numpy()
        g = use_graph[ucn]
        parts, order = [], []
        if g.any():
            sel = ucn[g]
            x, adj, owner = bank.batch(sel)
            dev = fps.device
            parts.append(self.graph(x.to(dev), adj.to(dev), owner.to(dev), torch.as_tensor(bank.n_atoms[sel], device=dev),
                                    counts[torch.as_tensor(g, device=counts.device)]))
            order.append(np.flatnonzero(g))
        if (~g).any():
            parts.append(self.fp(fps[uc[torch.as_tensor(~g, device=uc.device)]]))
            order.append(np.flatnonzero(~g))
        emb = torch.cat(parts)
        inv = np.argsort(np.concatenate(order))
        return emb[torch.as_tensor(inv, device=emb.device)]

    def forward(self, inputs, rows, cols):
        ur, ir, rc = unique_index(rows)
        uc, ic, cc = unique_index(cols)
        cell = self.cells(inputs["expr"][ur], rc)
        drug = self.drugs(inputs, uc, cc)
        h = torch.cat([drug[ic], cell[ir]], dim=1)
        h = self.drop(torch.tanh(self.fuse(h)))
        o = self.out(self.conv(h[:, None, :]))
        return o[:, 0], o[:, 1]


@torch.no_grad()
def population_bn_stats(net: "CDRNet", inputs, rows: torch.Tensor, cols: torch.Tensor) -> None:
    """Set every BatchNorm layer's running statistics to those of the pairs ``(rows, cols)``.

    The BatchNorm inputs depend on the cell or the drug only, so the statistics over the pairs are the
    statistics over the unique cells / drugs weighted by their pair counts: one forward pass of each branch
    with BatchNorm in training mode at momentum 1 (running := batch statistics) and dropout off.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    was_training = net.training
    momenta = [b.momentum for b in bns]
    net.eval()
    for b in bns:
        b.train()
        b.momentum = 1.0
    try:
        ur, _, rc = unique_index(rows)
        uc, _, cc = unique_index(cols)
        net.cells(inputs["expr"][ur], rc)
        net.drugs(inputs, uc, cc)
    finally:
        for b, mo in zip(bns, momenta):
            b.momentum = mo
        net.train(was_training)


class DeepCDR(Method):
    """DeepCDR with an expression-only cell branch: drug GCN (or fingerprint MLP) + convolutional fusion."""

    capabilities = Capabilities(tasks={"classification", "regression"}, protocols=PROTOCOLS, transductive=False,
                                needs={"expression", "fingerprint", "smiles"}, selects=True)

    def __init__(self, drug_branch: DrugBranch = "graph", units: tuple[PositiveInt, ...] = (256, 256, 256),
                 drug_dim: PositiveInt = 100, cell_hidden: PositiveInt = 256, cell_dim: PositiveInt = 100,
                 fusion: PositiveInt = 300, dropout: DropoutRate = 0.1, max_atoms: PositiveInt = 100,
                 pool: Pool = "padded", standardize: bool = True, epochs: PositiveInt = 100,
                 batch_size: PositiveInt = 64, lr: PositiveFloat = 1e-3, optimizer: Optimizer = "adam",
                 weight_decay: NonNegativeFloat = 0.0, grad_clip: NonNegativeFloat = 0.0, patience: PositiveInt = 10,
                 regression_weight: NonNegativeFloat = 1.0, select_on: SelectOn = "auc",
                 max_train_pairs: NonNegativeInt = 0, graph_disk_cache: bool = False, bn_stats: BNStats = "population"):
        self.drug_branch = drug_branch
        self.units = units
        self.drug_dim = drug_dim
        self.cell_hidden = cell_hidden
        self.cell_dim = cell_dim
        self.fusion = fusion
        self.dropout = dropout
        self.max_atoms = max_atoms
        self.pool = pool
        self.standardize = standardize
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.regression_weight = regression_weight
        self.select_on = select_on
        self.max_train_pairs = max_train_pairs
        self.graph_disk_cache = graph_disk_cache
        self.bn_stats = bn_stats

    @classmethod
    def defaults_for(cls, context) -> dict:
        ds = str(context.get("dataset", ""))
        # transfer / in-vivo train on GDSC x the target's shared drugs (~5.5k pairs): the reference budget, as for
        # CCLE (the GDSC budget below would give them ~24 optimiser steps)
        if ds in ("gdsc", "pdx", "tcga") and context.get("protocol") not in SHARED_DRUG_PROTOCOLS:
            # ~160k training pairs: larger batches to fit the time budget
            return {"batch_size": 2048, "lr": 2e-3, "epochs": 8, "patience": 3}
        if ds.startswith("synthetic"):  # the demo set: a short budget so that `--methods all` stays interactive
            return {"batch_size": 512, "epochs": 20, "patience": 3}
        return {}

    @classmethod
    def fast_params(cls) -> dict:
        return {"units": (16, 16), "drug_dim": 12, "cell_hidden": 16, "cell_dim": 12, "epochs": 3,
                "batch_size": 128, "patience": 2}

    # ------------------------------------------------------------------ inputs
    def _check(self):
        check_choice("drug_branch", self.drug_branch, DrugBranch)
        check_choice("pool", self.pool, Pool)
        check_choice("bn_stats", self.bn_stats, BNStats)

    def _drug_inputs(self, smiles, fp: np.ndarray, device):
        if self.drug_branch == "graph":
            bank = GraphBank([s if isinstance(s, str) else "" for s in smiles], disk_cache=self.graph_disk_cache)
        else:
            bank = GraphBank([""] * len(smiles))
        use_graph = bank.has_graph.copy()
        return {"bank": bank, "fps": torch.as_tensor(fp, device=device), "use_graph": use_graph}

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num((x - self.x_mean_) / self.x_sd_, nan=0.0).astype(np.float32)

    # ------------------------------------------------------------------ fit / predict
    def fit(self, view: TrainView) -> "DeepCDR":
        self._check()
        device = torch_device(view.device)
        self.device_ = device
        expr = expression_matrix(view.cell_features)
        fp = fingerprint_matrix(view.drug_features)
        rows = training_cells(view, "train")
        if self.standardize and len(rows) > 1:
            self.x_mean_ = expr[rows].mean(0)
            sd = expr[rows].std(0)
            self.x_sd_ = np.where(sd > 1e-8, sd, np.inf).astype(np.float32)
        else:
            self.x_mean_ = np.zeros(expr.shape[1], np.float32)
            self.x_sd_ = np.ones(expr.shape[1], np.float32)
        vis = view.visible_cells & finite_rows(expr)
        x = np.zeros_like(expr)
        x[vis] = self._scale(expr[vis])
        drugs = self._drug_inputs(view.smiles, fp, device)
        inputs = {"expr": torch.as_tensor(x, device=device), **drugs}
        with seeded(view.seed):
            train, valid, self.ic50_mean_, self.ic50_sd_ = pair_data(view, self.max_train_pairs, view.seed)
            self.net_ = CDRNet(expr.shape[1], fp.shape[1], tuple(self.units), self.drug_dim, self.cell_hidden,
                               self.cell_dim, self.fusion, self.dropout, self.max_atoms, self.pool).to(device)
            info = fit_pairs(self.net_, inputs, train, valid, epochs=self.epochs, batch_size=self.batch_size,
                             lr=self.lr, optimizer=self.optimizer, weight_decay=self.weight_decay,
                             grad_clip=self.grad_clip or None, patience=self.patience,
                             regression_weight=self.regression_weight, select_on=self.select_on,
                             seed=view.seed + 1, device=device,
                             after_epoch=(lambda: population_bn_stats(self.net_, inputs, train.rows.to(device), train.cols.to(device)))
                             if self.bn_stats == "population" else None)
        self.net_.eval()
        used = np.unique(train.cols.numpy())
        info["graph_drugs"] = int(drugs["use_graph"][used].sum())
        info["fingerprint_drugs"] = int((~drugs["use_graph"][used]).sum())
        self.fit_info_ = info
        return self

    def predict(self, query: Query) -> Prediction:
        rows = np.asarray(query.rows, dtype=np.int64)
        cols = np.asarray(query.cols, dtype=np.int64)
        if len(rows) == 0:
            return Prediction(np.zeros(0), np.zeros(0))
        expr = expression_matrix(query.cell_features)
        fp = fingerprint_matrix(query.drug_features)
        ur, ir = np.unique(rows, return_inverse=True)
        uc, ic = np.unique(cols, return_inverse=True)
        smiles = np.asarray(query.smiles, dtype=object)[uc]
        inputs = {"expr": torch.as_tensor(self._scale(expr[ur]), device=self.device_),
                  **self._drug_inputs(smiles, fp[uc], self.device_)}
        p, t = predict_pairs(self.net_, inputs, torch.as_tensor(ir.ravel()), torch.as_tensor(ic.ravel()))
        return Prediction(np.clip(p, 0.0, 1.0), t * self.ic50_sd_ + self.ic50_mean_)

    def drug_uses_graph(self, smiles) -> np.ndarray:
        """Which of these drugs the fitted model scores through the graph branch (the others: fingerprints)."""
        return self._drug_inputs(list(smiles), np.zeros((len(smiles), 1), np.float32), torch.device("cpu"))["use_graph"]
