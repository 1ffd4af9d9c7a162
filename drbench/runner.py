"""Sweeps: every method gets the same folds; jobs run in parallel; results land in MLflow as they finish.

A job is one (method, fold, seed). Its key hashes the method, its hyperparameters, the dataset's
content hash, the fold's mask hash, the seed and the selection mode; a rerun skips every key that
already has a finished run, and redoes failed or unfinished ones. One job failing does not stop the
sweep: its failure is recorded as a FAILED child run with the error and traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from drbench import tracking
from drbench.api import supports
from drbench.context import RunContext
from drbench.datasets import Dataset, load_dataset
from drbench.errors import MissingFeatureError, UsageError
from drbench.execution import JobResult, default_threads, run_job
from drbench.inputs import check_sweep
from drbench.params import check_params
from drbench.registry import get_method, methods as method_registry, resolve_methods
from drbench.view import SELECTIONS

log = logging.getLogger("drbench.runner")
BACKENDS = ("loky", "threading", "sequential", "dask", "ray")


@dataclass
class SweepSpec:
    methods: list[str] | str
    protocol: str
    dataset: str = "synthetic"
    data_dir: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    folds: list[int] | None = None
    options: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # method name -> {hyperparameter: value}
    selection: str = "validation"
    device: str = "cpu"
    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    experiment: str = "drbench"
    tracking_uri: str | None = None
    keep_predictions: bool = True
    progress: bool = True
    force: bool = False
    skip_keys: set = field(default_factory=set)  # job keys finished elsewhere (e.g. rows of a published CSV)
    threads: int | None = None  # torch threads per job (default: cores // jobs)


@dataclass
class Job:
    method: str
    params: dict
    fold_pos: int
    seed: int
    key: str


@dataclass
class SweepReport:
    parent_run_id: str | None
    experiment_id: str | None
    planned: int = 0
    skipped_done: int = 0
    finished: int = 0
    failed: int = 0
    unsupported: dict = field(default_factory=dict)
    results: list = field(default_factory=list)
    interrupted: bool = False


def job_key(method: str, params: dict, dataset_hash: str, mask_sha: str, seed: int, selection: str,
            protocol: str) -> str:
    blob = json.dumps({"method": method, "params": params, "dataset": dataset_hash, "mask": mask_sha, "seed": seed,
                       "selection": selection, "protocol": protocol}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _canonical(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (tuple, list)):
        return [_canonical(x) for x in v]
    return v


def key_params(cls, params: dict) -> dict:
    """``params`` without the hyperparameters at their ``key_neutral`` value (see :class:`drbench.api.Method`)."""
    neutral = getattr(cls, "key_neutral", {}) or {}
    return {k: v for k, v in params.items() if not (k in neutral and v == neutral[k])}


def variant_label(params: dict, defaults: dict) -> str:
    """``"k=v,..."`` of the hyperparameters that differ from the method's defaults for this setting; "" if none.
    Tagged on every run, so a table keeps a method's runs in another setting apart (``mtigcn[precision=bf16]``)."""
    return ",".join(f"{k}={params[k]}" for k in sorted(params) if params[k] != defaults.get(k))


def method_params(cls, context: RunContext, overrides: dict) -> dict:
    """``__init__`` defaults, then the method's per-setting defaults, then the user's overrides, each checked
    against its declared type (:func:`drbench.params.check_params`: ``3.0`` for an int becomes ``3``, ``2.5``
    is refused), so the params a job records are the ones the method runs with."""
    base = cls().get_params()
    base.update(cls.defaults_for(context))
    unknown = set(overrides) - set(base)
    if unknown:
        raise UsageError(f"method {cls.name!r} has no hyperparameter(s) {sorted(unknown)}; valid: {sorted(base)}")
    base.update(check_params(cls, overrides))
    return {k: _canonical(v) for k, v in base.items()}


