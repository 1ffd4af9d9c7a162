"""``drbench rescore``: runs recorded without the normalized IC50 metrics get exactly the values the runner records
now, from their stored predictions; classification-only runs are untouched; a second pass does nothing; a run whose
fold cannot be rebuilt is skipped with its reason; bad input is one line and exit status 2."""

from __future__ import annotations

import dataclasses

import pytest

from drbench import execution, tracking
from drbench.cli import main
from drbench.datasets import make_synthetic, plugin_datasets
from drbench.metrics import IC50_RANKING, NORMALIZED, NORMALIZED_COUNT
from drbench.rescore import RESCORED_BY, RESCORED_METRICS, SCORED, rescore
from drbench.runner import SweepSpec, run_sweep

METHODS = "drug-mean,mean-effects,srmf,hnmdrp"  # hnmdrp: classification only
PROTOCOLS = {"random": {}, "new-cell-line": {"n_folds": 3, "min_positives": 3}}
ADDED = (*IC50_RANKING, *NORMALIZED, NORMALIZED_COUNT)  # what the runner records now and rescore adds
GROUP = lambda protocol: ("tiny", protocol, "validation")  # noqa: E731


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One MLflow store for the module (creating one takes seconds); each test uses its own experiments."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('rescore')}/runs.db"
    tracking.client(uri)
    return uri


@pytest.fixture(autouse=True)
def tiny():
    """A small synthetic dataset that ``rescore`` loads by name, as the runner did."""
    reg = plugin_datasets()
    reg.add("tiny", lambda data_dir: dataclasses.replace(
        make_synthetic(n_cells=48, n_drugs=16, n_genes=40, rank=4, pos_rate=0.2, n_invivo=0), name="tiny"))
    yield
    reg.remove("tiny")


def _sweep(uri: str, protocol: str, methods: str = METHODS, experiment: str = "drbench", selection="validation"):
    run_sweep(SweepSpec(methods=methods, protocol=protocol, dataset="tiny", options=PROTOCOLS[protocol],
                        folds=[0, 1], params={"srmf": {"max_iter": 5}} if "srmf" in methods else {},
                        selection=selection, backend="sequential", experiment=experiment, tracking_uri=uri,
                        progress=False))


def _old_sweep(monkeypatch, uri: str, protocol: str, methods: str = METHODS, experiment: str = "drbench",
               selection="validation"):
    """A sweep recorded as before drbench computed the IC50 ranking and normalized metrics."""
    with monkeypatch.context() as m:
        m.setattr(execution, "ic50_metrics", lambda *a, **k: ({}, []))
        _sweep(uri, protocol, methods, experiment, selection)


def _runs(uri: str, experiment: str = "drbench") -> dict:
    """job key -> run, of the finished job runs in the experiment."""
    c = tracking.client(uri)
    exp = c.get_experiment_by_name(experiment).experiment_id
    return {r.data.tags["drbench.job_key"]: r for r in tracking.search_job_runs(c, [exp])}


