"""Naive baselines: global mean, per-drug mean, per-cell mean, mean effects and per-tissue mean.

Each gives a classification score (a smoothed sensitivity rate) and an IC50 estimate (a mean), fitted
on the training entries only. An entity without training entries falls back to the global value (the
per-tissue mean falls back to the drug's, see :class:`TissueMean`). None uses features, so each scores
pairs whose cell line and drug were both unseen (``new-pair``), by its fallbacks.
"""

from __future__ import annotations

import numpy as np

from drbench.api import PROTOCOL_KINDS, Capabilities, Method, Prediction, Query, TrainView
from drbench.params import NonNegativeFloat

_CAPS = Capabilities(tasks={"classification", "regression"}, protocols=PROTOCOL_KINDS, transductive=False,
                     needs=set(), selects=False)


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Naive(Method):
    capabilities = _CAPS

    def __init__(self, smoothing: NonNegativeFloat = 1.0):
        self.smoothing = smoothing

    def _stats(self, view: TrainView):
        tr = view.train
        b = np.where(tr, view.binary, np.nan)
        r = np.where(tr & ~np.isnan(view.ic50), view.ic50, np.nan)
        a = self.smoothing
        n_all, k_all = np.sum(tr), np.nansum(b)
        self.p_ = (k_all + a) / (n_all + 2 * a)
        self.mu_ = float(np.nanmean(r)) if np.isfinite(r).any() else 0.0
        return b, r

    @staticmethod
    def _rates(b, axis, a, p):
        k = np.nansum(b, axis=axis)
        n = np.sum(~np.isnan(b), axis=axis)
        return (k + a * 2 * p) / (n + 2 * a)  # shrink towards the global rate

    @staticmethod
    def _means(r, axis, mu):
        n = np.sum(~np.isnan(r), axis=axis)
        s = np.nansum(r, axis=axis)
        return np.where(n > 0, s / np.maximum(n, 1), mu)


class GlobalMean(_Naive):
    """Every pair gets the global training sensitivity rate and mean IC50."""

    def fit(self, view):
        self._stats(view)
        return self

    def predict(self, query: Query) -> Prediction:
        k = len(query)
        return Prediction(np.full(k, self.p_), np.full(k, self.mu_))


class DrugMean(_Naive):
    """Per-drug training sensitivity rate and mean IC50."""

    def fit(self, view):
        b, r = self._stats(view)
        self.rate_ = self._rates(b, 0, self.smoothing, self.p_)
        self.mean_ = self._means(r, 0, self.mu_)
        return self

    def predict(self, query):
        return Prediction(self.rate_[query.cols], self.mean_[query.cols])


class CellMean(_Naive):
    """Per-cell training sensitivity rate and mean IC50."""

    def fit(self, view):
        b, r = self._stats(view)
        self.rate_ = self._rates(b, 1, self.smoothing, self.p_)
        self.mean_ = self._means(r, 1, self.mu_)
        return self

    def predict(self, query):
        return Prediction(self.rate_[query.rows], self.mean_[query.rows])


class MeanEffects(_Naive):
    """Cell effect + drug effect: additive on the logit of the sensitivity rate and on IC50.

    IC50 = global mean + (cell mean − global mean) + (drug mean − global mean) (drevalpy's
    NaiveMeanEffects); score = sigmoid(logit p + cell effect + drug effect) with shrunken rates.
    """

    def fit(self, view):
        b, r = self._stats(view)
        lp = _logit(self.p_)
        self.cell_logit_ = _logit(self._rates(b, 1, self.smoothing, self.p_)) - lp
        self.drug_logit_ = _logit(self._rates(b, 0, self.smoothing, self.p_)) - lp
        self.cell_ic50_ = self._means(r, 1, self.mu_) - self.mu_
        self.drug_ic50_ = self._means(r, 0, self.mu_) - self.mu_
        return self

    def predict(self, query):
        i, j = query.rows, query.cols
        score = _sigmoid(_logit(self.p_) + self.cell_logit_[i] + self.drug_logit_[j])
        return Prediction(score, self.mu_ + self.cell_ic50_[i] + self.drug_ic50_[j])


class TissueMean(_Naive):
    """Per-(tissue, drug) training sensitivity rate and mean IC50: the tissue-aware drug mean.

    Where the pair's tissue has no training entries on the drug (a new tissue, an unknown tissue "") it
    falls back to the drug's rate and mean; for a drug without training entries, to the tissue's
    (then to the global value). Rates shrink towards that fallback with ``smoothing`` pseudo-counts.
    With every cell line of a tissue held out (``new-tissue``) it therefore predicts exactly the drug mean.
    """

    def fit(self, view):
        b, r = self._stats(view)
        a = self.smoothing
        tissue = np.full(view.shape[0], "") if view.cell_tissue is None else np.asarray(view.cell_tissue)
        self.tissues_ = sorted(set(tissue.tolist()) - {""})
        drug_rate = self._rates(b, 0, a, self.p_)
        drug_mean = self._means(r, 0, self.mu_)
        drug_labelled = (~np.isnan(b)).any(0)
        drug_measured = (~np.isnan(r)).any(0)
        rates, means = [], []
        for t in self.tissues_:
            bt, rt = b[tissue == t], r[tissue == t]
            t_rate = self._rates(bt.ravel(), 0, a, self.p_)
            t_mean = self._means(rt.ravel(), 0, self.mu_)
            base_rate = np.where(drug_labelled, drug_rate, t_rate)
            rates.append(self._rates(bt, 0, a, base_rate))
            means.append(self._means(rt, 0, np.where(drug_measured, drug_mean, t_mean)))
        self.rate_ = np.vstack(rates + [drug_rate])  # last row: cells of no known tissue
        self.mean_ = np.vstack(means + [drug_mean])
        return self

    def predict(self, query):
        n = len(query)
        tissue = np.full(n, "") if query.cell_tissue is None else np.asarray(query.cell_tissue)[query.rows]
        index = {t: i for i, t in enumerate(self.tissues_)}
        t = np.array([index.get(x, len(self.tissues_)) for x in tissue.tolist()], dtype=np.int64)
        return Prediction(self.rate_[t, query.cols], self.mean_[t, query.cols])
