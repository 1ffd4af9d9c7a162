"""SRMF: similarity-regularised matrix factorisation (Wang et al., BMC Cancer 2017).

Implemented from ``docs/method-specs.md`` §4.7. The response matrix is oriented drugs × cells as in
the reference (``Y`` = transposed view matrix), factorised as ``Y ≈ U Vᵀ`` with ``U`` (drugs × K) and
``V`` (cells × K), minimising

    ‖W∘(Y − U Vᵀ)‖² + λ_l(‖U‖² + ‖V‖²) + λ_d‖S_d − U Uᵀ‖² + λ_c‖S_c − V Vᵀ‖²

by the reference's alternating closed-form row updates (every row of ``U`` solved against the previous
``U`` — a Jacobi step — then every row of ``V`` against the new ``U``). The per-row K × K systems are
built with one matrix product (``W @ vec(v_j v_jᵀ)``) and solved as one stacked ``numpy.linalg.solve``;
there is no loop over rows or pairs. The lowest-loss iterate is kept; iterations stop when the relative
loss change falls below ``tol``.

Inputs: ``S_c`` = Pearson correlation of the expression profiles (all rows, transductive; as [DREV]),
``S_d`` = Jaccard (Tanimoto) similarity of the fingerprints (= 1 − Jaccard distance, as [DREV]).
``W`` = 1 on the training entries with a finite target. As in the reference ``predict.m``, ``Y`` is
divided by ``s = max |Y|`` over those entries and predictions are multiplied back by ``s``.

Harness choices (spec §6.8), documented here and in ``fit_info_``:

* ``target="ic50"`` (default) fits the IC50 matrix. The IC50 estimate is the regression output, and
  the classification score is ``sigmoid((t_j − IC50_hat) / σ)``, a monotone map of "how far below the
  drug's sensitivity threshold": ``t_j`` is the dataset's threshold for drug j (GDSC ships them); where
  it is missing (CCLE) it is estimated from the *training* labels of that drug (midpoint between the
  largest training-positive IC50 and the smallest training-negative IC50; only-negatives → the smallest
  negative, only-positives → the largest positive, no labelled entries → the median of the other
  drugs' thresholds). ``σ`` is the standard deviation of the training IC50 values.
* ``target="binary"`` fits the 0/1 matrix (training positives 1, training negatives 0); the score is
  ``U Vᵀ`` min–max scaled over the whole predicted matrix; no IC50 estimate is returned.
* ``lambda_d`` defaults to 0.05 (the reference used 0, which scores every new drug as a constant
  0): with λ_d > 0 a drug without training entries is placed through its fingerprint similarities.
  Chosen on the *validation* entries of GDSC seed-0 fold 0: new-drug valid AUC 0.500 / 0.576 / 0.578 /
  0.569 and random valid AUC 0.888 / 0.880 / 0.864 / 0.849 for λ_d = 0 / 0.05 / 0.25 / 1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from drbench.api import PROTOCOL_KINDS, Capabilities, Method, Prediction, Query, TrainView
from drbench.methods.common import corr, jaccard
from drbench.params import NonNegativeFloat, PositiveInt, check_choice

Target = Literal["ic50", "binary"]


def pearson_similarity(x: np.ndarray) -> np.ndarray:
    """Pearson correlation between rows (NaN feature values treated as 0; a constant row gets 0 off-diagonal)."""
    t = torch.tensor(np.nan_to_num(np.asarray(x, dtype=np.float64)), dtype=torch.float64)
    s = corr(t, t).numpy()
    np.fill_diagonal(s, 1.0)
    return s


def jaccard_similarity(fp: np.ndarray) -> np.ndarray:
    t = torch.tensor(np.nan_to_num(np.asarray(fp, dtype=np.float64)) > 0.5, dtype=torch.float64)
    return jaccard(t).numpy()


def srmf_loss(u, v, w, y, s_row, s_col, lambda_l, lambda_row, lambda_col) -> float:
    """The SRMF objective for ``Y ≈ U Vᵀ`` (rows of Y ↔ rows of U, regularised by ``s_row``)."""
    r = w * (y - u @ v.T)
    loss = float(np.sum(r * r))
    loss += lambda_l * float(np.sum(u * u) + np.sum(v * v))
    if lambda_row:
        loss += lambda_row * float(np.sum((s_row - u @ u.T) ** 2))
    if lambda_col:
        loss += lambda_col * float(np.sum((s_col - v @ v.T) ** 2))
    return loss


def row_update(u_old: np.ndarray, v: np.ndarray, w: np.ndarray, wy: np.ndarray, s: np.ndarray,
               lambda_l: float, lambda_s: float) -> np.ndarray:
    """All rows of ``U`` at once: u_i (Vᵀ diag(w_i) V + 2λ_s U_oldᵀU_old + λ_l I) = (W∘Y)_i V + 2λ_s (S U_old)_i."""
    k = v.shape[1]
    outer = (v[:, :, None] * v[:, None, :]).reshape(v.shape[0], k * k)  # vec(v_j v_jᵀ) per column j
    b = (w @ outer).reshape(w.shape[0], k, k)  # Σ_j w_ij v_j v_jᵀ for every row i
    b += lambda_l * np.eye(k)
    rhs = wy @ v
    if lambda_s:
        b += 2.0 * lambda_s * (u_old.T @ u_old)
        rhs = rhs + 2.0 * lambda_s * (s @ u_old)
    return np.linalg.solve(b, rhs[:, :, None])[:, :, 0]


def factorise(y, w, s_d, s_c, k, lambda_l, lambda_d, lambda_c, max_iter, tol, seed):
    """Alternating updates on ``Y`` (drugs × cells). Returns (U, V, info) of the lowest-loss iterate."""
    rng = np.random.default_rng(seed)
    n_d, n_c = y.shape
    u = np.sqrt(1.0 / k) * rng.standard_normal((n_d, k))
    v = np.sqrt(1.0 / k) * rng.standard_normal((n_c, k))
    wy = w * y
    loss = srmf_loss(u, v, w, y, s_d, s_c, lambda_l, lambda_d, lambda_c)
    best = (loss, u, v, 0)
    history = [loss]
    it = 0
    for it in range(1, max_iter + 1):
        u_new = row_update(u, v, w, wy, s_d, lambda_l, lambda_d)
        v_new = row_update(v, u_new, w.T, wy.T, s_c, lambda_l, lambda_c)
        new = srmf_loss(u_new, v_new, w, y, s_d, s_c, lambda_l, lambda_d, lambda_c)
        history.append(new)
        if new < best[0]:
            best = (new, u_new, v_new, it)
        rel = abs(new - loss) / max(abs(loss), 1e-300)
        u, v, loss = u_new, v_new, new
        if rel < tol:
            break
    info = {"iterations": it, "best_iteration": best[3], "best_loss": best[0], "initial_loss": history[0]}
    return best[1], best[2], info, history


def estimate_thresholds(ic50: np.ndarray, binary: np.ndarray, train: np.ndarray, given: np.ndarray) -> np.ndarray:
    """Per-drug IC50 threshold: the dataset's where finite, else estimated from the training labels."""
    lab = train & np.isfinite(ic50) & np.isfinite(binary)
    pos = lab & (binary == 1)
    neg = lab & (binary == 0)
    max_pos = np.where(pos, ic50, -np.inf).max(0)
    min_neg = np.where(neg, ic50, np.inf).min(0)
    has_p, has_n = pos.any(0), neg.any(0)
    est = np.full(ic50.shape[1], np.nan)
    both = has_p & has_n
    est[both] = 0.5 * (max_pos[both] + min_neg[both])
    est[has_p & ~has_n] = max_pos[has_p & ~has_n]
    est[has_n & ~has_p] = min_neg[has_n & ~has_p]
    thr = np.where(np.isfinite(given), given, est)
    if np.isnan(thr).any():
        fill = np.nanmedian(thr) if np.isfinite(thr).any() else 0.0
        thr = np.where(np.isnan(thr), fill, thr)
    return thr


