"""The ``drbench`` command line: run, leaderboard, methods, protocols, data."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from drbench.errors import DrbenchError, UsageError


#: the most values one ``a-b`` range of --seeds / --folds may hold (a typo such as 0-100000000 would otherwise
#: build a list of a hundred million jobs before anything is checked)
MAX_RANGE = 10_000


def _int_list(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` or a mix (``"0-2,7"``)."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, part)
                a, b = int(a), int(b)
                if b < a:
                    raise argparse.ArgumentTypeError(f"{part!r} is an empty range (write the smaller number first)")
                if b - a >= MAX_RANGE:
                    raise argparse.ArgumentTypeError(f"{part!r} holds more than {MAX_RANGE} values")
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected integers like 0,1,2 or 0-4, got {text!r}") from None
    return out


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_values(items, what: str) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"{what} expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _value(v.strip())
    return out


def _method_overrides(items) -> dict:
    out: dict = {}
    for k, v in _key_values(items, "--set").items():
        if "." not in k:
            raise UsageError(f"--set expects METHOD.PARAM=VALUE (e.g. mtigcn.epochs=200), got {k!r}")
        m, p = k.split(".", 1)
        out.setdefault(m, {})[p] = v
    return out


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (``drbench: error: ...``, exit status 2), like
    every other drbench error, instead of a usage block."""

    def error(self, message):
        self.exit(2, f"drbench: error: {message} (see `{self.prog} --help`)\n")


# ---------------------------------------------------------------------------------------------- commands
def cmd_run(args) -> int:
    from drbench.runner import SweepSpec, run_sweep

    options = _key_values(args.option, "--option")
    if args.per_target:
        options["per_target"] = True
    if args.n_targets:
        options["n_targets"] = args.n_targets
    if args.target:
        options["target"] = args.target
    spec = SweepSpec(
        methods=args.methods, protocol=args.protocol, dataset=args.dataset, data_dir=args.data_dir,
        seeds=args.seeds, folds=args.folds, options=options, params=_method_overrides(args.set),
        selection=args.select, device=args.device, jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
        experiment=args.experiment, tracking_uri=args.tracking_uri, keep_predictions=not args.no_predictions,
        progress=not args.quiet, force=args.force, threads=args.threads, genes=args.genes, gene_seed=args.gene_seed,
    )
    report = run_sweep(spec)
    for name, why in report.unsupported.items():
        print(f"  {name}: {why}")
    print(f"{report.planned} jobs planned, {report.skipped_done} already finished (skipped), "
          f"{report.finished} finished now, {report.failed} failed"
          + (f", {report.claimed_elsewhere} run by another driver" if report.claimed_elsewhere else ""))
    if report.results:
        from drbench.protocols import get_protocol

        entity = get_protocol(args.protocol).per_entity_headline
        if entity:
            print("(metrics per held-out entity, averaged within each fold)")
        _print_results(report.results, suffix="_entity" if entity else "")
    if report.parent_run_id:
        from drbench.tracking import tracking_uri

        print(f"MLflow: {tracking_uri(args.tracking_uri)} experiment {args.experiment!r}, sweep run {report.parent_run_id}")
    return 1 if report.failed else 0


def _print_results(results, suffix: str = "") -> None:
    import numpy as np

    by = {}
    for r in results:
        by.setdefault(r.method, []).append(r)
    keys = ["auc", "auprc", "pcc", "scc", "rmse"]
    print(f"{'method':<16}" + "".join(f"{k:>16}" for k in keys) + f"{'fit s':>9}")
    for m, rs in by.items():
        cells = []
        for k in keys:
            v = np.array([r.metrics.get(k + suffix, np.nan) for r in rs if r.status == "finished"], dtype=float)
            v = v[~np.isnan(v)]
            cells.append(f"{v.mean():.3f}±{v.std(ddof=1) if len(v) > 1 else 0:.3f}" if len(v) else "—")
        fit = np.nanmean([r.fit_seconds for r in rs]) if rs else float("nan")
        failed = sum(r.status != "finished" for r in rs)
        print(f"{m:<16}" + "".join(f"{c:>16}" for c in cells) + f"{fit:>9.1f}" + (f"  ({failed} failed)" if failed else ""))


