"""Sweeps: every method gets the same folds; jobs run in parallel; results land in MLflow as they finish.

A job is one (method, fold, seed). Its key hashes the method, its hyperparameters, the dataset's
content hash, the fold's mask hash, the seed and the selection mode; a rerun skips every key that
already has a finished run, and redoes failed or unfinished ones. One job failing does not stop the
sweep: its failure is recorded as a FAILED child run with the error and traceback.

Jobs run seed by seed, fold by fold, cheapest method first (:func:`fold_major`). Each is claimed in the
tracking store just before a free worker gets it (:mod:`drbench.claims`), so several drivers on one store
share a sweep and run each job once. A worker receives a :class:`Job` (the method's class, not its name)
and returns a :class:`~drbench.execution.JobResult`; the driver's :class:`Recorder` turns it into the run.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import hashlib
import json
import logging
import random
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from drbench import claims, tracking
from drbench.api import supports
from drbench.context import RunContext
from drbench.datasets import Dataset, load_dataset
from drbench.datasets.panel import gene_subset, panel_label
from drbench.errors import MissingFeatureError, UsageError
from drbench.execution import JobResult, default_threads, run_job
from drbench.folds import Fold
from drbench.inputs import check_sweep
from drbench.params import check_params
from drbench.protocols import Protocol
from drbench.registry import get_method, methods as method_registry, resolve_methods
from drbench.view import SELECTIONS
from drbench.workers import BACKENDS, Pool, check_backend

log = logging.getLogger("drbench.runner")


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
    rerun_keys: set = field(default_factory=set)  # job keys run again even when finished (``force`` for these only)
    threads: int | None = None  # torch threads per job (default: cores // jobs)
    genes: int | None = None  # keep a random subset of this many expression genes (None or 0: all of them)
    gene_seed: int = 0  # the seed of that subset (drbench.datasets.panel.gene_subset)


@dataclass(frozen=True)
class Job:
    """One (method, fold, seed) of a sweep: everything a worker needs to run it, besides the dataset.

    ``method_class`` travels to the worker with the job (cloudpickle carries a class defined in a script by
    value), so workers never look a method up by name; ``method_path`` ("module:qualname") is for the record.
    """

    method: str
    method_class: type
    method_path: str
    params: dict
    fold: Fold
    fold_pos: int  # the fold's position in the sweep's fold list of its seed
    seed: int
    key: str
    context: RunContext
    selection: str
    device: str
    threads: int
    keep_predictions: bool
    protocol: Protocol
    options: dict


@dataclass
class SweepReport:
    parent_run_id: str | None
    experiment_id: str | None
    planned: int = 0
    skipped_done: int = 0
    finished: int = 0
    failed: int = 0
    unsupported: dict = field(default_factory=dict)
    claimed_elsewhere: int = 0  # jobs another driver on the same store was running or had just finished
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
    base.update(_checked_overrides(cls, overrides))
    return {k: _canonical(v) for k, v in base.items()}


def check_spec(spec: SweepSpec):
    """The sweep's inputs checked without reading any data or store: returns (protocol, options, method names).
    Raises :class:`UsageError` with one line on the first bad input."""
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
    for name, overrides in spec.params.items():
        _checked_overrides(get_method(name), overrides)
    check_backend(spec.backend, spec.scheduler)  # last: it may wait CONNECT_TIMEOUT_S for a --scheduler address
    return protocol, options, names


def _checked_overrides(cls, overrides: dict) -> dict:
    """The user's hyperparameter overrides of ``cls``, each known and of its declared type."""
    unknown = set(overrides) - set(cls().get_params())
    if unknown:
        raise UsageError(f"method {cls.name!r} has no hyperparameter(s) {sorted(unknown)}; "
                         f"valid: {sorted(cls().get_params())}")
    return check_params(cls, overrides)


