"""``drbench compare``: is method A really better than method B on a board?

Reads the board's committed per-fold CSV (``leaderboards/BOARD.csv``) and/or the user's MLflow store, pairs A and
B on the (seed, fold) both ran, refuses unless those are the same folds (equal mask hashes), and prints every
statistic of :mod:`drbench.stats` with its verdict: the corrected resampled t-test, the Bayesian correlated t-test
with a ROPE, the per-entity Wilcoxon test where per-entity records exist (``BOARD-entities.csv``), and with
``--against-board`` the comparison with every method of the board plus Friedman + Nemenyi over the folds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from drbench import boards, leaderboard, stats, tracking
from drbench.errors import DataError, UsageError
from drbench.inputs import check_output_dir
from drbench.metrics import ALL, NORMALIZED

#: the metrics a comparison can be made on
METRICS = ALL + NORMALIZED


def _board_options(board: str, dataset: str, protocol: str) -> dict | None:
    """The resolved protocol options of a published board of that name, dataset and protocol (a store's runs made
    with other options, e.g. per-target runs beside a grouped board, are then left out as its tables leave them
    out); None for a board drbench does not publish."""
    from drbench.boards import BOARDS
    from drbench.protocols import get_protocol

    b = next((b for b in BOARDS if b.name == board and b.dataset == dataset and b.protocol == protocol), None)
    return None if b is None else get_protocol(protocol).resolve_options(b.options)


def load_runs(board: str, boards_dir="leaderboards", tracking_uri=None, experiment="drbench") -> pd.DataFrame:
    """Finished per-fold rows of the board's CSV, joined (and, per job key, replaced) by the runs of the same
    dataset and protocol in ``tracking_uri`` (marked ``from_store``)."""
    csv = Path(boards_dir) / f"{board}.csv"
    if not csv.exists():
        known = sorted(p.stem for p in Path(boards_dir).glob("*.csv") if (Path(boards_dir) / f"{p.stem}.md").exists())
        raise UsageError(f"no board CSV {csv}; boards in {boards_dir}: {', '.join(known) or 'none'}")
    df = leaderboard.read_csv(csv)
    df = df[df["status"] == "finished"].assign(from_store=False)
    if df.empty or df["fold"].isna().all():
        raise DataError(f"{csv} holds no per-fold runs to compare")
    if tracking_uri:
        ds, proto = df["dataset"].iloc[0], df["protocol"].iloc[0]
        mine = leaderboard.collect([experiment], tracking_uri, dataset=ds, protocol=proto,
                                   options=_board_options(board, ds, proto))
        mine = mine[mine["status"] == "finished"].assign(from_store=True)
        df = pd.concat([df[~df["job_key"].isin(set(mine["job_key"]))], mine], ignore_index=True)
    return df


def _runs_of(df: pd.DataFrame, method: str, selection: str) -> pd.DataFrame:
    rows = df[(df["method"] == method) & (df["selection"] == selection)]
    if rows.empty:
        have = sorted(set(df.loc[df["selection"] == selection, "method"]))
        raise UsageError(f"no finished {selection}-selected runs of {method!r}; methods with such runs: "
                         f"{', '.join(have) or 'none'}")
    return rows


def _masks(rows: pd.DataFrame) -> dict:
    return {(int(s), int(f)): m for s, f, m in zip(rows["seed"], rows["fold"], rows["mask_sha256"])}


def _left_out(keys: set, all_keys: set) -> str:
    """Name (seed, fold) pairs left out, a whole seed as "seed s", else "seed s fold(s) f, g"."""
    parts = []
    for seed in sorted({s for s, _ in keys}):
        folds = sorted(f for s, f in keys if s == seed)
        whole = len(folds) == sum(1 for s, _ in all_keys if s == seed)
        parts.append(f"seed {seed}" if whole else f"seed {seed} fold{'s' if len(folds) > 1 else ''} "
                     + ", ".join(map(str, folds)))
    return "; ".join(parts)


def paired_runs(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str):
    """A's and B's runs of the (seed, fold) pairs both ran, as the board's own tables pair them (a board may hold
    more seeds or folds of one method than of another), and a note naming what is left out ("" if nothing).
    Refuses (UsageError, one line) when a run lacks its mask hash, when they share no (seed, fold), or when a
    shared (seed, fold) was cut differently (unequal mask hashes): those are not the same folds."""
    ma, mb = _masks(a), _masks(b)
    for name, m in ((name_a, ma), (name_b, mb)):
        if any(pd.isna(v) for v in m.values()):
            raise UsageError(f"{name} has runs without a recorded mask hash (mask_sha256): cannot check its folds")
    both = set(ma) & set(mb)
    if not both:
        sa, sb = sorted({s for s, _ in ma}), sorted({s for s, _ in mb})
        raise UsageError(f"{name_a} and {name_b} were not run on the same folds: no (seed, fold) in common "
                         f"({name_a}: seeds {sa}; {name_b}: seeds {sb})")
    differ = sorted(k for k in both if ma[k] != mb[k])
    if differ:
        raise UsageError(f"{name_a} and {name_b} were not run on the same folds: the masks of (seed, fold) "
                         f"{differ} differ (mask_sha256; runs made with other protocol options, e.g. --per-target, "
                         f"or on other data?)")
    left = [f"{n} also has {_left_out(set(m) - both, set(m))}" for n, m in ((name_a, ma), (name_b, mb))
            if set(m) - both]
    note = f"compared on the {len(both)} (seed, fold) both ran ({'; '.join(left)})" if left else ""
    a, b = (rows[[(int(s), int(f)) in both for s, f in zip(rows["seed"], rows["fold"])]] for rows in (a, b))
    return a, b, note


def metric_column(df: pd.DataFrame, metric: str) -> str:
    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}; choose from: {', '.join(METRICS)}")
    headline = df["headline"].dropna().iloc[0] if df["headline"].notna().any() else "pooled"
    return leaderboard.metric_column(metric, headline)


def _series(rows: pd.DataFrame, col: str) -> pd.Series:
    return rows.set_index(rows["seed"].astype(int).astype(str) + "/" + rows["fold"].astype(int).astype(str))[col]


def fold_comparison(a: pd.DataFrame, b: pd.DataFrame, col: str, rope: float, k: int | None = None) -> dict:
    """The fold-level statistics of A against B (positive Δ: A better). ``k``: folds per seed of the partition
    (pass the board's, read from all its runs: every method shares the masks, so two methods that have run only some
    folds so far are compared as the board's tables compare them; by default the most folds under one seed that A
    and B ran)."""
    k = k or leaderboard.folds_per_seed(pd.concat([a, b]))
    ratio = stats.kfold_ratio(k)
    d = stats.paired_differences(_series(a, col), _series(b, col), col)
    return {"k": k, "t": stats.corrected_t(d, ratio), "bayes": stats.bayesian_correlated_t(d, ratio, rope),
            "mean_a": float(_series(a, col).astype(float).mean()), "mean_b": float(_series(b, col).astype(float).mean())}


def entity_comparison(entities: pd.DataFrame | None, a: str, b: str, selection: str, metric: str, job_keys=None):
    """The per-entity Wilcoxon test, or the reason it cannot be made; with ``job_keys``, over the records of those
    runs only (the (seed, fold) pairs both methods ran)."""
    if metric in NORMALIZED:
        return f"no per-entity form of {leaderboard.LABELS[metric]}"
    if entities is None:
        return "per-entity records missing: this board has no BOARD-entities.csv"
    rec = entities[entities["selection"] == selection]
    if job_keys is not None:
        rec = rec[rec["job_key"].isin(set(job_keys))]
    missing = [m for m in (a, b) if m not in set(rec["method"])]
    if missing:
        return f"per-entity records missing for {', '.join(missing)}"
    means = stats.entity_means(rec[rec["method"].isin([a, b])], metric).reindex(columns=[a, b])
    undefined = [m for m in (a, b) if means[m].isna().all()]  # e.g. a per-drug AUC of a per-drug constant
    if undefined:
        return f"no per-entity {leaderboard.LABELS[metric]} defined for {', '.join(undefined)}"
    test = stats.entity_wilcoxon(means[a], means[b], metric)
    if test.n >= 2 and np.isnan(test.p) and test.median == 0:  # the test's own rule: nothing to rank
        return f"every one of the {test.n} entities has the same {leaderboard.LABELS[metric]} for both: no test"
    if test.n < 2:
        return f"entities scored by both: {test.n}, too few for a test"
    return test


def _names(methods: list[str]) -> str:
    return ", ".join(methods) or "none"


def _verdict_line(name_a: str, name_b: str, verdict: str) -> str:
    return {"better": f"{name_a} is better than {name_b}", "worse": f"{name_a} is worse than {name_b}",
            "equivalent": f"{name_a} and {name_b} are practically equivalent",
            "undecided": f"undecided between {name_a} and {name_b}"}[verdict]


def report_pair(df: pd.DataFrame, a: str, b: str, metric: str, rope: float, selection: str,
                entities: pd.DataFrame | None) -> list[str]:
    ra, rb, pair_note = paired_runs(_runs_of(df, a, selection), _runs_of(df, b, selection), a, b)
    col = metric_column(df, metric)
    for name, rows in ((a, ra), (b, rb)):
        if rows[col].isna().all():
            raise UsageError(f"{name} has no {leaderboard.LABELS[metric]} values in its {selection}-selected runs")
    fc = fold_comparison(ra, rb, col, rope, leaderboard.folds_per_seed(df))
    t, by = fc["t"], fc["bayes"]
    label = leaderboard.LABELS[metric] + (" per entity, averaged within each fold" if col.endswith("_entity") else "")
    lines = [f"{a} vs {b}: {label}; {t.n} paired folds ({stats.ratio_note(fc['k'])}); means {fc['mean_a']:.4f} vs "
             f"{fc['mean_b']:.4f}; Δ > 0 means {a} is better"
             + (" (RMSE: lower is better, sign flipped)" if metric == "rmse" else "")]
    if pair_note:
        lines.append(f"  {pair_note}")
    if t.n < 2:
        lines.append(f"  corrected resampled t (Nadeau–Bengio): no test with n = {t.n} paired folds")
    else:
        lines.append(f"  corrected resampled t (Nadeau–Bengio): Δ = {t.mean:+.4f}, 95% CI [{t.low:+.4f}, {t.high:+.4f}], "
                     f"p = {t.p:.3g}")
    lines.append(f"  Bayesian correlated t (ROPE ±{rope:g}): P({a} better) = {by.p_better:.3f}, P(equivalent) = "
                 f"{by.p_equivalent:.3f}, P({b} better) = {by.p_worse:.3f} -> {by.verdict}")
    ent = entity_comparison(entities, a, b, selection, metric, pd.concat([ra, rb])["job_key"])
    if isinstance(ent, str):
        lines.append(f"  per-entity Wilcoxon: {ent}")
    else:
        lines.append(f"  per-entity Wilcoxon over {ent.n} entities: median Δ = {ent.median:+.4f}, bootstrap 95% CI "
                     f"[{ent.low:+.4f}, {ent.high:+.4f}], p = {ent.p:.3g}")
    lines.append(f"  verdict (Bayesian correlated t, posterior >= {stats.VERDICT_PROBABILITY:g}): "
                 f"{_verdict_line(a, b, by.verdict)}")
    return lines


def report_against_board(df: pd.DataFrame, a: str, metric: str, rope: float, selection: str,
                         entities: pd.DataFrame | None, cd_diagram=None) -> list[str]:
    ra = _runs_of(df, a, selection)
    col = metric_column(df, metric)
    others = sorted(m for m in set(df.loc[df["selection"] == selection, "method"]) if m != a)
    lines = [f"{a} against every method of the board ({leaderboard.LABELS[metric]}, {selection} selection; "
             f"Δ > 0 means {a} is better; ROPE ±{rope:g})", "",
             "| method | paired folds | Δ [95% CI] (corrected t) | p | P(better) | P(equiv.) | P(worse) | verdict | "
             "per-entity Wilcoxon |",
             "|---|---|---|---|---|---|---|---|---|"]
    blocks = {a: _series(ra, col)}
    for m in others:
        ra_m, rb, _ = paired_runs(ra, _runs_of(df, m, selection), a, m)
        if rb[col].isna().all():
            continue
        blocks[m] = _series(rb, col)
        fc = fold_comparison(ra_m, rb, col, rope, leaderboard.folds_per_seed(df))
        t, by = fc["t"], fc["bayes"]
        ci = f"{t.mean:+.4f} [{t.low:+.4f}, {t.high:+.4f}]" if t.n >= 2 else f"n = {t.n}"
        ent = (entity_comparison(entities, a, m, selection, metric, pd.concat([ra_m, rb])["job_key"])
               if entities is not None else "—")
        if not isinstance(ent, str):
            ent = f"median {ent.median:+.4f} [{ent.low:+.4f}, {ent.high:+.4f}], p = {ent.p:.3g}"
        lines.append(f"| {m} | {t.n} | {ci} | {t.p:.3g} | {by.p_better:.3f} | {by.p_equivalent:.3f} | "
                     f"{by.p_worse:.3f} | {by.verdict} | {ent} |")
    if entities is None:
        lines += ["", "Per-entity Wilcoxon: per-entity records missing (this board has no BOARD-entities.csv)."]
    frame = pd.DataFrame(blocks).astype(float).dropna()
    if frame.shape[0] >= 2 and frame.shape[1] >= 3:
        fr = stats.friedman_nemenyi(frame, col)
        ranks = ", ".join(f"{m} {r:.2f}" for m, r in fr.mean_ranks.items())
        differ = [m for m in fr.nemenyi_p.columns if m != a and fr.nemenyi_p.loc[a, m] < fr.alpha]
        lines += ["", f"Friedman over {fr.n_blocks} folds × seeds, {frame.shape[1]} methods: "
                      f"chi2 = {fr.statistic:.2f}, p = {fr.p:.3g}. Mean ranks (1 = best): {ranks}. Nemenyi critical difference at α = "
                      f"{fr.alpha:g}: {fr.critical_difference:.2f}; {a} differs from: {_names(differ)}. "
                      "(Friedman treats the folds as independent blocks; they share training data, so read it as "
                      "liberal.)"]
        if cd_diagram:
            Path(cd_diagram).parent.mkdir(parents=True, exist_ok=True)
            stats.cd_diagram(fr, cd_diagram)
            lines.append(f"Critical-difference diagram: {cd_diagram}")
    else:
        lines += ["", "Friedman: needs at least 3 methods with values on 2 complete folds."]
    return lines


def _check_cd_diagram(path, against_board: bool) -> None:
    """``--cd-diagram FILE``: only with ``--against-board`` (a pair has no diagram), a picture format matplotlib
    writes, and a folder that can take it; checked before the board is read."""
    from matplotlib.backend_bases import FigureCanvasBase

    if not against_board:
        raise UsageError("--cd-diagram draws every method of a board: give it with --against-board")
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in formats:
        raise UsageError(f"--cd-diagram {path}: unknown picture format {suffix or '(none)'!r}; end the name with one "
                         f"of: {', '.join('.' + f for f in formats)}")
    if Path(path).is_dir():
        raise UsageError(f"--cd-diagram {path} is a folder; give the picture file to write, e.g. "
                         f"{Path(path) / 'cd.png'}")
    check_output_dir(Path(path).parent, "--cd-diagram", shown=path)


def run(args) -> int:
    metric = args.metric
    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}; choose from: {', '.join(METRICS)}")
    if args.rope is not None and not (np.isfinite(args.rope) and args.rope >= 0):
        raise UsageError(f"--rope must be a number >= 0, got {args.rope}")
    rope = stats.DEFAULT_ROPE[metric] if args.rope is None else args.rope
    if args.against_board == (args.b is not None):
        raise UsageError("give two methods (drbench compare A B --board BOARD) or one with --against-board")
    if args.b is not None and args.a == args.b:
        raise UsageError(f"A and B are both {args.a!r}: compare two different methods (or --against-board)")
    if args.cd_diagram:
        _check_cd_diagram(args.cd_diagram, args.against_board)
    for uri in args.tracking_uri or ():
        tracking.client(uri, must_exist=True)
    df = load_runs(args.board, args.boards_dir, args.tracking_uri, args.experiment)
    entities = leaderboard.read_entities(Path(args.boards_dir) / f"{args.board}.csv",
                                         boards.baseline_csv(args.board, args.boards_dir))
    if args.tracking_uri:  # the store's runs bring their own per-entity records
        mine = leaderboard.store_entities(df[df["from_store"].fillna(False).astype(bool)], args.tracking_uri)
        if len(mine):
            rest = entities[~entities["job_key"].isin(set(mine["job_key"]))] if entities is not None else None
            entities = pd.concat([rest, mine], ignore_index=True) if rest is not None else mine
    if args.against_board:
        lines = report_against_board(df, args.a, metric, rope, args.selection, entities, args.cd_diagram)
    else:
        lines = report_pair(df, args.a, args.b, metric, rope, args.selection, entities)
    print("\n".join(lines))
    return 0


def add_cli(sub) -> None:
    c = sub.add_parser("compare", help="is method A really better than B on a board? (every statistic, with verdicts)")
    c.add_argument("a", metavar="A", help="a method (as named on the board or in your MLflow store)")
    c.add_argument("b", metavar="B", nargs="?", help="the other method (omit with --against-board)")
    c.add_argument("--board", required=True, help="board name, e.g. gdsc-random (reads BOARDS_DIR/BOARD.csv)")
    c.add_argument("--metric", default="auc", help=f"one of {', '.join(METRICS)} (default auc)")
    c.add_argument("--rope", type=float, default=None,
                   help="region of practical equivalence, ± in the metric's units (default 0.01)")
    c.add_argument("--selection", default="validation", choices=["validation", "test"],
                   help="honest (validation, default) or replication (test) runs")
    c.add_argument("--against-board", action="store_true", help="compare A with every method of the board")
    c.add_argument("--cd-diagram", metavar="PNG", help="with --against-board: draw the critical-difference diagram here")
    c.add_argument("--tracking-uri", action="append", help="also read runs from this MLflow store (e.g. your plugin's)")
    c.add_argument("--experiment", default="drbench")
    c.add_argument("--boards-dir", default="leaderboards", help="folder of the board CSVs (default leaderboards)")
    c.set_defaults(func=run)