def cmd_leaderboard(args) -> int:
    from drbench import leaderboard
    from drbench.inputs import check_name

    for name in args.experiment or ():
        check_name(name, "--experiment")
    if args.out is not None:
        leaderboard.check_out(args.out)  # the plain inputs first, then the stores
    if not args.from_csv:
        from drbench import tracking

        for uri in args.tracking_uri or [None]:
            tracking.client(uri, must_exist=True)
    out = leaderboard.build(
        experiments=args.experiment, tracking_uri=args.tracking_uri, dataset=args.dataset, protocol=args.protocol,
        out=args.out, from_csv=args.from_csv, title=args.title, plots=args.plots, require_match=True,
    )
    if args.out is None:
        print(out)
    else:
        print(f"wrote {args.out} and {leaderboard.csv_path(args.out)}")
    return 0


def cmd_reproduce(args) -> int:
    from drbench.inputs import check_at_least, check_device, check_folds, check_name, check_seeds
    from drbench.boards import BOARDS
    from drbench.reproduce import reproduce

    check_seeds(args.seeds)
    check_folds(args.folds)
    check_at_least(args.jobs, 1, "--jobs")
    check_at_least(args.threads, 1, "--threads")
    check_name(args.experiment, "--experiment")
    if args.list:
        for b in BOARDS:
            print(f"{b.name:<24}{b.dataset:<7}{b.protocol:<15}{b.title}")
        return 0
    check_device(args.device)
    only = [x.strip() for x in args.only.split(",")] if args.only else None
    summaries = reproduce(only=only, out_dir=args.out_dir, data_dir=args.data_dir, seeds=args.seeds, jobs=args.jobs,
                          tracking_uri=args.tracking_uri, experiment=args.experiment, progress=not args.quiet,
                          dry_run=args.dry_run, folds=args.folds, also_read=args.also_read or (),
                          only_methods=[x.strip() for x in args.methods.split(",")] if args.methods else None,
                          write_only=args.write_only, device=args.device, threads=args.threads,
                          rerun_without_records=args.rerun_without_records)
    for s in summaries:
        if args.dry_run:
            print(f"{s['board']}: {len(s['pending'])} method sweeps to run, {s['jobs_skipped']} jobs already done"
                  + "".join(f"\n  {p}" for p in s["pending"])
                  + "".join(f"\n  could not plan {e}" for e in s["errors"]))
            continue
        print(f"{s['board']}: {s['jobs_finished']} jobs finished, {s['jobs_skipped']} skipped, "
              f"{s['jobs_failed']} failed, {s.get('sweep_seconds', 0):.0f} s"
              + "".join(f"\n  not run: {e}" for e in s["errors"]))
    if args.dry_run:
        from drbench.boards import duration

        sweeps = {k: t for s in summaries for k, t in s["pending_estimates"]}  # boards that share runs count once
        total = sum(t for t in sweeps.values() if t is not None)
        unknown = sum(t is None for t in sweeps.values())
        print(f"estimated job time still to run: {duration(total) if total >= 1 else 'none'} (each method's median "
              f"recorded fit + predict seconds on its board, or where it has none there on another board of the "
              f"dataset, as named, times its pending jobs; boards that share runs counted once; --jobs N runs N at "
              f"a time)"
              + (f"; {unknown} method sweep(s) with no recorded run to estimate from" if unknown else ""))
    if any(s["errors"] for s in summaries):  # a sweep that could not start: bad input for that board
        return 2 if args.dry_run else 1
    return 1 if any(s["jobs_failed"] for s in summaries) else 0