def prepare(spec: SweepSpec):
    """Resolve names and build (protocol, options, dataset, folds per seed). Raises clear errors."""
    from drbench.protocols import get_protocol

    check_sweep(spec, BACKENDS)
    if spec.selection not in SELECTIONS:
        raise UsageError(f"unknown selection mode {spec.selection!r}; choose one of: {', '.join(SELECTIONS)}")
    protocol = get_protocol(spec.protocol)
    options = protocol.resolve_options(spec.options)
    names = resolve_methods(spec.methods)
    unknown_params = set(spec.params) - set(names)
    if unknown_params:
        raise UsageError(f"--set names method(s) {sorted(unknown_params)} that are not in this sweep ({', '.join(names)})")
    source = load_dataset(spec.dataset, spec.data_dir)
    dataset = protocol.prepare(source, lambda n: load_dataset(n, spec.data_dir), **options)
    folds = {}
    for seed in spec.seeds:
        fl = protocol.folds(dataset, seed, carve_valid=spec.selection == "validation", **options)
        if spec.folds is not None:
            bad = [f for f in spec.folds if f >= len(fl) or f < 0]
            if bad:
                raise UsageError(f"--folds {bad} out of range: protocol {protocol.name} made {len(fl)} folds (0..{len(fl) - 1})")
            fl = [fl[f] for f in spec.folds]
        folds[seed] = fl
    return protocol, options, source, dataset, names, folds


def _run_one(cls_name, params, dataset, fold, seed, device, selection, context, n_threads, keep_predictions, top_k):
    cls = get_method(cls_name)
    res = run_job(cls, params, dataset, fold, seed=seed, device=device, selection=selection, context=context,
                  n_threads=n_threads, keep_predictions=keep_predictions or top_k is not None)
    if top_k is not None and res.status == "finished" and res.predictions is not None:
        res.artifacts = {"topk.csv": top_k_table(dataset, res.predictions, top_k)}
        if not keep_predictions:
            res.predictions = None
    return res


def top_k_table(dataset: Dataset, predictions: dict, k: int) -> pd.DataFrame:
    """The ``k`` highest-scored cell lines per drug among the scored (unmeasured) pairs."""
    df = pd.DataFrame({"drug_id": predictions["drug_id"], "cell_id": predictions["cell_id"],
                       "score": predictions["score"], "col": predictions["col"]})
    df["drug_name"] = dataset.drug_names[df["col"].to_numpy()]
    df["cell_name"] = df["cell_id"].map(dict(zip(dataset.cell_ids, dataset.cell_names)))
    df = df.sort_values(["drug_id", "score", "cell_id"], ascending=[True, False, True])
    df["rank"] = df.groupby("drug_id").cumcount() + 1
    df["unmeasured_pairs"] = df.groupby("drug_id")["score"].transform("size")
    return df[df["rank"] <= k][["drug_id", "drug_name", "rank", "cell_id", "cell_name", "score", "unmeasured_pairs"]]


def _parallel(jobs: int, backend: str, scheduler: str | None):
    import joblib

    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend == "sequential" or (jobs == 1 and backend in ("loky", "threading")):
        return None
    if backend == "dask":
        try:
            from dask.distributed import Client
        except ImportError:
            raise UsageError("--backend dask needs the 'distributed' package: pip install 'drbench[dask]'") from None
        client = Client(scheduler) if scheduler else Client(processes=True, n_workers=jobs, threads_per_worker=1)
        return joblib.parallel_config(backend="dask", n_jobs=-1 if scheduler else jobs, wait_for_workers_timeout=60), client
    if backend == "ray":
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError:
            raise UsageError("--backend ray needs the 'ray' package: pip install 'drbench[ray]'") from None
        register_ray()
        if not ray.is_initialized():
            ray.init(address=scheduler) if scheduler else ray.init(num_cpus=jobs)
        return joblib.parallel_config(backend="ray", n_jobs=jobs), None
    return joblib.parallel_config(backend=backend, n_jobs=jobs), None


