"""Leaderboards: markdown tables generated from recorded runs, never typed by hand.

``build`` reads the finished job runs from MLflow, writes them as a per-fold CSV beside the markdown,
reads that CSV back and renders the markdown from it alone — so ``--from-csv`` regenerates the same
file without the MLflow store. One section per (dataset, protocol); in it a classification table
and, for methods with an IC50 estimate, a regression table; honest (validation-selected) and
replication (test-selected) runs in separate tables with the difference between them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from drbench import atomic
from drbench import metrics
from drbench import stats
from drbench.errors import UsageError
from drbench.metrics import LOWER_IS_BETTER

CSV_COLUMNS = [
    "method", "status", "dataset", "protocol", "paper_test", "selection", "seed", "fold", "fold_label", "headline",
    "transductive", "tasks", "auc", "auprc", "pcc", "scc", "rmse", "auc_ic50", "auprc_ic50", "pcc_resid", "scc_resid",
    "pcc_drug", "n_drugs_pcc", "auc_entity", "auprc_entity", "pcc_entity", "scc_entity", "rmse_entity",
    "n_entities_auc", "n_test", "n_test_positive", "fit_seconds", "predict_seconds",
    "peak_rss_mb", "threads", "load_start", "machine", "device", "device_name", "notes", "provider", "code_version",
    "dataset_hash", "mask_sha256", "run_id", "job_key",
]
#: the per-entity record file beside a board (``BOARD-entities.csv``): one row per run × entity
ENTITY_COLUMNS = ["method", "selection", "seed", "fold", "job_key", "entity", "n", "positives",
                  "auc", "auprc", "pcc", "scc", "rmse"]
CLASSIFICATION = ["auc", "auprc"]
REGRESSION = ["pcc", "scc", "rmse"]
NORMALIZED = list(metrics.NORMALIZED)
LABELS = {"auc": "AUC", "auprc": "AUPRC", "pcc": "PCC", "scc": "SCC", "rmse": "RMSE",
          "pcc_resid": "PCC beyond mean effects", "scc_resid": "SCC beyond mean effects", "pcc_drug": "per-drug PCC"}
#: the naive baselines every board compares with (the strongest of them on each table)
NAIVE = ["global-mean", "drug-mean", "cell-mean", "mean-effects", "tissue-mean"]
PROTOCOL_ORDER = ["random", "new-cell-line", "new-drug", "new-tissue", "new-pair", "in-vivo", "transfer", "case-study"]


def csv_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".csv")


def check_out(out: str | Path) -> None:
    """Refuse an ``out`` that is a folder, whose per-fold CSV (``csv_path``) would be the markdown file itself, or
    whose folder cannot be made or written into."""
    from drbench.errors import UsageError
    from drbench.inputs import check_output_dir

    text = str(out)
    if text.endswith(("/", os.sep)) or Path(out).is_dir():
        raise UsageError(f"--out {text} is a folder; give the markdown file to write, e.g. {Path(out) / 'board.md'}")
    if csv_path(out) == Path(out):
        raise UsageError(f"--out {text}: the per-fold CSV is written beside the markdown as {csv_path(out).name}; "
                         f"give the markdown file, e.g. {Path(out).with_suffix('.md')}")
    check_output_dir(Path(out).parent, "--out", shown=text)


def entities_path(csv: str | Path) -> Path:
    """``BOARD-entities.csv`` beside ``BOARD.csv``."""
    csv = Path(csv)
    return csv.with_name(f"{csv.stem}-entities.csv")


def read_entities(board_csv: str | Path, borrowed_from: str | Path | None = None) -> pd.DataFrame | None:
    """A board's committed per-entity records (``BOARD-entities.csv``), None when the board has none; a file that
    cannot be read or lacks :data:`ENTITY_COLUMNS` raises :class:`DataError` (one line).

    ``borrowed_from``: the CSV of the board whose runs this board shows as its own default rows (a control board's
    baseline, :func:`drbench.boards.baseline_csv`). Those runs' records stay in that board's file only; the ones of
    them this board's CSV lists (and its own file lacks) are added from there."""
    own = _read_entity_file(entities_path(board_csv))
    if borrowed_from is None:
        return own
    other = _read_entity_file(entities_path(borrowed_from))
    if other is None:
        return own
    keys = _borrowed_keys(board_csv, other["job_key"], own)
    if not keys:
        return own
    add = other[other["job_key"].isin(keys)]
    return add.reset_index(drop=True) if own is None else pd.concat([own, add], ignore_index=True)


def _finished_keys(board_csv: str | Path) -> set[str]:
    """Job keys of a board CSV's finished runs (empty without the file)."""
    path = Path(board_csv)
    if not path.exists():
        return set()
    df = pd.read_csv(path, usecols=lambda c: c in ("job_key", "status"), dtype=str)
    return set(df.loc[df["status"] == "finished", "job_key"].dropna()) if "job_key" in df.columns else set()


def _borrowed_keys(board_csv, other_keys, own) -> set[str]:
    """The job keys of ``board_csv``'s finished runs that another board's records (``other_keys``) hold and the
    board's own records (``own``: a frame, a set of keys or None) do not."""
    have = set() if own is None else set(own["job_key"]) if isinstance(own, pd.DataFrame) else set(own)
    return (_finished_keys(board_csv) & set(map(str, other_keys))) - have


