"""Protocols: identical, deterministic masks with the properties each test of the paper needs."""

from __future__ import annotations

import numpy as np
import pytest

from drbench.datasets import load_dataset, make_synthetic
from drbench.errors import UsageError
from drbench.protocols import get_protocol, protocol_names


@pytest.fixture(scope="module")
def syn():
    return make_synthetic()


def folds(name, ds, seed=0, **opts):
    p = get_protocol(name)
    return p.folds(ds, seed, **p.resolve_options(opts))


def test_all_protocols_registered():
    assert set(protocol_names()) >= {"random", "new-cell-line", "new-drug", "in-vivo", "transfer", "case-study"}
    with pytest.raises(UsageError, match="choose one of"):
        get_protocol("leave-tissue-out")


def test_random_partitions_positives_with_balanced_tests(syn):
    fl = folds("random", syn)
    assert len(fl) == 5
    pos = syn.binary == 1
    seen = np.zeros(syn.shape, int)
    for f in fl:
        assert not (f.train & f.test).any() and not (f.valid & f.test).any() and not (f.train & f.valid).any()
        assert not ((f.train | f.valid | f.test) & ~syn.measured).any()  # only measured entries
        tp = (f.test & pos).sum()
        assert (f.test & (syn.binary == 0)).sum() == tp  # 1:1
        assert (f.train | f.valid) .sum() == syn.measured.sum() - f.test.sum()  # all other measured entries train
        vp = (f.valid & pos).sum()
        assert vp == round(0.1 * (pos & ~f.test).sum())
        assert (f.valid & (syn.binary == 0)).sum() == vp
        seen += f.test & pos
    assert (seen[pos] == 1).all()  # every positive is tested exactly once


def test_masks_are_read_only_and_hashed(syn):
    f = folds("random", syn)[0]
    with pytest.raises(ValueError):
        f.train[0, 0] = True
    assert len(f.sha256) == 64


def test_same_seed_same_masks_other_seed_other_masks(syn):
    a = [f.sha256 for f in folds("random", syn, seed=3)]
    b = [f.sha256 for f in folds("random", syn, seed=3)]
    c = [f.sha256 for f in folds("random", syn, seed=4)]
    assert a == b and a != c


def test_test_masks_do_not_depend_on_the_validation_carve(syn):
    p = get_protocol("random")
    honest = p.folds(syn, 0)
    repl = p.folds(syn, 0, carve_valid=False)
    for h, r in zip(honest, repl):
        assert np.array_equal(h.test, r.test)
        assert not r.valid.any()
        assert np.array_equal(r.train, h.train | h.valid)


@pytest.mark.parametrize("name,axis", [("new-cell-line", 0), ("new-drug", 1)])
def test_new_entity_holds_out_whole_rows_or_columns(syn, name, axis):
    p = get_protocol(name)
    elig = p.eligible(syn)
    fl = folds(name, syn)
    held_all = []
    b = syn.binary if axis == 0 else syn.binary.T
    for f in fl:
        held = f.held_out_cells if axis == 0 else f.held_out_drugs
        held_all.extend(held.tolist())
        tr = f.train if axis == 0 else f.train.T
        va = f.valid if axis == 0 else f.valid.T
        te = f.test if axis == 0 else f.test.T
        assert not tr[held].any() and not va[held].any()  # removed from training entirely
        vents = f.valid_cells if axis == 0 else f.valid_drugs
        assert len(vents) >= 1 and not tr[vents].any()
        for e in held:
            npos = (b[e] == 1).sum()
            assert (te[e] & (b[e] == 1)).sum() == npos >= 10
            assert (te[e] & (b[e] == 0)).sum() == min(npos, (b[e] == 0).sum())
        assert set(np.flatnonzero(te.any(1))) == set(held)
    assert sorted(held_all) == sorted(elig.tolist())  # each eligible entity held out exactly once


def test_per_target_and_sampled_targets(syn):
    fl = folds("new-drug", syn, per_target=True, n_targets=4)
    assert len(fl) == 4
    assert all(len(f.held_out_drugs) == 1 and f.label for f in fl)


def test_too_few_eligible_entities_is_a_clear_error():
    small = make_synthetic(n_cells=20, n_drugs=8)
    with pytest.raises(UsageError, match="eligible cell lines"):
        folds("new-cell-line", small)


