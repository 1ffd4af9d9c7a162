"""drbench reproduce: boards are written from runs, and committed CSV rows are never recomputed."""

from __future__ import annotations

import json
import os

import pandas as pd
from boardcsv import write_board_csv

from drbench import board_files, boards, reproduce
from drbench.boards import Board
from drbench.execution import cpu_model


def test_board_resumes_from_its_published_csv(tmp_path, monkeypatch):
    board = Board("syn-random", "synthetic", "random", methods=["mean-effects", "drug-mean"],
                  replication=["drug-mean"], title="synthetic test 1", note="A note.")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    first = reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False, folds=[0, 1])
    assert first[0]["jobs_finished"] == 6  # 2 methods × 2 folds honest + 1 method × 2 folds replication
    md = (out / "syn-random.md").read_text()
    assert "> A note." in md and "drug-mean‡" in md
    csv = pd.read_csv(out / "syn-random.csv")
    assert csv["job_key"].notna().sum() == 6
    # a fresh store (another machine): the published rows are not recomputed and stay in the table
    again = reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/b.db", progress=False, folds=[0, 1])
    assert again[0]["jobs_finished"] == 0 and again[0]["jobs_skipped"] == 6
    assert (out / "syn-random.md").read_text() == md
    index = (out / "README.md").read_text()
    assert "`drbench reproduce --only syn-random`" in index and "complete" in index
    runtime = (out / "runtime.md").read_text()
    # each run records where and how it ran; runtime.md names that machine and the jobs' threads
    assert f"Machine recorded with the runs: {cpu_model()}, {os.cpu_count()} CPUs." in runtime
    assert (csv["threads"] >= 1).all() and csv["load_start"].notna().all()
    assert "| threads | load |" in runtime
    # the index names the code that made the runs, not the code that last rewrote the files
    csv.assign(code_version="0.0.1+gold").to_csv(out / "syn-random.csv", index=False)
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/c.db", progress=False, folds=[0, 1],
                        write_only=True)
    assert "| complete: 6 runs | 0.0.1+gold |" in (out / "README.md").read_text()


def test_case_study_board_lists_top_cell_lines(tmp_path, monkeypatch):
    board = Board("syn-case", "synthetic", "case-study", methods=["mean-effects"], replication=[],
                  title="synthetic case study")
    monkeypatch.setattr(boards, "BOARDS", [board])
    monkeypatch.setattr(board_files, "CASE_DRUGS", ["drug003"])
    out = tmp_path / "lb"
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/c.db", progress=False)
    md = (out / "syn-case.md").read_text()
    assert "## mean-effects: drug003 (named in the paper" in md
    top = pd.read_csv(out / "syn-case.csv")
    counts = top.groupby("drug_name")["unmeasured_pairs"].first()
    top5 = sorted(counts.index, key=lambda d: (-counts[d], d))[:5]
    assert md.count("| 10 |") == len({"drug003", *top5})  # the named drug + the five with most unmeasured pairs
    assert (top.groupby("drug_id")["rank"].max() == 10).all()
    # each ranked cell line is shown by name beside its id (the names come from the dataset)
    first = top[top["drug_name"] == "drug003"].sort_values("rank").iloc[0]
    assert first["cell_name"] == f"cl-line-{int(first['cell_id'][2:])}"
    assert f"| 1 | {first['cell_name']} | {first['cell_id']} |" in md
    # the index gives the case study's recorded job time, from the run seconds its CSV keeps
    assert (top["job_seconds"] > 0).all()
    row = next(line for line in (out / "README.md").read_text().splitlines() if line.startswith("| [syn-case.md]"))
    assert row.split(" | ")[3] != "—"
    # the run artifacts read to build it are not left beside the published files
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_case_study_csv_without_names_gets_them_and_is_not_rerun(tmp_path, monkeypatch):
    """A ranking recorded before names were kept: reproduce adds the names from the dataset, runs nothing."""
    board = Board("syn-case", "synthetic", "case-study", methods=["mean-effects"], replication=[],
                  title="synthetic case study")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    out.mkdir()
    rows = [dict(method="mean-effects", seed=0, drug_id="D001", drug_name="drug001", rank=r, cell_id=f"CL{r:04d}",
                 score=1 - r / 100, unmeasured_pairs=12, selection="validation", run_id="x", code_version="v")
            for r in range(1, 11)]
    pd.DataFrame(rows).to_csv(out / "syn-case.csv", index=False)
    summary = reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/d.db", progress=False)
    assert summary[0]["jobs_finished"] == 0  # the CSV already ranks mean-effects for seed 0
    top = pd.read_csv(out / "syn-case.csv", dtype={"cell_id": str})
    assert list(top.columns[:7]) == ["method", "seed", "drug_id", "drug_name", "rank", "cell_id", "cell_name"]
    assert top["cell_name"].tolist() == [f"cl-line-{r}" for r in range(1, 11)]
    md = (out / "syn-case.md").read_text()
    assert "| 3 | cl-line-3 | CL0003 | 0.9700 |" in md
    # the CSV alone now renders the same board
    assert board_files.render_case_study(out / "syn-case.csv", board.title) == md


