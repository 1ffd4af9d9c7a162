"""``drbench reproduce``: run the sweeps behind every published leaderboard and regenerate the files.

Resumable twice over: a job already finished in the MLflow store is skipped, and so is a job whose row
is already in the board's committed CSV (its job key is recorded there), so a fresh machine with the
committed CSVs recomputes nothing that is published. Each board is written as soon as its sweeps end.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from drbench import boards, leaderboard, tracking
from drbench.board_files import update_index, write_board, write_index, write_runtime
from drbench.boards import Board, Variant, board_by_name, duration
from drbench.datasets import reuse_loaded_datasets
from drbench.errors import DrbenchError, UsageError
from drbench.inputs import check_output_dir
from drbench.runner import SweepSpec, run_sweep

log = logging.getLogger("drbench.reproduce")


def _published_keys(path: Path, with_lacking: bool = False, borrowed_from: Path | None = None
                    ) -> tuple[set[str], set[str]]:
    """Job keys of the finished runs in a board CSV (not run again), and, with ``with_lacking``, those of them
    without per-entity records beside it or, for the runs it borrows, beside ``borrowed_from`` (run again with
    ``rerun_without_records``, their rows then replaced; the records files are read only then)."""
    if not path.exists():
        return set(), set()
    df = leaderboard.read_csv(path)
    published = set(df.loc[df["status"] == "finished", "job_key"].dropna().astype(str))
    if not with_lacking:
        return published, set()
    lacking, _ = leaderboard.lacking_entity_records(df, leaderboard.entity_job_keys(path, borrowed_from))
    return published, set(lacking["job_key"].astype(str))


def _case_study_ranked(csv: Path) -> set[tuple[str, int]]:
    """(method, seed) pairs with an honest ranking in a case-study CSV."""
    if not csv.exists():
        return set()
    df = pd.read_csv(csv, usecols=lambda c: c in ("method", "seed", "selection"))
    df = df[df["selection"] == "validation"] if "selection" in df.columns else df
    return {(str(m), int(s)) for m, s in zip(df["method"], df["seed"])}


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
              write_only=False, device="cpu", threads=None, rerun_without_records=False) -> dict:
    """Run the sweeps of one board (honest, then replication for the test-selecting methods, then its controlled
    variants) and write it.

    ``also_read``: further MLflow stores whose finished jobs count as done and whose runs join the tables.
    ``only_methods``: run only these of the board's methods (the table still lists every method).
    ``write_only``: run nothing; regenerate the board from the recorded runs and the committed CSV.
    ``rerun_without_records``: also run again the published runs without per-entity records (recorded before drbench
    kept them), among the seeds and folds asked for; each rerun replaces its row.
    """
    out = out_dir / f"{board.name}.md"
    t0 = time.time()
    case_study = board.protocol == "case-study"
    skip = _store_keys(also_read, experiment)
    rerun = set()  # published runs without per-entity records, run again when asked (also if this store has them)
    base = boards.baseline_csv(board, out_dir)  # the default runs that board publishes: shown here, not rerun
    csvs = [] if case_study else [(leaderboard.csv_path(out), base)]
    if base is not None:
        csvs.append((base, None))
    for csv, borrowed_from in csvs:
        published, lacking = _published_keys(csv, rerun_without_records, borrowed_from)
        skip |= published
        rerun |= lacking
    if rerun:  # a rerun already in this store (its board not rewritten yet, e.g. interrupted) is not run again
        c = tracking.client(tracking_uri)
        exp = tracking.experiment_id(c, experiment, create=False)
        rerun -= tracking.keys_with_entities(c, exp, rerun) if exp is not None else set()
    from drbench.registry import resolve_methods

    methods = resolve_methods(board.methods if isinstance(board.methods, str) else ",".join(board.methods))
    to_run = [] if write_only else methods
    variants = [] if write_only else list(board.variants)
    if only_methods is not None and not write_only:
        wanted = set(resolve_methods(",".join(only_methods)))
        to_run = [m for m in methods if m in wanted]
        variants = [v for v in variants if v.method in wanted]
    if case_study:  # its CSV holds rankings, not job rows: a method ranked there for every seed is done
        ranked = _case_study_ranked(out.with_suffix(".csv"))
        to_run = [m for m in to_run if not all((m, int(s)) in ranked for s in seeds)]
    sweeps = [("validation", to_run, {})] if to_run else []  # (selection, methods, --set overrides)
    repl = [m for m in board.replication if m in to_run]
    if repl:
        sweeps.append(("test", repl, {}))
    sweeps += [(v.selection, [v.method], {v.method: dict(v.params)}) for v in variants]
    summary = {"board": board.name, "jobs_finished": 0, "jobs_failed": 0, "jobs_skipped": 0, "errors": []}
    if dry_run:
        summary.update(pending=[], pending_estimates=[])  # estimates: ((board key..., row, selection, folds), s)
        recorded = _store_keys([tracking_uri], experiment)  # what a real run would skip from its own store
        job_seconds = _median_job_seconds(leaderboard.csv_path(out), device) if not case_study else {}
        if base is not None:  # a variant does the work of its method: estimate it from the baseline board's runs
            job_seconds = {**_median_job_seconds(base, device), **job_seconds}
        elsewhere = None  # for methods with no run on this board yet: read from the other boards when first needed
    for selection, ms, params in sweeps:
        full = board.methods == "all" and selection == "validation" and ms == methods
        spec = SweepSpec(methods="all" if full else ",".join(ms),
                         protocol=board.protocol, dataset=board.dataset, data_dir=data_dir, seeds=list(seeds),
                         folds=folds, options=dict(board.options), params=params, selection=selection, jobs=jobs,
                         experiment=experiment, tracking_uri=tracking_uri, progress=progress, skip_keys=skip,
                         rerun_keys=rerun, device=device, threads=threads)
        if dry_run:
            try:
                todo = _pending(spec, recorded)
            except DrbenchError as e:
                log.error("%s (%s): %s", board.name, selection, e)
                summary["errors"].append(f"{selection}: {e}")
                continue
            summary["jobs_skipped"] += todo.pop("done")
            for m, (label, n) in todo.items():
                each, source = job_seconds.get(m), ""
                if each is None and elsewhere is None:
                    elsewhere = _job_seconds_elsewhere(board, out_dir, device)
                if each is None and m in elsewhere:
                    each, other = elsewhere[m]
                    source = f", from its runs on {other}"
                row = Variant(m, params[m]).row if m in params else m
                key = (board.dataset, board.protocol, str(board.options), row, selection, label)
                summary["pending_estimates"].append((key, None if each is None else n * each))
                if each is None:
                    summary["pending"].append(f"{row} {selection} {label}; no recorded run of it on a {board.dataset} "
                                              "board to estimate from")
                else:
                    est = duration(n * each) if n * each >= 1 else "<1 s"
                    summary["pending"].append(f"{row} {selection} {label}; ~{est} of job time ({n} × {each:.0f} s"
                                              f"{source})")
            continue
        try:
            rep = run_sweep(spec)
        except DrbenchError as e:
            log.error("%s (%s): %s", board.name, selection, e)
            summary["errors"].append(f"{selection}: {e}")
            continue
        summary["jobs_finished"] += rep.finished
        summary["jobs_failed"] += rep.failed
        summary["jobs_skipped"] += rep.skipped_done
    summary["sweep_seconds"] = round(time.time() - t0, 1)
    if not dry_run:
        uris = [tracking_uri, *also_read] if also_read else tracking_uri
        write_board(board, out, tracking_uri=uris, experiment=experiment, methods=methods, data_dir=data_dir)
    return summary


def _median_job_seconds(csv: Path, device: str = "cpu") -> dict:
    """``{method: median fit + predict seconds of its finished runs}`` in a board CSV (either selection: a
    replication run does the same work as an honest one), to estimate what is still to run: the runs on a GPU for a
    ``cuda`` sweep, those on the CPU (or with no device recorded) otherwise, where the method has any."""
    if not csv.exists():
        return {}
    df = leaderboard.read_csv(csv)
    fin = df[df["status"] == "finished"]
    gpu = leaderboard.on_gpu(fin)
    want = gpu if str(device).startswith("cuda") else ~gpu
    fin = fin[want | ~want.groupby(fin["method"]).transform("any")]
    t = fin["fit_seconds"].fillna(0) + fin["predict_seconds"].fillna(0)
    return {str(m): float(v) for m, v in t.groupby(fin["method"]).median().items()}


def _job_seconds_elsewhere(board: Board, out_dir: Path, device: str = "cpu") -> dict:
    """``{method: (median job seconds, board name)}`` from the other boards in ``out_dir`` on the same dataset (the
    same protocol first, e.g. a per-target board's grouped board), for a method with no run on ``board`` yet: a
    rough estimate (the data sizes differ), named as such."""
    others = [b for b in boards.BOARDS if b.name != board.name and b.dataset == board.dataset
              and b.protocol != "case-study"]
    others.sort(key=lambda b: (b.protocol != board.protocol, b.name))
    found: dict = {}
    for b in others:
        for m, sec in _median_job_seconds(leaderboard.csv_path(Path(out_dir) / f"{b.name}.md"), device).items():
            found.setdefault(m, (sec, b.name))
    return found


def _pending(spec: SweepSpec, recorded: set) -> dict:
    """``{method: ("folds a,b (seed s)", number of jobs)}`` of the sweep's jobs neither in ``spec.skip_keys`` nor
    ``recorded``, plus ``"done"``: how many are."""
    from drbench.runner import plan_sweep

    plan = plan_sweep(spec)
    todo = plan.pending((set(spec.skip_keys) | recorded) - set(spec.rerun_keys))
    by_method: dict = {}
    for j in todo:
        by_method.setdefault(j.method, {}).setdefault(j.seed, []).append(plan.folds[j.seed][j.fold_pos].index)
    out = {m: ("; ".join(f"folds {','.join(map(str, sorted(f)))} (seed {s})" for s, f in sorted(per.items())),
               sum(len(f) for f in per.values()))
           for m, per in by_method.items()}
    out["done"] = len(plan.jobs) - len(todo)
    return out


def _check_inputs(chosen, data_dir, tracking_uri, also_read, only_methods, write_only) -> None:
    """What can be checked before any board starts (one-line errors): the methods named, every store, and the
    data folder of each board that will run sweeps."""
    from drbench.datasets import DATASETS, resolve_data_dir
    from drbench.registry import resolve_methods

    if only_methods is not None:
        resolve_methods(",".join(only_methods))
    if not write_only:
        on_disk = [b.dataset for b in chosen if b.dataset in DATASETS and DATASETS[b.dataset].needs_data_dir]
        for name in dict.fromkeys(on_disk):
            resolve_data_dir(name, data_dir)
    for uri in also_read:  # the stores only read first (they must exist): a bad one leaves the main store untouched
        tracking.client(uri, must_exist=True)
    tracking.client(tracking_uri)


def reproduce(only=None, out_dir="leaderboards", data_dir=None, seeds=(0,), jobs=1, tracking_uri=None,
              experiment="drbench", progress=True, dry_run=False, folds=None, also_read=(),
              only_methods=None, write_only=False, device="cpu", threads=None,
              rerun_without_records=False) -> list[dict]:
    if rerun_without_records and write_only:
        raise UsageError("--rerun-without-records runs jobs and --write-only runs none: give one of them")
    chosen = [board_by_name(n) for n in only] if only else boards.BOARDS
    out = Path(out_dir) if dry_run else check_output_dir(out_dir, "--out-dir")  # a dry run writes nothing
    _check_inputs(chosen, data_dir, tracking_uri, also_read, only_methods, write_only)
    if not dry_run:
        out.mkdir(parents=True, exist_ok=True)
    summaries = []
    with reuse_loaded_datasets():  # boards and their sweeps share one parse of each dataset
        for b in chosen:
            log.warning("board %s: %s / %s", b.name, b.dataset, b.protocol)
            s = run_board(b, out, data_dir=data_dir, seeds=seeds, jobs=jobs, tracking_uri=tracking_uri,
                          experiment=experiment, progress=progress, dry_run=dry_run, folds=folds,
                          also_read=also_read, only_methods=only_methods, write_only=write_only, device=device,
                          threads=threads, rerun_without_records=rerun_without_records)
            summaries.append(s)
            if not dry_run:
                update_index(out, [s], data_dir)
                write_runtime(out)
                write_index(out, data_dir)
        if not dry_run:
            from drbench import paper

            paper.write(out, data_dir)
    return summaries
