"""Metrics over test entries: AUC, AUPRC (average precision), PCC, SCC, RMSE, and per-entity means.

A degenerate case (one class only, a constant prediction, too few pairs) gives NaN and a reason in
``notes``, never an exception.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata

CLASSIFICATION = ("auc", "auprc")
REGRESSION = ("pcc", "scc", "rmse")
ALL = CLASSIFICATION + REGRESSION
#: the labels ranked by the predicted IC50 alone (:func:`ic50_ranking`), for methods with an IC50 estimate
IC50_RANKING = ("auc_ic50", "auprc_ic50")
#: IC50 metrics that discount what the cell and drug means explain (:func:`normalized`)
NORMALIZED = ("pcc_resid", "scc_resid", "pcc_drug")
#: drugs with a defined per-drug PCC; recorded (possibly 0) whenever the normalized metrics were computed, so a run
#: whose normalized metrics are all undefined (e.g. a constant prediction) is told from one recorded before them
NORMALIZED_COUNT = "n_drugs_pcc"
#: metrics where lower is better
LOWER_IS_BETTER = {"rmse"}


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann–Whitney) identity; ties count one half. Equals sklearn's roc_auc_score."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Step-wise average precision, sum_n (R_n - R_{n-1}) P_n over distinct thresholds (sklearn's definition)."""
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(t)[last]
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    return float((xc @ yc) / np.sqrt((xc @ xc) * (yc @ yc)))


def _constant(x):
    return len(x) == 0 or np.all(x == x[0])


def classification(y: np.ndarray, score: np.ndarray) -> tuple[dict, list[str]]:
    notes = []
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    if len(y) == 0:
        return {"auc": np.nan, "auprc": np.nan}, ["no test entries"]
    if np.unique(y).size < 2:
        return {"auc": np.nan, "auprc": np.nan}, ["test entries hold one class only"]
    if not np.isfinite(score).all():
        return {"auc": np.nan, "auprc": np.nan}, ["prediction has NaN or inf"]
    if _constant(score):
        return {"auc": np.nan, "auprc": np.nan}, ["constant prediction"]
    return {"auc": roc_auc(y, score), "auprc": average_precision(y, score)}, notes


def regression(y: np.ndarray | None, pred: np.ndarray | None) -> tuple[dict, list[str]]:
    nan = {"pcc": np.nan, "scc": np.nan, "rmse": np.nan}
    if y is None or pred is None:
        return nan, []
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    ok = ~np.isnan(y)
    y, pred = y[ok], pred[ok]
    if len(y) < 3:
        return nan, ["fewer than 3 test entries with a measured IC50"]
    if not np.isfinite(pred).all():
        return nan, ["IC50 prediction has NaN or inf"]
    rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
    if _constant(pred) or _constant(y):
        return {"pcc": np.nan, "scc": np.nan, "rmse": rmse}, ["constant IC50 prediction" if _constant(pred) else "constant IC50"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"pcc": pearson(y, pred), "scc": pearson(rankdata(y), rankdata(pred)), "rmse": rmse}, []


def ic50_ranking(y, ic50_pred) -> dict:
    """ROC AUC and AUPRC of the labels ranked by the *predicted IC50* alone (lower IC50 = more sensitive), pooled
    over the test entries (:data:`IC50_RANKING`): the score definition of reports that turn an IC50 regressor into a
    classifier without the per-drug thresholds. NaN where a value is undefined."""
    m = classification(np.asarray(y, dtype=float), -np.asarray(ic50_pred, dtype=float))[0]
    return {"auc_ic50": m["auc"], "auprc_ic50": m["auprc"]}


