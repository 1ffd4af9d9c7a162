"""Controlled runs: a board's variants (``--set`` overrides) as rows of their own, and paper.md's section on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drbench import boards, leaderboard, paper, reproduce
from drbench.boards import Board, Variant, board_progress
from drbench.leaderboard import CSV_COLUMNS
from drbench.runner import SweepSpec, plan_sweep
from drbench.stats import corrected_t, kfold_ratio


def test_a_variant_row_is_the_name_the_runner_gives_its_runs():
    v = Variant("mofgcn", {"sigma": 1.5, "k": 5})
    assert v.row == "mofgcn[k=5,sigma=1.5]"
    assert v.command == "--methods mofgcn --set mofgcn.k=5 --set mofgcn.sigma=1.5 --select test"
    plan = plan_sweep(SweepSpec(methods="mofgcn", protocol="random", dataset="synthetic", params={"mofgcn": v.params},
                                folds=[0], selection=v.selection))
    assert f"mofgcn[{plan.variants['mofgcn']}]" == v.row
    # a variant that overrides nothing only changes the selection: it is compared with the honest default
    assert Variant("deepdsc").row == "deepdsc" and Variant("deepdsc").baseline_selection == "validation"
    assert v.baseline_selection == "test"


def test_published_variants_each_change_a_default(tmp_path):
    """A value equal to the default would give the run no variant label and mix it into the default's row."""
    from drbench.context import RunContext
    from drbench.registry import get_method
    from drbench.runner import method_params

    declared = [(b, v) for b in boards.BOARDS for v in b.variants]
    assert declared, "no board declares controlled variants"
    for b, v in declared:
        cls = get_method(v.method)
        ctx = RunContext(dataset=b.dataset, target="", dataset_full=b.dataset, protocol=b.protocol,
                         protocol_kind=b.protocol, entity_axis=None, selection=v.selection, device="cpu")
        defaults = method_params(cls, ctx, {})
        assert all(defaults[k] != val for k, val in v.params.items()), (b.name, v)
        assert b.baseline and v.tests


def _syn_boards(monkeypatch):
    base = Board("syn-random", "synthetic", "random", methods="all", replication=["drug-mean"], title="base")
    controls = Board("syn-controls", "synthetic", "random", methods=["drug-mean"], replication=["drug-mean"],
                     baseline="syn-random", title="controls",
                     variants=[Variant("drug-mean", {"smoothing": 50.0}, tests="smoothing")])
    monkeypatch.setattr(boards, "BOARDS", [base, controls])
    return base, controls


def test_a_control_board_runs_only_its_variants_and_shows_the_baselines_runs(tmp_path, monkeypatch):
    _syn_boards(monkeypatch)
    out, uri = tmp_path / "lb", f"sqlite:///{tmp_path}/a.db"
    first = reproduce.reproduce(only=["syn-random"], out_dir=out, tracking_uri=uri, progress=False, folds=[0],
                                only_methods=["drug-mean"])
    assert first[0]["jobs_finished"] == 2  # drug-mean honest + replication
    plan = reproduce.reproduce(only=["syn-controls"], out_dir=out, tracking_uri=uri, progress=False, folds=[0],
                               dry_run=True)
    assert [p.split(";")[0] for p in plan[0]["pending"]] == ["drug-mean[smoothing=50.0] test folds 0 (seed 0)"]
    # a variant does its method's work: estimated from the method's runs on the baseline board
    assert plan[0]["pending"][0].endswith("of job time (1 × 0 s)") and plan[0]["pending_estimates"][0][1] is not None
    got = reproduce.reproduce(only=["syn-controls"], out_dir=out, tracking_uri=uri, progress=False, folds=[0])
    # the defaults are the baseline board's runs (not run again); only the variant runs
    assert got[0]["jobs_finished"] == 1 and got[0]["jobs_skipped"] == 2
    csv = pd.read_csv(out / "syn-controls.csv")
    fin = csv[csv["status"] == "finished"]
    assert sorted(zip(fin["method"], fin["selection"])) == sorted(
        [("drug-mean", "validation"), ("drug-mean", "test"), ("drug-mean[smoothing=50.0]", "test")])
    assert set(csv["method"]) == set(fin["method"])  # no "not run" rows for the methods of other boards
    assert "drug-mean[smoothing=50.0]" in (out / "syn-controls.md").read_text()
    assert "Partial table" not in (out / "syn-controls.md").read_text()
    # the baseline board, rebuilt from the same store, does not take the variant's runs as rows of its own
    reproduce.reproduce(only=["syn-random"], out_dir=out, tracking_uri=uri, progress=False, folds=[0],
                        write_only=True)
    base = pd.read_csv(out / "syn-random.csv")
    assert not base["method"].str.contains("[", regex=False).any()
    # a fresh store: nothing is recomputed, the board stays as it was
    md = (out / "syn-controls.md").read_text()
    again = reproduce.reproduce(only=["syn-controls"], out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/b.db",
                                progress=False, folds=[0])
    assert again[0]["jobs_finished"] == 0 and (out / "syn-controls.md").read_text() == md


