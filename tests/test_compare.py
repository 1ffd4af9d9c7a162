"""Board verdicts and ``drbench compare``, from small per-fold CSVs written in tmp_path (no MLflow store)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from drbench import leaderboard
from drbench.cli import main

from boardcsv import write_board_csv

#: planted per-fold AUC offsets: "strong" is far above the naive baselines, "twin" sits within 0.001 of it
PLANTED = {"strong": 0.85, "twin": 0.8505, "weak": 0.70, "mean-effects": 0.75, "cell-mean": 0.74}


def board_csv(path, planted=PLANTED, folds=5, seeds=(0,), mask_of=lambda m, s, f: f"mask-{s}-{f}"):
    """A per-fold board CSV: each method's fold AUC = its planted level + a fold effect shared by all methods
    (folds share data) + a little method noise."""
    rng = np.random.default_rng(0)
    rows = []
    for s in seeds:
        fold_effect = rng.normal(0, 0.01, folds)
        for m, level in planted.items():
            for f in range(folds):
                auc = level + fold_effect[f] + rng.normal(0, 0.0005)
                rows.append({"method": m, "status": "finished", "dataset": "synthetic", "protocol": "random",
                             "paper_test": "Test 1", "selection": "validation", "seed": s, "fold": f,
                             "headline": "pooled", "transductive": "false", "tasks": "classification",
                             "auc": auc, "auprc": auc, "mask_sha256": mask_of(m, s, f), "job_key": f"{m}-{s}-{f}"})
    return write_board_csv(path, rows)


def _row(md, method):
    return next(line for line in md.splitlines() if line.startswith("| ") and f"| {method} |" in line)


def test_board_states_verdicts_and_generated_conclusions(tmp_path):
    csv = board_csv(tmp_path / "b.csv")
    md = leaderboard.build(from_csv=str(csv))
    assert "vs best: ΔAUC [95% CI] verdict" in md and "vs mean-effects: ΔAUC [95% CI] verdict" in md
    assert "p vs best" not in md
    best = next(line for line in md.splitlines() if line.startswith("| 1 | ")).split(" | ")[1]
    other = {"strong": "twin", "twin": "strong"}[best]  # the two are within noise of each other
    assert _row(md, other).split(" | ")[4].endswith("equivalent")  # vs best
    for m in ("strong", "twin"):
        assert _row(md, m).split(" | ")[5].endswith("better")  # vs the strongest naive baseline
    assert all(c.endswith("worse") for c in _row(md, "weak").split(" | ")[4:6])  # vs best and vs the naive one
    concl = next(line for line in md.splitlines() if line.startswith("**Conclusions**"))
    assert "Bayesian correlated t-test" in concl and "ROPE ±0.01" in concl
    assert f"best by mean: {best}; practically equivalent to it: {other};" in concl
    assert "2 of 3 learned methods are shown better than it." in concl
    assert leaderboard.build(from_csv=str(csv)) == md  # deterministic: regenerates exactly from the CSV


def test_board_with_one_fold_is_undecided_with_n_shown(tmp_path):
    md = leaderboard.build(from_csv=str(board_csv(tmp_path / "b.csv", folds=1)))
    assert "undecided (n = 1)" in _row(md, "weak")
    assert "No learned method is shown better than it." in md


def test_one_split_per_seed_says_its_intervals_cover_training_variation_only(tmp_path, capsys):
    # a transfer board: one fixed train/test split, five seeds (only the validation split and initialisation differ)
    csv = board_csv(tmp_path / "syn.csv", folds=1, seeds=range(5))
    md = leaderboard.build(from_csv=str(csv))
    concl = next(line for line in md.splitlines() if line.startswith("**Conclusions**"))
    assert ("up to 5 paired folds, one train/test split per seed (n_test/n_train assumed 0.25): the test entries are "
            "the same in every seed, so the intervals cover training variation, not the sampling of the test set"
            in concl)
    assert "1/(k − 1)" not in concl
    assert "as on a transfer board, it is assumed 0.25 and the intervals cover training variation only" in md
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    assert "5 paired folds (one train/test split per seed (n_test/n_train assumed 0.25)" in capsys.readouterr().out


def test_compare_two_methods_prints_every_statistic(tmp_path, capsys):
    board_csv(tmp_path / "syn.csv", seeds=(0, 1))
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "10 paired folds (5 per seed, n_test/n_train taken as 1/(k − 1) = 0.25)" in out
    delta = float(re.search(r"corrected resampled t \(Nadeau–Bengio\): Δ = ([+-][0-9.]+)", out).group(1))
    assert delta == pytest.approx(0.15, abs=0.002)
    assert "-> better" in out and "strong is better than weak" in out
    assert "per-entity records missing" in out
    assert main(["compare", "strong", "twin", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    assert "practically equivalent" in capsys.readouterr().out
    # a wider ROPE makes strong and weak equivalent: the option is used
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path), "--rope", "0.5"]) == 0
    assert "-> equivalent" in capsys.readouterr().out


def test_compare_refuses_runs_on_different_folds(tmp_path, capsys):
    board_csv(tmp_path / "syn.csv", mask_of=lambda m, s, f: f"other-{f}" if m == "weak" and f == 3 else f"mask-{f}")
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("drbench: error:") and "not run on the same folds" in err and "(0, 3)" in err
    assert len(err.strip().splitlines()) == 1
    # a fold one method lacks is left out, and named, as the board's own tables pair them
    df = pd.read_csv(tmp_path / "syn.csv")
    df[~((df["method"] == "twin") & (df["fold"] == 4))].to_csv(tmp_path / "syn.csv", index=False)
    assert main(["compare", "strong", "twin", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 paired folds" in out and "compared on the 4 (seed, fold) both ran (strong also has seed 0 fold 4)" in out
    assert main(["compare", "strong", "--against-board", "--board", "syn", "--boards-dir", str(tmp_path)]) == 2
    assert "the masks of (seed, fold) [(0, 3)] differ" in capsys.readouterr().err  # weak's fold 3 is another cut


def test_compare_pairs_the_folds_both_ran_across_seeds(tmp_path, capsys):
    board_csv(tmp_path / "syn.csv", seeds=(0, 1))
    df = pd.read_csv(tmp_path / "syn.csv")
    gone = (df["method"] == "weak") & (((df["seed"] == 1) & (df["fold"] >= 3)))
    gone |= (df["method"] == "strong") & (df["seed"] == 0) & (df["fold"] == 0)
    df[~gone].to_csv(tmp_path / "syn.csv", index=False)
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "7 paired folds" in out
    assert "(strong also has seed 1 folds 3, 4; weak also has seed 0 fold 0)" in out
    assert main(["compare", "weak", "--against-board", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| strong |"))
    assert row.split(" | ")[1] == "7"


def test_compare_usage_errors(tmp_path, capsys):
    board_csv(tmp_path / "syn.csv")
    for argv, says in ((["strong", "nope"], "methods with such runs: cell-mean"),
                       (["strong", "weak", "--metric", "f1"], "unknown metric 'f1'"),
                       (["strong"], "--against-board"),
                       (["strong", "strong"], "A and B are both 'strong'"),
                       (["strong", "weak", "--cd-diagram", str(tmp_path / "cd.png")], "give it with --against-board"),
                       (["strong", "--against-board", "--cd-diagram", str(tmp_path / "cd.txt")],
                        "unknown picture format 'txt'; end the name with one of: "),
                       (["strong", "--against-board", "--cd-diagram", str(tmp_path / "syn.csv" / "cd.png")],
                        f"{tmp_path / 'syn.csv'} is a file, not a folder"),
                       (["strong", "weak"], None)):
        board = ["--board", "nosuch"] if says is None else ["--board", "syn"]
        assert main(["compare", *argv, *board, "--boards-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert (says or "boards in") in err and len(err.strip().splitlines()) == 1


def test_compare_against_board_with_friedman_and_cd_diagram(tmp_path, capsys):
    board_csv(tmp_path / "syn.csv")
    png = tmp_path / "new-folder" / "cd.png"  # its folder is made
    assert main(["compare", "weak", "--against-board", "--board", "syn", "--boards-dir", str(tmp_path),
                 "--cd-diagram", str(png)]) == 0
    out = capsys.readouterr().out
    for m in ("strong", "twin", "mean-effects", "cell-mean"):
        assert f"| {m} |" in out and "| worse |" in next(line for line in out.splitlines() if line.startswith(f"| {m} |"))
    assert "Friedman over 5 folds × seeds, 5 methods" in out and png.stat().st_size > 1000


def test_compare_uses_per_entity_records_when_present(tmp_path, capsys):
    board_csv(tmp_path / "syn.csv")
    rng = np.random.default_rng(1)
    rows = [{"method": m, "selection": "validation", "seed": 0, "fold": e % 5, "job_key": f"{m}-0-{e % 5}",
             "entity": f"d{e}", "n": 40,
             "positives": 20, "auc": base + rng.normal(0, 0.02), "auprc": np.nan, "pcc": np.nan, "scc": np.nan,
             "rmse": np.nan} for e in range(60) for m, base in (("strong", 0.8), ("weak", 0.7))]
    pd.DataFrame(rows).to_csv(tmp_path / "syn-entities.csv", index=False)
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "per-entity Wilcoxon" in x)
    assert "over 60 entities: median Δ = +0.1" in line
    # the per-entity test uses the records of the folds both ran only: without weak's fold 4, strong's is left out
    board = pd.read_csv(tmp_path / "syn.csv")
    board[~((board["method"] == "weak") & (board["fold"] == 4))].to_csv(tmp_path / "syn.csv", index=False)
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    assert "per-entity Wilcoxon over 48 entities" in capsys.readouterr().out
    board.to_csv(tmp_path / "syn.csv", index=False)
    # a method whose per-entity AUC is undefined everywhere (e.g. a per-drug constant scored per drug) is named,
    # in the pair and in the table against the board
    pd.DataFrame([{**r, "auc": np.nan} if r["method"] == "weak" else r for r in rows]).to_csv(
        tmp_path / "syn-entities.csv", index=False)
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    assert "no per-entity AUC defined for weak" in capsys.readouterr().out
    assert main(["compare", "strong", "--against-board", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| weak |"))
    assert row.endswith("| no per-entity AUC defined for weak |")


def test_runs_record_per_entity_metrics_and_the_board_keeps_them(tmp_path, capsys):
    from drbench.runner import SweepSpec, run_sweep

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_sweep(SweepSpec(methods="mean-effects,cell-mean", protocol="new-drug", dataset="synthetic", progress=False,
                        tracking_uri=uri))
    out = tmp_path / "boards" / "syn.md"
    md = leaderboard.build(out=str(out), tracking_uri=uri)
    csv = leaderboard.csv_path(out)
    folds = pd.read_csv(csv)
    folds = folds[folds["status"] == "finished"]
    ent = pd.read_csv(leaderboard.entities_path(csv), dtype={"entity": str})
    assert list(ent.columns) == leaderboard.ENTITY_COLUMNS and set(ent["job_key"]) == set(folds["job_key"])
    for r in folds.itertuples():  # the per-fold entity means are the means of the recorded entity rows
        mine = ent[ent["job_key"] == r.job_key]
        assert mine["auc"].notna().sum() == r.n_entities_auc and mine["n"].sum() == r.n_test
        assert mine["positives"].sum() == r.n_test_positive
        assert mine["auc"].mean() == pytest.approx(r.auc_entity) and mine["rmse"].mean() == pytest.approx(r.rmse_entity)
    assert "`syn-entities.csv`, for every run." in md
    assert leaderboard.build(from_csv=str(csv)) == md
    assert main(["compare", "mean-effects", "cell-mean", "--board", "syn", "--boards-dir", str(out.parent)]) == 0
    n_drugs = ent.loc[ent["method"] == "mean-effects", "entity"].nunique()
    # on a new drug, mean-effects ranks a drug's cell lines by their cell effect, as cell-mean does: the same AUCs
    assert f"every one of the {n_drugs} entities has the same AUC for both: no test" in capsys.readouterr().out
    ent[ent["method"] != "cell-mean"].to_csv(leaderboard.entities_path(csv), index=False)
    assert "runs without them (method: number of runs): cell-mean (5)." in leaderboard.build(from_csv=str(csv))
    leaderboard.entities_path(csv).unlink()
    assert f"none of the {len(folds)} runs here has them" in leaderboard.build(from_csv=str(csv))


def test_compare_reads_the_users_store_beside_the_board_csv(tmp_path, capsys):
    from drbench.runner import SweepSpec, run_sweep

    board = tmp_path / "boards" / "syn.md"
    run_sweep(SweepSpec(methods="mean-effects", protocol="new-drug", dataset="synthetic", progress=False,
                        tracking_uri=f"sqlite:///{tmp_path}/board.db"))
    leaderboard.build(out=str(board), tracking_uri=f"sqlite:///{tmp_path}/board.db")
    leaderboard.entities_path(leaderboard.csv_path(board)).unlink()  # as on the published boards: CSV only
    mine = f"sqlite:///{tmp_path}/mine.db"
    run_sweep(SweepSpec(methods="cell-mean", protocol="new-drug", dataset="synthetic", progress=False, seeds=[1],
                        tracking_uri=mine))
    argv = ["compare", "cell-mean", "mean-effects", "--board", "syn", "--boards-dir", str(board.parent),
            "--tracking-uri", mine]
    assert main(argv) == 2  # the user's runs used seed 1's folds, the board's seed 0's
    assert "not run on the same folds" in capsys.readouterr().err
    run_sweep(SweepSpec(methods="cell-mean", protocol="new-drug", dataset="synthetic", progress=False,
                        tracking_uri=f"sqlite:///{tmp_path}/mine0.db"))
    assert main(argv[:-1] + [f"sqlite:///{tmp_path}/mine0.db"]) == 0
    out = capsys.readouterr().out
    assert "5 paired folds" in out and "per-entity records missing for mean-effects" in out


def test_compare_pairs_the_seeds_both_ran_and_refuses_when_they_share_none(tmp_path, capsys):
    # a board can hold more seeds of a cheap baseline than of a deep method; its tables pair the shared folds
    board_csv(tmp_path / "syn.csv", seeds=(0, 1))
    df = pd.read_csv(tmp_path / "syn.csv")
    df[~((df["method"] == "weak") & (df["seed"] == 1))].to_csv(tmp_path / "syn.csv", index=False)
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "5 paired folds" in out and "compared on the 5 (seed, fold) both ran (strong also has seed 1)" in out
    assert main(["compare", "strong", "twin", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "10 paired folds" in out and "compared on the" not in out
    df = pd.read_csv(tmp_path / "syn.csv")
    df[~((df["method"] == "twin") & (df["seed"] == 0))].to_csv(tmp_path / "syn.csv", index=False)
    df = pd.read_csv(tmp_path / "syn.csv")
    df.loc[(df["method"] == "weak"), "seed"] = 0
    df.to_csv(tmp_path / "syn.csv", index=False)
    assert main(["compare", "twin", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no (seed, fold) in common (twin: seeds [1]; weak: seeds [0])" in err and len(err.strip().splitlines()) == 1


def test_a_board_csv_or_entity_file_broken_by_hand_is_one_line_naming_row_and_column(tmp_path, capsys):
    """A committed CSV that a hand edit or a bad merge broke: a non-number in a numeric column, one run on two rows,
    a truncated last line. Each is refused with the file, the row (its line number) and the column."""
    board_csv(tmp_path / "syn.csv")
    good = pd.read_csv(tmp_path / "syn.csv")
    argv = ["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path)]

    def refused(fragment):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0] and str(tmp_path) in err[0], err

    bad = good.astype({"auc": object})
    bad.loc[3, "auc"] = "0.8x"
    bad.to_csv(tmp_path / "syn.csv", index=False)
    refused("syn.csv: row 5, column 'auc': '0.8x' is not a number")
    pd.concat([good, good.iloc[[2]]]).to_csv(tmp_path / "syn.csv", index=False)
    refused(f"syn.csv: job {good['job_key'].iloc[2]} is on rows 4 and {len(good) + 2}")
    assert main(["leaderboard", "--from-csv", str(tmp_path / "syn.csv"), "--out", str(tmp_path / "x.md")]) == 2
    assert "is on rows 4 and" in capsys.readouterr().err
    good.to_csv(tmp_path / "syn.csv", index=False)
    records = pd.DataFrame([{"method": m, "selection": "validation", "seed": 0, "fold": f, "job_key": f"{m}-0-{f}",
                             "entity": "d1", "n": 40, "positives": 20, "auc": 0.8, "auprc": np.nan, "pcc": np.nan,
                             "scc": np.nan, "rmse": np.nan} for m in ("strong", "weak") for f in range(5)])
    ent = tmp_path / "syn-entities.csv"
    records.to_csv(ent, index=False)
    text = ent.read_text()
    ent.write_text(text[:text.rindex("\n", 0, len(text) - 1) + 20])  # the last line cut short
    refused("syn-entities.csv: row 11 has no")
    pd.concat([records, records.iloc[[0]]]).to_csv(ent, index=False)
    refused("syn-entities.csv: rows 2 and 12 record the same run and entity")
    records.to_csv(ent, index=False)
    assert main(argv) == 0


def test_a_published_boards_options_keep_the_users_runs_with_other_options_out(tmp_path, capsys, monkeypatch):
    """A store holding per-target runs beside grouped ones: compare against a grouped board reads the grouped runs,
    as the board's own tables do, instead of refusing over the per-target folds' masks."""
    from drbench import boards
    from drbench.runner import SweepSpec, run_sweep

    monkeypatch.setattr(boards, "BOARDS", [boards.Board("syn", "synthetic", "new-drug")])
    board = tmp_path / "boards" / "syn.md"
    run_sweep(SweepSpec(methods="mean-effects", protocol="new-drug", dataset="synthetic", progress=False,
                        tracking_uri=f"sqlite:///{tmp_path}/board.db"))
    leaderboard.build(out=str(board), tracking_uri=f"sqlite:///{tmp_path}/board.db")
    mine = f"sqlite:///{tmp_path}/mine.db"
    for per_target in (False, True):
        run_sweep(SweepSpec(methods="cell-mean", protocol="new-drug", dataset="synthetic", progress=False,
                            options={"per_target": per_target, **({"n_targets": 5} if per_target else {})},
                            tracking_uri=mine))
    argv = ["compare", "cell-mean", "mean-effects", "--board", "syn", "--boards-dir", str(board.parent),
            "--tracking-uri", mine]
    assert main(argv) == 0
    assert "5 paired folds" in capsys.readouterr().out
    monkeypatch.setattr(boards, "BOARDS", [])  # a board drbench does not publish: its options are unknown
    assert main(argv) == 2
    assert "runs made with other protocol options, e.g. --per-target" in capsys.readouterr().err


def test_identical_per_entity_values_are_said_so_not_printed_as_nan(tmp_path, capsys):
    board_csv(tmp_path / "syn.csv")
    rows = [{"method": m, "selection": "validation", "seed": 0, "fold": e % 5, "job_key": f"{m}-0-{e % 5}",
             "entity": f"d{e}", "n": 40, "positives": 20, "auc": 0.7 + e / 1000, "auprc": np.nan, "pcc": np.nan,
             "scc": np.nan, "rmse": np.nan} for e in range(30) for m in ("strong", "twin")]
    pd.DataFrame(rows).to_csv(tmp_path / "syn-entities.csv", index=False)
    assert main(["compare", "strong", "twin", "--board", "syn", "--boards-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "per-entity Wilcoxon: every one of the 30 entities has the same AUC for both: no test" in out
    assert "nan" not in out


def test_partial_runs_are_compared_with_the_partitions_k_not_the_folds_run_so_far(tmp_path, capsys):
    # strong and weak have run only folds 0-2 of a 5-fold partition (a sweep in progress) in replication mode; the
    # other methods ran all 5. n_test/n_train is a property of the partition: 1/(5 − 1), not 1/(3 − 1).
    csv = board_csv(tmp_path / "syn.csv")
    df = pd.read_csv(csv)
    part = df[df["method"].isin(["strong", "weak"]) & (df["fold"] <= 2)].copy()
    part["selection"], part["job_key"] = "test", part["job_key"] + "-test"
    pd.concat([df, part]).to_csv(csv, index=False)
    md = leaderboard.build(from_csv=str(csv))
    rep = md[md.index("### Replication mode"):]
    concl = next(line for line in rep.splitlines() if line.startswith("**Conclusions**"))
    assert "up to 3 paired folds, 5 per seed, n_test/n_train taken as 1/(k − 1) = 0.25" in concl
    assert main(["compare", "strong", "weak", "--board", "syn", "--boards-dir", str(tmp_path),
                 "--selection", "test"]) == 0
    out = capsys.readouterr().out
    assert "3 paired folds (5 per seed, n_test/n_train taken as 1/(k − 1) = 0.25)" in out
    from drbench import stats

    d = stats.paired_differences(part[part["method"] == "strong"].set_index("fold")["auc"],
                                 part[part["method"] == "weak"].set_index("fold")["auc"], "auc")
    t = stats.corrected_t(d, 0.25)
    assert f"95% CI [{t.low:+.4f}, {t.high:+.4f}]" in out  # the interval is the one with the partition's ratio