def test_case_study_run_from_a_fresh_store_keeps_the_committed_rankings_of_other_methods(tmp_path, monkeypatch):
    board = Board("syn-case", "synthetic", "case-study", methods=["mean-effects", "drug-mean"], replication=[],
                  title="synthetic case study")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/e.db", progress=False,
                        only_methods=["mean-effects"])
    first = pd.read_csv(out / "syn-case.csv", dtype={"cell_id": str})
    assert set(first["method"]) == {"mean-effects"}
    # another machine, a fresh store: only drug-mean runs, and mean-effects' committed ranking is kept as it was
    summary = reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/f.db", progress=False)
    assert summary[0]["jobs_finished"] == 1
    both = pd.read_csv(out / "syn-case.csv", dtype={"cell_id": str})
    assert set(both["method"]) == {"mean-effects", "drug-mean"}
    pd.testing.assert_frame_equal(both[both["method"] == "mean-effects"].reset_index(drop=True), first)
    md = (out / "syn-case.md").read_text()
    assert "## mean-effects: " in md and "## drug-mean: " in md
    # rerunning a method from its store replaces its rows rather than adding a second copy
    board_files.write_case_study(board, out / "syn-case.md", f"sqlite:///{tmp_path}/f.db")
    again = pd.read_csv(out / "syn-case.csv", dtype={"cell_id": str})
    assert len(again) == len(both)


def test_case_study_named_drug_among_the_top_five_is_not_replaced_by_the_sixth(tmp_path, monkeypatch):
    monkeypatch.setattr(board_files, "CASE_DRUGS", ["Named", "Absent"])
    pairs = {"A": 607, "B": 599, "C": 578, "Named": 576, "E": 575, "F": 575, "G": 300}
    rows = [dict(method="m", seed=0, drug_id=i, drug_name=d, rank=r, cell_id=100 + r, score=1 - r / 100,
                 unmeasured_pairs=n, selection="validation", run_id="x", code_version="v")
            for i, (d, n) in enumerate(pairs.items()) for r in range(1, 11)]
    csv = tmp_path / "case.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    md = board_files.render_case_study(csv, "t")
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert [h.split(": ")[1].split(" (")[0] for h in heads] == ["Named", "A", "B", "C", "E"]
    assert "(named in the paper; among the five drugs with most unmeasured pairs; 576 unmeasured pairs)" in heads[0]
    assert "## m: F " not in md and "## m: G " not in md  # F ties E at 575 but loses on name; G is sixth+
    assert "also at 575 unmeasured pairs: F (in the CSV)" in md


def test_only_methods_runs_a_subset_and_the_table_still_lists_the_rest(tmp_path, monkeypatch):
    board = Board("syn-random", "synthetic", "random", methods=["mean-effects", "drug-mean"],
                  replication=["drug-mean"], title="synthetic test 1")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    first = reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False, folds=[0],
                                only_methods=["drug-mean"])
    assert first[0]["jobs_finished"] == 2  # drug-mean honest + replication, one fold; mean-effects not run
    csv = pd.read_csv(out / "syn-random.csv")
    assert set(csv.loc[csv["status"] == "finished", "method"]) == {"drug-mean"}
    assert "mean-effects" in set(csv.loc[csv["status"] == "not run", "method"])
    index = (out / "README.md").read_text()
    assert "partial: 2 runs; not run: mean-effects" in index
    assert "**Partial table:** 2 fold runs recorded so far; not run yet: mean-effects." in (out / "syn-random.md").read_text()
    # a method with fewer folds than the others keeps the board partial
    more = reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False, folds=[0, 1],
                               only_methods=["drug-mean"])
    assert more[0]["jobs_finished"] == 2
    assert "not run: mean-effects" in (out / "README.md").read_text()
    # the other method later: only its jobs run
    second = reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False, folds=[0],
                                 only_methods=["mean-effects"])
    assert second[0]["jobs_finished"] == 1
    index = (out / "README.md").read_text()
    assert "not run: mean-effects (1 of 2 done)" in index and "complete" not in index
    assert "not run yet: mean-effects (1 of 2 done)." in (out / "syn-random.md").read_text()