def _read_entity_file(path: Path) -> pd.DataFrame | None:
    """One ``BOARD-entities.csv``, checked (see :func:`read_entities`); None when it does not exist."""
    from drbench.errors import DataError

    if not path.exists():
        return None
    try:
        df = pd.read_csv(path, dtype={"entity": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"cannot read per-entity records {path}: {e}") from None
    missing = [c for c in ENTITY_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path} is not a per-entity record file: missing columns {missing}")
    _as_numbers(df, ["seed", "fold", "n", "positives", *CLASSIFICATION, *REGRESSION], path)  # metrics may be empty
    for col in ["method", "selection", "seed", "fold", "job_key", "entity", "n", "positives"]:
        if df[col].isna().any():  # e.g. a last line cut short
            i = int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise DataError(f"{path}: row {i + 2} has no {col} (is the file truncated?)")
    twice = df.duplicated(["job_key", "entity"], keep=False)
    if twice.any():
        rows = [int(i) + 2 for i in np.flatnonzero(twice.to_numpy())[:2]]
        raise DataError(f"{path}: rows {rows[0]} and {rows[1]} record the same run and entity; each has one row")
    return df


def store_entities(df: pd.DataFrame, tracking_uri) -> pd.DataFrame:
    """The per-entity records (``ENTITY_COLUMNS``) of the finished runs in ``df`` that the store(s) hold."""
    from drbench import tracking

    fin = df[(df["status"] == "finished") & df["run_id"].notna()]
    uris = tracking_uri if isinstance(tracking_uri, (list, tuple)) else [tracking_uri]
    clients = [tracking.client(u) for u in uris]
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in fin.itertuples(index=False):
            for c in clients:
                try:
                    got = c.download_artifacts(str(r.run_id), tracking.ENTITIES, tmp)
                except Exception:  # not in this store, or a run recorded before entities were kept
                    continue
                rec = pd.read_csv(got, dtype={"entity": str})
                frames.append(rec.assign(method=r.method, selection=r.selection, seed=r.seed, fold=r.fold,
                                         job_key=r.job_key))
                break
    return pd.concat(frames, ignore_index=True)[ENTITY_COLUMNS] if frames else pd.DataFrame(columns=ENTITY_COLUMNS)


def write_entities(df: pd.DataFrame, csv: Path, tracking_uri, borrowed_from: Path | None = None) -> None:
    """Write the per-entity records of the board's runs beside its CSV: each finished run's ``entities.csv``
    artifact from the store(s), plus the rows already in the file for runs the stores do not hold. With
    ``borrowed_from`` (the CSV of the board whose runs this one shows as its defaults, see :func:`read_entities`),
    the runs whose records that board's file holds are left out: they are kept in one file only."""
    path = entities_path(csv)
    new = store_entities(df, tracking_uri)
    frames = [new] if len(new) else []
    keep = set(df.loc[df["status"] == "finished", "job_key"])
    if path.exists():
        old = pd.read_csv(path, dtype={"entity": str})
        frames.insert(0, old[old["job_key"].isin(keep) & ~old["job_key"].isin(set(new["job_key"]))])
    if borrowed_from is not None:
        theirs = entity_job_keys(borrowed_from)
        frames = [f[~f["job_key"].isin(theirs)] for f in frames]
    if frames:
        out = pd.concat(frames, ignore_index=True)[ENTITY_COLUMNS]
        out = out.sort_values(["method", "selection", "seed", "fold", "entity"]).reset_index(drop=True)
        atomic.write_csv(out, path, index=False)


def entity_job_keys(csv: str | Path, borrowed_from: str | Path | None = None) -> set[str]:
    """Job keys of the runs with per-entity records beside a board CSV (with ``borrowed_from``, also those of its
    runs whose records are beside that board's CSV, see :func:`read_entities`)."""
    path = entities_path(csv)
    own = set(pd.read_csv(path, usecols=["job_key"])["job_key"].astype(str)) if path.exists() else set()
    if borrowed_from is None:
        return own
    return own | _borrowed_keys(csv, entity_job_keys(borrowed_from), own)


# ---------------------------------------------------------------------------------------------- collect
def _ran_with(recorded, options: dict) -> bool:
    """Whether a run's recorded protocol options (JSON, or missing) agree with ``options`` on every key both have."""
    if not isinstance(recorded, str) or not recorded:
        return True
    try:
        got = json.loads(recorded)
    except json.JSONDecodeError:
        return True
    return all(got[k] == v for k, v in options.items() if k in got)


def collect(experiments=None, tracking_uri=None, dataset=None, protocol=None, methods=None,
            previous: pd.DataFrame | None = None, options: dict | None = None, variants=None,
            require_match: bool = False) -> pd.DataFrame:
    """Per-fold rows from MLflow (latest finished run per job key), plus "not supported" rows.

    ``methods`` keeps only those methods; ``previous`` (an earlier CSV) contributes the rows whose job
    keys the store does not have, so a table can grow across machines without recomputing. ``options`` (a
    protocol's resolved options) keeps only the store's runs made with them, so that e.g. the per-target runs of
    a Test 2 protocol (``per_target=True``) and its grouped runs land on different boards. ``variants``: the
    rows of runs with non-default hyperparameters (``method[param=value]``) to keep (None: all of them).
    ``require_match``: a ``dataset`` or ``protocol`` that no finished run has is a :class:`UsageError` naming the
    ones the store has (a mistyped filter would otherwise give an empty table).
    """
    from drbench import tracking

    uris = tracking_uri if isinstance(tracking_uri, (list, tuple)) else [tracking_uri]
    exps = experiments or ["drbench"]
    frames = []
    for uri in uris:
        c = tracking.client(uri)
        ids = [i for i in (tracking.experiment_id(c, e, create=False) for e in exps) if i is not None]
        if ids:
            frames.append(tracking.runs_frame(c, ids))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not df.empty and options is not None and "protocol_options" in df.columns:
        df = df[[_ran_with(v, options) for v in df["protocol_options"]]]
    if not df.empty:
        df = df.sort_values("start_time").drop_duplicates("job_key", keep="last")
        df["status"] = "finished"
        if "variant" in df.columns:  # a method run with non-default hyperparameters gets its own row
            v = df["variant"].fillna("").astype(str)
            df.loc[v != "", "method"] = df["method"] + "[" + v + "]"
    if previous is not None and not previous.empty:
        old = previous[previous["status"] == "finished"]
        if not df.empty:
            old = old[~old["job_key"].isin(set(df["job_key"]))]
        df = pd.concat([old, df], ignore_index=True)
    if df.empty and not (require_match and (dataset or protocol)):
        return pd.DataFrame(columns=CSV_COLUMNS)
    for column, wanted, flag in (("dataset", dataset, "--dataset"), ("protocol", protocol, "--protocol")):
        if not wanted:
            continue
        if require_match and (df.empty or not (df[column] == wanted).any()):
            have = [] if df.empty else sorted(df[column].dropna().astype(str).unique())
            raise UsageError(f"{flag} {wanted!r}: no finished run of that {column} in the store; "
                             + (f"its runs have: {', '.join(have)}" if have else "it has no finished runs"))
        df = df[df[column] == wanted]
    if methods:
        df = df[df["method"].isin(methods)]
    if variants is not None:
        df = df[~df["method"].astype(str).str.contains("[", regex=False) | df["method"].isin(variants)]
    df = off_board(df)
    df = _add_unsupported(df, methods)
    for col in CSV_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    df = _tidy(df[CSV_COLUMNS].copy())
    df["_p"] = df["protocol"].map(lambda p: PROTOCOL_ORDER.index(p) if p in PROTOCOL_ORDER else 99)
    df = df.sort_values(["dataset", "_p", "protocol", "selection", "method", "seed", "fold"], na_position="last")
    return df.drop(columns="_p").reset_index(drop=True)


#: statuses of finished runs kept in a board's CSV but left out of its tables: they cannot be paired with the others
OTHER_DATA, OTHER_MASKS = "other data", "other masks"


def _majority(values: pd.Series) -> str | None:
    """The value most rows hold (ties: the smallest), None if none is recorded."""
    counts = values.dropna().astype(str).value_counts()
    if counts.empty:
        return None
    return sorted(counts.index, key=lambda v: (-counts[v], v))[0]


def off_board(df: pd.DataFrame) -> pd.DataFrame:
    """Give a status of their own to finished runs that the board's paired statistics cannot use: runs on data
    other than the board's (a content hash other than the one most runs of the dataset and protocol hold; a
    ``genes=`` variant is judged against its own panel) get :data:`OTHER_DATA`; runs on a fold other than the
    board's (a mask hash other than the one most runs of the same selection, seed, fold and fold label hold) get
    :data:`OTHER_MASKS`. They stay in the CSV; the markdown counts and names them. Runs without the hash recorded are
    not judged."""
    if df.empty or "dataset_hash" not in df.columns or "mask_sha256" not in df.columns:
        return df
    df = df.copy()
    fin = df["status"] == "finished"
    panel = df["method"].astype(str).str.extract(r"(genes=[^,\]]*)")[0].fillna("")
    data_key = [df["dataset"].astype(str), df["protocol"].astype(str), panel]
    ref = df[fin].groupby([k[fin] for k in data_key])["dataset_hash"].transform(_majority)
    other = fin & df["dataset_hash"].notna() & (df["dataset_hash"].astype(str) != ref.reindex(df.index))
    df.loc[other, "status"] = OTHER_DATA
    fin = df["status"] == "finished"
    label = df["fold_label"].astype(str).where(df["fold_label"].notna(), "")
    fold_key = [df["dataset"].astype(str), df["protocol"].astype(str), df["selection"].astype(str),
                pd.to_numeric(df["seed"], errors="coerce").astype(str),
                pd.to_numeric(df["fold"], errors="coerce").astype(str), label]
    ref = df[fin].groupby([k[fin] for k in fold_key])["mask_sha256"].transform(_majority)
    other = fin & df["mask_sha256"].notna() & (df["mask_sha256"].astype(str) != ref.reindex(df.index))
    df.loc[other, "status"] = OTHER_MASKS
    return df


def off_board_note(part: pd.DataFrame) -> list[str]:
    """The markdown lines that count and name a (dataset, protocol)'s runs left out by :func:`off_board`."""
    lines = []
    for status, what in ((OTHER_MASKS, "on a fold other than the board's for the same seed and fold (another mask "
                                       "hash), which the board's paired statistics cannot use"),
                         (OTHER_DATA, "on data other than the board's (another dataset content hash)")):
        off = part[part["status"] == status]
        if off.empty:
            continue
        per = off.groupby(["method", "selection"]).size()
        named = "; ".join(f"{m}{' ‡' if sel == 'test' else ''}: {n}" for (m, sel), n in per.items())
        lines.append(f"Left out of these tables (kept in the CSV with status *{status}*): {len(off)} run"
                     f"{'s' if len(off) != 1 else ''} {what} ({named}).")
    return lines + [""] if lines else []


#: whole-number columns, written as integers (``0``, not ``0.0``) whether or not a "not run" row leaves them blank
INTEGER_COLUMNS = ["seed", "fold", "n_entities_auc", "n_drugs_pcc", "n_test", "n_test_positive", "threads"]


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """One spelling per value in the CSV: rows merged from an earlier CSV (read back as floats and "True") and
    rows from the store (ints and "true") otherwise give ``0`` and ``0.0``, ``true`` and ``True`` side by side,
    and every rewrite of a board churns its CSV."""
    for col in INTEGER_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
    df["transductive"] = df["transductive"].map(lambda v: v if pd.isna(v) else str(v).lower())
    return df


def _add_unsupported(df: pd.DataFrame, only=None) -> pd.DataFrame:
    """A "not supported" row for every registered method that cannot run a (dataset, protocol) shown."""
    from drbench.api import supports
    from drbench.errors import DrbenchError
    from drbench.registry import methods

    reg = methods()
    rows = []
    for (ds, proto), part in df.groupby(["dataset", "protocol"]):
        present = set(part["method"])
        for name in reg.names():
            if name in present or (only and name not in only):
                continue
            try:
                cls = reg.get(name)
            except DrbenchError:
                continue
            rows.append({"method": name, "status": "not run" if supports(cls, proto) else "not supported",
                         "dataset": ds, "protocol": proto, "provider": reg.provider(name),
                         "transductive": str(cls.capabilities.transductive).lower(),
                         "tasks": ",".join(sorted(cls.capabilities.tasks))})
    return pd.concat([df, pd.DataFrame(rows)], ignore_index=True) if rows else df


# ---------------------------------------------------------------------------------------------- statistics
def _series(frame: pd.DataFrame, pcol: str) -> dict:
    """``{method: its per-fold values keyed "seed/fold"}``: what the paired tests pair on."""
    keyed = frame.assign(_k=frame["seed"].astype(str) + "/" + frame["fold"].astype(str))
    return {m: g.set_index("_k")[pcol].astype(float) for m, g in keyed.groupby("method")}


def folds_per_seed(frame: pd.DataFrame) -> int:
    """k of the k-fold partition the rows come from (most distinct folds under one seed)."""
    return int(frame.groupby("seed")["fold"].nunique().max()) if len(frame) else 0


def compare_cell(a: pd.Series, b: pd.Series, metric: str, ratio: float, rope: float) -> tuple[str, str]:
    """("Δ [95% CI] verdict" of A against B, the verdict): mean difference (positive: A better) with the corrected
    t CI, and the Bayesian correlated t verdict; with fewer than two paired folds, "undecided (n = …)"."""
    d = stats.paired_differences(a, b, metric)
    ct = stats.corrected_t(d, ratio)
    verdict = stats.bayesian_correlated_t(d, ratio, rope).verdict
    if ct.n < 2:
        return (f"{_signed(ct.mean)} " if ct.n else "") + f"{verdict} (n = {ct.n})", verdict
    return f"{_signed(ct.mean)} [{_signed(ct.low)}, {_signed(ct.high)}] {verdict}", verdict


def _signed(x: float) -> str:
    """``+0.012`` / ``-0.012``; a value that rounds to zero is ``+0.000`` (never ``-0.000``)."""
    return f"{round(x, 3) + 0.0:+.3f}"


def _names(methods: list[str]) -> str:
    return ", ".join(methods) if methods else "none"


def conclusions(metric: str, n: int, k: int, rope: float, best: str, vs_best: dict, naive: str | None,
                vs_naive: dict) -> str:
    """The generated "Conclusions" paragraph of a table, built only from its verdicts."""
    label = LABELS[stats.base_metric(metric)] + (" (per entity)" if metric.endswith("_entity") else "")
    design = (f"up to {n} paired folds, {stats.ratio_note(k)}" if n >= 2
              else f"{n} fold per method: no paired test is possible, so every comparison is undecided")
    text = [f"**Conclusions** (Bayesian correlated t-test on the per-fold {label}, ROPE ±{rope:g}, a verdict when its "
            f"posterior probability is ≥ {stats.VERDICT_PROBABILITY:g}; {design}):"]
    by = lambda verdicts, v: sorted(m for m, x in verdicts.items() if x == v)  # noqa: E731
    text.append(f"best by mean: {best}; practically equivalent to it: {_names(by(vs_best, 'equivalent'))}; "
                f"worse than it: {_names(by(vs_best, 'worse'))}; undecided against it: "
                f"{_names(by(vs_best, 'undecided'))}.")
    if by(vs_best, "better"):
        text.append(f"Better than it despite a lower mean: {_names(by(vs_best, 'better'))}.")
    if naive is not None:
        learned = {m: v for m, v in vs_naive.items() if m not in NAIVE}
        text.append(f"Against the strongest naive baseline, {naive}: better: {_names(by(vs_naive, 'better'))}; "
                    f"equivalent: {_names(by(vs_naive, 'equivalent'))}; worse: {_names(by(vs_naive, 'worse'))}; "
                    f"undecided: {_names(by(vs_naive, 'undecided'))}.")
        won = by(learned, "better")
        text.append(f"{len(won)} of {len(learned)} learned methods are shown better than it."
                    if won else "No learned method is shown better than it.")
    return " ".join(text)


def _fmt(mean, sd, n, bold=False):
    if n == 0 or np.isnan(mean):
        return "—"
    s = f"{mean:.3f} ± {sd:.3f}" if n > 1 else f"{mean:.3f}"
    s = f"**{s}**" if bold else s
    return f"{s} ({n})"


def metric_column(metric: str, headline: str) -> str:
    """The CSV column of ``metric`` on a table whose headline is ``headline``; the normalized IC50 metrics have no
    per-entity form (per-drug PCC is itself an average over drugs)."""
    return f"{metric}_entity" if headline == "entity" and metric not in NORMALIZED else metric


def on_gpu(df: pd.DataFrame) -> pd.Series:
    """Which rows are runs that computed on a GPU (their ``device`` is ``cuda`` or ``cuda:N``); False where the
    device is ``cpu`` or not recorded. The one test every board, picture and estimate uses to keep GPU times apart."""
    if "device" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["device"].astype(str).str.startswith("cuda")


# ---------------------------------------------------------------------------------------------- render
def fit_cell(g: pd.DataFrame) -> str:
    """A method's mean fit seconds; runs that computed on a GPU (``device`` cuda…) are averaged apart from those on
    the CPU (``device`` cpu or not recorded), each with its n, so that the two machines' times are never mixed."""
    fit = g["fit_seconds"].astype(float)
    gpu = on_gpu(g)
    parts = [(label, fit[m].dropna()) for label, m in (("CPU", ~gpu), ("GPU", gpu))]
    parts = [(label, v) for label, v in parts if len(v)]
    if not parts:
        return "—"
    if len(parts) == 1 and parts[0][0] == "CPU":
        return f"{parts[0][1].mean():.1f}"
    return " / ".join(f"{v.mean():.1f} {label} (n={len(v)})" for label, v in parts)


def _table(part: pd.DataFrame, metrics: list[str], headline: str, unsupported: list[tuple[str, str]],
           replication: bool, honest: pd.DataFrame | None, k: int | None = None) -> list[str]:
    """One table of a board. ``k``: folds per seed of the board's partition (from all its finished runs, so that a
    table whose methods have run only some folds so far still gets the partition's n_test/n_train); by default the
    most folds under one seed in ``part``."""
    primary = metrics[0]
    pcol = metric_column(primary, headline)
    series = _series(part, pcol)
    stats_rows = []
    for method, g in part.groupby("method"):
        row = {"method": method, "transductive": str(g["transductive"].iloc[0]).lower() == "true",
               "fit": fit_cell(g), "mem": g["peak_rss_mb"].max(), "series": series[method],
               "notes": "; ".join(sorted({n for v in g["notes"].dropna() for n in str(v).split("; ") if n}))}
        for m in metrics:
            v = g[metric_column(m, headline)].astype(float).dropna()
            row[m] = (v.mean() if len(v) else np.nan, v.std(ddof=1) if len(v) > 1 else 0.0, len(v))
        stats_rows.append(row)
    if not stats_rows:
        return []
    lower = primary in LOWER_IS_BETTER
    valid = [r for r in stats_rows if not np.isnan(r[primary][0])]
    order = sorted(valid, key=lambda r: r[primary][0], reverse=not lower) + [r for r in stats_rows if r not in valid]
    best = order[0] if valid else None
    # the strongest naive baseline: on this table, else (replication tables) its honest runs on the same folds
    naive_series = {m: v for m, v in series.items() if m in NAIVE and v.notna().any()}
    if not naive_series and honest is not None:
        naive_series = {m: v for m, v in _series(honest, pcol).items() if m in NAIVE and v.notna().any()}
    naive = (min if lower else max)(naive_series, key=lambda m: naive_series[m].mean()) if naive_series else None
    k = k or folds_per_seed(part)
    ratio, rope = stats.kfold_ratio(k), stats.DEFAULT_ROPE[primary]
    best_of = {}
    for m in metrics:
        vals = [r[m][0] for r in stats_rows if not np.isnan(r[m][0])]
        if vals:
            best_of[m] = min(vals) if m in LOWER_IS_BETTER else max(vals)
    head = ["rank", "method"] + [LABELS[m] + (" ↓" if m in LOWER_IS_BETTER else "") for m in metrics]
    head += [f"vs best: Δ{LABELS[primary]} [95% CI] verdict"]
    if naive is not None:
        head += [f"vs {naive}{'' if naive in series else ' (honest)'}: Δ{LABELS[primary]} [95% CI] verdict"]
    if replication and honest is not None:
        head += [f"Δ{LABELS[primary]} vs honest"]
    head += ["fit s", "peak MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    vs_best, vs_naive = {}, {}
    for i, r in enumerate(order):
        marks = ("†" if r["transductive"] else "") + ("‡" if replication else "")
        name = f"{r['method']}{marks}"
        rank = str(i + 1) if not np.isnan(r[primary][0]) else "—"
        cells = [rank, name] + [_fmt(*r[m], bold=(m in best_of and r[m][0] == best_of[m])) for m in metrics]
        defined = r in valid
        if best is not None and r is best:
            cells.append("best")
        elif defined:
            cell, vs_best[r["method"]] = compare_cell(r["series"], best["series"], primary, ratio, rope)
            cells.append(cell)
        else:
            cells.append("—")
        if naive is not None:
            if r["method"] == naive:
                cells.append("strongest naive")
            elif defined:
                cell, vs_naive[r["method"]] = compare_cell(r["series"], naive_series[naive], primary, ratio, rope)
                cells.append(cell)
            else:
                cells.append("—")
        if replication and honest is not None:
            h = honest[honest["method"] == r["method"]][pcol].astype(float).dropna()
            cells.append(f"{r[primary][0] - h.mean():+.3f}" if len(h) and not np.isnan(r[primary][0]) else "—")
        cells += [r["fit"], f"{r['mem']:.0f}" if not np.isnan(r["mem"]) else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    for name, status in sorted(unsupported):
        lines.append("| — | " + " | ".join([name] + [status] * len(metrics) + [""] * (len(head) - 2 - len(metrics))) + " |")
    if best is not None:
        n = max(len(r["series"].dropna()) for r in valid)
        lines += ["", conclusions(pcol, n, k, rope, best["method"], vs_best, naive, vs_naive)]
    notes = [f"- {r['method']}: {r['notes']}" for r in order if r["notes"]]
    if notes:
        lines += ["", "Notes recorded with the runs (— means undefined):"] + notes
    return lines


def _normalized_section(reg: pd.DataFrame, headline: str, replication: bool, honest, k: int | None = None) -> list[str]:
    """The "beyond the mean effects" table of the IC50 regressors (``metrics.normalized``), and which runs lack
    those metrics (recorded before drbench computed them)."""
    has = reg[NORMALIZED].notna().any(axis=1)
    computed = has | reg[metrics.NORMALIZED_COUNT].notna()
    if not computed.any():
        return ["", f"IC50 beyond the mean effects ({', '.join(LABELS[m] for m in NORMALIZED)}): none of these "
                    "runs recorded them (recorded before drbench computed them; `drbench rescore` or a rerun adds them)."]
    lines = ["", "IC50 beyond the mean effects: *PCC / SCC beyond mean effects* correlate the measured and predicted "
                 "IC50 after subtracting, from both, the mean-effects prediction fitted on the fold's training entries "
                 "(global mean + cell effect + drug effect); *per-drug PCC* is the PCC within each drug, averaged over "
                 "drugs. A method that only learns cell and drug means scores ≈ 0 on the first two.", ""]
    h = honest[honest["tasks"].astype(str).str.contains("regression")] if honest is not None else None
    if h is not None:
        h = h[h[NORMALIZED].notna().any(axis=1)]
    lines += _table(reg[has], NORMALIZED, headline, [], replication, h, k)
    lacking = reg[~computed].groupby("method").size()
    if len(lacking):
        lines += ["", "Runs without these metrics (recorded before drbench computed them): "
                  + ", ".join(f"{m}{'‡' if replication else ''} ({n})" for m, n in lacking.items()) + "."]
    return lines


def lacking_entity_records(df: pd.DataFrame, have: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the finished runs of ``df`` with an entity axis whose job keys are not in ``have``, the keys with per-entity
    records; all finished runs of ``df`` with an entity axis)."""
    fin = df[(df["status"] == "finished") & df["n_entities_auc"].notna()]
    return fin[~fin["job_key"].astype(str).isin(have)], fin


def entity_records_note(df: pd.DataFrame, have: set[str], files: list[str]) -> str:
    """Which runs (with an entity axis) lack per-entity records in ``files`` (this board's file, and the one of the
    board whose runs it borrows), by method and selection."""
    shown = f"`{files[0]}`" + (f" (its borrowed runs': `{files[1]}`)" if len(files) > 1 else "")
    lacking, fin = lacking_entity_records(df, have)
    head = "Per-entity records (each run's metrics per drug or held-out cell line, for `drbench compare`'s per-entity test)"
    if lacking.empty:
        return f"{head}: {shown}, for every run."
    if len(lacking) == len(fin):
        return (f"{head}: none of the {len(fin)} runs here has them (recorded before drbench kept them); a rerun "
                f"adds its records to `{files[0]}`.")
    counts = lacking.groupby(["method", "selection"]).size()
    who = ", ".join(f"{m}{'‡' if sel == 'test' else ''} ({n})" for (m, sel), n in counts.items())
    return f"{head}: {shown}; runs without them (method: number of runs): {who}."


def render(df: pd.DataFrame, title: str | None = None, images: dict | None = None,
           entity_records: tuple[set, list[str]] | None = None) -> str:
    """Markdown from the per-fold frame (as read back from the CSV); ``images`` maps (dataset, protocol)
    to the picture files that exist beside the markdown; ``entity_records`` is (the job keys with per-entity
    records, the names of their files: the board's own, then its baseline's for the runs it borrows), when the
    board has such a file place."""
    out = [f"# {title or 'drbench leaderboard'}", ""]
    if df.empty:
        return "\n".join(out + ["No finished runs match.", ""])
    versions = sorted(set(df["code_version"].dropna().astype(str)))
    out += [
        "Generated by `drbench leaderboard` from recorded runs; the per-fold results are in the CSV beside this file.",
        "Cells: mean ± SD (n = folds × seeds with a defined value). Best per column in bold. "
        "*vs best* / *vs* the strongest naive baseline: the difference in the table's first metric (this method − "
        "the other, over the folds × seeds both ran; positive means this method is better), its mean with the 95% CI "
        "of the Nadeau–Bengio corrected resampled t-test (variance inflated by n_test/n_train, taken as 1/(k − 1) "
        "for k folds per seed; on a per-target board, where each model trains on every other entity, the true ratio "
        "is far smaller, so its intervals are conservative; with one train/test split per seed, as on a transfer "
        f"board, it is assumed {stats.kfold_ratio(1):g} and the intervals cover training variation only), and the "
        "verdict of the "
        "Bayesian correlated t-test with a region of practical equivalence (ROPE, named in each Conclusions "
        "paragraph): better, equivalent or worse when that posterior probability "
        f"is ≥ {stats.VERDICT_PROBABILITY:g}, else undecided (always with fewer than two paired folds). Each "
        "table's Conclusions are generated from those verdicts. † transductive (uses held-out entities' features, "
        "never their labels). ‡ replication mode: epochs selected on the test entries as the reference code did "
        "(optimistic; not comparable with honest rows). *fit s*: mean fit seconds per run; runs on a GPU are "
        "averaged apart from CPU runs (the CSV's *device* and *device_name* columns say where each run computed).",
        f"Code version(s): {', '.join(versions) or 'unknown'}.",
        "",
    ]
    if entity_records is not None:
        out += [entity_records_note(df, *entity_records), ""]
    for (ds, proto), part in df.groupby(["dataset", "protocol"], sort=False):
        fin = part[part["status"] == "finished"]
        unsupported = sorted(set(zip(part.loc[part["status"].isin(["not supported", "not run"]), "method"],
                                     part.loc[part["status"].isin(["not supported", "not run"]), "status"])))
        headline = fin["headline"].dropna().iloc[0] if fin["headline"].notna().any() else "pooled"
        k = folds_per_seed(fin)  # every method and selection of a (dataset, protocol) shares the partition
        test = fin["paper_test"].dropna().iloc[0] if fin["paper_test"].notna().any() else ""
        out += [f"## {ds} — {proto}" + (f" ({test})" if test else ""), ""]
        out += off_board_note(part)
        for alt, fname in (images or {}).get((ds, proto), []):
            out += [f"![{alt}]({fname})", ""]
        if headline == "entity":
            out += ["Metrics are computed per held-out entity, then averaged over entities within a fold; the table "
                    "shows the mean ± SD of those fold-level averages.", ""]
        for sel, replication in (("validation", False), ("test", True)):
            part_sel = fin[fin["selection"] == sel]
            if part_sel.empty:
                continue
            honest = fin[fin["selection"] == "validation"] if replication else None
            label = ("Replication mode (test-set selection, as the reference code)" if replication
                     else "Honest mode (selection on a validation split carved from training)")
            out += [f"### {label}", "", "Classification", ""]
            out += _table(part_sel, CLASSIFICATION, headline, [] if replication else unsupported, replication, honest,
                          k)
            reg = part_sel[part_sel["tasks"].astype(str).str.contains("regression")]
            if not reg.empty and reg["pcc"].notna().any():
                out += ["", "Regression (IC50)", ""]
                out += _table(reg, REGRESSION, headline, [], replication,
                              honest[honest["tasks"].astype(str).str.contains("regression")] if honest is not None else None,
                              k)
                out += _normalized_section(reg, headline, replication, honest, k)
            out += [""]
    return "\n".join(out).rstrip() + "\n"


def _existing_images(df: pd.DataFrame, out) -> dict:
    from drbench.plots import image_names

    if out is None:
        return {}
    out = Path(out)
    found = {}
    for ds, proto in df[["dataset", "protocol"]].drop_duplicates().itertuples(index=False):
        names = image_names(out.stem, ds, proto)
        found[(ds, proto)] = [(alt, names[k]) for k, alt in (("curves", "ROC and precision-recall curves"),
                                                              ("runtime", "fit time per method"))
                              if (out.parent / names[k]).exists()]
    return found


def build(experiments=None, tracking_uri=None, dataset=None, protocol=None, out=None, from_csv=None,
          title=None, plots: bool = False, methods=None, merge_csv: bool = False, options: dict | None = None,
          variants=None, previous: pd.DataFrame | None = None,
          entities_from: Path | None = None, require_match: bool = False) -> str:
    """Collect (or read ``from_csv``), write the CSV beside ``out``, and render markdown from the CSV.

    ``plots`` also draws the curve and runtime pictures beside ``out`` (needs the MLflow runs). Pictures
    that exist beside ``out`` are linked, so ``--from-csv`` reproduces the same markdown. ``merge_csv``
    keeps the rows of the CSV already beside ``out`` that the store does not have; ``options`` keeps only the store's
    runs made with those protocol options and ``variants`` the variant rows to keep (see :func:`collect`);
    ``previous`` adds further rows (e.g. another board's) the way ``merge_csv`` adds the CSV's, and
    ``entities_from`` is the CSV of the board whose file keeps those rows' per-entity records (see
    :func:`read_entities`); ``require_match`` as in
    :func:`collect`. Each file is replaced
    atomically (:mod:`drbench.atomic`); a bad ``out`` is refused before anything is read or written.
    """
    if out is not None:
        check_out(out)
    if from_csv:
        df = read_csv(from_csv)
    else:
        prev = read_csv(csv_path(out)) if merge_csv and out is not None and csv_path(out).exists() else None
        if previous is not None:
            prev = previous if prev is None else pd.concat([prev, previous[~previous["job_key"].isin(
                set(prev["job_key"]))]], ignore_index=True)
        df = collect(experiments, tracking_uri, dataset, protocol, methods, prev, options, variants, require_match)
        if out is not None:
            path = csv_path(out)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_csv(df, path, index=False)
            df = read_csv(path)
        else:
            import io

            buf = io.StringIO()
            df.to_csv(buf, index=False)
            buf.seek(0)
            df = pd.read_csv(buf)
    if plots and out is not None and not from_csv:
        from drbench.plots import make_images

        make_images(df, Path(out), tracking_uri)
    if out is not None and not from_csv:
        write_entities(df, csv_path(out), tracking_uri, entities_from)
    board_csv = Path(from_csv) if from_csv else csv_path(out) if out is not None else None
    records = None
    if board_csv is not None:
        own = entity_job_keys(board_csv)
        have = own if entities_from is None else entity_job_keys(board_csv, entities_from)
        files = [entities_path(board_csv).name] + ([entities_path(entities_from).name] if have - own else [])
        records = (have, files)
    md = render(df, title, _existing_images(df, out), records)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(out, md)
    return md


def read_csv(path) -> pd.DataFrame:
    from drbench.errors import DataError

    try:
        df = pd.read_csv(path, dtype={"fold_label": str, "notes": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"cannot read leaderboard CSV {path}: {e}") from None
    missing = [c for c in ("method", "status", "dataset", "protocol") if c not in df.columns]
    if missing:
        raise DataError(f"{path} is not a drbench leaderboard CSV: missing columns {missing}")
    for col in CSV_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    _check_board_rows(df, path)
    return df


#: the columns of a board CSV that hold numbers (empty where undefined)
NUMERIC_COLUMNS = ["seed", "fold", *CSV_COLUMNS[CSV_COLUMNS.index("auc"):CSV_COLUMNS.index("threads") + 1]]


def _as_numbers(df: pd.DataFrame, columns, path) -> None:
    """Make ``columns`` of a CSV read from ``path`` numeric in place (empty cells stay NaN); a cell that is not a
    number is a :class:`DataError` naming its row (the line number in the file) and column."""
    from drbench.errors import DataError

    for col in columns:
        if pd.api.types.is_numeric_dtype(df[col]):
            continue
        num = pd.to_numeric(df[col], errors="coerce")
        bad = df[col].notna() & num.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}: row {i + 2}, column {col!r}: {df[col].iloc[i]!r} is not a number")
        df[col] = num


def _check_board_rows(df: pd.DataFrame, path) -> None:
    """One line (:class:`DataError`) for a board CSV a hand edit or a bad merge broke: a value that is not a number
    in a numeric column, or one run (job key) on two rows. The row is the line number in the file."""
    from drbench.errors import DataError

    _as_numbers(df, NUMERIC_COLUMNS, path)
    keys = df["job_key"].dropna().astype(str)
    twice = keys[keys.duplicated(keep=False)]
    if len(twice):
        first = twice.iloc[0]
        rows = [int(i) + 2 for i in twice.index[twice == first]]
        raise DataError(f"{path}: job {first} is on rows {rows[0]} and {rows[1]}; a board has one row per run "
                        f"(was the file merged by hand?)")
