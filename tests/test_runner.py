"""Sweeps end to end on synthetic data: MLflow records, identical masks, resume, failures, replication tags."""

from __future__ import annotations

import numpy as np
import pytest

import drbench
from drbench import tracking
from drbench.api import Capabilities, Method, Prediction
from drbench.errors import UsageError
from drbench.registry import methods
from drbench.runner import SweepSpec, run_sweep

NAIVE = "global-mean,drug-mean,cell-mean,mean-effects"


def spec(**kw):
    base = dict(methods="drug-mean,mean-effects", protocol="random", dataset="synthetic", progress=False)
    base.update(kw)
    return SweepSpec(**base)


def job_runs(status=None):
    c = tracking.client()
    exp = tracking.experiment_id(c, "drbench", create=False)
    return c, tracking.search_job_runs(c, [exp], status=status)


def test_sweep_logs_one_child_run_per_job_with_tags_metrics_and_predictions():
    rep = run_sweep(spec(methods=NAIVE))
    assert (rep.planned, rep.finished, rep.failed) == (20, 20, 0)
    c, runs = job_runs("FINISHED")
    assert len(runs) == 20
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs}
    assert parents == {rep.parent_run_id}
    r = next(r for r in runs if r.data.tags["drbench.method"] == "mean-effects")
    t, m = r.data.tags, r.data.metrics
    for key in ("dataset_hash", "mask_sha256", "code_version", "transductive", "selection", "job_key"):
        assert t[f"drbench.{key}"]
    assert t["drbench.selection"] == "validation" and t["drbench.replication"] == "false"
    for key in ("auc", "auprc", "pcc", "scc", "rmse", "fit_seconds", "predict_seconds", "peak_rss_mb", "auc_entity"):
        assert key in m
    assert 0.5 < m["auc"] <= 1.0
    preds = tracking.load_predictions(c, r.info.run_id)
    assert {"cell_id", "drug_id", "label", "score", "ic50_pred", "ic50_true"} <= set(preds.columns)
    assert len(preds) == m["n_test"]


def test_every_method_gets_the_same_masks():
    run_sweep(spec(methods=NAIVE, folds=[0, 2]))
    _, runs = job_runs("FINISHED")
    by_fold = {}
    for r in runs:
        by_fold.setdefault(r.data.tags["drbench.fold"], set()).add(r.data.tags["drbench.mask_sha256"])
    assert set(by_fold) == {"0", "2"}
    assert all(len(v) == 1 for v in by_fold.values())


def test_rerun_does_no_work_and_interrupted_sweep_finishes_only_the_rest():
    seen = []

    def stop_after_three(job, res):
        seen.append(job.key)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec(), on_result=stop_after_three)
    _, runs = job_runs("FINISHED")
    assert len(runs) == 3
    rep = run_sweep(spec())
    assert (rep.planned, rep.skipped_done, rep.finished) == (10, 3, 7)
    again = run_sweep(spec())
    assert (again.skipped_done, again.finished, again.parent_run_id) == (10, 0, None)
    c = tracking.client()
    exp = tracking.experiment_id(c, "drbench")
    killed = c.search_runs([exp], filter_string="tags.`drbench.kind` = 'sweep' and attributes.status = 'KILLED'")
    assert len(killed) == 1  # the interrupted sweep is marked as such


class _Flaky(Method):
    capabilities = Capabilities(protocols={"random"})
    broken = True

    def fit(self, view):
        if type(self).broken:
            raise RuntimeError("boom in fit")
        self.p_ = float(np.nanmean(np.where(view.train, view.binary, np.nan)))
        return self

    def predict(self, query):
        return Prediction(np.full(len(query), self.p_))


