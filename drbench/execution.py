"""One job: build the label-firewalled view, fit a method, predict, and score the test entries.

This is the only place where test labels meet predictions. It runs in a worker process and returns
a plain :class:`JobResult`; the runner logs it to MLflow.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from drbench import metrics
from drbench.api import Method, Prediction
from drbench.datasets import Dataset
from drbench.errors import DrbenchError, UsageError
from drbench.folds import Fold
from drbench.view import build_query, build_train_view


@dataclass
class JobResult:
    method: str
    fold: int
    seed: int
    status: str  # "finished" or "failed"
    metrics: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    fit_seconds: float = float("nan")
    predict_seconds: float = float("nan")
    peak_rss_mb: float = float("nan")
    params: dict = field(default_factory=dict)
    fit_info: dict = field(default_factory=dict)
    predictions: dict | None = None  # column name -> array, one row per scored pair
    error: str | None = None
    traceback: str | None = None
    host: dict = field(default_factory=dict)  # machine, torch threads, load average; device the job computed on
    artifacts: dict = field(default_factory=dict)  # file name -> DataFrame: the protocol's per-job files
    entities: pd.DataFrame | None = None  # per-entity metrics (entity id, n, positives, metrics) where the fold has them


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else the platform's processor or machine string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def host_info() -> dict:
    """Where and how a job runs, so that its timings can be read: CPU, logical CPUs, torch threads, load."""
    try:
        import torch

        threads = int(torch.get_num_threads())
    except ImportError:
        threads = None
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"machine": f"{cpu_model()}, {os.cpu_count()} CPUs", "threads": threads, "load_start": load}


class PeakMemory:
    """Peak resident memory of this process over a block, in MB.

    On Linux the kernel's high-water mark is reset at the start (``/proc/self/clear_refs``), so the
    figure is the block's own peak; elsewhere it falls back to the process's lifetime peak.
    """

    def __enter__(self):
        self.exact = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.exact = True
        except OSError:
            pass
        return self

    def __exit__(self, *exc):
        self.peak_mb = float("nan")
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_mb = int(line.split()[1]) / 1024
                        return False
        except OSError:
            pass
        import resource

        self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return False


class DeviceUse:
    """The device a block actually computed on: ``device`` is the CUDA device it was given if the block allocated
    CUDA memory there (torch's allocation counter grew), else ``"cpu"`` (e.g. a numpy method run with
    ``--device cuda``). For ``"cpu"`` nothing is measured and CUDA is never initialised."""

    def __init__(self, requested: str):
        self.requested = self.device = requested

    def _allocations(self) -> int:
        import torch

        return int(torch.cuda.memory_stats(self.requested).get("allocation.all.allocated", 0))

    def __enter__(self):
        if self.requested != "cpu":
            self.before = self._allocations()
        return self

    def __exit__(self, *exc):
        if self.requested != "cpu":
            self.device = self.requested if self._allocations() > self.before else "cpu"
        return False

    def name(self) -> str:
        """The model name of the device computed on (``torch.cuda.get_device_name``), ``"cpu"`` for the CPU."""
        if self.device == "cpu":
            return "cpu"
        import torch

        return str(torch.cuda.get_device_name(self.device))


def _set_threads(n_threads: int | None):
    if not n_threads:
        return
    try:
        import torch

        torch.set_num_threads(int(n_threads))
    except ImportError:
        pass


def seed_everything(seed: int) -> None:
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def check_prediction(pred: Prediction, n: int, method: str) -> None:
    if not isinstance(pred, Prediction):
        raise UsageError(f"method {method!r}: predict() must return a drbench Prediction, got {type(pred).__name__}")
    if pred.score.shape != (n,):
        raise UsageError(f"method {method!r}: predict() returned {pred.score.shape[0]} scores for {n} pairs")
    finite = np.isfinite(pred.score)
    if (finite & ((pred.score < 0) | (pred.score > 1))).any():
        raise UsageError(f"method {method!r}: scores must lie in [0, 1]")
    if pred.ic50 is not None and pred.ic50.shape != (n,):
        raise UsageError(f"method {method!r}: predict() returned {pred.ic50.shape[0]} IC50 values for {n} pairs")


def fit_predict(method: Method, dataset: Dataset, fold: Fold, *, seed: int, device: str = "cpu",
                selection: str = "validation", context: dict | None = None):
    """Fit ``method`` on the fold's view and predict the fold's ``score`` pairs. Returns (prediction, timings)."""
    dataset.require(method.capabilities.needs)
    view = build_train_view(dataset, fold, method.capabilities, seed=seed, device=device,
                            selection=selection, context=context)
    seed_everything(seed)
    t0 = time.perf_counter()
    fitted = method.fit(view)
    t1 = time.perf_counter()
    if fitted is not method:
        raise UsageError(f"method {method.name!r}: fit() must return self")
    query = build_query(dataset, fold.score)
    pred = method.predict(query)
    t2 = time.perf_counter()
    check_prediction(pred, len(query), method.name)
    return pred, query, t1 - t0, t2 - t1


def ic50_metrics(dataset: Dataset, fold: Fold, rows, cols, ic50_pred) -> tuple[dict, list[str]]:
    """The metrics drbench computes from a run's IC50 predictions beyond :func:`metrics.evaluate`'s, over the fold's
    test entries among the scored pairs ``rows, cols`` (``ic50_pred``: one IC50 per scored pair), and their notes:
    the labels ranked by the predicted IC50 alone (:data:`metrics.IC50_RANKING`) and the IC50 metrics beyond the
    mean effects (:data:`metrics.NORMALIZED`, :func:`metrics.normalized`; the mean-effects baseline is fitted on
    ``fold.train``). :func:`score_fold` and ``drbench rescore`` (which recomputes them from a run's stored
    predictions) both call this, so the two cannot differ."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    test = fold.test[rows, cols]
    r, c = rows[test], cols[test]
    pred = np.asarray(ic50_pred, float)[test]
    mu, cell, drug = metrics.mean_effects_ic50(dataset.ic50, fold.train)
    values, notes = metrics.normalized(dataset.ic50[r, c], pred, mu + cell[r] + drug[c], c)
    return {**metrics.ic50_ranking(dataset.binary[r, c], pred), **values}, notes


