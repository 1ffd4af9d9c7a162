"""Fit time and peak memory of SRMF, HNMDRP, MOFGCN and GraphCDR on one GDSC Test 1 fold.

Usage (from any directory; the data folder holds gdsc/):

    python benchmarks/bench_matrix_graph.py [--data-dir DIR] [--threads 2] [--methods srmf,hnmdrp,mofgcn,graphcdr]
                                            [--fold 0] [--set graphcdr.epochs=100 ...]

Each method runs with its GDSC defaults (``defaults_for``) through ``drbench.execution.run_job``, the
same path the runner uses, on fold ``--fold`` of the random protocol (seed 0, validation carved from
training). It prints, per method: fit seconds (wall), the job's CPU seconds (all threads of this process:
a load-robust proxy when the machine is shared), predict seconds, peak resident memory of the job (MB,
from ``PeakMemory``: the kernel's high-water mark reset at the start of the job), the selected epoch
and the test AUC, then the load average before and after — timings are only comparable on a quiet
machine.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time

DEFAULT = "srmf,hnmdrp,mofgcn,graphcdr"


def _parse_sets(items):
    out: dict[str, dict] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        method, _, param = key.partition(".")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
        out.setdefault(method, {})[param] = value
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("DRBENCH_DATA", "/work/shared/data"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default=DEFAULT)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--set", action="append", metavar="METHOD.PARAM=VALUE")
    args = ap.parse_args(argv)

    import torch

    from drbench.datasets import load_dataset
    from drbench.execution import run_job
    from drbench.methods import get_method
    from drbench.protocols import get_protocol

    torch.set_num_threads(args.threads)
    overrides = _parse_sets(args.set)
    load0 = os.getloadavg()
    t = time.perf_counter()
    ds = load_dataset("gdsc", args.data_dir)
    p = get_protocol("random")
    fold = p.folds(ds, 0, **p.resolve_options({}))[args.fold]
    print(f"GDSC {ds.shape[0]}x{ds.shape[1]}, random fold {args.fold}: train {int(fold.train.sum())}, "
          f"valid {int(fold.valid.sum())}, test {int(fold.test.sum())}; loaded in {time.perf_counter() - t:.1f} s; "
          f"torch threads {args.threads}; load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"{'method':<10} {'fit s':>8} {'job cpu s':>10} {'predict s':>10} {'peak MB':>8} {'epochs':>7} {'best':>6} "
          f"{'test AUC':>9}")
    failed = False
    for name in args.methods.split(","):
        cls = get_method(name)
        params = {**cls.defaults_for({"dataset": "gdsc", "protocol": "random"}), **overrides.get(name, {})}
        cpu0 = time.process_time()
        res = run_job(cls, params, ds, fold, seed=0, context={"dataset": "gdsc"}, n_threads=args.threads,
                      keep_predictions=False)
        cpu = time.process_time() - cpu0
        if res.status != "finished":
            failed = True
            print(f"{name:<10} FAILED: {res.error}\n{res.traceback or ''}")
            continue
        info = res.fit_info
        print(f"{name:<10} {res.fit_seconds:8.1f} {cpu:10.1f} {res.predict_seconds:10.3f} {res.peak_rss_mb:8.0f} "
              f"{str(info.get('epochs_run', info.get('iterations', '-'))):>7} "
              f"{str(info.get('best_epoch', info.get('best_iteration', '-'))):>6} {res.metrics.get('auc', float('nan')):9.4f}",
              flush=True)
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} (on {os.cpu_count()} cores)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
