"""``drbench rescore``: add the metrics drbench computes now to runs recorded before it did.

Nothing is refitted. For each finished job run whose method estimates IC50 and whose predictions were stored
(:data:`drbench.tracking.PREDICTIONS`), the run's fold is rebuilt exactly as the runner made it — its dataset
(cut to the recorded gene panel for a ``--genes`` run; checked against the recorded content hash), its protocol
with the recorded options, its seed, and the
validation split carved as its selection mode did — and picked by the recorded mask hash. The metrics drbench
computes from IC50 predictions beyond the pooled ones (:data:`SCORED`: the labels ranked by the predicted IC50 alone,
:data:`drbench.metrics.IC50_RANKING`, and the IC50 metrics beyond the mean effects,
:data:`drbench.metrics.NORMALIZED`) are then computed from the stored IC50 predictions by
:func:`drbench.execution.ic50_metrics`, the function the runner scores jobs with, and logged to the run, tagged
``drbench.rescored_by`` with the code version and ``drbench.rescored_metrics`` with the metrics computed.
``--methods`` limits the work to some methods' runs.

``--accept-dataset HASH`` moves runs recorded with another content hash of the same dataset onto the data loaded
now (e.g. runs of a machine whose pandas parsed some numbers one unit in the last place off): each such run's fold
is rebuilt on the loaded data and must match its recorded mask hash, and its stored predictions must be that fold's
scored pairs, and its recorded job key must be the one its method's default hyperparameters give on the recorded
hash; then its ``dataset_hash`` and ``job_key`` tags become the ones the runner gives that job on the loaded data (so
a later sweep of the loaded data finds the job done), the old ones are kept as ``drbench.dataset_hash_recorded``
and ``drbench.job_key_recorded``, and ``drbench.rebased_by`` names the code version. Its metrics stay as recorded.
Runs that fail a check keep their hash and key (and stay off boards of the loaded data).

A run counts as already scored when it holds every one of these metrics, those a rescore found undefined counted
as held (``rescored_metrics``; an undefined one, e.g. the residual PCC of the mean-effects baseline itself, is NaN
and not logged). So a run rescored before a metric was added gets it at the next rescore. A run whose fold cannot
be rebuilt is skipped with its reason; the others go on.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drbench import tracking
from drbench.errors import DrbenchError, UsageError
from drbench.metrics import IC50_RANKING, NORMALIZED

log = logging.getLogger("drbench.rescore")
RESCORED_BY = f"{tracking.TAG}rescored_by"
REBASED_BY = f"{tracking.TAG}rebased_by"
HASH_RECORDED = f"{tracking.TAG}dataset_hash_recorded"
KEY_RECORDED = f"{tracking.TAG}job_key_recorded"
RESCORED_METRICS = f"{tracking.TAG}rescored_metrics"
#: what rescore computes (all together) for a run with IC50 predictions
SCORED = (*IC50_RANKING, *NORMALIZED)
#: the tags (without the ``drbench.`` prefix) a job run needs for its fold to be rebuilt
RECORDED = ("dataset", "protocol", "seed", "selection", "dataset_hash", "mask_sha256")


class Skip(Exception):
    """A run that cannot be rescored; the message is the reason, shared by every run it applies to."""


@dataclass
class Tally:
    """What ``rescore`` did with the runs of one (dataset, protocol, selection)."""

    rescored: int = 0
    rebased: int = 0  # moved onto the loaded data's hash (--accept-dataset)
    had: int = 0  # already held the metrics (or were rescored before)
    unscored: int = 0  # nothing to add: a classification-only method, no IC50 prediction, or no labelled test pair
    skipped: collections.Counter = field(default_factory=collections.Counter)  # reason -> runs

    def line(self, group: tuple, dry_run: bool = False) -> str:
        skipped = sum(self.skipped.values())
        why = "; ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()))
        return (f"{'/'.join(group)}: {self.rescored} {'to rescore' if dry_run else 'rescored'}, "
                f"{self.had} already had them, {self.unscored} with none to add (no IC50 prediction or no labelled "
                f"test pair), "
                f"{skipped} skipped" + (f" ({why})" if why else "")
                + (f"; {self.rebased} {'to move' if dry_run else 'moved'} onto the loaded data's hash"
                   if self.rebased else ""))


class FoldSource:
    """Rebuilds recorded folds as :func:`drbench.runner.prepare` made them, caching datasets and folds (the runs
    of one sweep share them)."""

    def __init__(self, data_dir: str | None, accept: frozenset = frozenset()):
        self.data_dir = data_dir
        self.accept = frozenset(accept)  # recorded content hashes taken as the loaded data's (--accept-dataset)
        self.datasets: dict = {}  # (dataset, protocol, options JSON, gene panel) -> prepared Dataset or Skip
        self.folds: dict = {}  # (dataset key, seed, carve_valid) -> {mask sha256: Fold}

    def dataset(self, name: str, protocol_name: str, options_json: str | None, genes: tuple = (0, 0)):
        key = (name, protocol_name, options_json, genes)
        if key not in self.datasets:
            try:
                self.datasets[key] = self._prepare(name, protocol_name, options_json, genes)
            except Skip as e:
                self.datasets[key] = e
        found = self.datasets[key]
        if isinstance(found, Skip):
            raise found
        return found

    def _prepare(self, name: str, protocol_name: str, options_json: str | None, genes: tuple):
        from drbench.datasets import load_dataset
        from drbench.datasets.panel import gene_subset
        from drbench.protocols import get_protocol

        if options_json is None:
            raise Skip("no recorded protocol options")
        try:
            protocol = get_protocol(protocol_name)
            options = protocol.resolve_options(json.loads(options_json))
            source = load_dataset(name, self.data_dir)
            if genes[0]:  # a run made with --genes N --gene-seed S
                source = gene_subset(source, *genes)
            dataset = protocol.prepare(source, lambda n: load_dataset(n, self.data_dir), **options)
        except (DrbenchError, ValueError) as e:  # ValueError: options that are not JSON (a clipped param)
            raise Skip(f"cannot rebuild dataset {name!r} under {protocol_name}: {e}") from None
        return protocol, options, dataset

    def fold(self, name: str, protocol_name: str, options_json: str | None, dataset_hash: str | None, seed: int,
             selection: str, mask: str | None, genes: tuple = (0, 0)):
        """The recorded fold: (prepared dataset, fold); raises :class:`Skip` with the reason it cannot be had.
        ``genes``: the run's (``--genes``, ``--gene-seed``), (0, 0) for the full panel."""
        protocol, options, dataset = self.dataset(name, protocol_name, options_json, genes)
        if dataset.content_hash != dataset_hash and dataset_hash not in self.accept:
            raise Skip("the dataset's content hash differs from the recorded one")
        key = (name, protocol_name, options_json, genes, seed, selection == "validation")
        if key not in self.folds:
            made = protocol.folds(dataset, seed, carve_valid=selection == "validation", **options)
            self.folds[key] = {f.sha256: f for f in made}
        if mask not in self.folds[key]:
            raise Skip("the recorded mask hash matches no fold")
        return dataset, self.folds[key][mask]