def test_write_only_regenerates_the_board_from_its_csv_without_running(tmp_path, monkeypatch):
    board = Board("syn-random", "synthetic", "random", methods=["mean-effects", "drug-mean"],
                  replication=[], title="synthetic test 1", note="A note.")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False, folds=[0])
    md = (out / "syn-random.md").read_text()
    assert "Partial table" not in md
    (out / "syn-random.md").unlink()
    timed = json.loads((out / "boards.json").read_text())["syn-random"]["sweep_seconds_total"]
    again = reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/empty.db", progress=False,
                                folds=[0, 1], write_only=True)
    assert again[0]["jobs_finished"] == 0 and again[0]["jobs_skipped"] == 0  # fold 1 is not run either
    assert (out / "syn-random.md").read_text() == md
    # rewriting the board ran no job, so it adds no job time to the index
    assert json.loads((out / "boards.json").read_text())["syn-random"]["sweep_seconds_total"] == timed


def test_dry_run_lists_what_is_left_and_runs_nothing(tmp_path, monkeypatch):
    board = Board("syn-random", "synthetic", "random", methods=["mean-effects", "drug-mean"],
                  replication=["drug-mean"], title="synthetic test 1")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    uri = f"sqlite:///{tmp_path}/a.db"
    reproduce.reproduce(out_dir=out, tracking_uri=uri, progress=False, folds=[0], only_methods=["mean-effects"])
    before = (out / "syn-random.csv").read_text()
    plan = reproduce.reproduce(out_dir=out, tracking_uri=uri, progress=False, dry_run=True)
    assert plan[0]["jobs_finished"] == 0 and plan[0]["jobs_skipped"] == 1  # mean-effects fold 0 is done
    assert plan[0]["pending"] == ["mean-effects validation folds 1,2,3,4 (seed 0); ~<1 s of job time (4 × 0 s)",
                                  "drug-mean validation folds 0,1,2,3,4 (seed 0); no recorded run of it on a synthetic "
                                  "board to estimate from",
                                  "drug-mean test folds 0,1,2,3,4 (seed 0); no recorded run of it on a synthetic board "
                                  "to estimate from"]
    estimates = [t for _, t in plan[0]["pending_estimates"]]
    assert estimates[1:] == [None, None] and estimates[0] < 1
    assert (out / "syn-random.csv").read_text() == before  # nothing ran, nothing was rewritten
    # the estimate is the method's median recorded job seconds on the board times its pending jobs
    df = pd.read_csv(out / "syn-random.csv")
    df.loc[df["method"] == "mean-effects", ["fit_seconds", "predict_seconds"]] = [600.0, 30.0]
    df.to_csv(out / "syn-random.csv", index=False)
    plan = reproduce.reproduce(out_dir=out, tracking_uri=uri, progress=False, dry_run=True)
    assert plan[0]["pending"][0] == "mean-effects validation folds 1,2,3,4 (seed 0); ~42 min of job time (4 × 630 s)"
    assert plan[0]["pending_estimates"][0][1] == 4 * 630