def prepare(spec: SweepSpec):
    """Resolve names and build (protocol, options, dataset, folds per seed). Raises clear errors."""
    protocol, options, names = check_spec(spec)
    source = load_dataset(spec.dataset, spec.data_dir)
    if spec.genes:
        source = gene_subset(source, spec.genes, spec.gene_seed)
    dataset = protocol.prepare(source, lambda n: load_dataset(n, spec.data_dir), **options)
    folds = {}
    for seed in dict.fromkeys(spec.seeds):  # a seed or fold given twice runs once; the order is kept
        fl = protocol.folds(dataset, seed, carve_valid=spec.selection == "validation", **options)
        if spec.folds is not None:
            chosen = list(dict.fromkeys(spec.folds))
            bad = [f for f in chosen if f >= len(fl) or f < 0]
            if bad:
                raise UsageError(f"--folds {bad} out of range: protocol {protocol.name} made {len(fl)} folds (0..{len(fl) - 1})")
            fl = [fl[f] for f in chosen]
        folds[seed] = fl
    return protocol, options, source, dataset, names, folds


def method_path(cls) -> str:
    """``"module:qualname"`` of a method class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def fold_major(jobs: list, seconds: dict) -> list:
    """``jobs`` seed by seed, fold by fold, and within a fold the cheapest method first, so that an interrupted
    sweep leaves complete folds. ``seconds``: method -> its recorded median fit seconds; methods without one
    come after those with one, in their order in ``jobs``."""
    method_pos = {m: i for i, m in enumerate(dict.fromkeys(j.method for j in jobs))}
    seed_pos = {s: i for i, s in enumerate(dict.fromkeys(j.seed for j in jobs))}
    return sorted(jobs, key=lambda j: (seed_pos[j.seed], j.fold_pos, seconds.get(j.method, float("inf")),
                                       method_pos[j.method]))


def execute(job: Job, dataset: Dataset) -> JobResult:
    """Run one job (in a worker): fit, predict, score, and the protocol's per-job files."""
    res = run_job(job.method_class, job.params, dataset, job.fold, seed=job.seed, device=job.device,
                  selection=job.selection, context=job.context, n_threads=job.threads, keep_predictions=True)
    if res.status == "finished":
        res.artifacts = job.protocol.job_artifacts(dataset, res.predictions, job.options)
    if not job.keep_predictions:
        res.predictions = None
    return res


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
    variants: dict = field(default_factory=dict)  # method -> its overrides that differ from its defaults, then the
    # gene panel (drbench.datasets.panel.panel_label); "" if neither
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
    threads = spec.threads or default_threads(spec.jobs)
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
        variants[name] = ",".join(filter(None, [variant_label(params, method_params(cls, context, {})),
                                                panel_label(source)]))
        for seed, fl in folds.items():
            for pos, fold in enumerate(fl):
                key = job_key(name, key_params(cls, params), dataset.content_hash, fold.sha256, seed, spec.selection,
                              protocol.name)
                jobs.append(Job(name, cls, method_path(cls), params, fold, pos, seed, key, context, spec.selection,
                                spec.device, threads, spec.keep_predictions, protocol, options))
    for name, why in unsupported.items():
        log.warning("%s", why)
    if not jobs:
        if unsupported:
            raise UsageError("no method can run this sweep: " + "; ".join(unsupported.values()))
        made = ", ".join(f"seed {seed}: {len(fl)}" for seed, fl in folds.items())
        raise UsageError(f"the sweep has no jobs: protocol {protocol.name} made no folds on {source.name} "
                         f"({made}; options {options})")
    plan = SweepPlan(protocol, options, source, dataset, names, folds, classes, context, jobs, unsupported,
                     variants)
    plan.pending(set(spec.skip_keys) - set(spec.rerun_keys), spec.force)
    return plan