def check_predictions(pred, dataset, fold) -> tuple[np.ndarray, np.ndarray]:
    """The stored predictions' (rows, cols), checked to be the fold's scored pairs with its test flags and the
    dataset's entity ids; raises :class:`Skip` otherwise."""
    rows, cols = pred["row"].to_numpy(np.int64), pred["col"].to_numpy(np.int64)
    n_rows, n_cols = fold.shape
    if len(rows) != int(fold.score.sum()) or (rows < 0).any() or (rows >= n_rows).any() or (cols < 0).any() \
            or (cols >= n_cols).any():
        raise Skip("the stored predictions are not the fold's scored pairs")
    scored = np.zeros(fold.shape, bool)
    scored[rows, cols] = True
    if not (scored == fold.score).all() \
            or not (pred["test"].astype(bool).to_numpy() == fold.test[rows, cols]).all() \
            or not (pred["cell_id"].astype(str).to_numpy() == dataset.cell_ids[rows].astype(str)).all() \
            or not (pred["drug_id"].astype(str).to_numpy() == dataset.drug_ids[cols].astype(str)).all():
        raise Skip("the stored predictions are not the fold's scored pairs")
    return rows, cols


def _merged_notes(old: str | None, new: list[str]) -> str | None:
    """The run's notes tag with ``new`` added, written as the runner writes it (sorted, "; "-joined); None if
    nothing is added."""
    have = set(old.split("; ")) if old else set()
    if set(new) <= have:
        return None
    return "; ".join(sorted(have | set(new)))


