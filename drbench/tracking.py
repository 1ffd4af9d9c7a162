"""MLflow tracking: one parent run per sweep, one child run per (method, fold, seed) job.

The default store is ``sqlite:///mlflow.db`` in the working directory; ``MLFLOW_TRACKING_URI`` (or
``--tracking-uri``) overrides it. Only a sweep's driver process talks to MLflow; several drivers may
share one store (see :mod:`drbench.claims`). :func:`client` checks the store before any work: an unusable
URI or a server that does not answer within a few seconds is a :class:`~drbench.errors.UsageError`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

from drbench.errors import UsageError
from drbench.inputs import unwritable

DEFAULT_URI = "sqlite:///mlflow.db"
TAG = "drbench."
PREDICTIONS = "predictions.csv.gz"
CHECK_TIMEOUT_S = 5  # how long the store check waits for a tracking server (one try, no retries)
#: per-entity metrics of a job (entity id, n, positives, AUC, AUPRC, PCC, SCC, RMSE), where its fold has an entity axis
ENTITIES = "entities.csv"


def tracking_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def client(uri: str | None = None, must_exist: bool = False):
    """An MLflow client for the store at ``uri``, checked: the store answers, and a fresh SQLite store has its
    tables (created under a lock file beside the database, so that drivers started together do not race in
    MLflow's schema migration). Raises :class:`UsageError` with one line when the store cannot be used.
    ``must_exist``: for a command that only reads a store, a SQLite file that does not exist is refused (a mistyped
    path would otherwise be created empty and read as "no runs")."""
    import logging

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(uri)
    db = _sqlite_path(uri)
    if must_exist and db is not None and not db.is_file():
        raise UsageError(f"tracking URI {uri!r}: no such database file {db}, so nothing recorded to read; give the "
                         f"store your sweeps wrote to (--tracking-uri or MLFLOW_TRACKING_URI)")
    with _store_lock(uri), _quick_http():
        try:
            c = MlflowClient(tracking_uri=uri)
            c.search_experiments(max_results=1)  # opens (and for a fresh SQLite file, creates) the store
        except Exception as e:  # MLflow raises many kinds; the user needs the URI and the first line of why
            if uri.startswith(("http://", "https://")) and "failed with exception" in str(e):  # no HTTP answer
                raise UsageError(f"tracking server {uri} did not answer within {CHECK_TIMEOUT_S} s: is it running and "
                                 f"reachable? (--tracking-uri or MLFLOW_TRACKING_URI)") from None
            if "filesystem tracking backend" in str(e):  # a plain path: MLflow 3 refuses its file store by default
                path = Path(uri.removeprefix("file://")).expanduser().resolve()
                path = path / "mlflow.db" if path.is_dir() else path
                raise UsageError(f"tracking store {uri!r} is a path, which MLflow reads as its retired file store "
                                 f"(refused unless MLFLOW_ALLOW_FILE_STORE=true): give a database URI, e.g. "
                                 f"sqlite:///{path}") from None
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise UsageError(f"tracking store {uri!r} cannot be used: {why}") from None
    return c


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _check_sqlite_file(uri: str, db: Path) -> None:
    """One line, at once, for a SQLite store MLflow could not open (it would retry for about two minutes first): a
    missing folder, a folder where the database file should be, or a new store in a folder that cannot be written."""
    folder = db.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"tracking URI {uri!r}: folder {folder} does not exist")
    if db.exists() and not db.is_file():
        raise UsageError(f"tracking URI {uri!r}: {db} is not a file (a folder?); give the path of a database file")
    why = None if db.exists() else unwritable(folder)  # MLflow creates the store: the folder must take a new file
    if why:
        raise UsageError(f"tracking URI {uri!r}: cannot create a store in {folder} ({why}); give a folder you can "
                         "write into")


@contextlib.contextmanager
def _store_lock(uri: str):
    """Hold an exclusive lock on ``<database>.lock`` for a SQLite store (no-op for other stores or without fcntl)."""
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    _check_sqlite_file(uri, db)
    try:
        import fcntl

        f = open(f"{db}.lock", "a")
    except (ImportError, OSError):  # not POSIX, or a read-only folder (then nobody creates the store there)
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quick_http():
    """While checking a store, an HTTP tracking server gets one try of ``CHECK_TIMEOUT_S`` seconds, not MLflow's
    minutes of retries; the sweep's own requests keep MLflow's retry settings."""
    names = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update({names[0]: "0", names[1]: str(CHECK_TIMEOUT_S)})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def artifact_root(uri: str) -> str | None:
    """For a SQLite store, artifacts go in ``mlartifacts/`` beside the database file (not the working directory)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return (db.resolve().parent / "mlartifacts").as_uri()
    return None


def experiment_id(c, name: str, create: bool = True) -> str | None:
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    if not create:
        return None
    try:
        root = artifact_root(c.tracking_uri) if hasattr(c, "tracking_uri") else None
        return c.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)
    except Exception:  # created concurrently by another driver
        return c.get_experiment_by_name(name).experiment_id


