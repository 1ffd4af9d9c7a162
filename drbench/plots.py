"""Pictures for leaderboards: ROC and precision–recall curves (all methods on one plot) and runtime bars.

Curves are averages over the honest runs (folds × seeds) of one (dataset, protocol): each run's test
predictions give its ROC curve (true positive rate on a fixed grid of false positive rates) and its
interpolated precision–recall curve (the highest precision at recall ≥ r, on a fixed recall grid); a
method's line is the mean over its runs and its legend gives the mean of the runs' AUCs over all their test
entries (the table's AUC; for Test 2 the table's headline is per held-out entity, so it differs).
Each run's curve is kept in a CSV beside the picture (same name, ``.csv``), because run predictions live only
in the MLflow store that made them: a board redrawn from another store, or from none, keeps every run's
curve. Methods whose runs have neither a kept curve nor predictions in the stores read are named under the
plot. Runtime bars show the mean fit seconds per method from the per-fold CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from drbench import atomic


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_names(stem: str, dataset: str, protocol: str) -> dict[str, str]:
    base = f"{stem}-{dataset}-{protocol}"
    return {"curves": f"{base}-curves.png", "runtime": f"{base}-runtime.png"}


CURVE_POINTS = 101  # grid of false positive rates (ROC) and recalls (PR), 0 to 1
CURVE_COLUMNS = ["method", "seed", "fold", "run_id", "kind", "area", "values"]


def fold_curves(y: np.ndarray, s: np.ndarray) -> dict | None:
    """One run's ``{"roc": (auc, tpr on the grid), "pr": (average precision, precision on the grid)}``, or None
    for a run whose test entries have one class or whose scores are constant (no curve)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    from drbench.metrics import classification

    y, s = np.asarray(y), np.asarray(s, dtype=float)
    if np.unique(y).size < 2 or np.unique(s).size < 2:
        return None
    grid = np.linspace(0.0, 1.0, CURVE_POINTS)
    fpr, tpr, _ = roc_curve(y, s)
    roc = np.interp(grid, fpr, tpr)
    roc[0] = 0.0
    prec, rec, _ = precision_recall_curve(y, s)  # recall decreasing
    best = np.maximum.accumulate(prec)  # highest precision at recall >= rec[i]
    pr = np.interp(grid, rec[::-1], best[::-1])
    m, _ = classification(y, s)
    return {"roc": (m["auc"], roc), "pr": (m["auprc"], pr)}


def _curve_rows(run: pd.Series, c: dict) -> list[dict]:
    return [{"method": run["method"], "seed": int(run["seed"]), "fold": int(run["fold"]),
             "run_id": str(run["run_id"]), "kind": k, "area": round(float(area), 6), "values": ";".join(f"{v:.4f}" for v in vals)}
            for k, (area, vals) in c.items()]


