"""Random gene panels (``drbench run --genes N --gene-seed S``): a seeded subset in the original order, the same
masks as the full panel, their own job keys and board rows, bad sizes refused; paper.md's Expression panel section
pairs each panel run with the full-panel run on the same mask."""

from __future__ import annotations

import numpy as np
import pytest

from drbench import leaderboard, paper, tracking
from drbench.cli import main
from drbench.datasets import make_synthetic
from drbench.datasets.panel import gene_subset, panel_label
from drbench.errors import UsageError
from drbench.runner import SweepSpec, plan_sweep, run_sweep

from boardcsv import write_board_csv


def test_a_gene_subset_is_seeded_and_keeps_the_genes_in_their_order():
    ds = make_synthetic(part="cells")
    names = list(ds.cell_feature_names["expression"])
    a, again, other = gene_subset(ds, 37, seed=3), gene_subset(ds, 37, seed=3), gene_subset(ds, 37, seed=4)
    kept = list(a.cell_feature_names["expression"])
    assert kept == list(again.cell_feature_names["expression"]) and kept != list(other.cell_feature_names["expression"])
    assert len(kept) == 37 and len(set(kept)) == 37
    pos = [names.index(g) for g in kept]
    assert pos == sorted(pos)  # the original order
    np.testing.assert_array_equal(a.cell_features["expression"], ds.cell_features["expression"][:, pos])
    # labels, ids and the drug features are untouched; the content (hence every job key) is not
    for field in ("binary", "ic50", "cell_ids", "drug_ids"):
        np.testing.assert_array_equal(getattr(a, field), getattr(ds, field))
    np.testing.assert_array_equal(a.drug_features["fingerprint"], ds.drug_features["fingerprint"])
    assert a.content_hash != ds.content_hash and a.content_hash == again.content_hash
    assert panel_label(a) == "genes=37,gene_seed=3" and panel_label(gene_subset(ds, 37)) == "genes=37"
    # the whole panel is the dataset itself: the same jobs as a run without --genes
    full = gene_subset(ds, len(names))
    assert full is ds and panel_label(full) == ""


def test_a_gene_subset_outside_the_panel_is_refused():
    ds = make_synthetic(part="cells")
    size = ds.cell_features["expression"].shape[1]
    for n in (0, size + 1):
        with pytest.raises(UsageError, match=f"has {size} expression genes; give 1 to {size}"):
            gene_subset(ds, n)


@pytest.mark.parametrize("protocol", ["random", "new-cell-line"])
def test_panel_runs_get_the_full_panels_masks_and_their_own_job_keys(protocol):
    def plan(**panel):
        return plan_sweep(SweepSpec(methods="global-mean,drug-mean", protocol=protocol, dataset="synthetic", progress=False,
                                    **panel))

    full, cut = plan(), plan(genes=50, gene_seed=1)
    masks = lambda p: [f.sha256 for fl in p.folds.values() for f in fl]  # noqa: E731
    assert masks(cut) == masks(full) and len(masks(full)) >= 2
    assert not {j.key for j in cut.jobs} & {j.key for j in full.jobs}
    assert cut.variants == {"global-mean": "genes=50,gene_seed=1", "drug-mean": "genes=50,gene_seed=1"}
    assert set(full.variants.values()) == {""}
    # --genes equal to the panel: the very jobs of the full panel
    assert [j.key for j in plan(genes=400).jobs] == [j.key for j in full.jobs]


def test_a_panel_run_is_tagged_and_gets_its_own_board_row():
    spec = dict(methods="global-mean", protocol="random", dataset="synthetic", folds=[0], progress=False)
    run_sweep(SweepSpec(**spec, genes=20))
    c = tracking.client()
    (run,) = tracking.search_job_runs(c, [tracking.experiment_id(c, "drbench", create=False)])
    assert (run.data.tags["drbench.genes"], run.data.tags["drbench.gene_seed"]) == ("20", "0")
    df = leaderboard.collect(dataset="synthetic", protocol="random")
    (row,) = df[df["status"] == "finished"].itertuples()
    assert row.method == "global-mean[genes=20]"
    assert row.mask_sha256 == plan_sweep(SweepSpec(**spec)).folds[0][0].sha256  # the full panel's fold 0