def score_fold(dataset: Dataset, fold: Fold, rows, cols, pred: Prediction, regression: bool,
               entity_axis: int | None):
    """Metrics over the fold's test entries (``rows, cols`` index the scored pairs), the notes, and the
    per-entity table (entity id, n, positives, metrics; None without an entity axis)."""
    test = fold.test[rows, cols]
    if not test.any():
        return {}, [], None
    r, c = rows[test], cols[test]
    y = dataset.binary[r, c]
    s = pred.score[test]
    yt = dataset.ic50[r, c] if regression and pred.ic50 is not None else None
    yp = pred.ic50[test] if yt is not None else None
    out, notes = metrics.evaluate(y, s, yt, yp)
    entities = None
    if yp is not None:
        norm, norm_notes = ic50_metrics(dataset, fold, rows, cols, pred.ic50)
        out.update(norm)
        notes += norm_notes
    if entity_axis is not None:
        ent = r if entity_axis == 0 else c
        table = metrics.entity_table(ent, y, s, yt, yp)
        means, counts = metrics.per_entity(ent, y, s, yt, yp, table=table)
        out.update(means)
        out.update(counts)
        entities = pd.DataFrame(table)
        entities["entity"] = (dataset.cell_ids if entity_axis == 0 else dataset.drug_ids)[entities["entity"]]
    out["n_test"] = int(len(y))
    out["n_test_positive"] = int((y == 1).sum())
    if yt is not None:
        out["n_test_ic50"] = int((~np.isnan(yt)).sum())
    if not regression:
        for k in metrics.REGRESSION:
            out.pop(k, None)
            out.pop(f"{k}_entity", None)
            out.pop(f"n_entities_{k}", None)
    return out, notes, entities


def run_job(method_cls, params: dict, dataset: Dataset, fold: Fold, *, seed: int, device: str = "cpu",
            selection: str = "validation", context: dict | None = None, n_threads: int | None = None,
            keep_predictions: bool = True) -> JobResult:
    """Run one (method, fold, seed) job; failures are captured in the result, never raised."""
    _set_threads(n_threads)
    name = method_cls.name
    res = JobResult(method=name, fold=fold.index, seed=seed, status="failed", params=dict(params), host=host_info())
    try:
        method = method_cls(**params)
        res.params = method.get_params()
        with PeakMemory() as mem, DeviceUse(device) as used:
            pred, query, fit_s, pred_s = fit_predict(method, dataset, fold, seed=seed, device=device,
                                                     selection=selection, context=context)
        res.peak_rss_mb = mem.peak_mb
        res.host["device"] = used.device  # logged as the run's device tag: the device the job computed on
        if used.device != "cpu":
            res.host["device_name"] = used.name()  # e.g. "NVIDIA H200": which GPU, beside the host's CPU
        res.fit_seconds, res.predict_seconds = fit_s, pred_s
        res.fit_info = dict(getattr(method, "fit_info_", {}) or {})
        axis = fold.entity_axis
        res.metrics, res.notes, res.entities = score_fold(dataset, fold, query.rows, query.cols, pred,
                                            method.capabilities.regression, axis)
        if keep_predictions:
            rows, cols = query.rows, query.cols
            cols_out = {
                "row": rows, "col": cols,
                "cell_id": dataset.cell_ids[rows], "drug_id": dataset.drug_ids[cols],
                "test": fold.test[rows, cols],
                "label": dataset.binary[rows, cols],
                "score": pred.score,
            }
            if pred.ic50 is not None:
                cols_out["ic50_true"] = dataset.ic50[rows, cols]
                cols_out["ic50_pred"] = pred.ic50
            res.predictions = cols_out
        res.status = "finished"
    except DrbenchError as e:
        res.error = f"{type(e).__name__}: {e}"
    except Exception as e:  # a method's bug must not stop the sweep; it is recorded with its traceback
        res.error = f"{type(e).__name__}: {e}"
        res.traceback = traceback.format_exc()
    return res


def default_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


__all__ = ["JobResult", "run_job", "fit_predict", "score_fold", "ic50_metrics", "PeakMemory", "DeviceUse",
           "host_info"]