def _has_none(runs) -> bool:
    return all(not set(ADDED) & set(r.data.metrics) and RESCORED_BY not in r.data.tags for r in runs)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_rescored_runs_hold_what_the_runner_records_now(protocol, monkeypatch, store):
    uri, old, new = store, f"old-{protocol}", f"new-{protocol}"
    _old_sweep(monkeypatch, uri, protocol, experiment=old)  # the same jobs, recorded before and now
    _sweep(uri, protocol, experiment=new)
    before, expected = _runs(uri, old), _runs(uri, new)
    n = 8 if protocol == "random" else 6  # hnmdrp does not run new-cell-line
    assert set(before) == set(expected) and len(before) == n and _has_none(before.values())

    dry = rescore(uri, old, dry_run=True)[GROUP(protocol)]
    assert (dry.rescored, dry.unscored) == (6, n - 6) and _has_none(_runs(uri, old).values())

    tally = rescore(uri, old)[GROUP(protocol)]
    assert (tally.rescored, tally.had, tally.unscored, sum(tally.skipped.values())) == (6, 0, n - 6, 0)
    after = _runs(uri, old)
    for key, run in after.items():
        method, m, want = run.data.tags["drbench.method"], run.data.metrics, expected[key].data.metrics
        if method == "hnmdrp":  # classification only: untouched
            assert m == before[key].data.metrics and RESCORED_BY not in run.data.tags
            continue
        assert {k: m.get(k) for k in ADDED} == {k: want.get(k) for k in ADDED}, method
        if method == "srmf":
            assert set(NORMALIZED) <= set(m)
        assert {k: v for k, v in m.items() if k not in ADDED} == before[key].data.metrics  # nothing else moved
        assert run.data.tags.get("drbench.notes") == expected[key].data.tags.get("drbench.notes")
        assert run.data.tags[RESCORED_BY] == tracking.code_version()
        assert set(run.data.tags[RESCORED_METRICS].split(",")) == set(ADDED)
    me = [r for r in after.values() if r.data.tags["drbench.method"] == "mean-effects"]
    assert me and all("pcc_resid" not in r.data.metrics for r in me)  # its IC50 is the baseline: NaN, not logged
    if protocol == "new-cell-line":  # a held-out cell has no cell effect: mean-effects is constant within a drug
        assert all("pcc_drug" not in r.data.metrics for r in me)

    again = rescore(uri, old)[GROUP(protocol)]
    assert (again.rescored, again.had, again.unscored) == (0, 6, n - 6)
    c = tracking.client(uri)
    for key, run in _runs(uri, old).items():
        assert run.data.metrics == after[key].data.metrics
        for k in set(NORMALIZED) & set(run.data.metrics):
            assert len(c.get_metric_history(run.info.run_id, k)) == 1

    forced = rescore(uri, new, force=True)[GROUP(protocol)]  # the runs recorded now: recomputed, the same values
    assert forced.rescored == 6
    for run in _runs(uri, new).values():
        for k in set(NORMALIZED) & set(run.data.metrics):
            assert len({m.value for m in c.get_metric_history(run.info.run_id, k)}) == 1


def test_a_run_whose_fold_cannot_be_rebuilt_is_skipped_with_its_reason(monkeypatch, store, capsys):
    uri, exp = store, "skips"
    _old_sweep(monkeypatch, uri, "random", methods="drug-mean,mean-effects", experiment=exp)
    c = tracking.client(uri)
    runs = sorted(_runs(uri, exp).values(), key=lambda r: r.info.run_id)
    _old_sweep(monkeypatch, uri, "random", methods="drug-mean", experiment=exp, selection="test")  # no valid split
    c.set_tag(runs[0].info.run_id, "drbench.mask_sha256", "0" * 64)
    c.set_tag(runs[1].info.run_id, "drbench.dataset_hash", "0" * 64)

    assert main(["rescore", "--tracking-uri", uri, "--experiment", exp]) == 0
    none = "0 with none to add (no IC50 prediction or no labelled test pair)"
    assert capsys.readouterr().out.splitlines() == [
        f"tiny/random/test: 2 rescored, 0 already had them, {none}, 0 skipped",
        f"tiny/random/validation: 2 rescored, 0 already had them, {none}, 2 skipped (the dataset's content hash "
        "differs from the recorded one: 1; the recorded mask hash matches no fold: 1)"]
    now = _runs(uri, exp)
    assert _has_none(now[r.data.tags["drbench.job_key"]] for r in runs[:2])
    assert all(RESCORED_BY in now[r.data.tags["drbench.job_key"]].data.tags for r in runs[2:])