def code_version() -> str:
    """drbench's version, plus the git commit (and "-dirty") when running from a checkout."""
    from drbench import __version__

    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        if sha:
            # generated tables are not code: regenerating leaderboards/ does not make the code "dirty"
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--",
                                    ".", ":(exclude)leaderboards"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return f"{__version__}+g{sha}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def search_job_runs(c, experiment_ids: list[str], status: str | None = "FINISHED", extra: str = "") -> list:
    """Every job (child) run in the experiments, following pagination."""
    flt = f"tags.`{TAG}kind` = 'job'"
    if status:
        flt += f" and attributes.status = '{status}'"
    if extra:
        flt += f" and {extra}"
    runs, token = [], None
    while True:
        page = c.search_runs(experiment_ids, filter_string=flt, max_results=5000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def finished_job_keys(c, exp_id: str) -> set[str]:
    return {r.data.tags.get(f"{TAG}job_key") for r in search_job_runs(c, [exp_id])}


def keys_with_entities(c, exp_id: str, keys) -> set[str]:
    """Those of the job ``keys`` with a finished run in the experiment that holds per-entity records
    (:data:`ENTITIES`); runs recorded before drbench kept them do not."""
    keys = set(keys)
    if not keys:
        return set()
    have = set()
    for r in search_job_runs(c, [exp_id]):
        key = r.data.tags.get(f"{TAG}job_key")
        if key in keys and key not in have and any(a.path == ENTITIES for a in c.list_artifacts(r.info.run_id)):
            have.add(key)
    return have


def median_fit_seconds(c, exp_id: str, dataset: str, protocol: str) -> dict[str, float]:
    """``{method: median fit seconds}`` of the finished job runs on ``dataset`` under ``protocol``."""
    runs = search_job_runs(c, [exp_id], extra=f"tags.`{TAG}dataset` = '{dataset}' and tags.`{TAG}protocol` = '{protocol}'")
    seconds: dict = {}
    for r in runs:
        if "fit_seconds" in r.data.metrics:
            seconds.setdefault(r.data.tags.get(f"{TAG}method"), []).append(r.data.metrics["fit_seconds"])
    return {m: float(pd.Series(v).median()) for m, v in seconds.items()}


def start_sweep(c, exp_id: str, tags: dict, params: dict) -> str:
    """Create the sweep's parent run, RUNNING; ``tags`` should carry its lease (see :mod:`drbench.claims`)."""
    from mlflow.entities import Param, RunTag

    run = c.create_run(exp_id, tags={f"{TAG}kind": "sweep", "mlflow.runName": tags.get(f"{TAG}sweep_name", "sweep"),
                                     **{k: str(v) for k, v in tags.items()}})
    c.log_batch(run.info.run_id, params=[Param(k, _clip(v)) for k, v in params.items()],
                tags=[RunTag("mlflow.source.name", "drbench run")])
    return run.info.run_id


def end_sweep(c, run_id: str, status: str, summary: dict) -> None:
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    c.log_batch(run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in summary.items()])
    c.set_terminated(run_id, status)


