"""Pieces shared by the graph and deep methods: feature access, kernels, normalisations and losses.

Training itself (seeding, optimisers, selection on the validation split) is in :mod:`drbench.methods.training`.

The kernels, normalisations and losses follow ``docs/method-specs.md`` §2 (the reference ``myutils.py`` primitives), with
the numerical guards the spec asks for (clamped distances, zero-variance genes, no NaN in a loss).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from drbench.errors import UsageError
from drbench.params import check_choice

#: the cells an unsupervised step may use (see :func:`training_cells`)
AECells = Literal["train", "visible"]


# ---------------------------------------------------------------------------------------------- setup
def torch_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but torch sees no GPU on this machine")
    return torch.device(name)


def finite_rows(x: np.ndarray) -> np.ndarray:
    """Boolean mask of rows with no NaN (rows the method may see)."""
    return ~np.isnan(x).any(axis=1)


def expression_matrix(block, name: str = "expression") -> np.ndarray:
    if name not in block:
        raise UsageError(f"the method needs cell feature {name!r}; the dataset has {sorted(block)}")
    return np.asarray(block[name], dtype=np.float32)


def fingerprint_matrix(block, name: str = "fingerprint") -> np.ndarray:
    if name not in block:
        raise UsageError(f"the method needs drug feature {name!r}; the dataset has {sorted(block)}")
    return np.nan_to_num(np.asarray(block[name], dtype=np.float32), nan=0.0)


def training_cells(view, which: str) -> np.ndarray:
    """Indices of the cells an unsupervised step may use: "train" (visible and with training entries)
    or "visible" (every cell whose features the view shows)."""
    x = expression_matrix(view.cell_features)
    vis = view.visible_cells & finite_rows(x)
    if which == "visible":
        return np.flatnonzero(vis)
    if which == "train":
        return np.flatnonzero(vis & (view.train & ~np.isnan(view.binary)).any(1))
    check_choice("ae_cells", which, AECells)
    raise AssertionError(f"ae_cells {which!r} declared but not handled")



# ---------------------------------------------------------------------------------------------- statistics
def zscore_columns(x: torch.Tensor, rows: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """Per-column (per-gene) standardisation with statistics over ``rows`` (all rows if None).

    Unbiased std as in the reference ``torch_z_normalized``; zero-variance columns become 0 instead of NaN.
    """
    ref = x if rows is None else x[rows]
    mean = ref.mean(0, keepdim=True)
    std = ref.std(0, unbiased=True, keepdim=True) if ref.shape[0] > 1 else torch.ones_like(mean)
    out = (x - mean) / torch.where(std > eps, std, torch.ones_like(std))
    return torch.where(std > eps, out, torch.zeros_like(out))


def corr(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation between each row of ``x`` and each row of ``y`` (rows centred over features)."""
    xc = x - x.mean(1, keepdim=True)
    yc = y - y.mean(1, keepdim=True)
    xn = xc / (xc.norm(dim=1, keepdim=True) + eps)
    yn = yc / (yc.norm(dim=1, keepdim=True) + eps)
    return xn @ yn.T


def euclidean_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean (not squared) distances; squared distances are clamped at 0 before the square root."""
    d2 = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return d2.clamp_min(0.0).sqrt()


def exp_similarity(x: torch.Tensor, sigma: float = 2.0, normalize: bool = True) -> torch.Tensor:
    """S_ij = exp(-d_ij / (2 sigma^2)) on (optionally per-gene z-scored) rows of ``x``."""
    if normalize:
        x = zscore_columns(x)
    return torch.exp(-euclidean_dist(x, x) / (2.0 * sigma**2))


def jaccard(fp: torch.Tensor) -> torch.Tensor:
    """Jaccard similarity of binary fingerprints; an empty fingerprint keeps self-similarity 1 (reference rule)."""
    fp = fp.float()
    inter = fp @ fp.T
    counts = fp.sum(1)
    union = counts[:, None] + counts[None, :] - inter
    union = torch.where(union == 0, torch.full_like(union, 0.1), union)
    s = inter / union
    eye = torch.eye(fp.shape[0], dtype=s.dtype, device=s.device)
    return torch.where(s == 0, eye, s)


def full_kernel(s: torch.Tensor) -> torch.Tensor:
    """SNF "P" kernel: P_ij = S_ij / (2 sum_{k != i} S_ik) off the diagonal, P_ii = 1/2."""
    off = s - torch.diag(torch.diag(s))
    denom = 2.0 * off.sum(1, keepdim=True)
    p = off / torch.where(denom == 0, torch.ones_like(denom), denom)
    return p + 0.5 * torch.eye(s.shape[0], dtype=s.dtype, device=s.device)


def sparse_kernel(s: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest entries of each row, normalised to sum 1 (returns a new tensor)."""
    k = min(k, s.shape[1])
    vals, idx = torch.topk(s, k, dim=1)
    out = torch.zeros_like(s)
    out.scatter_(1, idx, vals)
    return out / out.sum(1, keepdim=True).clamp_min(1e-12)


def minmax_scaled_sigmoid(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """MOFGCN activation: (sigmoid(a x) - sigmoid(-a)) / (sigmoid(a) - sigmoid(-a)), exactly [0, 1] on [-1, 1]."""
    lo, hi = torch.sigmoid(torch.tensor(-alpha)), torch.sigmoid(torch.tensor(alpha))
    return ((torch.sigmoid(alpha * x) - lo) / (hi - lo)).clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------- losses
def masked_bce(prob: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Mean binary cross-entropy over ``mask`` entries (probabilities clamped away from 0 and 1)."""
    p = prob[mask].clamp(eps, 1 - eps)
    t = target[mask]
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    if mask is None:
        return ((pred - target) ** 2).mean()
    return ((pred[mask] - target[mask]) ** 2).mean()


# ---------------------------------------------------------------------------------------------- labels
def label_tensors(view, device="cpu"):
    """(binary, ic50, train, valid) tensors from a TrainView; NaN labels become 0 (masked anyway)."""
    b = torch.tensor(np.nan_to_num(view.binary, nan=0.0), dtype=torch.float32, device=device)
    r = torch.tensor(np.nan_to_num(view.ic50, nan=0.0), dtype=torch.float32, device=device)
    train = torch.tensor(view.train & ~np.isnan(view.binary), device=device)
    valid = torch.tensor(view.valid & ~np.isnan(view.binary), device=device)
    return b, r, train, valid


def training_adjacency(view) -> np.ndarray:
    """The training positives as a 0/1 matrix: the graph the GNNs propagate over."""
    return ((view.binary == 1) & view.train).astype(np.float32)