def test_bad_input_is_one_line_and_exit_2(store, tmp_path, capsys):
    cases = [
        (["--tracking-uri", f"sqlite:///{tmp_path}/none.db"], "no such database file"),
        (["--tracking-uri", f"sqlite:///{tmp_path}/no/such/folder/x.db"], "no such database file"),
        (["--tracking-uri", store, "--experiment", "nope"], "no experiment 'nope'"),
        (["--tracking-uri", store, "--data-dir", f"{tmp_path}/missing"], "no such folder"),
        (["--tracking-uri", "nosuchscheme://x"], "cannot be used"),
        (["--tracking-uri", store, "--accept-dataset", "029bfa"], "not a dataset content hash"),
        (["--tracking-uri", store, "--methods", "srmf,nope"], "unknown method(s) ['nope']; choose from: all,"),
        (["--tracking-uri", f"sqlite:///{tmp_path}/none.db", "--methods", "nope"], "unknown method(s) ['nope']"),
        ([], "--tracking-uri"),
    ]
    for args, says in cases:
        try:
            rc = main(["rescore", *args])
        except SystemExit as e:  # argparse
            rc = e.code
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("drbench: error:") and says in err and err.count("\n") == 1, (args, err)
    assert not (tmp_path / "none.db").exists()  # a missing store is not created


def test_a_metric_added_since_a_run_was_recorded_is_added_to_it_and_methods_limit_the_work(monkeypatch, store):
    """Runs recorded before ``auprc_ic50`` existed (they hold the other IC50 metrics) get it at the next rescore, with
    the value the runner records now; ``methods`` leaves the other methods' runs as they were."""
    def without_auprc(*a, **k):
        values, notes = real(*a, **k)
        return {k2: v for k2, v in values.items() if k2 != "auprc_ic50"}, notes

    real = execution.ic50_metrics
    with monkeypatch.context() as m:
        m.setattr(execution, "ic50_metrics", without_auprc)
        _sweep(store, "random", methods="drug-mean,srmf", experiment="before-auprc")
    _sweep(store, "random", methods="drug-mean,srmf", experiment="now-auprc")
    before, want = _runs(store, "before-auprc"), _runs(store, "now-auprc")
    assert len(before) == 4 and not any("auprc_ic50" in r.data.metrics for r in before.values())
    assert all(set(NORMALIZED) & set(r.data.metrics) for r in before.values())  # not a run lacking everything

    tally = rescore(store, "before-auprc", methods=("srmf",))[GROUP("random")]
    assert (tally.rescored, tally.had) == (2, 0)
    after = _runs(store, "before-auprc")
    for key, run in after.items():
        if run.data.tags["drbench.method"] == "srmf":
            assert run.data.metrics["auprc_ic50"] == want[key].data.metrics["auprc_ic50"]
            assert {k: run.data.metrics[k] for k in ADDED if k in want[key].data.metrics} == \
                {k: want[key].data.metrics[k] for k in ADDED if k in want[key].data.metrics}
        else:
            assert run.data.metrics == before[key].data.metrics and RESCORED_BY not in run.data.tags
    assert rescore(store, "before-auprc", methods=("srmf",))[GROUP("random")].rescored == 0  # done once
    assert rescore(store, "before-auprc")[GROUP("random")].rescored == 2  # now the drug-mean runs


def test_force_overwrites_a_value_that_is_undefined_now(monkeypatch, store):
    """A run recorded with a value the current code leaves undefined (e.g. before a fix) shows NaN after
    ``--force``, not the stale value."""
    with monkeypatch.context() as m:
        m.setattr(execution, "ic50_metrics", lambda *a, **k: ({k2: 0.5 for k2 in SCORED}, []))
        _sweep(store, "random", methods="mean-effects,srmf", experiment="stale")
    rescore(store, "stale", force=True)
    for run in _runs(store, "stale").values():
        m = run.data.metrics
        if run.data.tags["drbench.method"] == "mean-effects":  # its IC50 is the baseline: no residual
            assert m["pcc_resid"] != m["pcc_resid"] and m["scc_resid"] != m["scc_resid"]  # NaN
        else:
            assert all(m[k] != 0.5 for k in SCORED)