def rescore(tracking_uri: str, experiment: str = "drbench", data_dir: str | None = None, force: bool = False,
            dry_run: bool = False, accept: tuple = (), methods: str | tuple = ()) -> dict:
    """Add the metrics of :data:`SCORED` to the finished job runs of ``experiment`` that lack them (every such run
    with ``force``; only the runs of ``methods``, names or a comma-separated string, when given); ``dry_run``
    computes them and writes nothing. Runs recorded with a content hash in ``accept`` are moved onto the loaded data
    where their folds and predictions match (module docstring). Returns ``{(dataset, protocol, selection): Tally}``.
    Raises :class:`UsageError` (one line) for a store, experiment, data folder or method that cannot be used."""
    from mlflow.entities import Metric, RunTag

    from drbench.datasets import reuse_loaded_datasets
    from drbench.execution import ic50_metrics

    if data_dir is not None and not Path(data_dir).is_dir():
        raise UsageError(f"--data-dir {data_dir}: no such folder")
    for h in accept:
        if not re.fullmatch(r"[0-9a-f]{64}", str(h)):
            raise UsageError(f"--accept-dataset {h!r}: not a dataset content hash (64 lowercase hex digits, as in a "
                             "run's drbench.dataset_hash tag)")
    methods = _registered(methods)
    c = tracking.client(tracking_uri, must_exist=True)
    exp = c.get_experiment_by_name(experiment)
    if exp is None or exp.lifecycle_stage != "active":
        names = sorted(e.name for e in c.search_experiments())
        raise UsageError(f"no experiment {experiment!r} in {tracking_uri}; experiments there: "
                         f"{', '.join(names) or 'none'}")
    version = tracking.code_version()
    folds = FoldSource(data_dir, frozenset(accept))
    parents: dict = {}  # sweep run id -> the dataset argument the runner loaded
    tallies: dict = collections.defaultdict(Tally)
    with reuse_loaded_datasets():
        for run in tracking.search_job_runs(c, [exp.experiment_id]):
            tags, run_id = run.data.tags, run.info.run_id
            t = lambda k: tags.get(f"{tracking.TAG}{k}")  # noqa: E731
            if methods and t("method") not in methods:
                continue
            tally = tallies[(t("dataset"), t("protocol"), t("selection"))]
            if t("dataset_hash") in folds.accept:
                try:
                    loaded, key = _rebase(c, run, folds, parents)
                except Skip as e:
                    tally.skipped[f"not moved: {e}"] += 1
                    continue
                tally.rebased += 1
                if not dry_run:
                    c.log_batch(run_id, tags=[RunTag(f"{tracking.TAG}dataset_hash", loaded),
                                              RunTag(f"{tracking.TAG}job_key", key),
                                              RunTag(HASH_RECORDED, t("dataset_hash")),
                                              RunTag(KEY_RECORDED, t("job_key")), RunTag(REBASED_BY, version)])
                continue
            if not force and _scored(run):
                tally.had += 1
                continue
            try:
                scorable = _scorable(c, run, folds, parents)
            except Skip as e:
                tally.skipped[str(e)] += 1
                log.info("run %s (%s seed %s fold %s) skipped: %s", run_id, t("method"), t("seed"), t("fold"), e)
                continue
            if scorable is None:
                tally.unscored += 1
                continue
            dataset, fold, rows, cols, ic50_pred = scorable
            values, notes = ic50_metrics(dataset, fold, rows, cols, ic50_pred)
            tally.rescored += 1
            if dry_run:
                continue
            ts = int(time.time() * 1000)
            new_tags = [RunTag(RESCORED_BY, version), RunTag(RESCORED_METRICS, ",".join(sorted(values)))]
            merged = _merged_notes(t("notes"), notes)
            if merged is not None:
                new_tags.append(RunTag(f"{tracking.TAG}notes", merged[:4900]))
            # a value the run holds that is undefined now (e.g. after a fix, under --force) is overwritten by NaN
            logged = {k: v for k, v in values.items() if np.isfinite(v) or k in run.data.metrics}
            c.log_batch(run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in logged.items()], tags=new_tags)
    return dict(tallies)