def test_dry_run_estimates_a_method_new_to_a_board_from_its_runs_on_another_board_of_the_dataset(tmp_path,
                                                                                               monkeypatch):
    grouped = Board("syn-new-drug", "synthetic", "new-drug", methods=["drug-mean"], replication=[], title="grouped")
    per_target = Board("syn-new-drug-per-target", "synthetic", "new-drug", methods=["drug-mean", "mean-effects"],
                       replication=[], options={"per_target": True}, title="per target")
    random = Board("syn-random", "synthetic", "random", methods=["mean-effects"], replication=[], title="random")
    monkeypatch.setattr(boards, "BOARDS", [grouped, per_target, random])
    out, uri = tmp_path / "lb", f"sqlite:///{tmp_path}/a.db"
    reproduce.reproduce(only=["syn-new-drug", "syn-random"], out_dir=out, tracking_uri=uri, progress=False,
                        folds=[0])
    for name, method, seconds in (("syn-new-drug", "drug-mean", 100.0), ("syn-random", "mean-effects", 7.0)):
        df = pd.read_csv(out / f"{name}.csv")
        df.loc[df["method"] == method, ["fit_seconds", "predict_seconds"]] = [seconds, 0.0]
        df.to_csv(out / f"{name}.csv", index=False)
    plan = reproduce.reproduce(only=["syn-new-drug-per-target"], out_dir=out, tracking_uri=uri, progress=False,
                               folds=[0, 1], dry_run=True)
    # the same protocol's board first; else any board of the dataset; named, since the data sizes differ
    assert plan[0]["pending"] == [
        "drug-mean validation folds 0,1 (seed 0); ~3 min of job time (2 × 100 s, from its runs on syn-new-drug)",
        "mean-effects validation folds 0,1 (seed 0); ~14 s of job time (2 × 7 s, from its runs on syn-random)"]
    assert [t for _, t in plan[0]["pending_estimates"]] == [200.0, 14.0]


def test_missing_replication_runs_keep_a_board_partial(tmp_path, monkeypatch):
    board = Board("syn-random", "synthetic", "random", methods=["mean-effects", "drug-mean"],
                  replication=["drug-mean"], title="synthetic test 1")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False, folds=[0, 1])
    assert "complete: 6 runs" in (out / "README.md").read_text()
    csv = pd.read_csv(out / "syn-random.csv")
    replication = csv["selection"] == "test"
    # one replication fold not recorded (yet): the honest rows are all there, the board is still partial
    csv[~(replication & (csv["fold"] == 1))].to_csv(out / "syn-random.csv", index=False)
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/empty.db", progress=False, folds=[0, 1],
                        write_only=True)
    assert "| partial: 5 runs; not run: drug-mean ‡ (1 of 2 done) |" in (out / "README.md").read_text()
    note = (out / "syn-random.md").read_text()
    assert "not run yet: drug-mean ‡ (1 of 2 done) (‡: its replication runs, `--select test`)." in note
    # no replication run at all
    csv[~replication].to_csv(out / "syn-random.csv", index=False)
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/empty.db", progress=False, folds=[0, 1],
                        write_only=True)
    assert "| partial: 4 runs; not run: drug-mean ‡ |" in (out / "README.md").read_text()
    # a method the protocol does not support is not asked for replication runs
    unsupported = csv[~replication & (csv["method"] == "mean-effects")]
    unsupported.assign(status="not supported").to_csv(out / "syn-random.csv", index=False)
    assert boards.board_progress(out / "syn-random.csv", ["mean-effects"])[1] == []


def test_a_board_grown_across_stores_writes_one_spelling_per_value(tmp_path, monkeypatch):
    board = Board("syn-random", "synthetic", "random", methods=["mean-effects", "drug-mean"], replication=[],
                  title="synthetic test 1")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False, folds=[0],
                        only_methods=["drug-mean"])  # mean-effects: a "not run" row with blank seed and fold
    # another machine's store adds fold 1; fold 0 comes from the CSV (read back as floats before)
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/b.db", progress=False, folds=[0, 1],
                        only_methods=["drug-mean"])
    raw = pd.read_csv(out / "syn-random.csv", dtype=str)
    done = raw[raw["status"] == "finished"]
    assert sorted(done["fold"]) == ["0", "1"] and set(done["seed"]) == {"0"}
    assert set(done["n_test"].str.isdigit()) == {True} and set(raw["transductive"]) <= {"true", "false"}
    before = (out / "syn-random.csv").read_text()
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/c.db", progress=False, folds=[0, 1],
                        write_only=True)
    assert (out / "syn-random.csv").read_text() == before  # a rewrite from the CSV alone changes nothing