def _clip(v, n: int = 6000) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str, sort_keys=True)
    return s[:n]


def log_job(c, run_id: str, params: dict, result) -> None:
    """Fill a job's claimed run (see :mod:`drbench.claims`; it carries the job's tags) with the job's metrics,
    params, status tags and artifacts (predictions, traceback, the protocol's per-job files), and end it
    FINISHED or FAILED."""
    from mlflow.entities import Metric, Param, RunTag

    ts = int(time.time() * 1000)
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    metrics.update({"fit_seconds": result.fit_seconds, "predict_seconds": result.predict_seconds,
                    "peak_rss_mb": result.peak_rss_mb})
    for k, v in result.fit_info.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            metrics[f"fit_info.{k}"] = v
    mlist = [Metric(k, float(v), ts, 0) for k, v in metrics.items() if v is not None and not math.isnan(float(v))]
    plist = [Param(f"hp.{k}", _clip(v)) for k, v in result.params.items()]
    plist += [Param(k, _clip(v)) for k, v in params.items()]
    all_tags = {f"{TAG}status": result.status}
    all_tags.update({f"{TAG}{k}": v for k, v in (getattr(result, "host", None) or {}).items() if v is not None})
    if result.notes:
        all_tags[f"{TAG}notes"] = "; ".join(sorted(set(result.notes)))
    if result.error:
        all_tags[f"{TAG}error"] = result.error[:4900]
    tlist = [RunTag(k, _clip(str(v), 4900)) for k, v in all_tags.items()]
    for i in range(0, max(len(mlist), len(plist), len(tlist)), 100):  # MLflow batch limits
        c.log_batch(run_id, metrics=mlist[i:i + 100], params=plist[i:i + 100], tags=tlist[i:i + 100])
    with tempfile.TemporaryDirectory() as tmp:
        if result.predictions is not None:
            path = Path(tmp) / PREDICTIONS
            pd.DataFrame(result.predictions).to_csv(path, index=False, compression="gzip")
            c.log_artifact(run_id, str(path))
        if getattr(result, "entities", None) is not None:
            path = Path(tmp) / ENTITIES
            result.entities.to_csv(path, index=False)
            c.log_artifact(run_id, str(path))
        if result.traceback:
            path = Path(tmp) / "traceback.txt"
            path.write_text(result.traceback)
            c.log_artifact(run_id, str(path))
        for fname, frame in result.artifacts.items():
            path = Path(tmp) / fname
            frame.to_csv(path, index=False)
            c.log_artifact(run_id, str(path))
    c.set_terminated(run_id, "FINISHED" if result.status == "finished" else "FAILED")


def load_predictions(c, run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        with gzip.open(c.download_artifacts(run_id, PREDICTIONS, tmp), "rb") as f:
            return pd.read_csv(io.BytesIO(f.read()))


def runs_frame(c, exp_ids: list[str]) -> pd.DataFrame:
    """One row per finished job run: tags, metrics, start time and the protocol options it ran with (JSON; the
    leaderboard's input)."""
    rows = []
    for r in search_job_runs(c, exp_ids):
        t = {k[len(TAG):]: v for k, v in r.data.tags.items() if k.startswith(TAG)}
        row = {**t, **r.data.metrics, "run_id": r.info.run_id, "start_time": r.info.start_time,
               "protocol_options": r.data.params.get("protocol_options")}
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["client", "experiment_id", "code_version", "finished_job_keys", "start_sweep", "end_sweep", "log_job",
           "runs_frame", "load_predictions", "tracking_uri"]