def test_in_vivo_trains_on_cell_lines_and_tests_every_target_entry(syn):
    p = get_protocol("in-vivo")
    opts = p.resolve_options({})
    union = p.prepare(syn, load_dataset, **opts)
    f = p.folds(union, 0, **opts)[0]
    tgt = union.cell_domain == "synthetic-vivo"
    assert not (f.train[tgt]).any() and not f.valid[tgt].any()
    assert np.array_equal(f.test, union.measured & tgt[:, None])
    assert set(f.held_out_cells) == set(np.flatnonzero(tgt))
    assert (f.train | f.valid).sum() == (union.measured & ~tgt[:, None]).sum()


def test_case_study_scores_unmeasured_pairs(syn):
    f = folds("case-study", syn)[0]
    assert not f.test.any()
    assert np.array_equal(f.score, ~syn.measured)
    assert (f.train | f.valid).sum() == syn.measured.sum()


def test_unknown_protocol_option_lists_valid_ones():
    with pytest.raises(UsageError, match="n_folds"):
        get_protocol("random").resolve_options({"k": 3})


@pytest.mark.realdata
def test_real_eligible_counts_match_the_paper(data_dir):
    from drbench.datasets.mtigcn_layout import load_ccle, load_gdsc

    cl, dr = get_protocol("new-cell-line"), get_protocol("new-drug")
    full_g, full_c = load_gdsc(data_dir, keep_all_cells=True), load_ccle(data_dir, keep_all_cells=True)
    assert (len(cl.eligible(full_g)), len(dr.eligible(full_g))) == (658, 227)
    assert (len(cl.eligible(full_c)), len(dr.eligible(full_c))) == (26, 20)
    g, c = load_dataset("gdsc", data_dir), load_dataset("ccle", data_dir)
    assert (len(cl.eligible(g)), len(dr.eligible(g))) == (657, 227)
    assert (len(cl.eligible(c)), len(dr.eligible(c))) == (18, 20)


@pytest.mark.realdata
def test_real_transfer_reports_and_drops_overlap(gdsc, data_dir):
    p = get_protocol("transfer")
    load = lambda n: load_dataset(n, data_dir)  # noqa: E731
    u = p.prepare(gdsc, load, **p.resolve_options({}))
    assert u.meta["overlap_cells"] == 326
    src = u.cell_domain == "gdsc"
    assert not set(u.cell_alias[src]) & set(u.cell_alias[~src])  # no test cell line was seen in training
    assert u.shape[1] == 15
    kept = p.prepare(gdsc, load, **p.resolve_options({"drop_overlap": "none"}))
    assert kept.shape[0] == 961 + 328


def test_stable_log_is_libm_log_per_value_and_nan_where_undefined():
    import math

    from protocols.in_vivo import stable_log

    x = np.random.default_rng(0).uniform(1e-3, 10, 20_000)
    x[:3] = [0.0, -1.0, np.nan]
    out = stable_log(x.reshape(200, 100)).ravel()
    assert np.isnan(out[:3]).all()
    assert out[3:].tolist() == [math.log(v) for v in x[3:]]  # bit-identical, whatever numpy's SIMD log does


@pytest.mark.realdata
def test_real_datasets_hash_as_in_the_published_leaderboards(gdsc, ccle, data_dir):
    """The job keys `drbench reproduce` resumes from embed the dataset hash: a hash drift (a library's last-bit
    change in a derived value) silently turns every published run of a board into a job to run again."""
    import pandas as pd

    from pathlib import Path

    boards = Path(__file__).resolve().parents[1] / "leaderboards"
    load = lambda n: load_dataset(n, data_dir)  # noqa: E731
    p = get_protocol("transfer")
    now = {"gdsc-random": gdsc.content_hash, "ccle-random": ccle.content_hash,
           "gdsc-to-ccle-transfer": p.prepare(gdsc, load, **p.resolve_options({})).content_hash}
    for board, h in now.items():
        csv = boards / f"{board}.csv"
        if not csv.exists():
            continue
        published = set(pd.read_csv(csv, usecols=["dataset_hash"])["dataset_hash"].dropna())
        assert published == {h}, f"{board}: published {sorted(published)}, computed now {h}"
