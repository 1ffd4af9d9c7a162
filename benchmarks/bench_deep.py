"""Speed of the inductive deep baselines on one GDSC Test 1 fold (target: fit < 10 min on 2 cores).

    python benchmarks/bench_deep.py                       # deepdsc and deepcdr, fold 0, 2 threads
    python benchmarks/bench_deep.py --methods deepcdr --set epochs=2 --fold 1 --threads 2

Prints, per method: fit wall seconds, fit CPU seconds, epochs run / best epoch, peak resident memory
of the fit+predict, the fold's test metrics and the load average (timings are only comparable on a quiet
machine). Reads the real data from ``--data-dir`` (default ``../shared/data`` next to the repository,
or ``$DRBENCH_DATA``); exits cleanly with a message when it is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _value(v: str):
    try:
        return json.loads(v)
    except ValueError:
        return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("DRBENCH_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--dataset", default="gdsc")
    ap.add_argument("--protocol", default="random")
    ap.add_argument("--methods", default="deepdsc,deepcdr")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="hyperparameter override for every method (JSON values), e.g. epochs=2")
    ap.add_argument("--verbose", action="store_true", help="log every epoch")
    args = ap.parse_args(argv)

    data = Path(args.data_dir)
    if not (data / args.dataset).is_dir():
        print(f"bench_deep: no {args.dataset} data under {data}; skipped (set --data-dir or DRBENCH_DATA)")
        return 0
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    from drbench.datasets import load_dataset
    from drbench.execution import run_job
    from drbench.methods import get_method
    from drbench.protocols import get_protocol

    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, data)
    proto = get_protocol(args.protocol)
    fold = proto.folds(ds, args.seed, **proto.resolve_options({}))[args.fold]
    overrides = dict(kv.split("=", 1) for kv in args.set)
    overrides = {k: _value(v) for k, v in overrides.items()}
    print(f"{args.dataset} {args.protocol} fold {args.fold} seed {args.seed}: {int(fold.train.sum())} train, "
          f"{int(fold.valid.sum())} valid, {int(fold.test.sum())} test entries; {ds.cell_features['expression'].shape[1]} "
          f"genes; torch threads {torch.get_num_threads()}; cpus {os.cpu_count()}")
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        cls = get_method(name)
        params = {**cls.defaults_for({"dataset": args.dataset, "protocol": args.protocol}), **overrides}
        load0 = os.getloadavg()
        c0 = time.process_time()
        res = run_job(cls, params, ds, fold, seed=args.seed, keep_predictions=False, n_threads=args.threads)
        cpu = time.process_time() - c0
        load1 = os.getloadavg()
        if res.status != "finished":
            print(f"{name}: FAILED {res.error}\n{res.traceback or ''}")
            continue
        info = res.fit_info
        mets = " ".join(f"{k}={res.metrics[k]:.4f}" for k in ("auc", "auprc", "pcc", "scc", "rmse") if k in res.metrics)
        print(f"{name}: fit {res.fit_seconds:.0f} s wall (job CPU {cpu:.0f} s), predict {res.predict_seconds:.1f} s, "
              f"epochs run {info.get('epochs_run')} (best {info.get('best_epoch')}), peak RSS {res.peak_rss_mb:.0f} MB, "
              f"load avg {load0[0]:.1f} -> {load1[0]:.1f}")
        extra = {k: round(v, 4) if isinstance(v, float) else v for k, v in info.items()}
        print(f"    params {params}\n    fit_info {extra}\n    test {mets}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