def test_a_control_board_reads_the_baselines_per_entity_records_of_the_runs_it_borrows(tmp_path, monkeypatch):
    """The defaults shown on a control board are the baseline board's runs: their per-entity records stay in the
    baseline's file only (one copy), and every reader of the control board gets them from there, also when the
    control board is built from another store or from the store that holds them."""
    _syn_boards(monkeypatch)
    out = tmp_path / "lb"
    reproduce.reproduce(only=["syn-random"], out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False,
                        folds=[0], only_methods=["drug-mean"])
    base = pd.read_csv(out / "syn-random-entities.csv", dtype={"entity": str})
    borrowed = set(base.loc[base["method"] == "drug-mean", "job_key"])
    assert len(borrowed) == 2  # honest + replication
    for store in ("b.db", "a.db"):  # a fresh store; the store that holds the borrowed runs and their records
        got = reproduce.reproduce(only=["syn-controls"], out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/{store}",
                                  progress=False, folds=[0])
        assert got[0]["jobs_failed"] == 0
        own = pd.read_csv(out / "syn-controls-entities.csv", dtype={"entity": str})
        assert set(own["method"]) == {"drug-mean[smoothing=50.0]"} and not borrowed & set(own["job_key"])
        ent = leaderboard.read_entities(out / "syn-controls.csv", boards.baseline_csv("syn-controls", out))
        kept = ent[ent["job_key"].isin(borrowed)].sort_values(["job_key", "entity"]).reset_index(drop=True)
        same = base[base["job_key"].isin(borrowed)].sort_values(["job_key", "entity"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(kept[same.columns], same, check_dtype=False)
        assert len(ent) == len(own) + len(same)
        assert ("`syn-controls-entities.csv` (its borrowed runs': `syn-random-entities.csv`), for every run"
                in (out / "syn-controls.md").read_text())
    assert leaderboard.entity_job_keys(out / "syn-controls.csv") == set(own["job_key"])
    assert leaderboard.entity_job_keys(out / "syn-controls.csv", out / "syn-random.csv") == set(ent["job_key"])
    # drbench compare on the committed files pairs a default row (borrowed) with its variant entity by entity
    from drbench.cli import main

    assert main(["compare", "drug-mean", "drug-mean[smoothing=50.0]", "--board", "syn-controls", "--boards-dir",
                 str(out), "--selection", "test"]) == 0
    # without the baseline's file, the borrowed runs are named as runs without records (not silently dropped)
    (out / "syn-random-entities.csv").unlink()
    reproduce.reproduce(only=["syn-controls"], out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/b.db",
                        progress=False, folds=[0], write_only=True)
    note = next(x for x in (out / "syn-controls.md").read_text().splitlines() if x.startswith("Per-entity records"))
    assert note.endswith(("runs without them (method: number of runs): drug-mean‡ (1), drug-mean (1).",
                          "runs without them (method: number of runs): drug-mean (1), drug-mean‡ (1)."))


def test_a_variant_short_of_folds_keeps_its_board_partial(tmp_path, monkeypatch):
    _, controls = _syn_boards(monkeypatch)
    rows = [{"method": m, "status": "finished", "selection": s, "seed": 0, "fold": f, "dataset": "synthetic",
             "protocol": "random"} for m, s, folds in (("drug-mean", "validation", (0, 1)), ("drug-mean", "test", (0, 1)),
                                                       ("drug-mean[smoothing=50.0]", "test", (0,)))
            for f in folds]
    pd.DataFrame(rows).reindex(columns=CSV_COLUMNS).to_csv(tmp_path / "c.csv", index=False)
    assert board_progress(tmp_path / "c.csv", controls.replication, controls.variants)[1] == [
        "drug-mean[smoothing=50.0] ‡ (1 of 2 done)"]
    assert board_progress(tmp_path / "c.csv", controls.replication)[1] == []


# ---------------------------------------------------------------------------------------------- paper.md section
DEFAULT = np.array([0.80, 0.81, 0.79, 0.80, 0.805])
LONGER = DEFAULT + np.array([0.066, 0.069, 0.067, 0.070, 0.064])  # mean 0.8682: within ±0.01 of the paper's 0.8684
SHARPER = DEFAULT + np.array([0.002, -0.003, 0.001, -0.001, 0.0])  # no shift


def _write(path, parts):
    rows = [{"method": m, "status": "finished", "dataset": "gdsc", "protocol": "random", "selection": s, "seed": 0,
             "fold": i, "auc": v, "auprc": v} for m, s, vals in parts for i, v in enumerate(vals)]
    pd.DataFrame(rows).reindex(columns=CSV_COLUMNS).to_csv(path, index=False)


def _paper_boards(monkeypatch, variants):
    monkeypatch.setattr(boards, "BOARDS", [Board("gdsc-controls", "gdsc", "random", methods=["mofgcn"],
                                                 replication=["mofgcn"], baseline="gdsc-random", variants=variants)])


def test_the_controls_section_pairs_each_variant_with_the_default_on_the_same_folds(tmp_path, monkeypatch):
    longer = Variant("mofgcn", {"window": 1000}, tests="the stopping rule")
    sharper = Variant("mofgcn", {"sigma": 1.5}, tests="the kernel width")
    _paper_boards(monkeypatch, [longer, sharper])
    _write(tmp_path / "gdsc-random.csv", [("mofgcn", "test", DEFAULT), ("mofgcn", "validation", DEFAULT)])
    # the sharper variant has four folds only: the default is averaged over those four
    _write(tmp_path / "gdsc-controls.csv", [("mofgcn", "test", DEFAULT), (longer.row, "test", LONGER),
                                            (sharper.row, "test", SHARPER[:4])])
    rows = paper.control_rows(tmp_path)
    auc = rows[rows["metric"] == "AUC"].set_index("row")
    r = auc.loc["mofgcn[window=1000]"]
    ct = corrected_t(LONGER - DEFAULT, kfold_ratio(5))
    assert r["n"] == 5 and r["delta"] == pytest.approx(ct.mean) and r["low"] == pytest.approx(ct.low)
    assert r["paper"] == pytest.approx(0.8684) and r["closes"]
    s = auc.loc["mofgcn[sigma=1.5]"]
    assert s["n"] == 4 and s["default"] == pytest.approx(DEFAULT[:4].mean()) and not s["closes"]
    md = paper.render(tmp_path)
    assert "## Controlled runs: MOFGCN\n" in md  # the heading names the methods with variants
    assert "`--methods mofgcn --set mofgcn.window=1000 --select test`" in md
    assert "`drbench reproduce --only gdsc-controls`" in md
    cause = paper.compare_rows(tmp_path).set_index(["dataset", "method", "metric", "table"]).loc[
        ("GDSC", "MOFGCN", "AUC", 3), "cause"]
    assert "the stopping rule: the controlled run mofgcn[window=1000] ‡ reaches 0.868" in cause
    assert "unexplained" not in cause


def test_without_a_closing_variant_the_gap_stays_unexplained_with_what_was_ruled_out(tmp_path, monkeypatch):
    sharper = Variant("mofgcn", {"sigma": 1.5}, tests="the kernel width")
    _paper_boards(monkeypatch, [sharper])
    _write(tmp_path / "gdsc-random.csv", [("mofgcn", "test", DEFAULT), ("mofgcn", "validation", DEFAULT)])
    _write(tmp_path / "gdsc-controls.csv", [("mofgcn", "test", DEFAULT), (sharper.row, "test", SHARPER)])
    cause = paper.compare_rows(tmp_path).set_index(["dataset", "method", "metric", "table"]).loc[
        ("GDSC", "MOFGCN", "AUC", 3), "cause"]
    assert "remaining gap -0.067 unexplained (not closed by the controlled runs" in cause
    assert "mofgcn[sigma=1.5] ‡ Δ +0.000 [-0.004, +0.003], no shift the 95% CI tells from 0)" in cause
    assert ("- **mofgcn, GDSC, Test 1 random** (paper 0.8684): Not closed by: the kernel width (mofgcn[sigma=1.5] ‡: "
            "no shift") in paper.render(tmp_path)
    # a method without controls keeps the plain wording
    assert paper.control_cause("gdsc", "Test 1 random", "deepdsc", "AUC", paper.control_rows(tmp_path)) is None


def test_a_variant_within_the_rope_of_the_paper_but_with_a_shift_inside_its_uncertainty_is_not_credited(
        tmp_path, monkeypatch):
    """A gap is attributed to a variant only when the 95% CI of its shift from the default excludes 0."""
    noisy = Variant("mofgcn", {"sigma": 1.5}, tests="the kernel width")
    _paper_boards(monkeypatch, [noisy])
    near = DEFAULT + 0.0668 + np.array([0.25, -0.25, 0.2, -0.2, 0.0])  # mean 0.8682, differences all over the place
    _write(tmp_path / "gdsc-random.csv", [("mofgcn", "test", DEFAULT), ("mofgcn", "validation", DEFAULT)])
    _write(tmp_path / "gdsc-controls.csv", [("mofgcn", "test", DEFAULT), (noisy.row, "test", near)])
    r = paper.control_rows(tmp_path).set_index("metric").loc["AUC"]
    assert r["reaches"] and r["low"] < 0 < r["high"] and not r["closes"]
    cause = paper.compare_rows(tmp_path).set_index(["dataset", "method", "metric", "table"]).loc[
        ("GDSC", "MOFGCN", "AUC", 3), "cause"]
    assert "remaining gap -0.067 unexplained (not closed by the controlled runs" in cause
    assert "lands within ±0.01 of the paper (-0.067 → -0.001), but its shift is not told from 0" in cause
    assert "| GDSC | Test 1 random | mofgcn[sigma=1.5] ‡ | 5 |" in paper.render(tmp_path)


def test_a_test_2_control_pairs_per_entity_values_and_the_paper_number_of_that_test(tmp_path, monkeypatch):
    """A control board on new-drug compares its variant with the default on the per-drug headline (auc_entity) and
    with the paper's Test 2 new-drug number; the Test 1 cell of the same method is not touched."""
    variant = Variant("srmf", {"lambda_d": 0.0}, "validation", tests="no drug similarity")
    monkeypatch.setattr(boards, "BOARDS", [Board("ccle-new-drug-controls", "ccle", "new-drug", methods=["srmf"],
                                                 replication=[], baseline="ccle-new-drug", variants=[variant])])
    default, flat = DEFAULT - 0.18, np.full(5, 0.5)  # per-drug AUC around 0.62 and a constant score's 0.5
    rows = [{"method": m, "status": "finished", "dataset": "ccle", "protocol": "new-drug", "selection": "validation",
             "seed": 0, "fold": i, "auc": 0.9, "auprc": 0.9, "auc_entity": v, "auprc_entity": v}
            for m, vals in (("srmf", default), (variant.row, flat)) for i, v in enumerate(vals)]
    pd.DataFrame(rows).reindex(columns=CSV_COLUMNS).to_csv(tmp_path / "ccle-new-drug-controls.csv", index=False)
    pd.DataFrame(rows[:5]).reindex(columns=CSV_COLUMNS).to_csv(tmp_path / "ccle-new-drug.csv", index=False)
    got = paper.control_rows(tmp_path).set_index("metric")
    assert got.loc["AUC", "test"] == "Test 2 new drug" and got.loc["AUC", "paper"] == pytest.approx(0.4873)
    assert got.loc["AUC", "variant"] == pytest.approx(0.5) and got.loc["AUC", "default"] == pytest.approx(
        default.mean())  # the per-entity column, not the pooled 0.9
    assert not got.loc["AUC", "closes"]  # 0.500 is 0.013 from 0.4873
    cells = paper.compare_rows(tmp_path).set_index(["dataset", "test", "method", "metric"])
    cause = cells.loc[("CCLE", "Test 2 new drug", "SRMF", "AUC"), "cause"]
    assert f"srmf[lambda_d=0.0] honest Δ {0.5 - default.mean():+.3f}" in cause and "moves it toward the paper" in cause
    assert paper.control_cause("ccle", "Test 1 random", "srmf", "AUC", paper.control_rows(tmp_path)) is None
    assert "| CCLE | Test 2 new drug | srmf[lambda_d=0.0] honest | 5 |" in paper.render(tmp_path)
