"""One fold of every built-in method on the synthetic data: test metrics and fit information.

A refactoring check: record the numbers before a change, rerun after it, and compare::

    python benchmarks/compare_methods_synthetic.py --out /tmp/before.json
    python benchmarks/compare_methods_synthetic.py --against /tmp/before.json

Each method runs fold 0 of ``random`` (and of ``new-cell-line`` for an inductive method) on the
``synthetic`` set with ``defaults_for`` the sweep's context and then its ``fast_params`` (a short budget),
seed 0, one torch thread, through :func:`drbench.execution.run_job` (the code path of a sweep). It also
records ``get_params()`` of every built-in at its defaults. ``--against`` prints the largest absolute
difference per method over the metrics and the numeric ``fit_info`` entries (timings excluded) and exits
with status 1 when a number or a hyperparameter differs by more than ``--tol`` (``--rename OLD=NEW`` maps
a ``fit_info`` name of the record to its new name).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from drbench.execution import run_job
from drbench.registry import get_method, method_names
from drbench.runner import SweepSpec, prepare

METRICS = ("auc", "auprc", "pcc", "scc", "rmse")


def _is_timing(key: str) -> bool:
    return "seconds" in key


def run_all(methods=None, seed: int = 0) -> dict:
    out = {"runs": {}, "params": {}}
    for protocol in ("random", "new-cell-line"):
        spec = SweepSpec(methods="global-mean", protocol=protocol, dataset="synthetic", folds=[0], seeds=[seed])
        proto, _, source, dataset, _, folds = prepare(spec)
        context = {"dataset": source.name, "protocol": proto.name, "target": dataset.meta.get("target_name", "")}
        for name in methods or method_names():
            cls = get_method(name)
            out["params"][name] = {k: repr(v) for k, v in cls().get_params().items()}
            if protocol not in cls.capabilities.protocols or (protocol != "random" and cls.capabilities.transductive):
                continue
            params = {**cls.defaults_for(context), **cls.fast_params()}
            res = run_job(cls, params, dataset, folds[seed][0], seed=seed, context=context, n_threads=1,
                          keep_predictions=False)
            if res.status != "finished":
                raise SystemExit(f"{name} {protocol}: {res.error}")
            row = {"metrics": {k: res.metrics[k] for k in METRICS if k in res.metrics},
                   "fit_info": {k: v for k, v in res.fit_info.items() if not _is_timing(k)}}
            out["runs"][f"{name}/{protocol}"] = row
            print(f"{name:>12} {protocol:>14}  " + "  ".join(f"{k} {v:.6f}" for k, v in row["metrics"].items()),
                  flush=True)
    return out


def _diff(a, b) -> float:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return 0.0
        return abs(a - b) if not (math.isnan(a) or math.isnan(b)) else math.inf
    return 0.0 if a == b else math.inf


def compare(before: dict, after: dict, tol: float) -> bool:
    ok = True
    for key in sorted(set(before["runs"]) | set(after["runs"])):
        b, a = before["runs"].get(key), after["runs"].get(key)
        if a is None or b is None:
            print(f"{key:>28}  only in {'before' if a is None else 'after'}")
            ok = False
            continue
        worst, where = 0.0, ""
        for part in ("metrics", "fit_info"):
            for k in set(b[part]) | set(a[part]):
                d = _diff(b[part].get(k), a[part].get(k)) if k in b[part] and k in a[part] else math.inf
                if d > worst:
                    worst, where = d, f" ({part}.{k})"
        flag = "" if worst <= tol else "   <-- DIFFERS"
        ok &= worst <= tol
        print(f"{key:>28}  max |diff| {worst:.3g}{where}{flag}")
    for name in sorted(set(before["params"]) | set(after["params"])):
        if before["params"].get(name) != after["params"].get(name):
            print(f"{name:>28}  get_params() differs")
            ok = False
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", help="comma-separated method names (default: every registered method)")
    ap.add_argument("--out", help="write the numbers to this JSON file")
    ap.add_argument("--against", help="compare with a JSON file written by --out")
    ap.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                    help="a fit_info entry renamed since the record (repeatable)")
    ap.add_argument("--tol", type=float, default=1e-12, help="largest absolute difference accepted (default 1e-12)")
    args = ap.parse_args(argv)
    result = run_all(args.methods.split(",") if args.methods else None)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
    if args.against:
        with open(args.against) as f:
            before = json.load(f)
        renamed = dict(r.split("=", 1) for r in args.rename)
        for run in before["runs"].values():
            run["fit_info"] = {renamed.get(k, k): v for k, v in run["fit_info"].items()}
        if args.methods:  # compare only what ran
            before["runs"] = {k: v for k, v in before["runs"].items() if k.split("/")[0] in result["params"]}
            before["params"] = {k: v for k, v in before["params"].items() if k in result["params"]}
        return 0 if compare(before, result, args.tol) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
