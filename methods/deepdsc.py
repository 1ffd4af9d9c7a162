"""DeepDSC (Li et al., TCBB 2019): a stacked autoencoder code of expression ⊕ drug fingerprint → deep network.

Follows method-specs §4.6 (layer sizes from the third-party port [DRB], unverified against the paper):

* **Autoencoder**, trained unsupervised on expression: encoder G → 2000 → 1000 → 500 (SELU between
  layers, no activation on the 500-d code), decoder 500 → 1000 → 2000 → G (SELU, sigmoid output),
  Xavier-uniform weights, MSE reconstruction (+ ``ae_l1`` · Σ|encoder parameters|, default 0), gradient
  norm clipped at 1. Input = per-gene min–max scaling **fitted on the autoencoder's rows**:
  ``(x − min) / (max − min)`` — the port divides by ``max`` instead of ``max − min`` (a quirk, fixed
  here); a constant gene becomes 0. Cells not in the fit rows are scaled with the same statistics (values
  may leave [0, 1]; they are not clipped).
  Which rows: ``ae_cells="train"`` (default, strictly inductive) = cells whose features the view shows
  **and** that have training entries; ``"visible"`` = every cell whose features the view shows (in Test 2
  that adds the validation cells, label-free; held-out cells are never visible to an inductive method).
* **Predictor**: [500-d code ⊕ 920-bit fingerprint] → 1000 → 800 → 500 → 100 (ELU, Kaiming-uniform)
  → 2 outputs. **Both heads share the trunk**: output 0 is the sensitivity logit (sigmoid + BCE on
  training pairs), output 1 the IC50 (linear; MSE on training pairs with a measured IC50). IC50 targets
  are standardised with the training pairs' mean/SD (and mapped back at predict time), so the summed loss
  ``BCE + regression_weight · MSE`` weighs the heads evenly by default (``regression_weight=1``).

Deviations from the port, for the time budget (one GDSC fold < 10 min on 2 cores) and stability:

* autoencoder: ``ae_epochs`` mini-batch epochs (15 on GDSC ≈ 225 steps of 64 cells; 60 on CCLE) with
  Adam (fused kernel, lr 1e-3) instead of 800 full-batch Adamax steps at lr 1e-4; ``ae_l1`` defaults to 0:
  the port's 0.1 · Σ|θ| (a sum over ~12M encoder weights) outweighs the reconstruction error ~10⁵-fold;
* the code units are standardised (mean/SD over the autoencoder's rows, a label-free step) before the
  predictor: raw codes carry large per-unit offsets (SD ≈ 6 overall against ≈ 0.3 across cells on GDSC)
  that made the Kaiming-initialised predictor's first losses explode; the 2-unit output layer is
  Xavier-initialised for the same reason;
* predictor: mini-batches of training pairs (1024; seeded shuffling from ``view.seed``), Adamax lr 1e-3,
  gradient norm clipped at 5, up to ``epochs`` (12 on GDSC, patience 4; 100 on CCLE, patience 10) instead
  of 100 full-batch epochs at lr 4e-4. The transfer and in-vivo protocols train on GDSC × the target's
  shared drugs (~5.5k pairs) and use the CCLE budget.

Selection: evaluation on ``view.valid`` after every epoch, early stopping with ``patience`` and
best-weight restore. ``select_on="auc"`` (default) stops and selects on the **validation AUC of the
classification head** (the IC50 head is kept at that epoch); ``"pcc"`` on the validation PCC of the
IC50 head (the regression paper's target). With no usable validation entries the fixed ``epochs``
budget is trained and the last epoch kept.
Speed: the first dense layer is split into a cell part and a drug part, applied once per unique cell /
drug of a batch and gathered per pair (identical to applying it to the concatenation); the autoencoder
code is computed once after pretraining. Pair training and selection: :func:`drbench.methods.training.fit_pairs`.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from drbench.api import Capabilities, Method, Prediction, Query, TrainView
from drbench.errors import UsageError
from drbench.methods.common import (AECells, expression_matrix, fingerprint_matrix, finite_rows, torch_device,
                                    training_cells)
from drbench.methods.training import (Optimizer, SelectOn, fit_pairs, make_optimizer, pair_data, predict_pairs,
                                      seeded, seeded_generator, unique_index)
from drbench.params import DropoutRate, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

log = logging.getLogger("drbench.methods.deep")

PROTOCOLS = {"random", "new-cell-line", "new-drug", "in-vivo", "new-pair"}

#: protocols that train on the source's shared drugs only (GDSC x the target's drugs, ~5.5k pairs, not ~165k):
#: they get the small-data budget in ``defaults_for`` of DeepDSC and DeepCDR
SHARED_DRUG_PROTOCOLS = ("transfer", "in-vivo")


class AutoEncoder(nn.Module):
    def __init__(self, n_genes: int, hidden=(2000, 1000, 500)):
        super().__init__()
        enc, dims = [], [n_genes, *hidden]
        for i in range(len(hidden)):
            enc.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(hidden) - 1:
                enc.append(nn.SELU())
        dec, rdims = [], dims[::-1]
        for i in range(len(hidden)):
            dec.append(nn.Linear(rdims[i], rdims[i + 1]))
            dec.append(nn.SELU() if i < len(hidden) - 1 else nn.Sigmoid())
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class DSCNet(nn.Module):
    """[code ⊕ fingerprint] → hidden (ELU) → (logit, ic50). The first layer is split into a cell part
    and a drug part (same function as one dense layer on the concatenation)."""

    def __init__(self, code_dim: int, fp_dim: int, hidden=(1000, 800, 500, 100), dropout: float = 0.0):
        super().__init__()
        h0 = hidden[0]
        self.cell_in = nn.Linear(code_dim, h0)
        self.drug_in = nn.Linear(fp_dim, h0, bias=False)
        # one Kaiming-uniform draw over the concatenated input, as a single dense layer would get
        w = torch.empty(h0, code_dim + fp_dim)
        nn.init.kaiming_uniform_(w)
        with torch.no_grad():
            self.cell_in.weight.copy_(w[:, :code_dim])
            self.drug_in.weight.copy_(w[:, code_dim:])
            bound = 1.0 / math.sqrt(code_dim + fp_dim)
            self.cell_in.bias.uniform_(-bound, bound)
        layers = []
        for a, b in zip(hidden[:-1], hidden[1:]):
            lin = nn.Linear(a, b)
            nn.init.kaiming_uniform_(lin.weight)
            layers += [nn.ELU(), nn.Dropout(dropout), lin]
        layers += [nn.ELU(), nn.Dropout(dropout)]
        self.trunk = nn.Sequential(*layers)
        self.out = nn.Linear(hidden[-1], 2)
        nn.init.xavier_uniform_(self.out.weight)  # Kaiming (gain √2) here gave initial IC50 outputs of SD ≈ 5

    def forward(self, inputs, rows, cols):
        codes, fps = inputs
        ur, ir, _ = unique_index(rows)
        uc, ic, _ = unique_index(cols)
        h = self.cell_in(codes[ur])[ir] + self.drug_in(fps[uc])[ic]
        o = self.out(self.trunk(h))
        return o[:, 0], o[:, 1]


def minmax_stats(x: np.ndarray):
    lo = x.min(0)
    span = x.max(0) - lo
    return lo.astype(np.float32), np.where(span > 1e-8, span, np.inf).astype(np.float32)  # constant gene → 0


class DeepDSC(Method):
    """DeepDSC: stacked-autoencoder expression code + fingerprint → DNN (classification and IC50 heads)."""

    capabilities = Capabilities(tasks={"classification", "regression"}, protocols=PROTOCOLS, transductive=False,
                                needs={"expression", "fingerprint"}, selects=True)

    def __init__(self, ae_cells: AECells = "train", ae_hidden: tuple[PositiveInt, ...] = (2000, 1000, 500),
                 ae_epochs: NonNegativeInt = 25, ae_batch_size: PositiveInt = 64, ae_lr: PositiveFloat = 1e-3,
                 ae_optimizer: Optimizer = "adam", ae_l1: NonNegativeFloat = 0.0, ae_grad_clip: NonNegativeFloat = 1.0,
                 hidden: tuple[PositiveInt, ...] = (1000, 800, 500, 100), dropout: DropoutRate = 0.0,
                 epochs: PositiveInt = 20, batch_size: PositiveInt = 1024, lr: PositiveFloat = 1e-3,
                 optimizer: Optimizer = "adamax", weight_decay: NonNegativeFloat = 0.0,
                 grad_clip: NonNegativeFloat = 5.0, patience: PositiveInt = 5,
                 regression_weight: NonNegativeFloat = 1.0, select_on: SelectOn = "auc",
                 max_train_pairs: NonNegativeInt = 0):
        self.ae_cells = ae_cells
        self.ae_hidden = ae_hidden
        self.ae_epochs = ae_epochs
        self.ae_batch_size = ae_batch_size
        self.ae_lr = ae_lr
        self.ae_optimizer = ae_optimizer
        self.ae_l1 = ae_l1
        self.ae_grad_clip = ae_grad_clip
        self.hidden = hidden
        self.dropout = dropout
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

    @classmethod
    def defaults_for(cls, context) -> dict:
        ds = str(context.get("dataset", ""))
        if ds == "ccle" or (ds in ("gdsc", "pdx", "tcga") and context.get("protocol") in SHARED_DRUG_PROTOCOLS):
            # ~8k training pairs (CCLE; GDSC x the target's shared drugs ~5.5k): smaller batches, more epochs
            return {"batch_size": 128, "epochs": 100, "patience": 10, "ae_epochs": 60}
        if ds in ("gdsc", "pdx", "tcga"):  # ~165k training pairs, 5,778 genes: fit one fold in ~10 min on 2 cores
            return {"ae_epochs": 15, "epochs": 12, "patience": 4}
        if ds.startswith("synthetic"):  # the demo set: a short budget so that `--methods all` stays interactive
            return {"batch_size": 512, "epochs": 30, "patience": 5, "ae_epochs": 30}
        return {}

    @classmethod
    def fast_params(cls) -> dict:
        return {"ae_hidden": (32, 16, 8), "ae_epochs": 5, "ae_batch_size": 16, "hidden": (32, 16, 8),
                "epochs": 4, "batch_size": 64, "patience": 2}

    # ------------------------------------------------------------------ autoencoder
    def _train_autoencoder(self, x: np.ndarray, device, gen: torch.Generator) -> tuple[AutoEncoder, dict]:
        ae = AutoEncoder(x.shape[1], tuple(self.ae_hidden)).to(device)
        opt = make_optimizer(self.ae_optimizer, ae.parameters(), self.ae_lr)
        xt = torch.as_tensor(x, device=device)
        n = xt.shape[0]
        bs = max(2, min(int(self.ae_batch_size), n))
        loss_v = float("nan")
        t0 = time.perf_counter()
        for epoch in range(int(self.ae_epochs)):
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for s in range(0, n, bs):
                b = xt[perm[s:s + bs]]
                loss = F.mse_loss(ae(b), b)
                if self.ae_l1:
                    loss = loss + self.ae_l1 * sum(p.abs().sum() for p in ae.encoder.parameters())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.ae_grad_clip:
                    nn.utils.clip_grad_norm_(ae.parameters(), self.ae_grad_clip)
                opt.step()
                total += float(loss.detach()) * b.shape[0]
            loss_v = total / n
            if (epoch + 1) % 5 == 0 or epoch + 1 == int(self.ae_epochs):
                log.info("autoencoder epoch %d: reconstruction loss %.5f (%.0f s)", epoch + 1, loss_v,
                         time.perf_counter() - t0)
        ae.eval()
        return ae, {"ae_rows": int(n), "ae_final_loss": loss_v, "ae_seconds": time.perf_counter() - t0}

    @torch.no_grad()
    def _codes(self, x: np.ndarray) -> torch.Tensor:
        """Autoencoder codes of expression rows (scaled with the fitted min–max statistics)."""
        z = (np.nan_to_num(x, nan=0.0) - self.mm_lo_) / self.mm_span_
        out = []
        for s in range(0, z.shape[0], 4096):
            out.append(self.encoder_(torch.as_tensor(z[s:s + 4096], dtype=torch.float32, device=self.device_)))
        c = torch.cat(out) if out else torch.zeros(0, self.ae_hidden[-1], device=self.device_)
        if getattr(self, "code_mean_", None) is not None:
            c = (c - self.code_mean_) / self.code_sd_
        return c

    # ------------------------------------------------------------------ fit / predict
    def fit(self, view: TrainView) -> "DeepDSC":
        device = torch_device(view.device)
        self.device_ = device
        expr = expression_matrix(view.cell_features)
        fp = fingerprint_matrix(view.drug_features)
        ae_rows = training_cells(view, self.ae_cells)
        if len(ae_rows) < 2:
            raise UsageError("DeepDSC needs at least two cell lines to pretrain its autoencoder")
        with seeded(view.seed):
            gen = seeded_generator(view.seed)
            x = expr[ae_rows]
            self.mm_lo_, self.mm_span_ = minmax_stats(x)
            ae, ae_info = self._train_autoencoder((x - self.mm_lo_) / self.mm_span_, device, gen)
            self.encoder_ = ae.encoder
            for p in self.encoder_.parameters():
                p.requires_grad_(False)
            # standardise each code unit over the autoencoder's rows (codes carry large per-unit offsets)
            self.code_mean_ = None
            c = self._codes(expr[ae_rows])
            self.code_mean_ = c.mean(0)
            sd = c.std(0)
            self.code_sd_ = torch.where(sd > 1e-6, sd, torch.ones_like(sd))
            vis = np.flatnonzero(view.visible_cells & finite_rows(expr))
            codes = torch.zeros(expr.shape[0], self.ae_hidden[-1], device=device)
            codes[torch.as_tensor(vis, device=device)] = self._codes(expr[vis])
            fps = torch.as_tensor(fp, device=device)
            train, valid, self.ic50_mean_, self.ic50_sd_ = pair_data(view, self.max_train_pairs, view.seed)
            self.net_ = DSCNet(self.ae_hidden[-1], fp.shape[1], tuple(self.hidden), self.dropout).to(device)
            info = fit_pairs(self.net_, (codes, fps), train, valid, epochs=self.epochs, batch_size=self.batch_size,
                             lr=self.lr, optimizer=self.optimizer, weight_decay=self.weight_decay,
                             grad_clip=self.grad_clip, patience=self.patience,
                             regression_weight=self.regression_weight, select_on=self.select_on,
                             seed=view.seed + 1, device=device)
        self.net_.eval()
        self.fit_info_ = {**info, **ae_info}
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
        codes = self._codes(expr[ur])
        fps = torch.as_tensor(fp[uc], device=self.device_)
        p, t = predict_pairs(self.net_, (codes, fps), torch.as_tensor(ir.ravel()), torch.as_tensor(ic.ravel()))
        return Prediction(np.clip(p, 0.0, 1.0), t * self.ic50_sd_ + self.ic50_mean_)
