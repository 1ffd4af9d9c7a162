"""MLflow tracking: one parent run per sweep, one child run per (method, fold, seed) job.

The default store is ``sqlite:///mlflow.db`` in the working directory; ``MLFLOW_TRACKING_URI`` (or
``--tracking-uri``) overrides it. Only the sweep's driver process talks to MLflow, so a SQLite store is
never written by two processes of one sweep at once.
"""

from __future__ import annotations

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

DEFAULT_URI = "sqlite:///mlflow.db"
TAG = "drbench."
PREDICTIONS = "predictions.csv.gz"
#: per-entity metrics of a job (entity id, n, positives, AUC, AUPRC, PCC, SCC, RMSE), where its fold has an entity axis
ENTITIES = "entities.csv"


def tracking_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def client(uri: str | None = None):
    import logging

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(uri))


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


def start_sweep(c, exp_id: str, tags: dict, params: dict) -> str:
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


def log_job(c, exp_id: str, parent_id: str, tags: dict, params: dict, result) -> str:
    """Create the child run of one finished or failed job, with metrics, params, tags and predictions."""
    from mlflow.entities import Metric, Param, RunTag

    name = f"{result.method}/seed{result.seed}/fold{result.fold}"
    run = c.create_run(exp_id, tags={"mlflow.parentRunId": parent_id, "mlflow.runName": name, f"{TAG}kind": "job"})
    rid = run.info.run_id
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
    all_tags = {**tags, f"{TAG}status": result.status}
    all_tags.update({f"{TAG}{k}": v for k, v in (getattr(result, "host", None) or {}).items() if v is not None})
    if result.notes:
        all_tags[f"{TAG}notes"] = "; ".join(sorted(set(result.notes)))
    if result.error:
        all_tags[f"{TAG}error"] = result.error[:4900]
    tlist = [RunTag(k, _clip(str(v), 4900)) for k, v in all_tags.items()]
    for i in range(0, max(len(mlist), len(plist), len(tlist)), 100):  # MLflow batch limits
        c.log_batch(rid, metrics=mlist[i:i + 100], params=plist[i:i + 100], tags=tlist[i:i + 100])
    with tempfile.TemporaryDirectory() as tmp:
        if result.predictions is not None:
            path = Path(tmp) / PREDICTIONS
            pd.DataFrame(result.predictions).to_csv(path, index=False, compression="gzip")
            c.log_artifact(rid, str(path))
        if getattr(result, "entities", None) is not None:
            path = Path(tmp) / ENTITIES
            result.entities.to_csv(path, index=False)
            c.log_artifact(rid, str(path))
        if result.traceback:
            path = Path(tmp) / "traceback.txt"
            path.write_text(result.traceback)
            c.log_artifact(rid, str(path))
        extra = getattr(result, "artifacts", None) or {}
        for fname, frame in extra.items():
            path = Path(tmp) / fname
            frame.to_csv(path, index=False)
            c.log_artifact(rid, str(path))
    c.set_terminated(rid, "FINISHED" if result.status == "finished" else "FAILED")
    return rid


def load_predictions(c, run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        with gzip.open(c.download_artifacts(run_id, PREDICTIONS, tmp), "rb") as f:
            return pd.read_csv(io.BytesIO(f.read()))


def runs_frame(c, exp_ids: list[str]) -> pd.DataFrame:
    """One row per finished job run: tags, metrics and start time (the leaderboard's input)."""
    rows = []
    for r in search_job_runs(c, exp_ids):
        t = {k[len(TAG):]: v for k, v in r.data.tags.items() if k.startswith(TAG)}
        row = {**t, **r.data.metrics, "run_id": r.info.run_id, "start_time": r.info.start_time}
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["client", "experiment_id", "code_version", "finished_job_keys", "start_sweep", "end_sweep", "log_job",
           "runs_frame", "load_predictions", "tracking_uri"]
