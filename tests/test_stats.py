"""The comparison statistics: known inputs, a planted difference that must be found, and measured false-positive
rates over simulated null comparisons (printed; run with ``-s`` to see them).

Simulated fold results: k-fold CV repeated over r seeds gives n = k·r paired differences that are positively
correlated because the folds share training data. The simulation uses the correlation model the Nadeau–Bengio
correction is built on: every pair of differences has correlation ρ = n_test / (n_test + n_train) = 1/k
(d_i = δ + σ(√ρ·z_0 + √(1−ρ)·z_i), z standard normal), so a test that treats folds as independent is too
liberal and the corrected one should sit at α.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

from drbench import stats

ALPHA = 0.05
SIMS = 4000


def correlated_folds(rng, sims, k, r, delta=0.0, sigma=0.01):
    """``sims`` × (k·r) fold differences, equicorrelated with ρ = 1/k."""
    rho = 1.0 / k
    z0 = rng.standard_normal((sims, 1))
    z = rng.standard_normal((sims, k * r))
    return delta + sigma * (np.sqrt(rho) * z0 + np.sqrt(1 - rho) * z)


def t_p(d, ratio):
    """Corrected t p-values of many simulated comparisons (rows of ``d``)."""
    return stats.corrected_t(d, ratio).p


def bayes_probs(d, ratio, rope):
    res = stats.bayesian_correlated_t(d, ratio, rope)
    return res.p_better, res.p_equivalent, res.p_worse


# ---------------------------------------------------------------------------------------------- corrected t
def test_corrected_t_matches_the_formula_on_known_inputs():
    d = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    res = stats.corrected_t(d, test_train_ratio=0.25)
    se = np.sqrt((1 / 5 + 0.25) * 0.00025)  # s² of 1..5 (× 0.01) is 2.5 × 0.01²
    assert res.n == 5 and res.mean == pytest.approx(0.03)
    assert res.high - res.mean == pytest.approx(2.7764451 * se, rel=1e-6)  # t_{0.975, 4}
    assert res.p == pytest.approx(2 * sst.t.sf(0.03 / se, 4))
    assert res.p == pytest.approx(0.04742, abs=1e-4)
    # with no correction it is the ordinary one-sample t-test
    assert stats.corrected_t(d, 0.0).p == pytest.approx(sst.ttest_1samp(d, 0.0).pvalue)


def test_corrected_t_with_fewer_than_two_pairs_makes_no_test():
    res = stats.corrected_t([0.02], 0.25)
    assert res.n == 1 and np.isnan(res.p) and np.isnan(res.low)
    assert stats.bayesian_correlated_t([0.02], 0.25, 0.01).verdict == "undecided"


def test_corrected_t_is_calibrated_on_correlated_folds_and_the_naive_t_is_not():
    rng = np.random.default_rng(1)
    rates = {}
    for k, r in ((5, 1), (5, 5), (10, 1)):
        d = correlated_folds(rng, SIMS, k, r)
        rates[(k, r, "corrected")] = float(np.mean(t_p(d, stats.kfold_ratio(k)) < ALPHA))
        rates[(k, r, "naive")] = float(np.mean(t_p(d, 0.0) < ALPHA))
    print("\nfalse-positive rate at α = 0.05 (corrected / naive paired t):",
          {f"k={k},r={r}": (rates[(k, r, 'corrected')], rates[(k, r, 'naive')]) for k, r in ((5, 1), (5, 5), (10, 1))})
    for k, r in ((5, 1), (5, 5), (10, 1)):
        assert 0.035 <= rates[(k, r, "corrected")] <= 0.065
        assert rates[(k, r, "naive")] > 0.10  # treating folds as independent is too liberal


def test_corrected_t_finds_a_planted_difference_and_its_ci_covers_it():
    rng = np.random.default_rng(2)
    power = {}
    for delta in (0.005, 0.01, 0.02):
        d = correlated_folds(rng, SIMS, 5, 1, delta=delta, sigma=0.005)
        power[delta] = float(np.mean(t_p(d, 0.25) < ALPHA))
    res = stats.corrected_t(d, 0.25)
    half = res.high - res.mean
    assert half == pytest.approx(sst.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 0.25) * d.var(1, ddof=1)))
    coverage = float(np.mean(np.abs(d.mean(1) - 0.02) <= half))
    print(f"\npower of the corrected t, σ = 0.005, 5 folds × 1 seed, by planted δ: {power}; "
          f"95% CI coverage at δ = 0.02: {coverage:.3f}")
    assert power[0.02] > 0.95 and power[0.005] < power[0.01] < power[0.02]
    assert 0.935 <= coverage <= 0.965
    one = stats.corrected_t(d[0], 0.25)  # one comparison gives the same numbers as its row of many
    assert (one.mean, one.low, one.high, one.p) == pytest.approx((res.mean[0], res.low[0], res.high[0], res.p[0]))


# ---------------------------------------------------------------------------------------------- Bayesian
def test_bayesian_correlated_t_matches_the_formula_and_baycomp():
    d = np.array([0.012, 0.004, 0.02, 0.015, 0.009, 0.011, 0.003, 0.018, 0.01, 0.014])
    res = stats.bayesian_correlated_t(d, test_train_ratio=1 / 4, rope=0.01)
    scale = np.sqrt((1 / 10 + 1 / 4) * d.var(ddof=1))
    post = sst.t(9, loc=d.mean(), scale=scale)
    assert res.p_worse == pytest.approx(post.cdf(-0.01))
    assert res.p_better == pytest.approx(post.sf(0.01))
    assert res.p_better + res.p_equivalent + res.p_worse == pytest.approx(1.0)
    baycomp = pytest.importorskip("baycomp")
    a = 0.8 + d  # two "runs" of 5-fold CV: baycomp sets ρ = 1/k = 1/5, i.e. n_test/n_train = 1/4
    left, rope, right = baycomp.CorrelatedTTest.probs(a, np.full(10, 0.8), rope=0.01, runs=2)
    assert (res.p_better, res.p_equivalent, res.p_worse) == pytest.approx((left, rope, right), abs=1e-9)


def test_bayesian_verdicts_follow_the_posterior():
    assert stats.bayesian_correlated_t([0.05, 0.06, 0.055, 0.052, 0.058], 0.25, 0.01).verdict == "better"
    assert stats.bayesian_correlated_t([-0.05, -0.06, -0.055, -0.052, -0.058], 0.25, 0.01).verdict == "worse"
    assert stats.bayesian_correlated_t([0.001, -0.001, 0.0005, 0.0, -0.0005], 0.25, 0.01).verdict == "equivalent"
    assert stats.bayesian_correlated_t([0.03, -0.02, 0.01, 0.04, -0.03], 0.25, 0.01).verdict == "undecided"
    same = stats.bayesian_correlated_t([0.0] * 5, 0.25, 0.01)  # no spread: the posterior is the point 0
    assert same.verdict == "equivalent" and same.p_equivalent == 1.0


def test_a_better_verdict_is_the_one_sided_bound_of_the_corrected_t_not_its_two_sided_ci():
    """The README: verdict and CI share one Student t, but the verdict is one-sided beyond the ROPE and the CI
    two-sided around 0, so 'better' can sit beside a CI reaching below 0, and a CI excluding 0 can be undecided."""
    rng = np.random.default_rng(7)
    better_ci_spans_0 = undecided_ci_excludes_0 = 0
    wide_and_narrow = [correlated_folds(rng, 1000, k=5, r=5, delta=0.085, sigma=0.08),
                       correlated_folds(rng, 1000, k=5, r=5, delta=0.02, sigma=0.02)]
    for d in np.vstack(wide_and_narrow):
        t = stats.corrected_t(d, 0.25)
        b = stats.bayesian_correlated_t(d, 0.25, 0.01)
        one_sided_low = t.mean - sst.t.ppf(0.95, t.n - 1) * (t.high - t.mean) / sst.t.ppf(0.975, t.n - 1)
        assert (b.verdict == "better") == (one_sided_low >= 0.01)
        better_ci_spans_0 += b.verdict == "better" and t.low < 0
        undecided_ci_excludes_0 += b.verdict == "undecided" and t.low > 0
    assert better_ci_spans_0 > 0 and undecided_ci_excludes_0 > 0


def test_bayesian_verdict_error_rates_on_simulated_folds():
    rng = np.random.default_rng(3)
    k, ratio = 5, stats.kfold_ratio(5)
    null = correlated_folds(rng, SIMS, k, 1, delta=0.0, sigma=0.01)
    better, _, worse = bayes_probs(null, ratio, rope=0.0)
    false_better = float(np.mean(better >= 0.95))  # with no ROPE, "A better" at 0.95 is a one-sided test at 0.05
    false_either = float(np.mean((better >= 0.95) | (worse >= 0.95)))
    edge = correlated_folds(rng, SIMS, k, 1, delta=0.01, sigma=0.005)  # true difference exactly at the ROPE edge
    _, equivalent, _ = bayes_probs(edge, ratio, rope=0.01)
    false_equivalent = float(np.mean(equivalent >= 0.95))
    found_at_002 = float(np.mean(stats.bayesian_correlated_t(
        correlated_folds(rng, SIMS, k, 1, delta=0.02, sigma=0.005), ratio, rope=0.01).verdict == "better"))
    planted = correlated_folds(rng, SIMS, k, 1, delta=0.04, sigma=0.005)
    verdicts = stats.bayesian_correlated_t(planted, ratio, rope=0.01).verdict
    found = float(np.mean(verdicts == "better"))
    first = stats.bayesian_correlated_t(planted[0], ratio, rope=0.01)
    assert first.verdict == verdicts[0]
    print(f"\nBayesian correlated t (5 folds): null 'A better' rate {false_better:.3f}, either direction "
          f"{false_either:.3f}; 'equivalent' when δ = ROPE {false_equivalent:.3f}; 'better' found (σ = 0.005, "
          f"ROPE 0.01) for δ = 0.02: {found_at_002:.3f}, δ = 0.04: {found:.3f}")
    assert 0.035 <= false_better <= 0.065
    assert false_either <= 0.13
    assert false_equivalent <= 0.065
    assert found > 0.8


# ---------------------------------------------------------------------------------------------- per entity
def test_entity_wilcoxon_finds_a_planted_shift_with_a_bootstrap_ci():
    rng = np.random.default_rng(4)
    ids = [f"drug{i}" for i in range(120)]
    base = pd.Series(rng.uniform(0.6, 0.9, 120), index=ids)
    a = base + 0.02 + rng.normal(0, 0.03, 120)
    b = base + rng.normal(0, 0.03, 120)
    res = stats.entity_wilcoxon(a, b, "auc")
    assert res.n == 120 and res.p < 0.01
    assert res.low <= 0.02 <= res.high and res.low > 0
    flipped = stats.entity_wilcoxon(a, b, "rmse")  # lower is better: the same numbers mean A is worse
    assert flipped.median == pytest.approx(-res.median) and flipped.high < 0
    assert np.isnan(stats.entity_wilcoxon(a.iloc[:1], b.iloc[:1], "auc").p)


def test_entity_wilcoxon_false_positive_rate():
    rng = np.random.default_rng(5)
    d = rng.standard_t(3, size=(SIMS, 80)) * 0.03  # heavy-tailed, symmetric entity differences, no effect
    rate = float(np.mean(sst.wilcoxon(d, axis=1).pvalue < ALPHA))
    print(f"\nWilcoxon over 80 entities, false-positive rate at α = 0.05: {rate:.3f}")
    assert 0.035 <= rate <= 0.065


def test_entity_means_average_over_folds_and_seeds():
    rec = pd.DataFrame({"method": ["a", "a", "a", "b"], "entity": ["x", "x", "y", "x"], "auc": [0.6, 0.8, 0.5, 0.9]})
    m = stats.entity_means(rec, "auc")
    assert m.loc["x", "a"] == pytest.approx(0.7) and m.loc["y", "a"] == 0.5 and np.isnan(m.loc["y", "b"])


# ---------------------------------------------------------------------------------------------- many methods
def test_friedman_statistic_matches_scipy_and_nemenyi_cd_matches_demsar():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(12, 4))
    ours = stats.friedman_statistic(stats.rank_blocks(x, lower_is_better=False))
    assert ours == pytest.approx(sst.friedmanchisquare(*x.T).statistic)
    assert stats.nemenyi_cd(5, 1) == pytest.approx(2.728 * np.sqrt(5 * 6 / 6), rel=1e-3)  # Demšar 2006, Table 5


def test_friedman_and_nemenyi_null_rates_and_planted_effect(tmp_path):
    rng = np.random.default_rng(7)
    n, k = 25, 5
    block = rng.normal(size=(SIMS, n, 1))  # blocks (folds) differ in difficulty; methods are equal
    x = block + 0.3 * rng.normal(size=(SIMS, n, k))
    ranks = stats.rank_blocks(x, lower_is_better=False)
    p = sst.chi2.sf(stats.friedman_statistic(ranks), k - 1)
    mr = ranks.mean(axis=1)
    spread = mr.max(1) - mr.min(1)
    friedman_rate = float(np.mean(p < ALPHA))
    nemenyi_fwer = float(np.mean(spread > stats.nemenyi_cd(k, n)))
    # folds that share training data: a method's luck is shared by its folds (correlation 1/k across blocks)
    shared = np.sqrt(1 / 5) * rng.normal(size=(SIMS, 1, k)) + np.sqrt(4 / 5) * rng.normal(size=(SIMS, n, k))
    p_corr = sst.chi2.sf(stats.friedman_statistic(stats.rank_blocks(block + 0.3 * shared, False)), k - 1)
    correlated_rate = float(np.mean(p_corr < ALPHA))
    print(f"\nFriedman false-positive rate (25 independent blocks, 5 methods): {friedman_rate:.3f}; Nemenyi "
          f"family-wise rate: {nemenyi_fwer:.3f}; Friedman with blocks correlated 1/5 within a method: "
          f"{correlated_rate:.3f}")
    assert 0.03 <= friedman_rate <= 0.065
    assert nemenyi_fwer <= 0.065
    assert correlated_rate > 0.1  # documented: Friedman over correlated folds is too liberal

    scores = pd.DataFrame(block[0] + 0.3 * rng.normal(size=(n, k)), columns=list("abcde"))
    scores["a"] += 1.0  # planted: a is best in (nearly) every block
    res = stats.friedman_nemenyi(scores, "auc")
    assert res.p < 1e-6 and res.mean_ranks.index[0] == "a"
    assert res.nemenyi_p.loc["a", res.mean_ranks.index[-1]] < ALPHA
    path = tmp_path / "cd.png"
    stats.cd_diagram(res, path)
    assert path.stat().st_size > 1000
    rmse = stats.friedman_nemenyi(scores, "rmse")  # lower is better: a is now last
    assert rmse.mean_ranks.index[-1] == "a"