def test_dry_run_total_counts_runs_shared_by_two_boards_once(tmp_path, monkeypatch, capsys):
    from drbench.cli import main

    two_boards = [Board(n, "synthetic", "random", methods=["mean-effects"], replication=[], title=n)
              for n in ("syn-a", "syn-b")]  # two tables over the same runs, as gdsc-random and gdsc-ablation
    monkeypatch.setattr(boards, "BOARDS", two_boards)
    out = tmp_path / "lb"
    uri = f"sqlite:///{tmp_path}/a.db"
    reproduce.reproduce(out_dir=out, tracking_uri=uri, progress=False, folds=[0])
    for b in ("syn-a", "syn-b"):
        df = pd.read_csv(out / f"{b}.csv")
        df.loc[df["method"] == "mean-effects", ["fit_seconds", "predict_seconds"]] = [100.0, 20.0]
        df.to_csv(out / f"{b}.csv", index=False)
    capsys.readouterr()
    assert main(["reproduce", "--dry-run", "--out-dir", str(out), "--tracking-uri", uri, "-q"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("mean-effects validation folds 1,2,3,4 (seed 0); ~8 min of job time (4 × 120 s)") == 2
    assert "estimated job time still to run: 8 min (" in printed  # not 16


def test_reproduce_parses_each_dataset_once_across_boards_and_sweeps(tmp_path, monkeypatch):
    import dataclasses

    import drbench.datasets as datasets

    loads = []
    info = datasets.DATASETS["synthetic"]

    def counting_loader(*a, **k):
        loads.append(1)
        return info.loader(*a, **k)

    monkeypatch.setitem(datasets.DATASETS, "synthetic", dataclasses.replace(info, loader=counting_loader))
    two_boards = [Board(n, "synthetic", "random", methods=["mean-effects", "drug-mean"], replication=["drug-mean"],
                        title=n) for n in ("syn-a", "syn-b")]  # 2 boards × (honest + replication sweep)
    monkeypatch.setattr(boards, "BOARDS", two_boards)
    plan = reproduce.reproduce(out_dir=tmp_path / "lb", tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False,
                               dry_run=True)
    assert [len(p["pending"]) for p in plan] == [3, 3]
    assert len(loads) == 1
    # outside reproduce every load reads the data again (no process-wide cache of stale files)
    first, second = datasets.load_dataset("synthetic"), datasets.load_dataset("synthetic")
    assert first is not second and len(loads) == 3
    with datasets.reuse_loaded_datasets():
        a = datasets.load_dataset("synthetic")
        with datasets.reuse_loaded_datasets():
            assert datasets.load_dataset("synthetic") is a
    assert datasets.load_dataset("synthetic") is not a


def test_the_estimate_of_what_is_left_uses_the_runs_of_the_device_it_will_run_on(tmp_path):
    """A CPU sweep is estimated from a method's CPU runs, a --device cuda sweep from its GPU runs; a method with runs
    on one kind only is estimated from those."""
    from drbench.reproduce import _median_job_seconds

    run = lambda m, fit, dev: {"method": m, "status": "finished", "dataset": "gdsc", "protocol": "random",  # noqa: E731
                               "selection": "validation", "fit_seconds": fit, "predict_seconds": 0.0, "device": dev}
    csv = write_board_csv(tmp_path / "b.csv", [run("mtigcn", 2000.0, "cpu"), run("mtigcn", 2200.0, None),
                                               run("mtigcn", 80.0, "cuda"), run("mtigcn", 70.0, "cuda:0"),
                                               run("srmf", 6.0, "cpu")])
    assert _median_job_seconds(csv) == {"mtigcn": 2100.0, "srmf": 6.0}
    assert _median_job_seconds(csv, "cuda") == {"mtigcn": 75.0, "srmf": 6.0}


def test_a_sweep_that_cannot_be_planned_is_reported_not_counted_as_nothing_to_run(tmp_path, monkeypatch, capsys):
    from drbench.cli import main

    board = Board("syn-random", "synthetic", "random", methods=["mean-effects"], replication=[], title="synthetic")
    monkeypatch.setattr(boards, "BOARDS", [board])
    argv = ["reproduce", "--folds", "7", "--out-dir", str(tmp_path / "lb"), "--tracking-uri",
            f"sqlite:///{tmp_path}/a.db", "-q"]
    assert main(argv + ["--dry-run"]) == 2  # bad input, nothing ran
    out = capsys.readouterr().out
    assert "could not plan validation: --folds [7] out of range: protocol random made 5 folds (0..4)" in out
    assert main(argv) == 1  # the board is still written; the status says a sweep did not run
    assert "not run: validation: --folds [7] out of range" in capsys.readouterr().out


def test_reproduce_threads_sets_the_torch_threads_of_every_job(tmp_path, monkeypatch):
    """`drbench reproduce --threads N`: N torch threads per job (the default, cores / jobs, oversubscribes cores
    shared with other work), recorded with each run."""
    from drbench.cli import main

    board = Board("syn-random", "synthetic", "random", methods=["mean-effects"], replication=[], title="synthetic")
    monkeypatch.setattr(boards, "BOARDS", [board])
    n = (os.cpu_count() or 1) + 1  # never the default, which is at most the cores
    out = tmp_path / "lb"
    assert main(["reproduce", "--only", "syn-random", "--folds", "0,1", "--threads", str(n), "--out-dir", str(out),
                 "--tracking-uri", f"sqlite:///{tmp_path}/a.db", "-q"]) == 0
    csv = pd.read_csv(out / "syn-random.csv")
    fin = csv[csv["status"] == "finished"]
    assert len(fin) == 2 and (fin["threads"] == n).all()


def test_published_runs_without_entity_records_are_rerun_only_when_asked(tmp_path, monkeypatch):
    """Runs recorded before per-entity records were kept: named on the board, skipped by default, and run again
    (their rows replaced, their records added) with rerun_without_records."""
    board = Board("syn-new-drug", "synthetic", "new-drug", methods=["mean-effects", "drug-mean"], replication=[],
                  title="synthetic test 2")
    monkeypatch.setattr(boards, "BOARDS", [board])
    out = tmp_path / "lb"
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/a.db", progress=False, folds=[0])
    ent = out / "syn-new-drug-entities.csv"
    records = pd.read_csv(ent)
    assert set(records["method"]) == {"mean-effects", "drug-mean"}
    records[records["method"] != "drug-mean"].to_csv(ent, index=False)  # drug-mean's runs "predate" the records
    reproduce.reproduce(out_dir=out, tracking_uri=f"sqlite:///{tmp_path}/b.db", progress=False, folds=[0],
                        write_only=True)
    assert "runs without them (method: number of runs): drug-mean (1)" in (out / "syn-new-drug.md").read_text()
    fresh = f"sqlite:///{tmp_path}/c.db"  # another machine: the published rows count as done
    plain = reproduce.reproduce(out_dir=out, tracking_uri=fresh, progress=False, folds=[0], dry_run=True)
    assert plain[0]["pending"] == []
    plan = reproduce.reproduce(out_dir=out, tracking_uri=fresh, progress=False, folds=[0], dry_run=True,
                               rerun_without_records=True)
    assert [p.split(";")[0] for p in plan[0]["pending"]] == ["drug-mean validation folds 0 (seed 0)"]
    done = reproduce.reproduce(out_dir=out, tracking_uri=fresh, progress=False, folds=[0],
                               rerun_without_records=True)
    assert done[0]["jobs_finished"] == 1 and done[0]["jobs_skipped"] == 1
    assert "for every run" in (out / "syn-new-drug.md").read_text()
    assert len(pd.read_csv(out / "syn-new-drug.csv")) == 2  # replaced, not added
    assert set(pd.read_csv(ent)["method"]) == {"mean-effects", "drug-mean"}
    again = reproduce.reproduce(out_dir=out, tracking_uri=fresh, progress=False, folds=[0],
                                rerun_without_records=True)
    assert again[0]["jobs_finished"] == 0  # nothing lacks them now
    # a rerun that reached the store but not the board (say the driver was stopped before writing it) is not run
    # a third time: the store's run holds the records, and the board takes them from there
    pd.DataFrame(records[records["method"] != "drug-mean"]).to_csv(ent, index=False)
    interrupted = reproduce.reproduce(out_dir=out, tracking_uri=fresh, progress=False, folds=[0],
                                      rerun_without_records=True)
    assert interrupted[0]["jobs_finished"] == 0
    assert set(pd.read_csv(ent)["method"]) == {"mean-effects", "drug-mean"}