def _hyperparameters(cls) -> dict:
    """``{name: {"default": value, "accepts": words}}`` of a method's ``__init__`` hyperparameters."""
    from drbench.params import declared_types, describe

    defaults = cls().get_params()
    return {k: {"default": defaults.get(k), "accepts": describe(t) if t is not None else "any (not checked)"}
            for k, t in declared_types(cls).items()}


def cmd_methods(args) -> int:
    from drbench.api import Method
    from drbench.registry import methods, resolve_methods

    reg = methods()
    names = resolve_methods(",".join(args.names)) if args.names else reg.names()
    rows = []
    for name in names:
        try:
            cls = reg.get(name)
            caps = cls.capabilities.describe()
            row = {"name": name, "provider": reg.provider(name), **caps}
            if args.names:
                row["hyperparameters"] = _hyperparameters(cls)
                row["per_setting_defaults"] = cls.defaults_for.__func__ is not Method.defaults_for.__func__
            rows.append(row)
        except DrbenchError as e:
            rows.append({"name": name, "provider": reg.provider(name), "error": str(e)})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if args.names:  # each named method's hyperparameters: what --set METHOD.PARAM=VALUE takes
        for r in rows:
            if "error" in r:
                print(f"{r['name']}: LOAD ERROR: {r['error']}")
                continue
            print(f"{r['name']} ({r['provider']}): --set {r['name']}.PARAM=VALUE")
            for k, h in r["hyperparameters"].items():
                print(f"  {k} = {json.dumps(h['default'], default=str)}  [{h['accepts']}]")
            if r["per_setting_defaults"]:
                print("  (some defaults are set per dataset and protocol; each run records the values it used)")
        return 0
    print(f"{'method':<14}{'provider':<24}{'tasks':<27}{'protocols':<47}{'transd.':<9}needs")
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<14}{r['provider']:<24}LOAD ERROR: {r['error']}")
            continue
        print(f"{r['name']:<14}{r['provider']:<24}{','.join(r['tasks']):<27}{','.join(r['protocols']):<47}"
              f"{'yes' if r['transductive'] else 'no':<9}{','.join(r['needs']) or '-'}")
    return 0


def cmd_protocols(args) -> int:
    from drbench.registry import protocols

    reg = protocols()
    for name in reg.names():
        p = reg.get(name)
        print(f"{name:<15}{p.paper_test:<19}{p.description}")
        for k, o in p.options.items():
            print(f"{'':<17}--option {k}={o.default!r}: {o.help} [{o.accepts()}]")
    return 0


def cmd_data_list(args) -> int:
    from drbench.datasets import DATASETS, candidate_data_dirs, plugin_datasets
    from drbench.datasets.long_layout import is_long_layout

    dirs = candidate_data_dirs(args.data_dir)
    for name, info in DATASETS.items():
        where = "built in"
        if info.needs_data_dir:
            found = [str(d) for _, d in dirs if (d / name).is_dir()]
            where = found[0] if found else "not found"
        print(f"{name:<16}{where:<40}{info.description}")
    plugins = plugin_datasets()
    for name in plugins.names():
        if name not in DATASETS:
            print(f"{name:<16}{'package ' + plugins.provider(name):<40}registered under drbench.datasets")
    for _, d in dirs:
        for folder in sorted(d.iterdir()) if d.is_dir() else []:
            if folder.name not in DATASETS and is_long_layout(folder):
                print(f"{folder.name:<16}{str(folder):<40}long layout (your own data)")
    print("data directories searched: " + "; ".join(f"{d} ({how})" for how, d in dirs))
    return 0


def cmd_data_info(args) -> int:
    from drbench.datasets import load_dataset

    ds = load_dataset(args.name, args.data_dir)
    info = ds.summary()
    info["missing_features"] = ds.meta.get("missing_features", {})
    info["dropped_cell_ids"] = list(ds.meta.get("dropped_cell_ids", []))
    from drbench.protocols import get_protocol

    for p in ("new-cell-line", "new-drug"):
        info[f"eligible_{p}"] = int(len(get_protocol(p).eligible(ds)))
    print(json.dumps(info, indent=2, default=str))
    return 0


