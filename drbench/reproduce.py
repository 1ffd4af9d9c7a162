"""``drbench reproduce``: run the sweeps behind every published leaderboard and regenerate the files.

Resumable twice over: a job already finished in the MLflow store is skipped, and so is a job whose row
is already in the board's committed CSV (its job key is recorded there), so a fresh machine with the
committed CSVs recomputes nothing that is published. Each board is written as soon as its sweeps end.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from drbench import atomic, leaderboard, stats, tracking
from drbench.datasets import reuse_loaded_datasets
from drbench.errors import DrbenchError, UsageError
from drbench.runner import SweepSpec, run_sweep

log = logging.getLogger("drbench.reproduce")

#: methods whose reference code selects epochs on the test set: their replication runs are published too
TEST_SELECTING = ["mtigcn", "nihgcn", "mofgcn", "graphcdr", "deepcdr"]
NAIVE = leaderboard.NAIVE
ABLATION = ["mtigcn", "mtigcn-a", "mtigcn-b", "mtigcn-ab"]
CASE_DRUGS = ["Dasatinib", "GSK690693"]
#: how a board's note and the index name a method whose replication (--select test) runs are missing
REPLICATION_KEY = " (‡: its replication runs, `--select test`)"


@dataclass
class Board:
    name: str
    dataset: str
    protocol: str
    methods: list[str] | str = "all"
    replication: list[str] = field(default_factory=lambda: list(TEST_SELECTING))
    options: dict = field(default_factory=dict)
    title: str = ""
    note: str = ""


BOARDS = [
    Board("gdsc-random", "gdsc", "random", title="GDSC, Test 1 (random zeroing)"),
    Board("ccle-random", "ccle", "random", title="CCLE, Test 1 (random zeroing)"),
    Board("gdsc-new-cell-line", "gdsc", "new-cell-line", title="GDSC, Test 2 (new cell line, grouped 5-fold)"),
    Board("gdsc-new-drug", "gdsc", "new-drug", title="GDSC, Test 2 (new drug, grouped 5-fold)"),
    Board("ccle-new-cell-line", "ccle", "new-cell-line", title="CCLE, Test 2 (new cell line, grouped 5-fold)"),
    Board("ccle-new-drug", "ccle", "new-drug", title="CCLE, Test 2 (new drug, grouped 5-fold)"),
    Board("ccle-new-cell-line-per-target", "ccle", "new-cell-line", options={"per_target": True},
          title="CCLE, Test 2 (new cell line, per target: one model per held-out cell line, as the paper did)",
          note="The paper's Test 2 protocol: every eligible cell line is its own fold (one model each; in "
               "replication mode its epoch is chosen on that cell line's own test entries). Compare "
               "ccle-new-cell-line.md (grouped 5-fold) for the share of the protocol in the gap to the paper "
               "(paper.md)."),
    Board("ccle-new-drug-per-target", "ccle", "new-drug", options={"per_target": True},
          title="CCLE, Test 2 (new drug, per target: one model per held-out drug, as the paper did)",
          note="The paper's Test 2 protocol: every eligible drug is its own fold (one model each; in replication "
               "mode its epoch is chosen on that drug's own test entries). Compare ccle-new-drug.md (grouped "
               "5-fold) for the share of the protocol in the gap to the paper (paper.md)."),
    Board("gdsc-to-ccle-transfer", "gdsc", "transfer", title="GDSC → CCLE transfer (stand-in for Test 3)",
          note="PDX and TCGA expression are not available in the data bundle (see its PROVENANCE.md), so the "
               "paper's in-vitro → in-vivo test cannot be run with expression-based methods. This table is the "
               "real-data stand-in: train on GDSC, test on every measured CCLE entry of the 15 shared drugs; the "
               "326 cell lines present in both sets are dropped from the GDSC training rows."),
    Board("gdsc-ablation", "gdsc", "random", methods=ABLATION, replication=list(ABLATION),
          title="GDSC, Test 4 (MTIGCN ablations)",
          note="mtigcn-a: no IC50 task; mtigcn-b: no similarity task; mtigcn-ab: neither (NIHGCN-like). "
               "Same runs as gdsc-random. The reference code selected the ablations' epochs on the test set "
               "too, so all four have replication runs."),
    Board("gdsc-case-study", "gdsc", "case-study", methods=["mtigcn", "mean-effects", "cell-mean"], replication=[],
          title="GDSC, Test 5 (case study: top predicted sensitive cell lines among unmeasured pairs)"),
]


def board_by_name(name: str) -> Board:
    for b in BOARDS:
        if b.name == name:
            return b
    raise UsageError(f"unknown board {name!r}; choose from: {', '.join(b.name for b in BOARDS)}")


def _published_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    df = leaderboard.read_csv(path)
    return set(df.loc[df["status"] == "finished", "job_key"].dropna().astype(str))


def _case_study_ranked(csv: Path) -> set[tuple[str, int]]:
    """(method, seed) pairs with an honest ranking in a case-study CSV."""
    if not csv.exists():
        return set()
    df = pd.read_csv(csv, usecols=lambda c: c in ("method", "seed", "selection"))
    df = df[df["selection"] == "validation"] if "selection" in df.columns else df
    return {(str(m), int(s)) for m, s in zip(df["method"], df["seed"])}


def _case_study_seconds(csv: Path) -> float | None:
    """Summed fit + predict seconds of the runs ranked in a case-study CSV (None if none recorded them)."""
    df = pd.read_csv(csv)
    if "job_seconds" not in df.columns or df["job_seconds"].isna().all():
        return None
    return float(df.groupby("run_id")["job_seconds"].first().sum())


def _store_keys(uris, experiment) -> set[str]:
    keys = set()
    for uri in uris or []:
        c = tracking.client(uri)
        exp = tracking.experiment_id(c, experiment, create=False)
        if exp is not None:
            keys |= tracking.finished_job_keys(c, exp)
    return keys


def run_board(board: Board, out_dir: Path, *, data_dir=None, seeds=(0,), jobs=1, tracking_uri=None,
              experiment="drbench", progress=True, dry_run=False, folds=None, also_read=(), only_methods=None,
              write_only=False) -> dict:
    """Run the sweeps of one board (honest, then replication for the test-selecting methods) and write it.

    ``also_read``: further MLflow stores whose finished jobs count as done and whose runs join the tables.
    ``only_methods``: run only these of the board's methods (the table still lists every method).
    ``write_only``: run nothing; regenerate the board from the recorded runs and the committed CSV.
    """
    out = out_dir / f"{board.name}.md"
    t0 = time.time()
    case_study = board.protocol == "case-study"
    skip = _store_keys(also_read, experiment)
    if not case_study:
        skip |= _published_keys(leaderboard.csv_path(out))
    from drbench.registry import resolve_methods

    methods = resolve_methods(board.methods if isinstance(board.methods, str) else ",".join(board.methods))
    to_run = [] if write_only else methods
    if only_methods is not None and not write_only:
        wanted = set(resolve_methods(",".join(only_methods)))
        to_run = [m for m in methods if m in wanted]
    if case_study:  # its CSV holds rankings, not job rows: a method ranked there for every seed is done
        ranked = _case_study_ranked(out.with_suffix(".csv"))
        to_run = [m for m in to_run if not all((m, int(s)) in ranked for s in seeds)]
    sweeps = [("validation", to_run)] if to_run else []
    repl = [m for m in board.replication if m in to_run]
    if repl:
        sweeps.append(("test", repl))
    summary = {"board": board.name, "jobs_finished": 0, "jobs_failed": 0, "jobs_skipped": 0}
    if dry_run:
        summary.update(pending=[], pending_estimates=[])  # estimates: ((board key..., method, selection, folds), s)
        recorded = _store_keys([tracking_uri], experiment)  # what a real run would skip from its own store
        job_seconds = _median_job_seconds(leaderboard.csv_path(out)) if not case_study else {}
    for selection, ms in sweeps:
        full = board.methods == "all" and selection == "validation" and ms == methods
        spec = SweepSpec(methods="all" if full else ",".join(ms),
                         protocol=board.protocol, dataset=board.dataset, data_dir=data_dir, seeds=list(seeds),
                         folds=folds, options=dict(board.options), selection=selection, jobs=jobs,
                         experiment=experiment, tracking_uri=tracking_uri, progress=progress, skip_keys=skip)
        if dry_run:
            try:
                todo = _pending(spec, recorded)
            except DrbenchError as e:
                log.error("%s (%s): %s", board.name, selection, e)
                continue
            summary["jobs_skipped"] += todo.pop("done")
            for m, (label, n) in todo.items():
                each = job_seconds.get(m)
                key = (board.dataset, board.protocol, str(board.options), m, selection, label)
                summary["pending_estimates"].append((key, None if each is None else n * each))
                if each is None:
                    summary["pending"].append(f"{m} {selection} {label}; no recorded run of it here to estimate from")
                else:
                    est = duration(n * each) if n * each >= 1 else "<1 s"
                    summary["pending"].append(f"{m} {selection} {label}; ~{est} of job time ({n} × {each:.0f} s)")
            continue
        try:
            rep = run_sweep(spec)
        except DrbenchError as e:
            log.error("%s (%s): %s", board.name, selection, e)
            continue
        summary["jobs_finished"] += rep.finished
        summary["jobs_failed"] += rep.failed
        summary["jobs_skipped"] += rep.skipped_done
    summary["sweep_seconds"] = round(time.time() - t0, 1)
    if not dry_run:
        uris = [tracking_uri, *also_read] if also_read else tracking_uri
        write_board(board, out, tracking_uri=uris, experiment=experiment, methods=methods, data_dir=data_dir)
    return summary


def _median_job_seconds(csv: Path) -> dict:
    """``{method: median fit + predict seconds of its finished runs}`` in a board CSV (either selection: a
    replication run does the same work as an honest one), to estimate what is still to run."""
    if not csv.exists():
        return {}
    df = leaderboard.read_csv(csv)
    fin = df[df["status"] == "finished"]
    t = fin["fit_seconds"].fillna(0) + fin["predict_seconds"].fillna(0)
    return {str(m): float(v) for m, v in t.groupby(fin["method"]).median().items()}


def _pending(spec: SweepSpec, recorded: set) -> dict:
    """``{method: ("folds a,b (seed s)", number of jobs)}`` of the sweep's jobs neither in ``spec.skip_keys`` nor
    ``recorded``, plus ``"done"``: how many are."""
    from drbench.runner import plan_sweep

    plan = plan_sweep(spec)
    todo = plan.pending(set(spec.skip_keys) | recorded)
    by_method: dict = {}
    for j in todo:
        by_method.setdefault(j.method, {}).setdefault(j.seed, []).append(plan.folds[j.seed][j.fold_pos].index)
    out = {m: ("; ".join(f"folds {','.join(map(str, sorted(f)))} (seed {s})" for s, f in sorted(per.items())),
               sum(len(f) for f in per.values()))
           for m, per in by_method.items()}
    out["done"] = len(plan.jobs) - len(todo)
    return out


def board_progress(csv: Path, replication=()) -> tuple[int, list[str], float | None]:
    """(finished fold runs, methods still missing runs, summed fit + predict seconds or None) of a board CSV.

    Missing: methods listed as "not run", and methods with fewer honest runs than the most complete one,
    shown as ``name (k of n done)``; then, for the board's ``replication`` methods (those not "not supported"),
    replication runs short of that count, shown as ``name ‡`` (none yet) or ``name ‡ (k of n done)``.
    """
    df = leaderboard.read_csv(csv)
    fin = df[df["status"] == "finished"]
    seconds = float(fin[["fit_seconds", "predict_seconds"]].fillna(0).to_numpy().sum()) if len(fin) else None
    missing = sorted(set(df.loc[df["status"] == "not run", "method"]))
    honest = fin[fin["selection"] == "validation"].groupby("method").size()
    full = int(honest.max()) if len(honest) else 0
    missing += [f"{m} ({int(k)} of {full} done)" for m, k in honest.items() if k < full]
    unsupported = set(df.loc[df["status"] == "not supported", "method"])
    replicated = fin[fin["selection"] == "test"].groupby("method").size()
    for m in replication:
        k = int(replicated.get(m, 0))
        if m in unsupported or k >= max(full, 1):
            continue
        missing.append(f"{m} ‡" if k == 0 else f"{m} ‡ ({k} of {full} done)")
    return int(len(fin)), missing, seconds


def write_board(board: Board, out: Path, tracking_uri=None, experiment="drbench", methods=None,
                data_dir=None) -> None:
    if board.protocol == "case-study":
        write_case_study(board, out, tracking_uri, experiment, data_dir=data_dir)
        return
    md = leaderboard.build(experiments=[experiment], tracking_uri=tracking_uri, dataset=board.dataset,
                           protocol=board.protocol, out=str(out), title=board.title, plots=True,
                           methods=None if board.methods == "all" else methods, merge_csv=True)
    done, missing, _ = board_progress(leaderboard.csv_path(out), board.replication)
    partial = ""
    if missing:
        partial = (f"**Partial table:** {done} fold runs recorded so far; not run yet: {', '.join(missing)}"
                   f"{REPLICATION_KEY if any('‡' in m for m in missing) else ''}. "
                   f"`drbench reproduce --only {board.name}` completes it (resumable).")
    note = " ".join(x for x in (board.note, partial) if x)
    if note:
        head, _, rest = md.partition("\n\n")
        md = f"{head}\n\n> {note}\n\n{rest}"
    if board.protocol == "transfer":
        from drbench import paper

        paper.write_replicate_screens(out.parent, data_dir)
        rows = paper.replicate_screen_lines(out.parent)
        if rows:
            md = md.rstrip("\n") + "\n\n" + "\n".join([
                "## Replicate screen (reference row)", "",
                "The same statistics between the two screens themselves, on the (cell line, drug) pairs both measured "
                "(computed from the data bundle; `replicate-screens.csv`): how reproducible the target labels are. "
                "See paper.md on reading it beside the models.", "", *rows, ""])
    atomic.write_text(out, md)


def write_case_study(board: Board, out: Path, tracking_uri=None, experiment="drbench", data_dir=None) -> None:
    """Top-10 predicted sensitive cell lines among unmeasured pairs, from the runs' ``topk.csv`` artifacts.

    Rankings recorded before cell names were kept (no ``cell_name`` column) get the names from the dataset's
    ``cell_map.csv`` when the data directory is found; the CSV then holds them, so it alone renders the board.
    """
    uri = tracking_uri[0] if isinstance(tracking_uri, list) else tracking_uri
    c = tracking.client(uri)
    exp = tracking.experiment_id(c, experiment, create=False)
    frames = []
    if exp is not None:
        runs = tracking.search_job_runs(c, [exp], extra=f"tags.`drbench.protocol` = 'case-study' and "
                                                         f"tags.`drbench.dataset` = '{board.dataset}'")
        for r in runs:
            if r.data.tags.get("drbench.method") not in board.methods:
                continue
            with tempfile.TemporaryDirectory() as tmp:  # the artifact is read, not kept beside the boards
                df = pd.read_csv(c.download_artifacts(r.info.run_id, "topk.csv", tmp))
            df.insert(0, "method", r.data.tags["drbench.method"])
            df.insert(1, "seed", int(r.data.tags["drbench.seed"]))
            df["selection"] = r.data.tags["drbench.selection"]
            df["run_id"] = r.info.run_id
            df["code_version"] = r.data.tags.get("drbench.code_version", "")
            df["job_seconds"] = r.data.metrics.get("fit_seconds", 0) + r.data.metrics.get("predict_seconds", 0)
            frames.append(df)
    csv = out.with_suffix(".csv")
    if frames:
        new = pd.concat(frames, ignore_index=True)
        if csv.exists():  # merge: a (method, seed, selection) ranked in the store replaces its rows, others stay
            old = pd.read_csv(csv, dtype={"cell_id": str})
            key = ["method", "seed", "selection"]
            redone = pd.MultiIndex.from_frame(new[key].drop_duplicates())
            old = old[~pd.MultiIndex.from_frame(old[key]).isin(redone)]
            new = pd.concat([old, new], ignore_index=True)
        atomic.write_csv(new, csv, index=False)
    if csv.exists():
        add_cell_names(csv, board.dataset, data_dir)
    atomic.write_text(out, render_case_study(csv, board.title))


def add_cell_names(csv: Path, dataset: str, data_dir=None) -> bool:
    """Fill the ``cell_name`` column of a case-study CSV from the dataset (ids it does not know keep their id).

    Returns whether the file changed; without the data directory it is left as it is (the board then shows ids).
    """
    df = pd.read_csv(csv, dtype={"cell_id": str})
    if "cell_name" in df.columns and not df["cell_name"].isna().any():
        return False
    from drbench.datasets import load_dataset

    try:
        ds = load_dataset(dataset, data_dir)
    except DrbenchError as e:
        log.warning("case study: cell names not added (%s)", e)
        return False
    names = dict(zip(ds.cell_ids, ds.cell_names))
    known = df["cell_name"] if "cell_name" in df.columns else pd.Series(pd.NA, index=df.index)
    filled = known.fillna(df["cell_id"].map(names)).fillna(df["cell_id"])
    df = df.drop(columns=["cell_name"], errors="ignore")
    df.insert(int(df.columns.get_loc("cell_id")) + 1, "cell_name", filled)
    atomic.write_csv(df, csv, index=False)
    return True


def render_case_study(csv: Path, title: str, k: int = 10) -> str:
    lines = [f"# {title}", ""]
    if not csv.exists():
        return "\n".join(lines + ["No case-study runs recorded yet.", ""])
    df = pd.read_csv(csv, dtype={"cell_id": str})
    df = df[df["selection"] == "validation"]
    named = "cell_name" in df.columns
    seed = df["seed"].min()
    df = df[df["seed"] == seed]
    lines += [
        "Generated by `drbench reproduce` from recorded runs (the CSV beside this file holds every drug's top "
        f"{int(df['rank'].max())}). Model trained on every measured GDSC entry (epochs selected on a validation "
        f"split carved from them); seed {seed}. Scores rank unmeasured pairs: they are predictions, not measurements.",
        f"Code version: {', '.join(sorted(set(df['code_version'].astype(str))))}.", "",
    ]
    counts = df.groupby("drug_name")["unmeasured_pairs"].first()
    # the five drugs with most unmeasured pairs (ties broken by name, so the choice is deterministic); a named
    # drug that is among them is shown once, under its name, and the next drugs do not take its place
    top5 = sorted(counts.index, key=lambda d: (-int(counts[d]), str(d)))[:5]
    chosen = [d for d in CASE_DRUGS if d in counts.index]
    chosen += [d for d in top5 if d not in chosen]
    tied = sorted(d for d in counts.index if d not in top5 and counts[d] == counts[top5[-1]]) if top5 else []
    if tied:
        lines += [f"Ties at the cut-off of the five drugs with most unmeasured pairs are broken by name; also at "
                  f"{int(counts[top5[-1]])} unmeasured pairs: {', '.join(map(str, tied))} (in the CSV).", ""]
    for method, part in df.groupby("method"):
        for drug in chosen:
            g = part[part["drug_name"] == drug].sort_values("rank").head(k)
            if g.empty:
                continue
            why = "; ".join(w for w, yes in (("named in the paper", drug in CASE_DRUGS),
                                             ("among the five drugs with most unmeasured pairs", drug in top5)) if yes)
            lines += [f"## {method}: {drug} ({why}; {int(g['unmeasured_pairs'].iloc[0])} unmeasured pairs)", ""]
            if named:
                lines += ["| rank | cell line | cell id | score |", "|---|---|---|---|"]
                lines += [f"| {int(r['rank'])} | {r['cell_name']} | {r['cell_id']} | {r['score']:.4f} |"
                          for _, r in g.iterrows()]
            else:
                lines += ["| rank | cell line | score |", "|---|---|---|"]
                lines += [f"| {int(r['rank'])} | {r['cell_id']} | {r['score']:.4f} |" for _, r in g.iterrows()]
            lines += [""]
    return "\n".join(lines).rstrip() + "\n"


def write_runtime(out_dir: Path) -> None:
    """runtime.md: fit/predict seconds and peak memory per method and dataset (Test 1, one fold), from the CSVs."""
    rows = []
    test1 = {}  # the first Test 1 board of each dataset (gdsc-random, ccle-random; the ablation board repeats gdsc)
    for b in BOARDS:
        if b.protocol == "random":
            test1.setdefault(b.dataset, b.name)
    for name in test1.values():
        path = out_dir / f"{name}.csv"
        if path.exists():
            df = leaderboard.read_csv(path)
            df = df[(df["status"] == "finished") & (df["selection"] == "validation") & (df["fold"] == 0)]
            df = df[df["seed"] == df["seed"].min()]
            rows.append(df)
    lines = ["# Runtime (Test 1, fold 0, seed 0, honest mode)", "",
             "Times are measured by the runner around `fit` and `predict`; peak memory is the job process's "
             "peak resident set (Linux VmHWM, reset before each job). These are the recorded sweep runs: runs made "
             "while the machine was shared are slower than quiet-machine benchmarks (README, Performance). "
             "*threads* is the job's torch thread count and *load* the machine's 1-minute load average when the job "
             "started, both recorded with the run (— for runs recorded before drbench kept them).", ""]
    if not rows:
        atomic.write_text(out_dir / "runtime.md", "\n".join(lines + ["No runs yet.", ""]))
        return
    df = pd.concat(rows)
    machines = sorted(set(df["machine"].dropna().astype(str)))
    if machines:
        lines += [f"Machine{'s' if len(machines) > 1 else ''} recorded with the runs: {'; '.join(machines)}"
                  + ("" if df["machine"].notna().all() else " (older runs: not recorded; the README's Performance "
                                                            "section names the machine kind they ran on)") + ".", ""]
    else:
        lines += ["Machine: not recorded with these runs (they predate it; the README's Performance section names "
                  "the machine kind they ran on).", ""]
    dash = lambda v, fmt: "—" if pd.isna(v) else format(v, fmt)  # noqa: E731
    lines += ["| dataset | method | fit s | predict s | peak MB | threads | load |", "|---|---|---|---|---|---|---|"]
    for _, r in df.sort_values(["dataset", "fit_seconds"]).iterrows():
        lines.append(f"| {r['dataset']} | {r['method']} | {r['fit_seconds']:.1f} | {r['predict_seconds']:.2f} | "
                     f"{r['peak_rss_mb']:.0f} | {dash(r['threads'], '.0f')} | {dash(r['load_start'], '.2f')} |")
    from drbench.plots import runtime_bars

    runtime_bars(df.assign(method=df["dataset"] + " " + df["method"]), out_dir / "runtime.png",
                 "fit seconds, Test 1 fold 0")
    lines += ["", "![fit time per method](runtime.png)", ""]
    atomic.write_text(out_dir / "runtime.md", "\n".join(lines))


def update_index(out_dir: Path, summaries: list[dict], data_dir=None) -> None:
    """Keep ``boards.json`` (per-board timing and status) up to date; README.md in leaderboards/ reads it."""
    path = out_dir / "boards.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    for s in summaries:
        prev = state.get(s["board"], {})
        ran = s.get("sweep_seconds", 0) if s.get("jobs_finished") else 0  # a rewrite from recorded runs is not job time
        s["sweep_seconds_total"] = round(prev.get("sweep_seconds_total", 0) + ran, 1)
        s["code_version"] = tracking.code_version()
        state[s["board"]] = {**prev, **s}
    atomic.write_text(path, json.dumps(state, indent=2, sort_keys=True) + "\n")


def reproduce(only=None, out_dir="leaderboards", data_dir=None, seeds=(0,), jobs=1, tracking_uri=None,
              experiment="drbench", progress=True, dry_run=False, folds=None, also_read=(),
              only_methods=None, write_only=False) -> list[dict]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    boards = [board_by_name(n) for n in only] if only else BOARDS
    summaries = []
    with reuse_loaded_datasets():  # boards and their sweeps share one parse of each dataset
        for b in boards:
            log.warning("board %s: %s / %s", b.name, b.dataset, b.protocol)
            s = run_board(b, out, data_dir=data_dir, seeds=seeds, jobs=jobs, tracking_uri=tracking_uri,
                          experiment=experiment, progress=progress, dry_run=dry_run, folds=folds,
                          also_read=also_read, only_methods=only_methods, write_only=write_only)
            summaries.append(s)
            if not dry_run:
                update_index(out, [s], data_dir)
                write_runtime(out)
                write_index(out, data_dir)
        if not dry_run:
            from drbench import paper

            paper.write(out, data_dir)
    return summaries


def duration(seconds) -> str:
    """Seconds as a short human duration ("42 s", "26 min", "2.9 h"); "—" for none."""
    if not seconds:
        return "—"
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _run_versions(csv: Path) -> str:
    """The code versions recorded by a board's runs: one or two by name, more as a count."""
    if not csv.exists():
        return "—"
    v = pd.read_csv(csv, usecols=lambda c: c == "code_version")
    versions = sorted(set(v["code_version"].dropna().astype(str))) if "code_version" in v.columns else []
    if not versions:
        return "—"
    return ", ".join(versions) if len(versions) <= 2 else f"{len(versions)} versions (listed in the board)"


