"""Speed and memory of NIHGCN / MTIGCN on one fold of the real data (Test 1, ``random`` protocol).

Prints, per (method, dataset): seconds per epoch, epochs run, fit wall time, peak resident memory and
the best validation AUC. ``--naive`` also times a reference-equivalent loop (same maths, written the
way the reference code computes it: dense diagonal self-loop matrices, an explicit ``L_d``, autograd
through both sides of the similarity Gram matrix, the unfused Adam, sklearn AUC on the validation
entries after every epoch) so the speed-up can be read side by side.

Examples (from the repository root)::

    python benchmarks/bench_gcn.py                         # mtigcn + nihgcn, gdsc + ccle, 20 epochs
    python benchmarks/bench_gcn.py --datasets gdsc --methods mtigcn --epochs 30 --naive
    python benchmarks/bench_gcn.py --datasets gdsc --methods mtigcn --full   # whole fit, default epochs/patience
    python benchmarks/bench_gcn.py --set input_basis=compact
    python benchmarks/bench_gcn.py --datasets gdsc --methods mtigcn --precisions fp32 bf16   # side by side
    python benchmarks/bench_gcn.py --gemm-ceiling --threads 2   # the matmul rate that bounds an exact epoch

Skips cleanly (exit 0) when the data directory is missing. Timings are only meaningful on a quiet
machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _parse_set(items):
    out = {}
    for item in items or []:
        k, _, v = item.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def naive_reference_loop(view, params: dict, epochs: int, device="cpu") -> dict:
    """The same model and loss computed the reference way (for timing only). Returns timing info."""
    import torch
    from sklearn.metrics import roc_auc_score

    from drbench.methods.bipartite_gcn import GCNConfig, prepare_inputs
    from drbench.methods.common import corr, masked_bce, masked_mse

    cfg = GCNConfig(hidden=params["hidden"], out=params["out"], alpha=params["alpha"],
                    w_ic50=params.get("a", 0.0), w_sim_cell=params.get("b", 0.0), w_sim_drug=params.get("c", 0.0),
                    w_bce=params.get("d", 1.0))
    inp = prepare_inputs(view, cfg, torch.device(device))
    a_train = torch.as_tensor(((view.binary == 1) & view.train).astype(np.float32))
    deg_c, deg_d = a_train.sum(1) + 1, a_train.sum(0) + 1
    lc = torch.diag(deg_c ** -0.5) @ a_train @ torch.diag(deg_d ** -0.5)
    ld = torch.diag(deg_d ** -0.5) @ a_train.T @ torch.diag(deg_c ** -0.5)
    self_c, self_d = torch.diag(1 / deg_c + 1), torch.diag(1 / deg_d + 1)
    nn = torch.nn
    h, f, al = cfg.hidden, cfg.out, cfg.alpha
    torch.manual_seed(view.seed)
    fc_c, fc_d = nn.Linear(inp["xc"].shape[1], h), nn.Linear(inp["xd"].shape[1], h)
    bn_c, bn_d = nn.BatchNorm1d(h), nn.BatchNorm1d(h)
    lin_c, lin_d = nn.Linear(h, f), nn.Linear(h, f)
    reg_c, reg_d, sim = nn.Linear(f, f), nn.Linear(f, f), nn.Linear(f, f)
    mods = [fc_c, fc_d, bn_c, bn_d, lin_c, lin_d] + ([reg_c, reg_d] if cfg.w_ic50 else []) + \
        ([sim] if cfg.w_sim_cell or cfg.w_sim_drug else [])
    opt = torch.optim.Adam([p for m in mods for p in m.parameters()], lr=1e-3, weight_decay=1e-5, foreach=False)
    valid = torch.as_tensor(np.asarray(view.valid) & ~np.isnan(view.binary))
    y_valid = inp["y"][valid].numpy()
    t0 = time.perf_counter()
    for _ in range(epochs):
        c, d = bn_c(fc_c(inp["xc"])), bn_d(fc_d(inp["xd"]))
        gc = self_c @ c + lc @ d
        gd = self_d @ d + ld @ c
        hc = torch.relu(lin_c((1 - al) * gc + al * gc * c))
        hd = torch.relu(lin_d((1 - al) * gd + al * gd * d))
        prob = torch.sigmoid(8.0 * corr(hc, hd))
        loss = cfg.w_bce * masked_bce(prob, inp["y"], inp["train"])
        if cfg.w_ic50:
            loss = loss + cfg.w_ic50 * masked_mse(15.0 * corr(reg_c(hc), reg_d(hd)), inp["ic50"], inp["ic50_mask"])
        if cfg.w_sim_cell or cfg.w_sim_drug:
            sc, sd = sim(hc), sim(hd)
            loss = loss + cfg.w_sim_cell * masked_mse(torch.sigmoid(15.0 * corr(sc, sc)), inp["s_c"])
            loss = loss + cfg.w_sim_drug * masked_mse(torch.sigmoid(15.0 * corr(sd, sd)), inp["s_d"])
        roc_auc_score(y_valid, prob.detach()[valid].numpy())
        opt.zero_grad()
        loss.backward()
        opt.step()
    wall = time.perf_counter() - t0
    return {"seconds_per_epoch": wall / max(1, epochs), "epochs_run": epochs, "wall": wall}


def gemm_ceiling(threads: int, hidden: int = 1024, cells: int = 961, genes: int = 5778, drugs: int = 228) -> None:
    """Print this CPU's fp32 matmul rate on the shapes of one MTIGCN GDSC epoch and the epoch time it bounds.

    FLOPs of one exact epoch (forward + backward, full batch; elementwise parts are negligible), m cells,
    n drugs, G genes, h units: the gene input layer 2·2mGh (forward and weight gradient; the input needs no
    gradient), the 920-bit fingerprint layer 2·2n·920·h, three h×h layers per side 3·3·2(m+n)h² (forward,
    input and weight gradient), the two graph products and two correlation decoders 4·3·2mnh, the cell
    similarity Gram matrix 2·2m²h (its backward is one matmul).
    """
    import torch

    torch.set_num_threads(threads)
    m, n, g, h = cells, drugs, genes, hidden
    flops = {"gene input layer (fwd + weight grad)": 2 * 2 * m * g * h,
             "fingerprint input layer (fwd + weight grad)": 2 * 2 * n * 920 * h,
             "three h×h layers per side: encoder, IC50, similarity (fwd + 2 bwd)": 3 * 3 * 2 * (m + n) * h * h,
             "graph and two correlation decoders (fwd + 2 bwd)": 4 * 3 * 2 * m * n * h,
             "cell similarity Gram (fwd + bwd)": 2 * 2 * m * m * h}
    rates = {}
    def rate(shape, dtype, reps=10):
        a, b = torch.randn(shape[0], shape[1]).to(dtype), torch.randn(shape[1], shape[2]).to(dtype)
        for _ in range(2):
            a @ b
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        return 2 * shape[0] * shape[1] * shape[2] / ((time.perf_counter() - t0) / reps) / 1e9

    for shape in ((m, g, h), (g, m, h), (m, h, h), (m, m, h)):
        rates[shape] = rate(shape, torch.float32)
    # the dense layers' shapes, which precision="bf16" lowers
    bf16 = {shape: rate(shape, torch.bfloat16) for shape in ((m, g, h), (g, m, h), (m, h, h))}
    print(f"# bf16 matmul (precision=\"bf16\", fp32 accumulation), {threads} thread(s): "
          + ", ".join(f"{a}x{b}x{c} {r:.0f}" for (a, b, c), r in bf16.items()) + " GFLOP/s")
    rate = min(rates.values())
    total = sum(flops.values()) / 1e9
    print(f"# fp32 matmul, {threads} thread(s): " + ", ".join(f"{a}x{b}x{c} {r:.0f}" for (a, b, c), r in rates.items())
          + " GFLOP/s")
    for k, v in flops.items():
        print(f"#   {k}: {v / 1e9:.1f} GFLOP")
    print(f"# one exact MTIGCN GDSC epoch: {total:.0f} GFLOP; at the slowest shape's rate ({rate:.0f} GFLOP/s) the "
          f"matmuls alone take >= {total / rate:.2f} s/epoch, at the fastest ({max(rates.values()):.0f}) >= "
          f"{total / max(rates.values()):.2f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"),
                    help="data bundle (default: ../shared/data relative to the repository)")
    ap.add_argument("--datasets", nargs="+", default=["gdsc", "ccle"], choices=["gdsc", "ccle"])
    ap.add_argument("--methods", nargs="+", default=["mtigcn", "nihgcn"],
                    choices=["mtigcn", "nihgcn", "mtigcn-a", "mtigcn-b", "mtigcn-ab"])
    ap.add_argument("--epochs", type=int, default=20, help="epochs to time (ignored with --full)")
    ap.add_argument("--full", action="store_true",
                    help="run the whole fit with the method's default epochs and early stopping")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--naive", action="store_true", help="also time the reference-equivalent loop")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="hyperparameter override (repeatable)")
    ap.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                    help="time each method at these precisions, side by side (bf16: the speed option)")
    ap.add_argument("--json", help="append one JSON line per measurement to this file")
    ap.add_argument("--gemm-ceiling", action="store_true",
                    help="only print this CPU's fp32 matmul rate on an MTIGCN GDSC epoch's shapes and the bound it sets")
    args = ap.parse_args(argv)
    if args.gemm_ceiling:
        print(f"# load average before: {_load_average()}")
        gemm_ceiling(args.threads)
        return 0

    data = Path(args.data_dir)
    if not (data / args.datasets[0]).is_dir():
        print(f"skipped: data directory {data} has no {args.datasets[0]}/ (pass --data-dir)")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    from drbench.datasets import load_dataset
    from drbench.execution import PeakMemory
    from drbench.protocols import get_protocol
    from drbench.registry import get_method
    from drbench.view import build_train_view

    overrides = _parse_set(args.set)
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, load average before: {_load_average()}")
    header = f"{'method':10s} {'dataset':7s} {'impl':6s} {'s/epoch':>8s} {'epochs':>6s} {'wall s':>8s} " \
             f"{'peak MB':>8s} {'best ep':>7s} {'valid AUC':>9s} {'test AUC':>8s}"
    print(header)
    for dsn in args.datasets:
        ds = load_dataset(dsn, data)
        proto = get_protocol("random")
        fold = proto.folds(ds, args.seed, **proto.resolve_options({}))[args.fold]
        for name, precision in [(n, p) for n in args.methods for p in args.precisions]:
            cls = get_method(name)
            view = build_train_view(ds, fold, cls.capabilities, seed=args.seed, context={})
            params = {**cls.defaults_for(view.context), **overrides, "precision": precision}
            if not args.full:
                params["epochs"] = args.epochs
            method = cls(**params)
            impl = "ours" if precision == "fp32" else precision
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                method.fit(view)
                wall = time.perf_counter() - t0
            info = method.fit_info_
            from sklearn.metrics import roc_auc_score

            test_auc = roc_auc_score(ds.binary[fold.test], method.score_[fold.test])
            row = {"method": name, "dataset": dsn, "impl": impl, "seconds_per_epoch": info["seconds_per_epoch"],
                   "epochs_run": info["epochs_run"], "wall": wall, "peak_mb": mem.peak_mb,
                   "best_epoch": info["best_epoch"], "best_valid_auc": info["best_valid_auc"], "test_auc": test_auc,
                   "params": {k: v for k, v in method.get_params().items()}, "load": _load_average()}
            print(f"{name:10s} {dsn:7s} {impl:6s} {row['seconds_per_epoch']:8.3f} {row['epochs_run']:6d} "
                  f"{wall:8.1f} {mem.peak_mb:8.0f} {row['best_epoch']:7d} {row['best_valid_auc']:9.4f} "
                  f"{test_auc:8.4f}", flush=True)
            rows = [row]
            if args.naive and precision == "fp32":
                with PeakMemory() as mem:
                    r = naive_reference_loop(view, method.get_params(), args.epochs)
                rows.append({"method": name, "dataset": dsn, "impl": "naive", **r, "peak_mb": mem.peak_mb,
                             "load": _load_average()})
                print(f"{name:10s} {dsn:7s} {'naive':6s} {r['seconds_per_epoch']:8.3f} {r['epochs_run']:6d} "
                      f"{r['wall']:8.1f} {mem.peak_mb:8.0f}", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    for r in rows:
                        fh.write(json.dumps(r, default=str) + "\n")
    print(f"# load average after: {_load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