def test_a_gene_panel_run_is_rebuilt_on_its_panel(monkeypatch, store):
    # a run made with --genes N --gene-seed S has its own dataset hash: rescore must cut the same panel to find it
    uri, old, new = store, "old-panel", "new-panel"

    def sweep(experiment):
        run_sweep(SweepSpec(methods="srmf", protocol="random", dataset="tiny", folds=[0], genes=20, gene_seed=3,
                            params={"srmf": {"max_iter": 5}}, backend="sequential", experiment=experiment,
                            tracking_uri=uri, progress=False))

    with monkeypatch.context() as m:  # recorded as before drbench computed the normalized metrics
        m.setattr(execution, "ic50_metrics", lambda *a, **k: ({}, []))
        sweep(old)
    sweep(new)
    (key, run), = _runs(uri, old).items()
    assert run.data.tags["drbench.genes"] == "20" and _has_none([run])
    tally = rescore(uri, old)[GROUP("random")]
    assert (tally.rescored, sum(tally.skipped.values())) == (1, 0), tally.skipped
    m, want = _runs(uri, old)[key].data.metrics, _runs(uri, new)[key].data.metrics
    assert {k: m.get(k) for k in ADDED} == {k: want.get(k) for k in ADDED}
    assert set(NORMALIZED) <= set(m)


def test_accept_dataset_moves_runs_whose_folds_and_predictions_match_onto_the_loaded_data(store, capsys):
    """Runs made on the same data parsed one ulp off (as pandas 3.0 did on the GPU machine) are moved onto the loaded
    data only where their rebuilt fold matches their mask hash: they get the hash and the job keys a sweep of the
    loaded data gives (so it finds those jobs done), the old ones are kept, the metrics stay as recorded."""
    import numpy as np

    from drbench.rescore import HASH_RECORDED, KEY_RECORDED, REBASED_BY

    uri, exp = store, "accept"
    reg = plugin_datasets()
    exact = reg.get("tiny")(None)
    ic50 = np.where(np.isnan(exact.ic50), np.nan, np.nextafter(exact.ic50, np.inf))  # one ulp off
    reg.remove("tiny")
    reg.add("tiny", lambda data_dir: dataclasses.replace(exact, ic50=ic50))
    try:
        _sweep(uri, "random", methods="drug-mean,mean-effects,hnmdrp", experiment=exp)
    finally:
        reg.remove("tiny")
        reg.add("tiny", lambda data_dir: exact)
    _sweep(uri, "random", methods="drug-mean,mean-effects,hnmdrp", experiment="accept-reference")
    c = tracking.client(uri)
    runs = sorted(_runs(uri, exp).values(), key=lambda r: r.info.run_id)
    other = runs[0].data.tags["drbench.dataset_hash"]
    assert other != exact.content_hash
    c.set_tag(runs[0].info.run_id, "drbench.mask_sha256", "0" * 64)  # a fold these data do not make
    c.set_tag(runs[1].info.run_id, "drbench.job_key", "0" * 32)  # a key its default hyperparameters do not give

    assert main(["rescore", "--tracking-uri", uri, "--experiment", exp, "--accept-dataset", other]) == 0
    n = len(runs)
    assert capsys.readouterr().out.splitlines() == [
        f"tiny/random/validation: 0 rescored, 0 already had them, 0 with none to add (no IC50 prediction or no "
        f"labelled test pair), 2 skipped (not moved: its recorded job key is not the one the method's default "
        f"hyperparameters give: 1; not moved: the recorded mask hash matches no fold: 1); {n - 2} moved onto the "
        f"loaded data's hash"]
    now = {r.info.run_id: r for r in _runs(uri, exp).values()}
    reference = {(r.data.tags["drbench.method"], r.data.tags["drbench.fold"]): r.data.tags["drbench.job_key"]
                 for r in _runs(uri, "accept-reference").values()}
    for old in runs[2:]:
        r = now[old.info.run_id]
        assert r.data.tags["drbench.dataset_hash"] == exact.content_hash and r.data.tags[HASH_RECORDED] == other
        assert r.data.tags["drbench.job_key"] == reference[(r.data.tags["drbench.method"], r.data.tags["drbench.fold"])]
        assert r.data.tags[KEY_RECORDED] == old.data.tags["drbench.job_key"] and REBASED_BY in r.data.tags
        assert r.data.metrics == old.data.metrics  # nothing rescored
    for old in runs[:2]:
        assert now[old.info.run_id].data.tags["drbench.dataset_hash"] == other
        assert HASH_RECORDED not in now[old.info.run_id].data.tags