def curves(rows: pd.DataFrame, path: Path, title: str, n_runs: dict | None = None, missing=()) -> None:
    """Draw the fold-averaged ROC and PR curves from kept per-run curve rows (``CURVE_COLUMNS``).

    ``n_runs``: each method's number of honest runs with a defined AUC (the legend says "k of n runs" where
    fewer are drawn); ``missing``: methods with such runs but no curve, named under the plot.
    """
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.8))
    grid = np.linspace(0.0, 1.0, CURVE_POINTS)
    mean = {}
    for (method, kind), g in rows.groupby(["method", "kind"]):
        vals = np.array([[float(v) for v in str(x).split(";")] for x in g["values"]])
        mean[(method, kind)] = (float(g["area"].mean()), vals.mean(0), len(g))
    # best first; ties by name (a set's order changes between processes, so the picture would too)
    methods = sorted({m for m, k in mean if k == "roc"}, key=lambda m: (-mean[(m, "roc")][0], m))
    colours = plt.get_cmap("tab20").colors  # 20 distinct colours; the line style changes every 10 methods too
    styles = ["-", "--", "-.", ":"]
    for i, m in enumerate(methods):
        look = dict(lw=1.3, color=colours[(2 * i) % 20 + (i // 10) % 2], ls=styles[(i // 10) % len(styles)])
        area, roc, k = mean[(m, "roc")]
        n = (n_runs or {}).get(m, k)
        runs = f", {k} of {n} runs" if k < n else ""
        ax1.plot(grid, roc, label=f"{m} ({area:.3f}{runs})", **look)
        if (m, "pr") in mean:
            ax2.plot(grid, mean[(m, "pr")][1], label=m, **look)
    ax1.plot([0, 1], [0, 1], ls=":", c="grey")
    ax1.set(xlabel="false positive rate", ylabel="true positive rate",
            title="ROC (mean over runs; legend: mean AUC, all test entries)")
    ax2.set(xlabel="recall", ylabel="precision (interpolated)", title="precision–recall (mean over runs)")
    if methods:
        ax1.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    if missing:
        fig.text(0.01, 0.01, "no curve kept for (runs recorded before curves were kept, their store not read): "
                 + ", ".join(missing), fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.05 if missing else 0, 1, 1))
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def runtime_bars(df: pd.DataFrame, path: Path, title: str) -> None:
    """Mean ± SD fit seconds per method; a method's runs on a GPU (``device`` cuda…) get a bar of their own, labelled
    "(GPU)", so that CPU and GPU times are never averaged together."""
    from drbench.leaderboard import on_gpu

    plt = _plt()
    gpu = on_gpu(df)
    df = df.assign(method=df["method"].astype(str).where(~gpu, df["method"].astype(str) + " (GPU)"))
    g = df.groupby("method")["fit_seconds"].agg(["mean", "std"]).sort_values("mean")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(g) + 1.5))
    ax.barh(g.index, g["mean"].clip(lower=1e-3), xerr=g["std"].fillna(0), color="#4477aa")
    ax.set_xscale("log")
    ax.set(xlabel="fit seconds per fold (log scale; mean ± SD)", title=title)
    fig.tight_layout()
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _stored_curves(clients, run_id: str) -> dict | None:
    from drbench import tracking

    for c in clients:
        try:
            p = tracking.load_predictions(c, run_id)
        except Exception:  # the run lives in another store, or kept no predictions
            continue
        p = p[p["test"].astype(bool)]
        return fold_curves(p["label"].to_numpy(), p["score"].to_numpy())
    return None


def make_images(df: pd.DataFrame, out: Path, tracking_uri=None) -> list[Path]:
    """Write curve and runtime images beside ``out`` for each (dataset, protocol) of the honest runs.

    The per-run curves kept beside the curve picture are reused; a run without one gets it from its
    predictions in the stores read; a kept curve of a run no longer in the table (replaced by a rerun) is dropped.
    """
    from drbench import tracking

    written = []
    fin = df[(df["status"] == "finished") & (df["selection"] == "validation")]
    uris = tracking_uri if isinstance(tracking_uri, (list, tuple)) else [tracking_uri]
    clients = [tracking.client(u) for u in uris]
    for (ds, proto), part in fin.groupby(["dataset", "protocol"]):
        names = image_names(out.stem, ds, proto)
        runtime_bars(part, out.parent / names["runtime"], f"{ds} — {proto}: fit time")
        written.append(out.parent / names["runtime"])
        if proto == "case-study":
            continue
        png = out.parent / names["curves"]
        kept_path = png.with_suffix(".csv")
        kept = (pd.read_csv(kept_path, dtype={"run_id": str}) if kept_path.exists()
                else pd.DataFrame(columns=CURVE_COLUMNS))
        kept = kept[kept["run_id"].isin(set(part["run_id"].astype(str)))]
        have = set(kept["run_id"])
        new = []
        for _, run in part.iterrows():
            if str(run["run_id"]) not in have:
                c = _stored_curves(clients, str(run["run_id"]))
                new += _curve_rows(run, c) if c is not None else []
        rows = pd.concat([kept, pd.DataFrame(new, columns=CURVE_COLUMNS)], ignore_index=True) if new else kept
        if rows.empty:
            continue
        rows = rows.sort_values(["method", "seed", "fold", "kind"]).reset_index(drop=True)
        atomic.write_csv(rows, kept_path, index=False)
        defined = part[pd.to_numeric(part["auc"], errors="coerce").notna()]
        n_runs = defined.groupby("method").size().to_dict()
        missing = sorted(set(defined["method"]) - set(rows["method"]))
        curves(rows, png, f"{ds} — {proto}", n_runs=n_runs, missing=missing)
        written += [png, kept_path]
    return written
