"""Pair the folds of one method run in two settings (e.g. ``precision=fp32`` vs ``bf16``) and print the differences.

Each side is a leaderboard CSV or an MLflow tracking URI; runs are paired by (seed, fold mask hash), so both
sides must come from the same dataset and protocol. Prints per fold the test metrics, fit seconds and, where
the run recorded it, the best validation AUC, then the paired differences (candidate − baseline) as
mean ± SD over n folds.

Example (the bf16 check of the README's Performance section)::

    drbench run --methods mtigcn --protocol random --dataset gdsc --set mtigcn.precision=bf16 \\
        --tracking-uri sqlite:///bf16.db
    python benchmarks/compare_settings.py --baseline leaderboards/gdsc-random.csv \\
        --candidate sqlite:///bf16.db --method mtigcn --dataset gdsc --protocol random
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = ["auc", "auprc", "pcc", "scc", "rmse"]


def load(source: str, method: str, dataset: str, protocol: str, selection: str) -> pd.DataFrame:
    """Finished runs of ``method`` from a CSV or a tracking URI, with ``best_valid_auc`` where recorded."""
    from drbench import leaderboard, tracking

    if Path(source).suffix == ".csv":
        df = leaderboard.read_csv(source)
        df["best_valid_auc"] = np.nan
    else:
        df = leaderboard.collect(tracking_uri=source, dataset=dataset, protocol=protocol)
        df["best_valid_auc"] = np.nan
        c = tracking.client(source)
        for i, run_id in df["run_id"].items():
            if isinstance(run_id, str):
                df.loc[i, "best_valid_auc"] = c.get_run(run_id).data.metrics.get("fit_info.best_valid_auc", np.nan)
    base_name = df["method"].astype(str).str.split("[").str[0]  # tables label other settings "m[k=v]"
    df = df[(base_name == method) & (df["dataset"] == dataset) & (df["protocol"] == protocol)
            & (df["selection"] == selection) & (df["status"] == "finished")].copy()
    df["seed"] = df["seed"].astype(int)
    df["fold"] = df["fold"].astype(int)
    return df.set_index(["seed", "mask_sha256"])


def load_all(sources, *a) -> pd.DataFrame:
    """Several sources; where a fold is in more than one, the run with a recorded validation AUC wins."""
    df = pd.concat([load(s, *a) for s in sources])
    df = df.assign(_has=df["best_valid_auc"].notna()).sort_values("_has")
    return df[~df.index.duplicated(keep="last")].drop(columns="_has")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, nargs="+", help="leaderboard CSV(s) and/or tracking URI(s)")
    ap.add_argument("--candidate", required=True, nargs="+", help="leaderboard CSV(s) and/or tracking URI(s)")
    ap.add_argument("--method", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--selection", default="validation")
    args = ap.parse_args(argv)
    base = load_all(args.baseline, args.method, args.dataset, args.protocol, args.selection)
    cand = load_all(args.candidate, args.method, args.dataset, args.protocol, args.selection)
    common = base.index.intersection(cand.index)
    if common.empty:
        print(f"no fold of {args.method} on {args.dataset}/{args.protocol} is in both sources "
              f"(baseline {len(base)} runs, candidate {len(cand)})")
        return 1
    cols = ["best_valid_auc", *METRICS, "fit_seconds"]
    rows = []
    for key in common:
        b, c = base.loc[key], cand.loc[key]
        rows.append({"fold": int(c["fold"]), **{f"{m} base": b[m] for m in cols}, **{f"{m} cand": c[m] for m in cols}})
    t = pd.DataFrame(rows).sort_values("fold")
    print(f"# {args.method} on {args.dataset}/{args.protocol} ({args.selection}): baseline {' + '.join(args.baseline)}, "
          f"candidate {' + '.join(args.candidate)}; {len(t)} paired folds")
    print("fold " + " ".join(f"{m:>17s}" for m in cols))
    for _, r in t.iterrows():
        print(f"{int(r['fold']):4d} " + " ".join(f"{r[m + ' base']:8.4f}/{r[m + ' cand']:8.4f}" for m in cols))
    print("# candidate − baseline, mean ± SD (n):")
    for m in cols:
        d = (t[f"{m} cand"] - t[f"{m} base"]).dropna()
        if len(d):
            sd = d.std(ddof=1) if len(d) > 1 else float("nan")
            print(f"#   {m}: {d.mean():+.4f} ± {sd:.4f} ({len(d)})")
    ratio = t["fit_seconds cand"].sum() / t["fit_seconds base"].sum()
    print(f"# fit seconds: baseline {t['fit_seconds base'].sum():.0f}, candidate {t['fit_seconds cand'].sum():.0f} "
          f"(ratio {ratio:.2f}; compare only runs made on the same machine and load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
