"""The files ``drbench reproduce`` writes from recorded runs: each board's markdown (:func:`write_board`), the
case study's CSV and markdown, runtime.md, boards.json and the index README.md of leaderboards/."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pandas as pd

from drbench import atomic, boards, leaderboard, stats, tracking
from drbench.boards import Board, board_progress, case_study_seconds, duration
from drbench.errors import DrbenchError
from drbench.paper import CASE_DRUGS  # the drugs of the paper's Table 9

log = logging.getLogger("drbench.board_files")

#: how a board's note and the index name a method whose replication (--select test) runs are missing
REPLICATION_KEY = " (‡: its replication runs, `--select test`)"


def write_board(board: Board, out: Path, tracking_uri=None, experiment="drbench", methods=None,
                data_dir=None) -> None:
    if board.protocol == "case-study":
        write_case_study(board, out, tracking_uri, experiment, data_dir=data_dir)
        return
    from drbench.protocols import get_protocol

    rows = [v.row for v in board.variants]
    md = leaderboard.build(experiments=[experiment], tracking_uri=tracking_uri, dataset=board.dataset,
                           protocol=board.protocol, out=str(out), title=board.title, plots=True,
                           methods=None if board.methods == "all" else [*methods, *rows], merge_csv=True,
                           options=get_protocol(board.protocol).resolve_options(board.options), variants=rows,
                           previous=baseline_rows(board, out.parent, methods),
                           entities_from=boards.baseline_csv(board, out.parent))
    done, missing, _ = board_progress(leaderboard.csv_path(out), board.replication, board.variants)
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


def baseline_rows(board: Board, out_dir: Path, methods) -> pd.DataFrame | None:
    """The finished runs of ``methods`` (at their defaults) on the board's ``baseline`` board, from its CSV."""
    path = leaderboard.csv_path(Path(out_dir) / f"{board.baseline}.md")
    if not board.baseline or not path.exists():
        return None
    df = leaderboard.read_csv(path)
    return df[(df["status"] == "finished") & df["method"].isin(list(methods or []))]


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
    for b in boards.BOARDS:
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


def gpu_seconds(csv: Path) -> float | None:
    """Summed fit + predict seconds of a board CSV's finished runs that computed on a GPU (None if none did)."""
    df = leaderboard.read_csv(csv)
    fin = df[(df["status"] == "finished") & leaderboard.on_gpu(df)]
    return float(fin[["fit_seconds", "predict_seconds"]].fillna(0).to_numpy().sum()) if len(fin) else None


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
        "seconds of the table's finished runs (from its CSV), i.e. single-job compute, not wall time of the sweep; the "
        "part computed on a GPU is named beside it.", "",
        "Each `*-curves.png` (ROC and precision–recall, the mean of each method's honest runs) has its runs' curves in "
        "the `.csv` of the same name, so it is redrawn without the MLflow store that holds the predictions; methods "
        "whose runs were recorded before curves were kept are named under the picture until they are rerun.", "",
        "Each board keeps its runs' per-entity records (metrics per drug or held-out entity, for `drbench compare`'s "
        "per-entity test) in `BOARD-entities.csv` (a control board's default rows are its baseline board's runs: "
        "their records stay in the baseline's file) and names the runs recorded before drbench kept them; "
        "`drbench reproduce --only BOARD --seeds S --rerun-without-records` runs those again (`--dry-run` first lists "
        "them with an estimate).", "",
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
    for b in boards.BOARDS:
        s = state.get(b.name, {})
        csv = out_dir / f"{b.name}.csv"
        status = "not run yet"
        t = None
        if csv.exists() and b.protocol != "case-study":
            done, missing, t = board_progress(csv, b.replication, b.variants)
            if done:
                status = f"partial: {done} runs; not run: {', '.join(missing)}" if missing else f"complete: {done} runs"
        elif csv.exists():
            status, t = "complete", case_study_seconds(csv)
        if t is None:
            t = s.get("sweep_seconds_total")
        g = gpu_seconds(csv) if csv.exists() and b.protocol != "case-study" else None
        lines.append(
            f"| [{b.name}.md]({b.name}.md) | {b.title} | `drbench reproduce --only {b.name}` | "
            f"{duration(t)}{f' (GPU: {duration(g)})' if g else ''} | {status} | {_run_versions(csv)} |")
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