def run_sweep(spec: SweepSpec, on_result=None) -> SweepReport:
    """Run a sweep; log each job as it finishes. ``on_result(job, result)`` is called in the driver.

    Jobs are claimed in the tracking store one at a time, when a worker is free (see :mod:`drbench.claims`), so
    several drivers on one store share a sweep's jobs. SIGINT or SIGTERM stops the workers and marks the
    driver's unfinished runs KILLED (then raises :class:`KeyboardInterrupt`); RUNNING runs whose lease expired
    (their driver died) are marked KILLED when a sweep starts.
    """
    lease_s = claims.lease_seconds()
    check_spec(spec)  # bad input is refused before the store is touched; the store before any data is read,
    # except for a gene panel, whose size is known only from the data: then the sweep is planned first
    early = plan_sweep(spec) if spec.genes else None
    c = tracking.client(spec.tracking_uri)
    plan = early or plan_sweep(spec)
    exp_id = tracking.experiment_id(c, spec.experiment)
    claims.kill_stale_runs(c, exp_id)
    todo = plan.pending((tracking.finished_job_keys(c, exp_id) | set(spec.skip_keys)) - set(spec.rerun_keys),
                        spec.force)
    todo[:] = fold_major(todo, tracking.median_fit_seconds(c, exp_id, plan.source.name, plan.protocol.name))
    report = SweepReport(None, exp_id)
    report.unsupported = plan.unsupported
    report.planned, report.skipped_done = len(plan.jobs), len(plan.jobs) - len(todo)
    if not todo:
        log.info("all %d jobs already finished; nothing to do", len(plan.jobs))
        return report
    recorder = Recorder(c, exp_id, spec, plan, report, lease_s, on_result)
    pool = Pool(spec.backend, spec.jobs, plan.jobs[0].threads, spec.scheduler)
    status, t0 = "FINISHED", time.time()
    interrupts = Interrupts()
    with interrupts.installed(), claims.Heartbeat(c, lease_s) as heartbeat:
        try:
            recorder.start(heartbeat)
            _dispatch(todo, plan.dataset, pool, recorder, interrupts)
        except KeyboardInterrupt:
            status, report.interrupted = "KILLED", True
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            with _signals_ignored():
                pool.shutdown(kill=status != "FINISHED")
                recorder.end(status, time.time() - t0)
    return report


def _dispatch(todo: list, dataset: Dataset, pool: Pool, recorder: Recorder, interrupts: Interrupts) -> None:
    """Claim a job whenever a worker is free, run it there, and record each result as it arrives.

    A job whose claim met another driver's at the same moment is retried after a random wait of up to a second
    (longer after each meeting); jobs another driver holds or finished are left to it. A SIGINT or SIGTERM is
    raised (:class:`KeyboardInterrupt`) at the top of the loop, after the results that arrived are recorded; a job
    run in this process (the sequential backend) is interrupted at once (see :class:`Interrupts`).
    """
    queue = collections.deque(todo)
    retry: list = []  # (not before, meetings, job)
    running: dict = {}  # future -> (job, run id)
    while queue or retry or running:
        interrupts.raise_if_signalled()
        while len(running) < pool.slots:
            now = time.time()
            ready = min(retry, key=lambda r: r[0], default=None)
            if ready is not None and ready[0] <= now:
                retry.remove(ready)
                job, meetings = ready[2], ready[1]
            elif queue:
                job, meetings = queue.popleft(), 0
            else:
                break
            outcome, run_id = recorder.claim(job)
            if outcome == claims.WON:
                interrupts.raise_if_signalled()  # the claimed run is marked KILLED by the cleanup
                with interrupts.at_once(pool.in_process):
                    running[pool.submit(execute, job, dataset)] = (job, run_id)
            elif outcome == claims.CONTENDED:
                retry.append((time.time() + random.uniform(0.1, 1.0) * (meetings + 1), meetings + 1, job))
        if not running:
            if retry:
                time.sleep(max(0.0, min(r[0] for r in retry) - time.time()))
            continue
        done, _ = cf.wait(running, timeout=1.0, return_when=cf.FIRST_COMPLETED)
        for future in done:
            job, run_id = running.pop(future)
            try:
                res = future.result()
            except Exception as e:  # the worker itself failed (crashed, or a protocol hook raised)
                res = JobResult(method=job.method, fold=job.fold.index, seed=job.seed, status="failed",
                                params=dict(job.params), error=f"{type(e).__name__}: {e}",
                                traceback="".join(traceback.format_exception(e)))
            recorder.record(job, run_id, res)


