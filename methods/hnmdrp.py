"""HNMDRP: information flow over a heterogeneous cell–drug–target network (Zhang et al. 2018).

Implemented from ``docs/method-specs.md`` §4.8 (the MATLAB ``HNMDRP.m`` steps), vectorised on whole
matrices:

1. each similarity matrix is filtered: capped at ``max_sim`` (0.99), values below ``min_sim`` (0.3)
   set to 0, identity added, capped at 1;
2. ``N(M)_ij = M_ij / (sqrt(rowsum_i(M) · colsum_j(M)) + 0.001)``;
3. ``RR2 = N(S_D·DT·S_T·DTᵀ)``, ``RR1 = N(CDᵀ·S_C·CD·S_D)``; ``DR2 = CD·RR2``, ``RT2 = RR1·DT``,
   ``DR1 = CD``, ``RT1 = DT``;
4. while fewer than ``max_iter`` (30) iterations ran and either change (sum of absolute differences,
   measured at the start of the previous iteration, exactly as the MATLAB loop) exceeds ``thr``:
   ``DR1 ← DR2``, ``RT1 ← RT2``, recompute ``RR2 = N(S_D·RT1·S_T·RT1ᵀ)`` and
   ``RR1 = N(DR1ᵀ·S_C·DR1·S_D)``, then ``DR2 = decay·DR1·RR2 + (1−decay)·CD`` and
   ``RT2 = decay·RR1·RT1 + (1−decay)·DT``;
5. the score matrix is ``DR2``, min–max scaled over the whole matrix into [0, 1] (the raw score is not
   a probability).

``CD`` = training positives. ``S_C`` = Pearson correlation of expression profiles (the reference's
``pcc_cline``), ``S_D`` = Jaccard (Tanimoto) similarity of the fingerprints.

Drug–target network: GDSC and CCLE ship none, so by default the documented surrogate is used
(``DT`` = the drugs' 920-bit fingerprints, ``S_T`` = identity; spec §4.8 option (b), not the reference's
data). If the dataset provides a ``drug_features["targets"]`` block (n_drugs × n_targets, 0/1) it is used
as ``DT``; ``target_similarity`` (an n_targets × n_targets array, e.g. a PPI-based similarity) replaces
the identity ``S_T``. ``targets="fingerprint"`` forces the surrogate.

A cell line without training positives has an all-zero ``CD`` row; every ``DR`` row is a combination of
the same row of ``DR1`` only, so such a row is constant — HNMDRP cannot score new cell lines or patients
and declares only the ``random`` and ``new-drug`` protocols. New drugs get scores through ``RR2``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from drbench.api import Capabilities, Method, Prediction, Query, TrainView
from drbench.errors import UsageError
from drbench.methods.common import training_adjacency
from drbench.methods.srmf import jaccard_similarity, pearson_similarity
from drbench.params import NonNegativeFloat, PositiveInt, UnitInterval, check_choice

Targets = Literal["auto", "fingerprint", "dataset"]

EPS_NORM = 0.001


def filter_similarity(s: np.ndarray, min_sim: float, max_sim: float = 0.99) -> np.ndarray:
    """Cap at ``max_sim``, zero values below ``min_sim``, add the identity, cap at 1 (HNMDRP.m step 1)."""
    s = np.minimum(np.asarray(s, dtype=np.float64), max_sim)
    s = np.where(s < min_sim, 0.0, s)
    s = s + np.eye(s.shape[0])
    return np.minimum(s, 1.0)


def flow_normalise(m: np.ndarray) -> np.ndarray:
    """N(M)_ij = M_ij / (sqrt(rowsum_i · colsum_j) + 0.001)."""
    denom = np.sqrt(np.clip(np.outer(m.sum(1), m.sum(0)), 0.0, None)) + EPS_NORM
    return m / denom


def _drug_via_targets(s_d, rt, s_t):
    x = s_d @ rt
    x = x if s_t is None else x @ s_t
    return flow_normalise(x @ rt.T)


def hnmdrp_scores(cd, s_c, s_d, dt, s_t=None, decay=0.7, thr=1e-4, max_iter=30):
    """Raw HNMDRP score matrix DR2 (cells × drugs) and the number of iterations run.

    ``s_c``, ``s_d`` and ``s_t`` must already be filtered; ``s_t=None`` means the identity.
    """
    cd = np.asarray(cd, dtype=np.float64)
    dt = np.asarray(dt, dtype=np.float64)
    rr2 = _drug_via_targets(s_d, dt, s_t)
    rr1 = flow_normalise(cd.T @ s_c @ cd @ s_d)
    dr2, rt2 = cd @ rr2, rr1 @ dt
    dr1, rt1 = cd, dt
    i, err1, err2 = 0, 1.0, 1.0
    while i < max_iter and (err1 > thr or err2 > thr):
        i += 1
        err1 = float(np.abs(dr2 - dr1).sum())
        err2 = float(np.abs(rt2 - rt1).sum())
        dr1, rt1 = dr2, rt2
        rr2 = _drug_via_targets(s_d, rt1, s_t)
        rr1 = flow_normalise(dr1.T @ s_c @ dr1 @ s_d)
        dr2 = decay * dr1 @ rr2 + (1.0 - decay) * cd
        rt2 = decay * rr1 @ rt1 + (1.0 - decay) * dt
    return dr2, i


class HNMDRP(Method):
    """Heterogeneous-network information flow; no learned parameters, no validation use."""

    capabilities = Capabilities(tasks={"classification"}, protocols={"random", "new-drug"}, transductive=True,
                                needs={"expression", "fingerprint"}, selects=False)

    def __init__(self, decay: UnitInterval = 0.7, min_sim: UnitInterval = 0.3, max_sim: UnitInterval = 0.99,
                 thr: NonNegativeFloat = 1e-4, max_iter: PositiveInt = 30, targets: Targets = "auto",
                 target_similarity=None):
        self.decay = decay
        self.min_sim = min_sim
        self.max_sim = max_sim
        self.thr = thr
        self.max_iter = max_iter
        self.targets = targets
        self.target_similarity = target_similarity

    def _target_network(self, view: TrainView):
        check_choice("hnmdrp: targets", self.targets, Targets)
        dt = view.drug_features.get("targets") if self.targets in ("auto", "dataset") else None
        if dt is None:
            if self.targets == "dataset":
                raise UsageError("hnmdrp: targets='dataset' but the dataset has no drug_features['targets'] block")
            dt = np.asarray(view.drug_features["fingerprint"], dtype=np.float64)
            source = "fingerprint-surrogate"
        else:
            source = "dataset"
        dt = (np.nan_to_num(np.asarray(dt, dtype=np.float64)) > 0).astype(np.float64)
        s_t = None
        if self.target_similarity is not None:
            s_t = np.asarray(self.target_similarity, dtype=np.float64)
            if s_t.shape != (dt.shape[1], dt.shape[1]):
                raise UsageError(f"hnmdrp: target_similarity has shape {s_t.shape}, "
                                 f"expected {(dt.shape[1], dt.shape[1])} for {dt.shape[1]} targets")
            s_t = filter_similarity(np.nan_to_num(s_t), self.min_sim, self.max_sim)
        return dt, s_t, source

    def fit(self, view: TrainView) -> "HNMDRP":
        cd = training_adjacency(view).astype(np.float64)
        s_c = filter_similarity(pearson_similarity(view.cell_features["expression"]), self.min_sim, self.max_sim)
        s_d = filter_similarity(jaccard_similarity(view.drug_features["fingerprint"]), self.min_sim, self.max_sim)
        dt, s_t, source = self._target_network(view)
        raw, iters = hnmdrp_scores(cd, s_c, s_d, dt, s_t, decay=float(self.decay), thr=float(self.thr),
                                   max_iter=int(self.max_iter))
        raw = np.nan_to_num(raw)
        lo, hi = float(raw.min()), float(raw.max())
        self.raw_ = raw
        self.score_ = (raw - lo) / (hi - lo) if hi > lo else np.zeros_like(raw)
        self.fit_info_ = {"iterations": iters, "n_targets": int(dt.shape[1]), "raw_min": lo, "raw_max": hi,
                          "target_source_is_surrogate": int(source != "dataset")}
        return self

    def predict(self, query: Query) -> Prediction:
        return Prediction(self.score_[query.rows, query.cols])