@dataclass
class SweepPlan:
    """What a sweep would run: every planned job and, against a store, the ones not finished yet."""

    protocol: object
    options: dict
    source: Dataset
    dataset: Dataset
    names: list
    folds: dict
    classes: dict
    context: RunContext
    jobs: list
    unsupported: dict
    variants: dict = field(default_factory=dict)  # method -> its overrides that differ from its defaults ("" if none)
    todo: list = field(default_factory=list)  # jobs not finished yet (see :meth:`pending`)

    def pending(self, finished: set, force: bool = False) -> list:
        """Set and return ``todo``: the jobs whose key is not in ``finished`` (all of them with ``force``)."""
        self.todo = list(self.jobs) if force else [j for j in self.jobs if j.key not in finished]
        return self.todo


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Resolve the sweep into jobs (one per method × seed × fold); nothing is run or written.

    ``todo`` starts as the jobs not in ``spec.skip_keys``; :meth:`SweepPlan.pending` narrows it against a store.
    Raises :class:`UsageError` when no method can run the sweep.
    """
    protocol, options, source, dataset, names, folds = prepare(spec)
    context = RunContext.for_sweep(protocol, source, dataset, spec.selection, spec.device)
    jobs: list[Job] = []
    classes, unsupported, variants = {}, {}, {}
    all_methods = isinstance(spec.methods, str) and spec.methods.strip() == "all"
    for name in names:
        try:
            cls = get_method(name)
        except UsageError as e:
            if not all_methods:
                raise
            unsupported[name] = f"skipped: {e}"  # a broken plugin does not stop `--methods all`
            continue
        classes[name] = cls
        if not supports(cls, protocol.name):
            unsupported[name] = f"not supported: {name} does not declare protocol {protocol.kind}"
            continue
        try:
            dataset.require(cls.capabilities.needs)
        except MissingFeatureError as e:
            unsupported[name] = f"cannot run: {e}"
            continue
        params = method_params(cls, context, spec.params.get(name, {}))
        variants[name] = variant_label(params, method_params(cls, context, {}))
        for seed, fl in folds.items():
            for pos, fold in enumerate(fl):
                key = job_key(name, key_params(cls, params), dataset.content_hash, fold.sha256, seed, spec.selection,
                              protocol.name)
                jobs.append(Job(name, params, pos, seed, key))
    for name, why in unsupported.items():
        log.warning("%s", why)
    if not jobs:
        if unsupported:
            raise UsageError("no method can run this sweep: " + "; ".join(unsupported.values()))
        raise UsageError("the sweep has no jobs")
    plan = SweepPlan(protocol, options, source, dataset, names, folds, classes, context, jobs, unsupported,
                     variants)
    plan.pending(set(spec.skip_keys), spec.force)
    return plan


def run_sweep(spec: SweepSpec, on_result=None) -> SweepReport:
    """Run a sweep; log each job as it finishes. ``on_result(job, result)`` is called in the driver."""
    plan = plan_sweep(spec)
    protocol, options, source, dataset, folds = plan.protocol, plan.options, plan.source, plan.dataset, plan.folds
    names, classes, context, jobs = plan.names, plan.classes, plan.context, plan.jobs
    c = tracking.client(spec.tracking_uri)
    exp_id = tracking.experiment_id(c, spec.experiment)
    todo = plan.pending(tracking.finished_job_keys(c, exp_id) | set(spec.skip_keys), spec.force)
    version = tracking.code_version()
    report = SweepReport(None, exp_id)
    report.unsupported = plan.unsupported
    report.planned, report.skipped_done = len(jobs), len(jobs) - len(todo)
    if not todo:
        log.info("all %d jobs already finished; nothing to do", len(jobs))
        return report

    sweep_tags = {
        f"{tracking.TAG}sweep_name": f"{spec.dataset}/{protocol.name}/{spec.selection}",
        f"{tracking.TAG}dataset": source.name, f"{tracking.TAG}protocol": protocol.name,
        f"{tracking.TAG}selection": spec.selection, f"{tracking.TAG}code_version": version,
        f"{tracking.TAG}dataset_hash": dataset.content_hash,
    }
    parent = tracking.start_sweep(c, exp_id, sweep_tags, {
        "methods": ",".join(names), "protocol": protocol.name, "dataset": spec.dataset, "seeds": spec.seeds,
        "folds": spec.folds if spec.folds is not None else "all", "options": options, "selection": spec.selection,
        "jobs": spec.jobs, "backend": spec.backend, "device": spec.device, "overrides": spec.params,
        "dataset_summary": {k: v for k, v in dataset.summary().items() if k != "content_hash"},
    })
    report.parent_run_id = parent
    top_k = options.get("top_k") if protocol.scores_unlabelled else None
    n_threads = spec.threads or default_threads(spec.jobs)

    def job_tags(job: Job, fold) -> dict:
        cls = classes[job.method]
        T = tracking.TAG
        return {
            f"{T}job_key": job.key, f"{T}method": job.method, f"{T}provider": method_registry().provider(job.method),
            f"{T}dataset": source.name, f"{T}dataset_full": dataset.name, f"{T}dataset_hash": dataset.content_hash,
            f"{T}protocol": protocol.name, f"{T}paper_test": protocol.paper_test, f"{T}seed": job.seed,
            f"{T}fold": fold.index, f"{T}fold_label": fold.label, f"{T}mask_sha256": fold.sha256,
            f"{T}selection": spec.selection, f"{T}replication": str(spec.selection == "test").lower(),
            f"{T}transductive": str(cls.capabilities.transductive).lower(),
            f"{T}tasks": ",".join(sorted(cls.capabilities.tasks)), f"{T}code_version": version,
            f"{T}device": spec.device, f"{T}sweep_run_id": parent,
            f"{T}entity_axis": "" if fold.entity_axis is None else fold.entity_axis,
            f"{T}headline": "entity" if protocol.per_entity_headline else "pooled",
            f"{T}variant": plan.variants.get(job.method, ""),
        }

    def job_params(fold) -> dict:
        return {"protocol_options": options, "fold_summary": fold.summary()}

    calls = [(j, folds[j.seed][j.fold_pos]) for j in todo]
    status = "FINISHED"
    bar = None
    if spec.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(calls), desc=f"{spec.dataset}/{protocol.name}", unit="job", file=sys.stderr)
    t0 = time.time()
    try:
        args = [(j.method, j.params, dataset, fold, j.seed, spec.device, spec.selection, context, n_threads,
                 spec.keep_predictions, top_k) for j, fold in calls]
        record = lambda i, res: _record(calls[i], res, c, exp_id, parent, job_tags, job_params, report, bar,  # noqa: E731
                                        on_result)
        par = _parallel(spec.jobs, spec.backend, spec.scheduler)
        if par is None:
            for i, a in enumerate(args):
                record(i, _run_one(*a))
        else:
            import joblib

            cfg, client = par
            try:
                with cfg:
                    stream = joblib.Parallel(return_as="generator_unordered")(
                        joblib.delayed(_indexed)(i, a) for i, a in enumerate(args))
                    for i, res in stream:
                        record(i, res)
            finally:
                if client is not None:
                    client.close()
    except KeyboardInterrupt:
        status = "KILLED"
        report.interrupted = True
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        if bar is not None:
            bar.close()
        tracking.end_sweep(c, parent, status, {"jobs_planned": report.planned, "jobs_skipped_done": report.skipped_done,
                                               "jobs_finished": report.finished, "jobs_failed": report.failed,
                                               "wall_seconds": time.time() - t0})
    return report


def _indexed(i, a):
    return i, _run_one(*a)


def _record(call, res: JobResult, c, exp_id, parent, job_tags, job_params, report, bar, on_result):
    job, fold = call
    tracking.log_job(c, exp_id, parent, job_tags(job, fold), job_params(fold), res)
    if res.status == "finished":
        report.finished += 1
    else:
        report.failed += 1
        log.error("%s seed %d fold %d failed: %s", job.method, job.seed, fold.index, res.error)
    res.predictions = None  # logged; keep the driver's memory flat
    report.results.append(res)
    if bar is not None:
        bar.update(1)
        auc = res.metrics.get("auc")
        bar.set_postfix_str(f"{job.method} fold {fold.index}: " + (f"AUC {auc:.3f}" if auc is not None else res.status))
    if on_result is not None:
        on_result(job, res)
