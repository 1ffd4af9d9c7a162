"""Pictures for leaderboards: ROC and precision–recall curves (all methods on one plot) and runtime bars.

Curves pool the recorded test predictions of every fold of the honest runs of one (dataset, protocol);
runtime bars show the mean fit seconds per method from the per-fold CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_names(stem: str, dataset: str, protocol: str) -> dict[str, str]:
    base = f"{stem}-{dataset}-{protocol}"
    return {"curves": f"{base}-curves.png", "runtime": f"{base}-runtime.png"}


def curves(preds: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """ROC and PR curves; ``preds`` maps a method name to its pooled test predictions (label, score)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.8))
    order = sorted(preds, key=lambda m: -_auc(preds[m]))
    colours = plt.get_cmap("tab20").colors  # 20 distinct colours; the line style changes every 10 methods too
    styles = ["-", "--", "-.", ":"]
    for i, m in enumerate(order):
        d = preds[m]
        y, s = d["label"].to_numpy(), d["score"].to_numpy()
        if np.unique(y).size < 2 or np.unique(s).size < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        prec, rec, _ = precision_recall_curve(y, s)
        look = dict(lw=1.3, color=colours[(2 * i) % 20 + (i // 10) % 2], ls=styles[(i // 10) % len(styles)])
        ax1.plot(fpr, tpr, label=f"{m} ({auc(fpr, tpr):.3f})", **look)
        ax2.plot(rec, prec, label=m, **look)
    ax1.plot([0, 1], [0, 1], ls=":", c="grey")
    ax1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (pooled test entries)")
    ax2.set(xlabel="recall", ylabel="precision", title="precision–recall")
    ax1.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _auc(d: pd.DataFrame) -> float:
    from drbench.metrics import classification

    m, _ = classification(d["label"].to_numpy(), d["score"].to_numpy())
    return -1.0 if np.isnan(m["auc"]) else m["auc"]


def runtime_bars(df: pd.DataFrame, path: Path, title: str) -> None:
    plt = _plt()
    g = df.groupby("method")["fit_seconds"].agg(["mean", "std"]).sort_values("mean")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(g) + 1.5))
    ax.barh(g.index, g["mean"].clip(lower=1e-3), xerr=g["std"].fillna(0), color="#4477aa")
    ax.set_xscale("log")
    ax.set(xlabel="fit seconds per fold (log scale; mean ± SD)", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_images(df: pd.DataFrame, out: Path, tracking_uri=None) -> list[Path]:
    """Write curve and runtime images beside ``out`` for each (dataset, protocol) of the honest runs."""
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
        preds = {}
        for method, g in part.groupby("method"):
            frames = []
            for rid in g["run_id"]:
                for c in clients:
                    try:
                        p = tracking.load_predictions(c, rid)
                        p = p[p["test"].astype(bool)]
                        if p["score"].nunique() > 1:  # a constant prediction has no curve
                            frames.append(p)
                        break
                    except Exception:  # the run lives in another store, or kept no predictions
                        continue
            if frames:
                preds[method] = pd.concat(frames, ignore_index=True)
        if preds:
            curves(preds, out.parent / names["curves"], f"{ds} — {proto}")
            written.append(out.parent / names["curves"])
    return written