class Recorder:
    """Turns a sweep's jobs into MLflow runs: the sweep's parent run, each job's claim, and its result."""

    def __init__(self, c, exp_id: str, spec: SweepSpec, plan: SweepPlan, report: SweepReport, lease_s: float,
                 on_result=None):
        self.c, self.exp_id, self.spec, self.plan, self.report = c, exp_id, spec, plan, report
        self.lease_s, self.on_result = lease_s, on_result
        self.version = tracking.code_version()
        self.since_ms = int(time.time() * 1000)
        self.live: dict[str, Job] = {}  # run id -> job: claimed and not recorded yet
        self.parent = self.heartbeat = self.bar = None

    def start(self, heartbeat: claims.Heartbeat) -> None:
        """Create the sweep's parent run and the progress bar; ``heartbeat`` keeps the leases of both alive."""
        spec, plan, T = self.spec, self.plan, tracking.TAG
        protocol, dataset = plan.protocol, plan.dataset
        self.heartbeat = heartbeat
        self.parent = tracking.start_sweep(self.c, self.exp_id, {
            f"{T}sweep_name": f"{spec.dataset}/{protocol.name}/{spec.selection}",
            f"{T}dataset": plan.source.name, f"{T}protocol": protocol.name,
            f"{T}selection": spec.selection, f"{T}code_version": self.version,
            f"{T}dataset_hash": dataset.content_hash, **claims.lease_tag(self.lease_s),
        }, {
            "methods": ",".join(plan.names), "protocol": protocol.name, "dataset": spec.dataset,
            "seeds": list(plan.folds), "folds": spec.folds if spec.folds is not None else "all",
            "options": plan.options, "selection": spec.selection, "jobs": spec.jobs, "backend": spec.backend,
            "device": spec.device, "overrides": spec.params,
            "dataset_summary": {k: v for k, v in dataset.summary().items() if k != "content_hash"},
        })
        self.report.parent_run_id = self.parent
        with heartbeat.lock:
            heartbeat.runs.add(self.parent)
        if spec.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(plan.todo), desc=f"{spec.dataset}/{protocol.name}", unit="job", file=sys.stderr)

    def tags(self, job: Job) -> dict:
        plan, spec, fold, T = self.plan, self.spec, job.fold, tracking.TAG
        caps = job.method_class.capabilities
        return {
            "mlflow.parentRunId": self.parent, "mlflow.runName": f"{job.method}/seed{job.seed}/fold{fold.index}",
            f"{T}kind": "job", f"{T}job_key": job.key, f"{T}method": job.method,
            f"{T}method_path": job.method_path, f"{T}provider": method_registry().provider(job.method),
            f"{T}dataset": plan.source.name, f"{T}dataset_full": plan.dataset.name,
            f"{T}dataset_hash": plan.dataset.content_hash, f"{T}protocol": plan.protocol.name,
            f"{T}paper_test": plan.protocol.paper_test, f"{T}seed": job.seed,
            f"{T}fold": fold.index, f"{T}fold_label": fold.label, f"{T}mask_sha256": fold.sha256,
            f"{T}selection": spec.selection, f"{T}replication": str(spec.selection == "test").lower(),
            f"{T}transductive": str(caps.transductive).lower(),
            f"{T}tasks": ",".join(sorted(caps.tasks)), f"{T}code_version": self.version,
            f"{T}device": spec.device, f"{T}sweep_run_id": self.parent,
            f"{T}entity_axis": "" if fold.entity_axis is None else fold.entity_axis,
            f"{T}headline": "entity" if plan.protocol.per_entity_headline else "pooled",
            f"{T}variant": plan.variants.get(job.method, ""),
            **{f"{T}{k}": plan.source.meta[k] for k in ("genes", "gene_seed") if k in plan.source.meta},
        }

    def claim(self, job: Job):
        """Claim ``job`` in the store; returns ``(outcome, run id)`` (see :func:`drbench.claims.claim`)."""
        outcome, run_id = claims.claim(self.c, self.exp_id, job.key, self.tags(job), self.lease_s, self.since_ms,
                                       self.spec.force or job.key in self.spec.rerun_keys,
                                       on_create=lambda rid: self._hold(rid, job),
                                       on_delete=self._release)
        if outcome in (claims.DONE, claims.TAKEN):
            self.report.claimed_elsewhere += 1
            log.info("%s seed %d fold %d: %s by another driver", job.method, job.seed, job.fold.index,
                     "finished" if outcome == claims.DONE else "running")
            self._advance()
        return outcome, run_id

    def record(self, job: Job, run_id: str, res: JobResult) -> None:
        """Fill the job's claimed run with its result and end it."""
        if self.c.get_run(run_id).info.status != "RUNNING":
            log.error("%s seed %d fold %d: run %s was taken over by another driver (its lease expired); this result "
                      "is not recorded", job.method, job.seed, job.fold.index, run_id)
        else:
            tracking.log_job(self.c, run_id, {"protocol_options": self.plan.options,
                                              "fold_summary": job.fold.summary()}, res)
        self._release(run_id)
        if res.status == "finished":
            self.report.finished += 1
        else:
            self.report.failed += 1
            log.error("%s seed %d fold %d failed: %s", job.method, job.seed, job.fold.index, res.error)
        res.predictions = None  # logged; keep the driver's memory flat
        self.report.results.append(res)
        auc = res.metrics.get("auc")
        self._advance(f"{job.method} fold {job.fold.index}: " + (f"AUC {auc:.3f}" if auc is not None else res.status))
        if self.on_result is not None:
            self.on_result(job, res)

    def end(self, status: str, wall_seconds: float) -> None:
        """End the sweep: claimed runs not recorded yet are marked KILLED, then the sweep run ends ``status``."""
        if self.bar is not None:
            self.bar.close()
        for run_id in list(self.live):
            if self.c.get_run(run_id).info.status == "RUNNING":
                claims.kill(self.c, run_id, f"its sweep ended {status} before the job finished")
            self._release(run_id)
        if self.parent is None:
            return
        with self.heartbeat.lock:
            self.heartbeat.runs.discard(self.parent)
        r = self.report
        tracking.end_sweep(self.c, self.parent, status, {
            "jobs_planned": r.planned, "jobs_skipped_done": r.skipped_done, "jobs_finished": r.finished,
            "jobs_failed": r.failed, "jobs_claimed_elsewhere": r.claimed_elsewhere, "wall_seconds": wall_seconds})

    def _hold(self, run_id: str, job: Job) -> None:
        self.live[run_id] = job
        with self.heartbeat.lock:
            self.heartbeat.runs.add(run_id)

    def _release(self, run_id: str) -> None:
        self.live.pop(run_id, None)
        with self.heartbeat.lock:
            self.heartbeat.runs.discard(run_id)

    def _advance(self, text: str | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if text:
                self.bar.set_postfix_str(text)


class Interrupts:
    """SIGINT (Ctrl-C) and SIGTERM during a sweep's dispatch, in the main thread.

    Python raises :class:`KeyboardInterrupt` wherever the main thread happens to be, also inside
    ``concurrent.futures``, loky or MLflow code between acquiring a lock and releasing it (``cf.wait`` acquires
    every future's lock in turn), and a clean-up that needs that lock could then wait forever. So while a sweep
    dispatches, the handlers only note the signal, and :func:`_dispatch` raises it between its own steps: at the
    top of its loop, which polls the workers every second. Inside :meth:`at_once` (a job
    running in the driver's own process) the signal is raised at once, as Python would. Off the main thread
    nothing is installed (Python delivers signals to the main thread only), nor for a signal the process ignores.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._immediate = False

    def _handler(self, signum, frame):
        self.signum = signum
        if self._immediate:
            self.raise_if_signalled()

    def raise_if_signalled(self) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"signal {signal.Signals(self.signum).name}")

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        # a signal the process was started ignoring (e.g. SIGINT in a shell's background job) stays ignored
        previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS
                    if signal.getsignal(s) is not signal.SIG_IGN}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    @contextlib.contextmanager
    def at_once(self, enabled: bool = True):
        """Within this block a signal raises at once (when ``enabled``): for work that runs in this process."""
        if not enabled:
            yield
            return
        self.raise_if_signalled()
        self._immediate = True
        try:
            yield
        finally:
            self._immediate = False


@contextlib.contextmanager
def _signals_ignored():
    """While a sweep cleans up, a second Ctrl-C or SIGTERM does not cut the cleanup short (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