BAD = {
    "above the panel": (["--genes", "401"], "--genes 401: dataset 'synthetic' has 400 expression genes; give 1 to 400"),
    "negative": (["--genes", "-1"], "--genes must be an integer >= 0"),
    "a seed without a panel": (["--gene-seed", "3"], "--gene-seed 3 needs --genes N"),
    "a negative seed": (["--genes", "5", "--gene-seed", "-1"], "--gene-seed: seeds must be integers from 0"),
}


@pytest.mark.parametrize("extra, fragment", list(BAD.values()), ids=list(BAD))
def test_a_bad_panel_is_one_line_and_exit_2_before_the_store(extra, fragment, capsys, tmp_path):
    store = tmp_path / "mlflow.db"
    rc = main(["run", "--methods", "global-mean", "--protocol", "random", "--dataset", "synthetic", "-q",
               "--tracking-uri", f"sqlite:///{store}", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("drbench: error: ") and fragment in err[0], err
    assert not store.exists()


# ---------------------------------------------------------------------------------------------- paper.md


def _row(method, selection, fold, mask, auc):
    return {"method": method, "status": "finished", "dataset": "gdsc", "protocol": "random", "selection": selection,
            "seed": 0, "fold": fold, "mask_sha256": mask, "auc": auc}


def test_the_panel_section_pairs_runs_by_mask_and_reports_the_measured_differences(tmp_path):
    # full panel: honest and replication runs of fold 0 have different masks (a validation split is carved);
    # both methods' gaps to the paper (NIHGCN 0.876, MTIGCN 0.887) are beyond the ROPE, so causes are listed
    write_board_csv(tmp_path / "gdsc-random.csv", [
        _row("nihgcn", "validation", 0, "v0" * 32, 0.872), _row("nihgcn", "validation", 1, "v1" * 32, 0.868),
        _row("nihgcn", "test", 0, "t0" * 32, 0.850), _row("mtigcn", "validation", 0, "m0" * 32, 0.860),
    ])
    write_board_csv(tmp_path / "gdsc-gene-panel.csv", [
        _row("nihgcn[genes=1000]", "validation", 0, "v0" * 32, 0.864),
        _row("nihgcn[genes=1000]", "validation", 1, "v1" * 32, 0.864),
        _row("nihgcn[genes=2500]", "validation", 0, "v0" * 32, 0.870),
        _row("nihgcn[genes=2500]", "validation", 1, "xx" * 32, 0.5),  # no full-panel run on this mask: not paired
        _row("nihgcn[epochs=3,genes=1000]", "validation", 0, "v0" * 32, 0.2),  # other overrides: no pair
    ])
    pairs = paper.gene_panel_pairs(tmp_path)
    assert list(zip(pairs["genes"], pairs["fold"])) == [(1000, 0), (1000, 1), (2500, 0)]
    assert pairs["delta"].to_numpy() == pytest.approx([0.008, 0.004, 0.002])
    assert pairs["full_auc"].to_numpy() == pytest.approx([0.872, 0.868, 0.872])  # the honest run, not the ‡ one
    md = paper.render(tmp_path)
    section = md.split("## Expression panel")[1].split("\n## ")[0]
    assert "| nihgcn | honest | 0 | 1,000 | 1 | v1v1v1v1v1v1 | 0.8640 | 0.8680 | +0.0040 |" in section
    assert "| nihgcn | honest | 0 | 1,000 | mean of 2 | | 0.8640 | 0.8700 | +0.0060 |" in section
    assert "0.5000" not in section and "0.2000" not in section
    assert ("- nihgcn: the 3 paired differences lie in [+0.0020, +0.0080], within the boards' ±0.01 ROPE. This bounds "
            "the effect of going from 1,000 and 2,500 to 5,778 genes on these folds only, for one draw of the genes per size "
            "(gene seed 0; another draw's effect is not measured)" in section)
    rows = paper.compare_rows(tmp_path)
    nih = rows[(rows["method"] == "NIHGCN") & (rows["table"] == 3) & (rows["metric"] == "AUC")
               & (rows["dataset"] == "GDSC")].iloc[0]
    assert ("AUC moved by +0.006 from 1,000 to 5,778 genes (2 folds) and +0.002 from 2,500 to 5,778 genes (1 fold)"
            in nih["cause"])
    assert "not measured yet" not in nih["cause"]
    mti = rows[(rows["method"] == "MTIGCN") & (rows["table"] == 3) & (rows["metric"] == "AUC")
               & (rows["dataset"] == "GDSC")].iloc[0]
    assert "the expression panel (5,778 vs ~17k genes): not measured yet" in mti["cause"]