def _scored(run) -> bool:
    """Whether the run holds every metric of :data:`SCORED`, counting those a rescore found undefined."""
    held = set(run.data.metrics) | set((run.data.tags.get(RESCORED_METRICS) or "").split(","))
    return set(SCORED) <= held


def _registered(methods) -> frozenset:
    """The ``--methods`` names, each checked against the registry (:class:`UsageError` for an unknown one)."""
    from drbench.registry import resolve_methods

    return frozenset(resolve_methods(methods)) if methods else frozenset()


def _scorable(c, run, folds: FoldSource, parents: dict):
    """(dataset, fold, rows, cols, IC50 predictions) of a run the runner would give the IC50 metrics now;
    None if it would give it none (a classification-only method, no IC50 prediction, no test pair); raises
    :class:`Skip` where the run's fold cannot be rebuilt or its predictions were not stored."""
    t = lambda k: run.data.tags.get(f"{tracking.TAG}{k}")  # noqa: E731
    if "regression" not in (t("tasks") or "").split(","):  # the runner scores the IC50 of regression methods only
        return None
    pred = _stored_predictions(c, run)
    if "ic50_pred" not in pred.columns:
        return None
    _, dataset, fold = _recorded_fold(c, run, folds, parents)
    rows, cols = check_predictions(pred, dataset, fold)
    if not fold.test[rows, cols].any():  # e.g. the case study: the runner scores no metric at all
        return None
    return dataset, fold, rows, cols, pred["ic50_pred"].to_numpy(float)


def _rebase(c, run, folds: FoldSource, parents: dict) -> tuple[str, str]:
    """(the loaded data's content hash, the job key the runner gives the run's job on it), for a run whose fold
    rebuilt on that data matches its recorded mask hash, whose stored predictions are that fold's scored pairs and
    whose recorded job key is its default hyperparameters' on the recorded hash; raises :class:`Skip` otherwise."""
    pred = _stored_predictions(c, run)
    protocol, dataset, fold = _recorded_fold(c, run, folds, parents)
    check_predictions(pred, dataset, fold)
    return dataset.content_hash, _job_key_on(run, protocol, dataset, fold)


def _stored_predictions(c, run):
    """The run's stored predictions; raises :class:`Skip` if it has the tags to rebuild its fold but none stored."""
    missing = [k for k in RECORDED if not run.data.tags.get(f"{tracking.TAG}{k}")]
    if missing:
        raise Skip(f"no recorded {', '.join(missing)}")
    if not any(f.path == tracking.PREDICTIONS for f in c.list_artifacts(run.info.run_id)):
        raise Skip("no stored predictions")
    return tracking.load_predictions(c, run.info.run_id)