class SRMF(Method):
    """Similarity-regularised matrix factorisation; transductive, no selection on validation labels."""

    capabilities = Capabilities(tasks={"classification", "regression"}, protocols=set(PROTOCOL_KINDS),
                                transductive=True, needs={"expression", "fingerprint"}, selects=False)

    def __init__(self, target: Target = "ic50", k: PositiveInt = 45, lambda_l: NonNegativeFloat = 0.25,
                 lambda_d: NonNegativeFloat = 0.05, lambda_c: NonNegativeFloat = 0.25, max_iter: PositiveInt = 50,
                 tol: NonNegativeFloat = 1e-6, rescale: bool = True):
        self.target = target
        self.k = k
        self.lambda_l = lambda_l
        self.lambda_d = lambda_d
        self.lambda_c = lambda_c
        self.max_iter = max_iter
        self.tol = tol
        self.rescale = rescale

    @classmethod
    def fast_params(cls) -> dict:
        return {"k": 8, "max_iter": 15}

    def fit(self, view: TrainView) -> "SRMF":
        check_choice("srmf: target", self.target, Target)
        s_c = pearson_similarity(view.cell_features["expression"])
        s_d = jaccard_similarity(view.drug_features["fingerprint"])
        train = np.asarray(view.train, dtype=bool)
        if self.target == "ic50":
            vals = np.asarray(view.ic50, dtype=np.float64)
        else:
            vals = np.asarray(view.binary, dtype=np.float64)
        w = (train & np.isfinite(vals)).astype(np.float64)  # cells × drugs
        y = np.where(w > 0, vals, 0.0)
        scale = float(np.max(np.abs(y[w > 0]))) if self.rescale and w.any() else 1.0
        scale = scale if scale > 0 else 1.0
        u, v, info, history = factorise((y / scale).T, w.T, s_d, s_c, int(self.k), float(self.lambda_l),
                                        float(self.lambda_d), float(self.lambda_c), int(self.max_iter),
                                        float(self.tol), view.seed)
        pred = (v @ u.T) * scale  # cells × drugs
        self.loss_history_ = history
        self.fit_info_ = {**info, "scale": scale, "n_observed": int(w.sum())}
        if self.target == "ic50":
            self.ic50_ = pred
            thr = estimate_thresholds(np.asarray(view.ic50, dtype=np.float64), np.asarray(view.binary, dtype=np.float64),
                                      train, np.asarray(view.thresholds, dtype=np.float64))
            obs = y[w > 0]
            sigma = float(np.std(obs)) if obs.size > 1 else 1.0
            sigma = sigma if sigma > 1e-12 else 1.0
            self.thresholds_ = thr
            self.score_ = 1.0 / (1.0 + np.exp(-np.clip((thr[None, :] - pred) / sigma, -50, 50)))
            self.fit_info_["score_sigma"] = sigma
        else:
            self.ic50_ = None
            lo, hi = float(pred.min()), float(pred.max())
            self.score_ = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
        return self

    def predict(self, query: Query) -> Prediction:
        r, c = query.rows, query.cols
        ic50 = None if self.ic50_ is None else self.ic50_[r, c]
        return Prediction(self.score_[r, c], ic50)
