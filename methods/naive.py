"""Naive baselines: global mean, per-drug mean, per-cell mean and mean effects.

Each gives a classification score (a smoothed sensitivity rate) and an IC50 estimate (a mean), fitted
on the training entries only. An entity without training entries falls back to the global value.
"""

from __future__ import annotations

import numpy as np

from drbench.api import Capabilities, Method, Prediction, Query, TrainView

_CAPS = Capabilities(tasks={"classification", "regression"}, transductive=False, needs=set(), selects=False)


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Naive(Method):
    capabilities = _CAPS

    def __init__(self, smoothing: float = 1.0):
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
