"""Statistics that say whether a difference between two methods on a board is real.

Every comparison is paired: method A and method B scored on the same folds (same masks). Differences are
oriented so that a positive value means A is better (for a lower-is-better metric such as RMSE the sign is
flipped by :func:`paired_differences`).

- :func:`corrected_t`: the Nadeau–Bengio corrected resampled t-test over fold × seed differences (mean
  difference, 95% CI, p). Fold differences are positively correlated (the folds share training data), so
  the variance of their mean is inflated by ``test_train_ratio`` = n_test / n_train. For a k-fold partition
  that ratio is 1 / (k − 1) (Bouckaert & Frank 2004); :func:`kfold_ratio` gives it.
- :func:`bayesian_correlated_t`: the Bayesian correlated t-test (Corani & Benavoli 2015) with a region of
  practical equivalence: P(A better), P(equivalent), P(B better), and a verdict when one of them is ≥ 0.95.
  It is the formula of ``baycomp.CorrelatedTTest`` (ρ = 1/k there), written on ``scipy.stats.t`` so that a
  recorded test/train ratio can be used; the tests check the two agree.
- :func:`entity_wilcoxon`: a Wilcoxon signed-rank test over entities (drugs or held-out cell lines), each
  entity's metric averaged over the folds and seeds that hold it, with the median difference and a
  bootstrap 95% CI that resamples entities.
- :func:`friedman_nemenyi` and :func:`cd_diagram`: all methods at once (Demšar 2006): Friedman over blocks
  (folds × seeds), the Nemenyi post-hoc test, and a critical-difference diagram.

With fewer than two pairs no test is made: the result says "undecided" and shows n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from drbench.metrics import LOWER_IS_BETTER

#: region of practical equivalence per metric (AUC/AUPRC/PCC/SCC in their own units, RMSE in log IC50 units)
DEFAULT_ROPE = {"auc": 0.01, "auprc": 0.01, "pcc": 0.01, "scc": 0.01, "rmse": 0.01,
                "pcc_resid": 0.01, "scc_resid": 0.01, "pcc_drug": 0.01}
#: posterior probability at which the Bayesian test gives a verdict
VERDICT_PROBABILITY = 0.95
VERDICTS = ("better", "equivalent", "worse", "undecided")


def base_metric(metric: str) -> str:
    """``auc_entity`` → ``auc``: the metric whose direction and ROPE apply."""
    return metric.removesuffix("_entity")


def kfold_ratio(k: int) -> float:
    """n_test / n_train of a k-fold partition, 1 / (k − 1); for k < 2 (one train/test split) 1 / 4 is assumed."""
    return 1.0 / (k - 1) if k >= 2 else 0.25


def ratio_note(k: int) -> str:
    """How a board or ``drbench compare`` states the n_test/n_train ratio used for ``k`` folds per seed."""
    if k >= 2:
        return f"{k} per seed, n_test/n_train taken as 1/(k − 1) = {kfold_ratio(k):.3g}"
    return (f"one train/test split per seed (n_test/n_train assumed {kfold_ratio(k):g}): the test entries are the "
            "same in every seed, so the intervals cover training variation, not the sampling of the test set")


def paired_differences(a: pd.Series, b: pd.Series, metric: str) -> pd.Series:
    """A − B on the keys (e.g. ``seed/fold``) both hold with a value, oriented so positive means A is better."""
    both = pd.concat([a.astype(float), b.astype(float)], axis=1, join="inner").dropna()
    d = both.iloc[:, 0] - both.iloc[:, 1]
    return -d if base_metric(metric) in LOWER_IS_BETTER else d


# ---------------------------------------------------------------------------------------------- fold level
def _scalar(x):
    """A 0-d result as a float; results over many comparisons (rows of a 2-D input) stay arrays."""
    return float(x) if np.ndim(x) == 0 else x


@dataclass(frozen=True)
class CorrectedT:
    n: int
    mean: float
    low: float
    high: float
    p: float


def corrected_t(d, test_train_ratio: float, confidence: float = 0.95) -> CorrectedT:
    """Nadeau–Bengio corrected resampled t-test on paired differences ``d`` (NaN CI and p when n < 2).

    t = mean(d) / sqrt((1/n + test_train_ratio) · s²) on n − 1 degrees of freedom. With s² = 0 the CI is
    the point mean(d) and p is 1 if it is 0, else 0. A 2-D ``d`` holds one comparison per row (the fields are
    then arrays).
    """
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    mean = d.mean(axis=-1) if n else np.full(d.shape[:-1], np.nan)
    if n < 2:
        nan = np.full(np.shape(mean), np.nan)
        return CorrectedT(n, _scalar(mean), _scalar(nan), _scalar(nan), _scalar(nan))
    se = np.sqrt((1.0 / n + test_train_ratio) * d.var(axis=-1, ddof=1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, 2 * stats.t.sf(np.abs(mean) / se, n - 1), np.where(mean == 0, 1.0, 0.0))
    return CorrectedT(n, _scalar(mean), _scalar(mean - half), _scalar(mean + half), _scalar(p))


@dataclass(frozen=True)
class BayesT:
    n: int
    p_better: float
    p_equivalent: float
    p_worse: float
    verdict: str


def bayesian_correlated_t(d, test_train_ratio: float, rope: float) -> BayesT:
    """Bayesian correlated t-test on paired differences ``d`` (positive: A better) with ROPE ±``rope``.

    The posterior of the mean difference is Student t with n − 1 degrees of freedom, location mean(d) and
    scale² = (1/n + ρ/(1 − ρ)) · s², where ρ/(1 − ρ) = n_test / n_train = ``test_train_ratio``. The verdict is
    "better", "equivalent" or "worse" when that posterior probability is ≥ 0.95, else "undecided" (also when
    n < 2). With s² = 0 the posterior is the point mean(d). A 2-D ``d`` holds one comparison per row.
    """
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    if n < 2:
        nan = _scalar(np.full(d.shape[:-1], np.nan))
        return BayesT(n, nan, nan, nan, "undecided" if d.ndim == 1 else np.full(d.shape[:-1], "undecided"))
    mean = d.mean(axis=-1)
    scale = np.sqrt((1.0 / n + test_train_ratio) * d.var(axis=-1, ddof=1))
    post = stats.t(n - 1, loc=mean, scale=np.where(scale > 0, scale, 1.0))
    worse = np.where(scale > 0, post.cdf(-rope), mean < -rope)
    upper = np.where(scale > 0, post.cdf(rope), mean <= rope)
    better, equivalent = 1.0 - upper, upper - worse
    verdict = np.select([better >= VERDICT_PROBABILITY, equivalent >= VERDICT_PROBABILITY,
                         worse >= VERDICT_PROBABILITY], ["better", "equivalent", "worse"], "undecided")
    return BayesT(n, _scalar(better), _scalar(equivalent), _scalar(worse),
                  str(verdict) if verdict.ndim == 0 else verdict)


# ---------------------------------------------------------------------------------------------- entity level
@dataclass(frozen=True)
class EntityTest:
    n: int
    median: float
    low: float
    high: float
    p: float


def entity_wilcoxon(a: pd.Series, b: pd.Series, metric: str, confidence: float = 0.95,
                    n_resamples: int = 2000, seed: int = 0) -> EntityTest:
    """Wilcoxon signed-rank test over the entities both methods scored (values indexed by entity id, already
    averaged over folds and seeds), with the median difference and a percentile bootstrap CI over entities.

    Positive differences mean A is better. NaN p and CI with fewer than 2 entities or all differences 0.
    """
    d = paired_differences(a, b, metric).to_numpy()
    n = len(d)
    median = float(np.median(d)) if n else np.nan
    if n < 2 or np.all(d == 0):
        return EntityTest(n, median, np.nan, np.nan, np.nan)
    p = float(stats.wilcoxon(d).pvalue)
    ci = stats.bootstrap((d,), np.median, confidence_level=confidence, n_resamples=n_resamples,
                         method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return EntityTest(n, median, float(ci.low), float(ci.high), p)


def entity_means(records: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per-entity records (columns method, entity, metric; one row per entity × fold × seed) → one value per
    (entity, method): the mean over the folds and seeds that hold it, as an entity × method frame."""
    return records.pivot_table(index="entity", columns="method", values=metric, aggfunc="mean")