def mean_effects_ic50(ic50: np.ndarray, train: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The mean-effects IC50 model fitted on the ``train`` entries of the ``ic50`` matrix: (global mean, cell
    effects, drug effects), an entity's effect being its training mean minus the global mean (0 for an entity
    without training entries, e.g. a held-out cell line). The prediction of pair (i, j) is
    ``mu + cell[i] + drug[j]`` (the ``mean-effects`` baseline's IC50)."""
    r = np.where(np.asarray(train, bool) & ~np.isnan(ic50), ic50, np.nan)
    if not np.isfinite(r).any():
        return 0.0, np.zeros(r.shape[0]), np.zeros(r.shape[1])
    mu = float(np.nanmean(r))

    def effects(axis):
        n = np.sum(~np.isnan(r), axis=axis)
        return np.where(n > 0, np.nansum(r, axis=axis) / np.maximum(n, 1) - mu, 0.0)

    return mu, effects(1), effects(0)


def normalized(ic50_true, ic50_pred, baseline, drug) -> tuple[dict, list[str]]:
    """IC50 metrics beyond the mean effects, over the test pairs:

    - ``pcc_resid`` / ``scc_resid``: Pearson / Spearman correlation of the residuals after subtracting the
      ``baseline`` (the mean-effects prediction of each pair, :func:`mean_effects_ic50`) from both the measured
      and the predicted IC50 — how well a method orders pairs beyond what cell and drug means already say;
    - ``pcc_drug``: Pearson correlation within each drug (``drug``: each pair's drug index), averaged over the
      drugs where it is defined (at least 3 measured pairs, neither side constant) — pooled PCC is inflated by
      differences between drugs' mean IC50, which this removes.

    NaN where undefined: a constant prediction carries no ordering (as for pooled PCC); a prediction equal to the
    baseline leaves no residual to correlate (with a note).
    """
    if ic50_true is None or ic50_pred is None:
        return {k: np.nan for k in NORMALIZED}, []
    nan = {**{k: np.nan for k in NORMALIZED}, NORMALIZED_COUNT: 0}
    y, p = np.asarray(ic50_true, float), np.asarray(ic50_pred, float)
    b, d = np.asarray(baseline, float), np.asarray(drug)
    ok = ~np.isnan(y)
    y, p, b, d = y[ok], p[ok], b[ok], d[ok]
    if len(y) < 3 or not np.isfinite(p).all() or _constant(p):
        return nan, []  # the pooled regression metrics already carry the note
    out, notes = dict(nan), []
    ry, rp = y - b, p - b
    if np.ptp(rp) <= 1e-12 * max(1.0, float(np.abs(p).max())):
        notes.append("IC50 prediction equals the mean effects: no residual to correlate")
    else:
        r, _ = regression(ry, rp)
        out["pcc_resid"], out["scc_resid"] = r["pcc"], r["scc"]
    per_drug = []
    for j in np.unique(d):
        sel = d == j
        if sel.sum() >= 3 and not _constant(y[sel]) and not _constant(p[sel]):
            per_drug.append(pearson(y[sel], p[sel]))
    out["pcc_drug"] = float(np.mean(per_drug)) if per_drug else np.nan
    out[NORMALIZED_COUNT] = len(per_drug)
    return out, notes


def evaluate(y, score, ic50_true=None, ic50_pred=None) -> tuple[dict, list[str]]:
    c, n1 = classification(y, score)
    r, n2 = regression(ic50_true, ic50_pred)
    return {**c, **r}, n1 + n2


def entity_table(entity: np.ndarray, y, score, ic50_true=None, ic50_pred=None) -> dict:
    """Metrics of each entity (cell or drug index): ``{"entity", "n", "positives", <metric>...}`` as columns,
    one value per entity in sorted entity order (NaN where a metric is undefined for that entity)."""
    entity = np.asarray(entity)
    y = np.asarray(y)
    ids = np.unique(entity)
    table = {"entity": ids, "n": np.zeros(len(ids), np.int64), "positives": np.zeros(len(ids), np.int64),
             **{k: np.full(len(ids), np.nan) for k in ALL}}
    for i, e in enumerate(ids):
        sel = entity == e
        m, _ = evaluate(y[sel], score[sel],
                        None if ic50_true is None else ic50_true[sel],
                        None if ic50_pred is None else ic50_pred[sel])
        table["n"][i], table["positives"][i] = int(sel.sum()), int((y[sel] == 1).sum())
        for k in ALL:
            table[k][i] = m[k]
    return table


def per_entity(entity: np.ndarray, y, score, ic50_true=None, ic50_pred=None, table: dict | None = None
               ) -> tuple[dict, dict]:
    """Metrics per entity (cell or drug index), then their mean over entities where defined.

    Returns (means keyed ``<metric>_entity``, counts keyed ``n_entities_<metric>``); ``table`` is the
    :func:`entity_table` of the same inputs when already computed.
    """
    table = entity_table(entity, y, score, ic50_true, ic50_pred) if table is None else table
    means, counts = {}, {}
    for k in ALL:
        v = np.asarray(table[k], dtype=float)
        ok = ~np.isnan(v)
        means[f"{k}_entity"] = float(v[ok].mean()) if ok.any() else np.nan
        counts[f"n_entities_{k}"] = int(ok.sum())
    return means, counts