def cmd_data_import_dreval(args) -> int:
    from drbench.datasets.dreval import import_dreval

    dest = import_dreval(args.response_csv, args.dest, measure=args.measure)
    print(f"wrote {dest} (long layout); run it with --dataset {dest}")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="drbench", description="Benchmark harness for anti-cancer drug-response prediction.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run methods under a protocol and log every job to MLflow")
    r.add_argument("--methods", required=True, help="'all' or a comma-separated list (see `drbench methods`)")
    r.add_argument("--protocol", required=True, help="a registered protocol (list them, with their options: `drbench protocols`)")
    r.add_argument("--dataset", default="synthetic",
                   help="synthetic | gdsc | ccle | a folder in the long layout (see `drbench data list`)")
    r.add_argument("--data-dir", help="folder holding gdsc/, ccle/, pdx/, tcga/ (else DRBENCH_DATA, else the user cache)")
    r.add_argument("--seeds", type=_int_list, default=[0], help="seeds, e.g. 0,1,2 or 0-4 (default 0)")
    r.add_argument("--folds", type=_int_list, default=None, help="only these fold indices (default all)")
    r.add_argument("--option", action="append", metavar="KEY=VALUE", help="protocol option (see `drbench protocols`)")
    r.add_argument("--per-target", action="store_true", help="Test 2: one fold per held-out entity, as the paper did")
    r.add_argument("--n-targets", type=int, default=0, help="with --per-target: sample this many targets")
    r.add_argument("--target", help="in-vivo / transfer target set (pdx, tcga, ccle, synthetic-vivo)")
    r.add_argument("--set", action="append", metavar="METHOD.PARAM=VALUE", help="override a hyperparameter")
    r.add_argument("--select", default="validation", choices=["validation", "test"],
                   help="validation (honest, default) or test (replicates the reference's test-set selection; tagged)")
    r.add_argument("--jobs", type=int, default=1, help="parallel jobs (default 1)")
    r.add_argument("--backend", default="loky", help="joblib backend: loky | threading | sequential | dask | ray")
    r.add_argument("--scheduler", help="dask scheduler address or ray cluster address")
    r.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N; CUDA must be available (checked first)")
    r.add_argument("--threads", type=int, default=None, help="torch threads per job (default: cores / jobs)")
    r.add_argument("--genes", type=int, default=0, metavar="N",
                   help="keep a seeded random subset of N expression genes, in their order (default 0: all); the "
                        "folds stay the same, the runs get their own rows (method[genes=N])")
    r.add_argument("--gene-seed", type=int, default=0, metavar="S", help="seed of the --genes subset (default 0)")
    r.add_argument("--experiment", default="drbench", help="MLflow experiment name (default drbench)")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    r.add_argument("--no-predictions", action="store_true", help="do not store predictions as run artifacts")
    r.add_argument("--force", action="store_true", help="rerun jobs that already finished")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)

    lb = sub.add_parser("leaderboard", help="build markdown tables (and a per-fold CSV) from recorded runs")
    lb.add_argument("--experiment", action="append", help="MLflow experiment(s) (default drbench)")
    lb.add_argument("--tracking-uri", action="append", help="tracking URI(s) to read (default as for run)")
    lb.add_argument("--dataset", help="only this dataset")
    lb.add_argument("--protocol", help="only this protocol")
    lb.add_argument("--out", help="markdown file to write, e.g. board.md; the per-fold CSV goes beside it "
                                  "(board.csv). A folder or a .csv name is refused")
    lb.add_argument("--from-csv", help="rebuild the markdown from a per-fold CSV instead of MLflow")
    lb.add_argument("--title", help="title of the markdown page")
    lb.add_argument("--plots", action="store_true", help="also draw ROC/PR curves and runtime bars (PNG) beside --out")
    lb.set_defaults(func=cmd_leaderboard)

    rp = sub.add_parser("reproduce", help="run the sweeps behind the published leaderboards and regenerate them")
    rp.add_argument("--only", help="comma-separated board names (see --list)")
    rp.add_argument("--list", action="store_true", help="list the boards")
    rp.add_argument("--methods", help="run only these methods of each board (comma-separated; tables list all)")
    rp.add_argument("--write-only", action="store_true",
                    help="run nothing: regenerate the boards from the recorded runs (--tracking-uri, --also-read) "
                         "and the committed CSVs, e.g. after sweeps made with `drbench run` on other machines")
    rp.add_argument("--out-dir", default="leaderboards")
    rp.add_argument("--data-dir")
    rp.add_argument("--seeds", type=_int_list, default=[0])
    rp.add_argument("--folds", type=_int_list, default=None)
    rp.add_argument("--jobs", type=int, default=1)
    rp.add_argument("--threads", type=int, default=None,
                    help="torch threads per job (default: cores / jobs); give 1 when other work shares the cores")
    rp.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N, as for `drbench run` (checked first)")
    rp.add_argument("--experiment", default="drbench")
    rp.add_argument("--tracking-uri")
    rp.add_argument("--dry-run", action="store_true",
                    help="run nothing: list, per board, the method sweeps and folds still to run")
    rp.add_argument("--also-read", action="append", metavar="URI",
                    help="another MLflow store whose finished jobs count as done and join the tables")
    rp.add_argument("--rerun-without-records", action="store_true",
                    help="also run again the published runs that lack per-entity records (recorded before drbench "
                         "kept them), within --seeds/--folds/--methods; each rerun replaces its row")
    rp.add_argument("-q", "--quiet", action="store_true")
    rp.set_defaults(func=cmd_reproduce)

    m = sub.add_parser("methods", help="list registered methods with their capabilities and providing package; "
                                        "with names, their hyperparameters")
    m.add_argument("names", nargs="*", metavar="METHOD",
                   help="show these methods' hyperparameters: default and accepted values (what --set takes)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_methods)

    from drbench import compare as _compare

    _compare.add_cli(sub)

    from drbench import rescore as _rescore

    _rescore.add_cli(sub)

    pr = sub.add_parser("protocols", help="list protocols and their options")
    pr.set_defaults(func=cmd_protocols)

    d = sub.add_parser("data", help="datasets: list, info (and fetch/verify where available)")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dl = dsub.add_parser("list", help="datasets and where they were found")
    dl.add_argument("--data-dir")
    dl.set_defaults(func=cmd_data_list)
    di = dsub.add_parser("info", help="summary of one dataset (shape, labels, features, hash, eligible counts)")
    di.add_argument("name", help="a dataset name (see `drbench data list`) or a folder in the long layout")
    di.add_argument("--data-dir")
    di.set_defaults(func=cmd_data_info)
    dr = dsub.add_parser("import-dreval", help="write a DrEval/drevalpy custom dataset as a long-layout folder")
    dr.add_argument("response_csv", help="DrEval response CSV (cell_line_name, pubchem_id or drug_name, measure)")
    dr.add_argument("dest", help="folder to write (then: drbench run ... --dataset DEST)")
    dr.add_argument("--measure", default="LN_IC50", help="measure column to import (default LN_IC50)")
    dr.set_defaults(func=cmd_data_import_dreval)
    try:
        from drbench import fetch as _fetch

        _fetch.add_cli(dsub)
    except (ImportError, AttributeError):
        pass
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("drbench.datasets").setLevel(logging.INFO)
    try:
        return int(args.func(args) or 0)
    except DrbenchError as e:
        print(f"drbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drbench: interrupted; finished jobs are recorded, rerun the same command to finish the rest",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`drbench protocols | head -1`): stop quietly
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (e.g. captured by a test)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "build_parser"]
