"""A board pairs only runs on the same data and the same folds: runs on another dataset content hash or another
mask for the same (selection, seed, fold) are left out of its tables, kept in its CSV and named; fit times of GPU
runs are shown apart from CPU runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from boardcsv import write_board_csv

from drbench.leaderboard import CSV_COLUMNS, OTHER_DATA, OTHER_MASKS, fit_cell, off_board, render

DATA, OTHER = "d" * 64, "e" * 64


def _frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in CSV_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    return df[CSV_COLUMNS]


def _run(method, seed, fold, auc, mask=None, selection="validation", data=DATA, **kw):
    return {"method": method, "status": "finished", "dataset": "gdsc", "protocol": "random", "selection": selection,
            "seed": seed, "fold": fold, "headline": "pooled", "transductive": False, "tasks": "classification",
            "auc": auc, "fit_seconds": 10.0, "peak_rss_mb": 100.0, "dataset_hash": data,
            "mask_sha256": mask or f"{selection}-{seed}-{fold}", "job_key": f"{method}-{selection}-{seed}-{fold}",
            **kw}


def _board():
    rows = [_run(m, s, f, 0.7 + 0.01 * f + (0.05 if m == "a" else 0)) for m in ("a", "b", "c")
            for s in (0, 1) for f in range(3)]
    rows.append(_run("d", 0, 0, 0.9))
    rows.append(_run("d", 0, 1, 0.9, mask="another fold"))  # another mask for seed 0 fold 1: not pairable
    rows.append(_run("d", 0, 2, 0.9, data=OTHER))  # another dataset content hash
    rows.append(_run("a", 0, 0, 0.8, selection="test"))  # ‡: its own mask (no validation split), judged apart
    rows.append(_run("a[genes=10]", 0, 0, 0.6, data="f" * 64))  # a gene-panel variant: its own data, judged apart
    return _frame(rows)


def test_runs_on_other_masks_or_other_data_get_their_own_status_and_nothing_else_does():
    df = off_board(_board())
    status = dict(zip(zip(df["method"], df["selection"], df["seed"], df["fold"]), df["status"]))
    assert status[("d", "validation", 0, 1)] == OTHER_MASKS
    assert status[("d", "validation", 0, 2)] == OTHER_DATA
    assert sum(v != "finished" for v in status.values()) == 2
    assert status[("a", "test", 0, 0)] == status[("a[genes=10]", "validation", 0, 0)] == "finished"


def test_the_board_names_the_runs_it_leaves_out_and_its_tables_do_not_hold_them():
    md = render(off_board(_board()))
    assert ("Left out of these tables (kept in the CSV with status *other masks*): 1 run on a fold other than the "
            "board's for the same seed and fold (another mask hash), which the board's paired statistics cannot use "
            "(d: 1).") in md
    assert ("Left out of these tables (kept in the CSV with status *other data*): 1 run on data other than the "
            "board's (another dataset content hash) (d: 1).") in md
    row = next(line for line in md.splitlines() if line.startswith("| ") and "| d |" in line)
    assert "**0.900** (1)" in row  # d's one run on the board's fold and data


def test_a_board_with_one_mask_per_fold_is_unchanged():
    df = _frame([_run(m, s, f, 0.7) for m in ("a", "b") for s in (0, 1) for f in range(3)])
    assert off_board(df).equals(df)


def test_gpu_fit_times_are_shown_apart_from_cpu_fit_times():
    cpu = pd.DataFrame({"fit_seconds": [100.0, 200.0], "device": ["cpu", np.nan]})
    assert fit_cell(cpu) == "150.0"
    both = pd.concat([cpu, pd.DataFrame({"fit_seconds": [4.0, 6.0, 8.0], "device": ["cuda", "cuda:0", "cuda"]})])
    assert fit_cell(both) == "150.0 CPU (n=2) / 6.0 GPU (n=3)"
    assert fit_cell(both[both["device"].astype(str).str.startswith("cuda")]) == "6.0 GPU (n=3)"
    assert fit_cell(pd.DataFrame({"fit_seconds": [np.nan], "device": ["cpu"]})) == "—"


def test_the_runtime_picture_gives_a_methods_gpu_runs_a_bar_of_their_own(tmp_path, monkeypatch):
    import matplotlib.axes

    from drbench.plots import runtime_bars

    seen, barh = [], matplotlib.axes.Axes.barh
    monkeypatch.setattr(matplotlib.axes.Axes, "barh",
                        lambda self, y, w, *a, **k: seen.append((list(y), list(w))) or barh(self, y, w, *a, **k))
    df = pd.DataFrame({"method": ["m", "m", "m"], "fit_seconds": [100.0, 200.0, 5.0], "device": ["cpu", np.nan, "cuda"]})
    runtime_bars(df, tmp_path / "r.png", "t")
    assert seen == [(["m (GPU)", "m"], [5.0, 150.0])] and (tmp_path / "r.png").exists()


def test_the_board_index_names_the_job_time_computed_on_a_gpu(tmp_path):
    from drbench.board_files import gpu_seconds

    run = lambda dev, fit, status="finished": {"method": "m", "status": status, "dataset": "gdsc",  # noqa: E731
                                               "protocol": "random", "fit_seconds": fit, "predict_seconds": 1.0,
                                               "device": dev}
    assert gpu_seconds(write_board_csv(tmp_path / "cpu.csv", [run("cpu", 50.0), run(None, 60.0)])) is None
    both = write_board_csv(tmp_path / "both.csv", [run("cpu", 50.0), run("cuda", 7.0), run("cuda:0", 2.0),
                                                   run("cuda", 9.0, status=OTHER_MASKS)])
    assert gpu_seconds(both) == 11.0