# ---------------------------------------------------------------------------------------------- many methods
@dataclass(frozen=True)
class Friedman:
    statistic: float
    p: float
    mean_ranks: pd.Series  # rank 1 = best
    critical_difference: float  # Nemenyi, at ``alpha``
    nemenyi_p: pd.DataFrame  # pairwise adjusted p-values
    n_blocks: int
    alpha: float


def rank_blocks(scores: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """Within-block ranks (last axis = methods; rank 1 = best, ties averaged)."""
    return stats.rankdata(scores if lower_is_better else -scores, axis=-1)


def friedman_statistic(ranks: np.ndarray) -> np.ndarray:
    """Friedman χ² from within-block ranks (axis −2 = blocks, −1 = methods); vectorised over leading axes."""
    n, k = ranks.shape[-2:]
    r = ranks.mean(axis=-2)
    return 12 * n / (k * (k + 1)) * (np.sum(r ** 2, axis=-1) - k * (k + 1) ** 2 / 4)


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks: q_α √(k(k+1)/(6n)), q_α the studentized range / √2."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6 * n)))


def friedman_nemenyi(scores: pd.DataFrame, metric: str, alpha: float = 0.05) -> Friedman:
    """Friedman test over the blocks (rows: folds × seeds, complete ones only) of a block × method frame, then
    the Nemenyi post-hoc test (family-wise error controlled by the studentized range distribution)."""
    scores = scores.dropna()
    n, k = scores.shape
    ranks = rank_blocks(scores.to_numpy(dtype=float), base_metric(metric) in LOWER_IS_BETTER)
    mean_ranks = pd.Series(ranks.mean(axis=0), index=scores.columns)
    chi2 = float(friedman_statistic(ranks))
    p = float(stats.chi2.sf(chi2, k - 1))
    se = np.sqrt(k * (k + 1) / (6 * n))
    diff = np.abs(mean_ranks.to_numpy()[:, None] - mean_ranks.to_numpy()[None, :])
    pair_p = stats.studentized_range.sf(diff * np.sqrt(2) / se, k, np.inf)
    np.fill_diagonal(pair_p, 1.0)
    return Friedman(chi2, p, mean_ranks.sort_values(), nemenyi_cd(k, n, alpha),
                    pd.DataFrame(np.minimum(pair_p, 1.0), index=scores.columns, columns=scores.columns), n, alpha)


def cd_diagram(result: Friedman, path, title: str = "") -> None:
    """Critical-difference diagram: methods on the mean-rank axis; a bar joins methods whose mean ranks differ
    by less than the Nemenyi critical difference (not shown to differ)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = result.mean_ranks
    k = len(ranks)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.3 * k))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-k - 1, 2)
    ax.axhline(0, color="black", lw=1)
    for i in range(1, k + 1):
        ax.plot([i, i], [0, 0.15], color="black", lw=1)
        ax.text(i, 0.3, str(i), ha="center", fontsize=8)
    for j, (name, r) in enumerate(ranks.items()):
        y = -(j + 1)
        right = r > (k + 1) / 2
        edge = k + 0.5 if right else 0.5
        ax.plot([r, r, edge], [0, y, y], color="grey", lw=0.8)  # elbow from the rank to the method's label
        ax.text(edge, y + 0.15, f"{name} ({r:.2f})", fontsize=8, va="bottom", ha="right" if right else "left")
    cd = result.critical_difference
    ax.plot([1, 1 + cd], [1.2, 1.2], color="black", lw=2)
    ax.text(1 + cd / 2, 1.4, f"CD = {cd:.2f}", ha="center", fontsize=8)
    values = ranks.to_numpy()
    groups = []  # maximal runs of methods whose mean ranks lie within the CD of the run's first one
    for i in range(k):
        j = int(np.searchsorted(values, values[i] + cd, side="right")) - 1
        if j > i and (not groups or j > groups[-1][1]):
            groups.append((i, j))
    for g, (lo, hi) in enumerate(groups):
        y = -0.4 - 0.2 * g
        ax.plot([values[lo] - 0.05, values[hi] + 0.05], [y, y], color="tab:red", lw=3)
    ax.axis("off")
    ax.set_title(title or f"Friedman p = {result.p:.3g}; Nemenyi CD at α = {result.alpha} ({result.n_blocks} blocks)",
                 fontsize=9)
    fig.tight_layout()
    from drbench import atomic

    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