def test_a_failing_method_is_recorded_and_does_not_stop_the_sweep():
    drbench.register("test-flaky")(_Flaky)
    try:
        _Flaky.broken = True
        rep = run_sweep(spec(methods="test-flaky,drug-mean"))
        assert (rep.finished, rep.failed) == (5, 5)
        c, failed = job_runs("FAILED")
        assert len(failed) == 5
        assert "RuntimeError: boom in fit" in failed[0].data.tags["drbench.error"]
        assert "traceback.txt" in {a.path for a in c.list_artifacts(failed[0].info.run_id)}
        _Flaky.broken = False
        rep2 = run_sweep(spec(methods="test-flaky,drug-mean"))
        assert (rep2.skipped_done, rep2.finished, rep2.failed) == (5, 5, 0)  # only the failed jobs are redone
    finally:
        methods().remove("test-flaky")


def test_replication_mode_is_tagged_and_keeps_test_masks():
    run_sweep(spec(methods="drug-mean", folds=[1]))
    run_sweep(spec(methods="drug-mean", folds=[1], selection="test"))
    _, runs = job_runs("FINISHED")
    tags = {r.data.tags["drbench.selection"]: r.data.tags for r in runs}
    assert tags["test"]["drbench.replication"] == "true"
    assert tags["test"]["drbench.mask_sha256"] != tags["validation"]["drbench.mask_sha256"]  # no valid carve


def test_parallel_jobs_give_the_same_results_as_sequential():
    a = run_sweep(spec(methods="mean-effects", jobs=1, experiment="seq"))
    b = run_sweep(spec(methods="mean-effects", jobs=2, experiment="par"))
    auc = lambda rep: sorted((r.fold, r.metrics["auc"]) for r in rep.results)  # noqa: E731
    assert auc(a) == auc(b)


def test_case_study_writes_top_k_per_drug():
    rep = run_sweep(spec(methods="mean-effects", protocol="case-study", options={"top_k": 3}))
    c, runs = job_runs("FINISHED")
    path = c.download_artifacts(runs[0].info.run_id, "topk.csv")
    import pandas as pd

    top = pd.read_csv(path)
    assert (top.groupby("drug_id")["rank"].max() <= 3).all()
    assert len(top) == 3 * top["drug_id"].nunique()
    assert rep.finished == 1


def test_clear_errors_for_bad_sweeps():
    with pytest.raises(UsageError, match="unknown method"):
        run_sweep(spec(methods="nope"))
    with pytest.raises(UsageError, match="unknown protocol"):
        run_sweep(spec(protocol="leave-one-out"))
    with pytest.raises(UsageError, match="no hyperparameter"):
        run_sweep(spec(methods="drug-mean", params={"drug-mean": {"epochs": 3}}))
    with pytest.raises(UsageError, match="out of range"):
        run_sweep(spec(folds=[7]))
    with pytest.raises(UsageError, match="unknown backend"):
        run_sweep(spec(jobs=2, backend="spark"))


@pytest.mark.realdata
def test_naive_baselines_on_real_gdsc_new_cell_line(data_dir):
    rep = run_sweep(spec(methods=NAIVE, protocol="new-cell-line", dataset="gdsc", data_dir=str(data_dir), folds=[0]))
    assert rep.finished == 4
    me = next(r for r in rep.results if r.method == "mean-effects")
    assert me.metrics["auc_entity"] > 0.6  # drug effects alone rank a new cell line's drugs well above chance
    assert me.metrics["n_entities_auc"] > 100


def test_rerun_keys_run_those_finished_jobs_again_and_only_those():
    first = run_sweep(spec(methods="drug-mean", folds=[0, 1]))
    assert first.finished == 2
    key = next(r.data.tags["drbench.job_key"] for r in job_runs("FINISHED")[1] if r.data.tags["drbench.fold"] == "1")
    again = run_sweep(spec(methods="drug-mean", folds=[0, 1], rerun_keys={key}))
    assert (again.skipped_done, again.finished) == (1, 1)
    assert [r.fold for r in again.results] == [1]
    runs = [r for r in job_runs("FINISHED")[1] if r.data.tags["drbench.job_key"] == key]
    assert len(runs) == 2  # the old run is kept; a board takes the newer one