def _recorded_fold(c, run, folds: FoldSource, parents: dict):
    """(protocol, prepared dataset, fold) of the run, rebuilt by its recorded tags (:meth:`FoldSource.fold`)."""
    t = lambda k: run.data.tags.get(f"{tracking.TAG}{k}")  # noqa: E731
    name = _dataset_argument(c, parents, t("sweep_run_id")) or t("dataset")
    genes = (int(t("genes") or 0), int(t("gene_seed") or 0))
    options = run.data.params.get("protocol_options")
    dataset, fold = folds.fold(name, t("protocol"), options, t("dataset_hash"), int(t("seed")), t("selection"),
                               t("mask_sha256"), genes)
    return folds.dataset(name, t("protocol"), options, genes)[0], dataset, fold


def _job_key_on(run, protocol, dataset, fold) -> str:
    """The job key the runner gives ``run``'s job on ``dataset``, once the key it recorded is shown to be the one its
    method's default hyperparameters (under the run context of its selection and device) give on its recorded
    hash; raises :class:`Skip` otherwise (e.g. a run with ``--set`` overrides)."""
    from types import SimpleNamespace

    from drbench.context import RunContext
    from drbench.errors import DrbenchError
    from drbench.methods import get_method
    from drbench.runner import job_key, key_params, method_params

    t = lambda k: run.data.tags.get(f"{tracking.TAG}{k}")  # noqa: E731
    try:
        cls = get_method(t("method"))
    except DrbenchError:
        raise Skip(f"method {t('method')!r} is not registered here") from None
    source = SimpleNamespace(name=t("dataset"))
    rest = (fold.sha256, int(t("seed")), t("selection"), protocol.name)
    for device in dict.fromkeys(["cpu", t("device") or "cpu"]):
        context = RunContext.for_sweep(protocol, source, dataset, t("selection"), device)
        params = key_params(cls, method_params(cls, context, {}))
        if job_key(t("method"), params, t("dataset_hash"), *rest) == t("job_key"):
            return job_key(t("method"), params, dataset.content_hash, *rest)
    raise Skip("its recorded job key is not the one the method's default hyperparameters give")


def _dataset_argument(c, parents: dict, sweep_run_id: str | None) -> str | None:
    """The dataset argument the run's sweep loaded (its ``dataset`` param: a name or a long-layout folder)."""
    if not sweep_run_id:
        return None
    if sweep_run_id not in parents:
        try:
            parents[sweep_run_id] = c.get_run(sweep_run_id).data.params.get("dataset")
        except Exception:  # the sweep run was deleted: fall back to the job's dataset tag
            parents[sweep_run_id] = None
    return parents[sweep_run_id]


def run(args) -> int:
    tallies = rescore(args.tracking_uri, args.experiment, args.data_dir, args.force, args.dry_run,
                      tuple(args.accept_dataset or ()), args.methods or ())
    if not tallies:
        print(f"no finished job runs in experiment {args.experiment!r}")
    for group in sorted(tallies, key=lambda g: tuple(str(x) for x in g)):
        print(tallies[group].line(tuple(str(x) for x in group), args.dry_run))
    return 0


def add_cli(sub) -> None:
    r = sub.add_parser("rescore", help="add the metrics drbench computes now to recorded runs, from their stored "
                                       "predictions (nothing is refitted)")
    r.add_argument("--tracking-uri", required=True, help="the MLflow store whose runs to rescore")
    r.add_argument("--experiment", default="drbench", help="MLflow experiment name (default drbench)")
    r.add_argument("--data-dir", help="folder holding the runs' datasets (as for `drbench run`)")
    r.add_argument("--force", action="store_true", help="recompute and log the metrics of runs that already have them")
    r.add_argument("--dry-run", action="store_true", help="compute and count, write nothing")
    r.add_argument("--methods", help="rescore only these methods' runs (comma-separated)")
    r.add_argument("--accept-dataset", action="append", metavar="HASH",
                   help="move runs recorded with this content hash onto the loaded data where their rebuilt folds "
                        "match their mask hashes and their predictions match those folds (repeatable)")
    r.set_defaults(func=run)


__all__ = ["rescore", "FoldSource", "check_predictions", "Tally", "add_cli"]