def write_index(out_dir: Path, data_dir=None) -> None:
    """leaderboards/README.md: what each table is, the command that regenerates it, time, data, code version."""
    out_dir = Path(out_dir)
    path = out_dir / "boards.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    lines = [
        "# Published leaderboards", "",
        "Every file here is generated by `drbench reproduce` (or `drbench leaderboard`) from recorded runs; nothing is "
        "typed by hand. Each markdown table has its per-fold CSV beside it, and "
        "`drbench reproduce --write-only --only BOARD` rebuilds the board's markdown and pictures from its CSVs alone, "
        "byte for byte, with no MLflow store (`drbench leaderboard --from-csv FILE.csv` renders the same tables "
        "without the board's title, status note and pictures). "
        "Cells are mean ± SD (n folds × seeds). † transductive method, ‡ replication mode (epochs selected on the "
        "test entries, as the reference code did; shown beside the honest numbers with the difference). Every method is "
        "compared with the table's best and with its strongest naive baseline: the mean difference with its 95% CI "
        "(Nadeau–Bengio corrected resampled t-test) and a verdict (better / equivalent / worse / undecided, from the "
        f"Bayesian correlated t-test with a ±{stats.DEFAULT_ROPE['auc']:g} region of practical equivalence); each table ends with a Conclusions "
        "paragraph generated from those verdicts. `drbench compare A B --board BOARD` prints every statistic for one "
        "pair (`--against-board` for one method against all).", "",
        "Regenerate everything (resumable: jobs already in these CSVs or in the MLflow store are not recomputed):", "",
        "```bash", "drbench reproduce --data-dir ../shared/data", "```", "",
        "`--only BOARD[,BOARD]` regenerates some boards, `--methods M[,M]` runs only some methods (the tables still "
        "list every method; missing ones show as \"not run\"), `--write-only --only BOARD` rebuilds a board from its CSV "
        "(plus any `--tracking-uri`/`--also-read` stores) without running anything. *Recorded job time* is the sum of the fit and predict "
        "seconds of the table's finished runs (from its CSV), i.e. single-job compute, not wall time of the sweep.", "",
        "Each `*-curves.png` (ROC and precision–recall, the mean of each method's honest runs) has its runs' curves in "
        "the `.csv` of the same name, so it is redrawn without the MLflow store that holds the predictions; methods "
        "whose runs were recorded before curves were kept are named under the picture until they are rerun.", "",
        "Replication runs (‡, `--select test`) use the same hyperparameters and evaluation schedule as the honest runs "
        "(e.g. MTIGCN/NIHGCN: validation AUC every 10 epochs, patience 200); the only difference is that the "
        "selecting entries are the test entries (scored with their features, as the reference did, so an inductive "
        "method such as DeepCDR sees the held-out entities' features there) and no validation split is carved from "
        "training, so the difference is the optimism of test-set selection. The reference's exact schedule (every "
        "epoch, no early stop) is `--set mtigcn.eval_every=1 --set mtigcn.patience=0`.", "",
        "*Code version of the runs* is the drbench version (git describe) each run recorded; a board made over "
        "several sessions lists all of them under its title.", "",
        "| file | what | regenerate | recorded job time | status | code version of the runs |", "|---|---|---|---|---|---|",
    ]
    for b in BOARDS:
        s = state.get(b.name, {})
        csv = out_dir / f"{b.name}.csv"
        status = "not run yet"
        t = None
        if csv.exists() and b.protocol != "case-study":
            done, missing, t = board_progress(csv, b.replication)
            if done:
                status = f"partial: {done} runs; not run: {', '.join(missing)}" if missing else f"complete: {done} runs"
        elif csv.exists():
            status, t = "complete", _case_study_seconds(csv)
        if t is None:
            t = s.get("sweep_seconds_total")
        lines.append(
            f"| [{b.name}.md]({b.name}.md) | {b.title} | `drbench reproduce --only {b.name}` | "
            f"{duration(t)} | {status} | {_run_versions(csv)} |")
    lines += [
        "| [runtime.md](runtime.md) | fit/predict seconds and peak memory per method (Test 1, fold 0) | written by "
        "`drbench reproduce` from the Test 1 CSVs | | | |", "",
        "## Data", "",
        "The data bundle in the MTIGCN repository's layout (see its PROVENANCE.md): GDSC 961 cell lines × 228 drugs "
        "(one of 962 lines, T-T, has no expression and is dropped), CCLE 328 × 24 (108 of 436 lines have no "
        "expression and are dropped). Expression: a 5,778-gene GDSC array panel, z-scored per cell line (the paper's "
        "~17k-gene matrices could not be obtained). PDX and TCGA have responses only, so Test 3 is replaced by "
        "GDSC → CCLE transfer. `drbench data info gdsc` prints the dataset's content hash, recorded on every run.", "",
    ]
    atomic.write_text(out_dir / "README.md", "\n".join(lines))
