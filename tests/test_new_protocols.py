"""Beyond the paper's tests: new-pair (double cold) and new-tissue (leave-tissue-out) masks, tissue metadata,
the tissue-mean baseline."""

from __future__ import annotations

import numpy as np
import pytest

from drbench.datasets import make_synthetic
from drbench.errors import UsageError
from drbench.protocols import get_protocol


@pytest.fixture(scope="module")
def syn():
    return make_synthetic()


def folds(name, ds, seed=0, **opts):
    p = get_protocol(name)
    return p.folds(ds, seed, **p.resolve_options(opts))


def balanced_per(test, binary, entities, axis):
    """For each entity: test holds all its positives (among ``binary``'s measured pairs) and as many negatives
    (all of them where it has fewer)."""
    t, b = (test, binary) if axis == 0 else (test.T, binary.T)
    for e in entities:
        npos = (b[e] == 1).sum()
        assert (t[e] & (b[e] == 1)).sum() == npos
        assert (t[e] & (b[e] == 0)).sum() == min(npos, (b[e] == 0).sum())


# ------------------------------------------------------------------ new-pair
def test_new_pair_holds_out_cells_and_drugs_together(syn):
    p = get_protocol("new-pair")
    cells, drugs = p.eligible(syn)
    fl = folds("new-pair", syn)
    assert len(fl) == 5
    b = syn.binary
    for f in fl:
        hc, hd = f.held_out_cells, f.held_out_drugs
        assert len(hc) and len(hd) and len(f.valid_cells) and len(f.valid_drugs)
        for m in (f.train, f.valid):  # no held-out cell line or drug anywhere in training or validation
            assert not m[hc].any() and not m[:, hd].any()
        assert not f.train[f.valid_cells].any() and not f.train[:, f.valid_drugs].any()  # validation double cold too
        # training = every measured pair with no held-out or validation entity
        keep = np.ones(syn.shape, bool)
        keep[np.r_[hc, f.valid_cells]] = False
        keep[:, np.r_[hd, f.valid_drugs]] = False
        assert np.array_equal(f.train, syn.measured & keep)
        # test = exactly the measured both-held-out positives, plus as many negatives per drug
        both = np.zeros(syn.shape, bool)
        both[np.ix_(hc, hd)] = True
        assert not (f.test & ~both).any()
        assert np.array_equal(f.test & (b == 1), both & (b == 1))
        balanced_per(f.test, np.where(both, b, np.nan), hd, axis=1)
        assert (f.test & (b == 1)).sum() > 0 and (f.test & (b == 0)).sum() > 0
        assert f.entity_axis == 1
    # each eligible cell line and drug is held out exactly once
    assert sorted(np.concatenate([f.held_out_cells for f in fl]).tolist()) == cells.tolist()
    assert sorted(np.concatenate([f.held_out_drugs for f in fl]).tolist()) == drugs.tolist()


def test_new_pair_hides_held_out_features_from_inductive_methods(syn):
    from drbench.api import Capabilities
    from drbench.view import build_train_view

    f = folds("new-pair", syn)[0]
    v = build_train_view(syn, f, Capabilities(transductive=False))
    assert np.isnan(v.cell_features["expression"][f.held_out_cells]).all()
    assert np.isnan(v.drug_features["fingerprint"][f.held_out_drugs]).all()
    assert (v.cell_tissue[f.held_out_cells] == "").all()
    assert np.isnan(v.binary[f.test]).all()


@pytest.mark.parametrize("name", ["new-pair", "new-tissue"])
def test_same_seed_same_masks_other_seed_other_masks(syn, name):
    opts = {"min_positives": 3} if name == "new-tissue" else {}
    a = [f.sha256 for f in folds(name, syn, seed=3, **opts)]
    b = [f.sha256 for f in folds(name, syn, seed=3, **opts)]
    c = [f.sha256 for f in folds(name, syn, seed=4, **opts)]
    assert a == b and a != c


@pytest.mark.parametrize("name", ["new-pair", "new-tissue"])
def test_test_masks_do_not_depend_on_the_validation_carve(syn, name):
    p = get_protocol(name)
    opts = p.resolve_options({"min_positives": 3} if name == "new-tissue" else {})
    for h, r in zip(p.folds(syn, 0, **opts), p.folds(syn, 0, carve_valid=False, **opts)):
        assert np.array_equal(h.test, r.test) and not r.valid.any()
        assert not (r.train & r.test).any()


def test_new_pair_too_few_eligible_is_a_clear_error():
    with pytest.raises(UsageError, match="eligible drugs"):
        folds("new-pair", make_synthetic(n_cells=200, n_drugs=4), min_positives=1)


# ------------------------------------------------------------------ new-tissue
def test_synthetic_tissues_are_seeded_with_some_unknown(syn):
    assert np.array_equal(make_synthetic().cell_tissue, syn.cell_tissue)
    assert not np.array_equal(make_synthetic(seed=1).cell_tissue, syn.cell_tissue)
    known = syn.cell_tissue[syn.cell_tissue != ""]
    assert len(set(known)) == 6 and 0 < (syn.cell_tissue == "").sum() < 20
    s = syn.summary()
    assert s["tissues"] == 6 and s["cells_without_tissue"] == (syn.cell_tissue == "").sum()
    assert s["cells_without_tissue_first"] == syn.cell_ids[syn.cell_tissue == ""][:5].tolist()


def test_tissue_is_not_in_the_content_hash(syn):
    assert syn._replace(cell_tissue=np.full(syn.shape[0], "x")).content_hash == syn.content_hash
    sub = syn.subset(rows=np.arange(10))
    assert np.array_equal(sub.cell_tissue, syn.cell_tissue[:10])


def test_new_tissue_holds_out_whole_tissues(syn):
    p = get_protocol("new-tissue")
    fl = folds("new-tissue", syn, min_positives=3, min_cells=15)
    b, tissue = syn.binary, syn.cell_tissue
    elig = set(np.flatnonzero((b == 1).sum(1) >= 3).tolist())
    tested = []
    for f in fl:
        group = f.label.split("+")
        held = f.held_out_cells
        assert set(tissue[held]) == set(group) and "" not in group
        assert np.array_equal(np.sort(held), np.flatnonzero(np.isin(tissue, group)))  # every cell of the tissue
        for m in (f.train, f.valid):
            assert not m[held].any()
            assert not np.isin(tissue[m.any(1)], group).any()  # the tissue appears nowhere in training
        vt = set(tissue[f.valid_cells])
        assert vt and not vt & set(group) and not f.train[f.valid_cells].any()
        test_cells = np.flatnonzero(f.test.any(1))
        assert set(test_cells.tolist()) == set(held.tolist()) & elig  # eligible cells of the tissue, no other
        assert np.array_equal(f.test & (b == 1), np.isin(np.arange(len(b)), test_cells)[:, None] & (b == 1))
        balanced_per(f.test, b, test_cells, axis=0)
        assert len(test_cells) >= 15  # min_cells
        tested += group
    assert len(tested) == len(set(tested))  # each tissue held out once at most
    assert set(tested) == {t for t in set(tissue) - {""} if np.isin(np.flatnonzero(tissue == t), list(elig)).any()}
    assert len(fl) == len(p.groups(syn, 0, min_cells=15, min_positives=3))


def test_unknown_tissue_cells_are_never_tested(syn):
    unknown = syn.cell_tissue == ""
    assert unknown.any()
    for f in folds("new-tissue", syn, min_positives=3):
        assert not f.test[unknown].any() and not f.valid[unknown].any()
        assert f.train[unknown].any()


def test_small_tissues_are_grouped_and_named_tissues_held_out_alone(syn):
    from drbench.protocols.new_tissue import tissue_groups

    counts = {"a": 40, "b": 3, "c": 4, "d": 5, "e": 2, "f": 0}
    g = tissue_groups(counts, 6, np.random.default_rng(0))
    assert g[0] == ["a"] and sorted(sum(g, [])) == ["a", "b", "c", "d", "e"]  # "f" has no eligible cell line
    assert all(sum(counts[t] for t in grp) >= 6 for grp in g)
    assert g == tissue_groups(counts, 6, np.random.default_rng(0))
    fl = folds("new-tissue", syn, min_positives=3, tissues="tissue_1,tissue_4")
    assert [f.label for f in fl] == ["tissue_1", "tissue_4"]
    assert [f.sha256 for f in folds("new-tissue", syn, min_positives=3, tissues="tissue_1,tissue_4")] == \
        [f.sha256 for f in fl]
    with pytest.raises(UsageError, match="unknown tissue"):
        folds("new-tissue", syn, tissues="liver")


def test_new_tissue_needs_a_tissue_annotation():
    ds = make_synthetic(n_cells=60, n_drugs=20)
    with pytest.raises(UsageError, match="no tissue annotation"):
        folds("new-tissue", ds._replace(cell_tissue=None))


def test_new_tissue_without_an_eligible_cell_line_says_so(syn):
    """Every cell line below min_positives: one line naming the option, not an empty sweep."""
    most = int(np.nansum(syn.binary[syn.cell_tissue != ""], axis=1).max())  # among cell lines with a tissue
    with pytest.raises(UsageError, match=f"no cell line with a tissue has >= {most + 1} positives.*min_positives"):
        folds("new-tissue", syn, min_positives=most + 1)
    assert folds("new-tissue", syn, min_positives=most)  # one eligible cell line: a fold


# ------------------------------------------------------------------ capabilities, baseline, CLI
def test_protocol_kinds_decide_who_runs_what():
    from drbench.api import Capabilities, supports
    from drbench.registry import get_method

    assert supports(get_method("mean-effects"), "new-pair") and supports(get_method("tissue-mean"), "new-tissue")
    assert supports(get_method("deepdsc"), "new-pair") and supports(get_method("mtigcn"), "new-pair")
    assert not supports(get_method("hnmdrp"), "new-pair")  # scores a pair by its cell line's training edges
    assert "new-pair" not in Capabilities().protocols  # declared explicitly, never by default
    assert not supports(get_method("hnmdrp"), "new-tissue")  # new-tissue needs the new-cell-line kind


def test_tissue_mean_is_the_per_tissue_drug_mean_with_fallbacks(syn):
    from drbench.api import Capabilities
    from drbench.registry import get_method
    from drbench.testing import check_method
    from drbench.view import build_query, build_train_view

    cls = get_method("tissue-mean")
    check_method(cls)
    f = folds("random", syn)[0]
    m = cls(smoothing=0.0).fit(build_train_view(syn, f, Capabilities()))
    q = build_query(syn, f.test)
    pred = m.predict(q)
    tr = f.train
    for k in range(0, len(q), 97):
        i, j = q.rows[k], q.cols[k]
        t = syn.cell_tissue[i]
        rows = (syn.cell_tissue == t) & tr[:, j] if t else tr[:, j]  # unknown tissue: the drug mean
        assert pred.ic50[k] == pytest.approx(syn.ic50[rows, j].mean())
        assert pred.score[k] == pytest.approx(syn.binary[rows, j].mean())
    # a held-out tissue falls back to the drug mean exactly
    ft = folds("new-tissue", syn, min_positives=3)[0]
    v = build_train_view(syn, ft, Capabilities())
    qt = build_query(syn, ft.test)
    a = cls().fit(v).predict(qt)
    d = get_method("drug-mean")().fit(v).predict(qt)
    assert np.allclose(a.score, d.score) and np.allclose(a.ic50, d.ic50)


def test_protocols_command_lists_both_with_options(capsys):
    from drbench.cli import main

    assert main(["protocols"]) == 0
    out = capsys.readouterr().out
    for text in ("new-pair", "new-tissue", "--option min_cells=15", "--option tissues=''", "--option n_folds=5"):
        assert text in out


@pytest.mark.parametrize("protocol", ["new-pair", "new-tissue"])
def test_end_to_end_run(protocol, capsys):
    from drbench.cli import main

    opts = ["--option", "min_positives=3"] if protocol == "new-tissue" else []
    assert main(["run", "--methods", "global-mean,mean-effects,tissue-mean,hnmdrp", "--protocol", protocol,
                 "--dataset", "synthetic", "-q", "--folds", "0-1", *opts]) == 0
    out = capsys.readouterr().out
    assert "6 finished now, 0 failed" in out and "tissue-mean" in out
    assert "hnmdrp" in out and "not supported" in out  # declares neither new-pair nor new-cell-line


# ------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_tissue_annotations_load(gdsc, ccle, data_dir):
    from drbench.datasets.mtigcn_layout import load_ccle

    g, c = gdsc, ccle
    assert (g.summary()["tissues"], g.summary()["cells_without_tissue"]) == (19, 0)
    assert (c.summary()["tissues"], c.summary()["cells_without_tissue"]) == (23, 0)
    assert (g.cell_tissue == "lung_NSCLC").sum() == 109 and (c.cell_tissue == "lung").sum() == 68
    full = load_ccle(data_dir, keep_all_cells=True)  # 4 CCLE ids are not in the annotation file
    assert full.summary()["cells_without_tissue"] == 4
    assert full.summary()["cells_without_tissue_first"] == ["HS229T_LUNG", "HS739T_BREAST",
                                                           "HS840T_UPPER_AERODIGESTIVE_TRACT", "HS895T_SKIN"]


@pytest.mark.realdata
def test_real_new_tissue_and_new_pair_counts(gdsc):
    groups = get_protocol("new-tissue").groups(gdsc, 0)
    assert len(groups) == 18 and sorted(["lung", "thyroid"]) in [sorted(g) for g in groups]
    fl = folds("new-pair", gdsc)
    assert [len(f.held_out_cells) for f in fl] == [132, 132, 131, 131, 131]
    assert [len(f.held_out_drugs) for f in fl] == [46, 46, 45, 45, 45]


# ------------------------------------------------------------------ transfer both ways
def test_transfer_needs_another_target(syn):
    from drbench.datasets import load_dataset

    p = get_protocol("transfer")
    with pytest.raises(UsageError, match="target set other than 'synthetic'"):
        p.prepare(syn, load_dataset, **p.resolve_options({}))
    with pytest.raises(UsageError, match="drop_overlap must be one of"):
        p.prepare(syn, load_dataset, **p.resolve_options({"drop_overlap": "both"}))


@pytest.mark.realdata
def test_real_transfer_ccle_to_gdsc_on_ln_ic50(gdsc, ccle):
    p = get_protocol("transfer")
    u = p.prepare(ccle, {"gdsc": gdsc}.__getitem__, **p.resolve_options({}))  # default target of ccle: gdsc
    src = u.cell_domain == "ccle"
    assert u.meta["overlap_cells"] == 326 and u.meta["drop_overlap"] == "target"  # auto: CCLE's 328 stay whole
    assert (src.sum(), (~src).sum(), u.shape[1]) == (328, 961 - 326, 15)
    assert not set(u.cell_alias[src]) & set(u.cell_alias[~src])
    # CCLE's raw µM compared as ln µM, like GDSC's ln IC50 (which is unchanged)
    raw = ccle.ic50[:, [list(ccle.drug_ids).index(d) for d in u.drug_ids]]
    expected = np.where(raw > 0, np.log(np.where(raw > 0, raw, 1)), np.nan)
    assert np.allclose(u.ic50[src], expected, rtol=0, atol=1e-12, equal_nan=True)  # (ln to the last bit: libm)
    rows = [list(gdsc.cell_ids).index(c) for c in u.cell_ids[~src]]
    cols = [list(gdsc.drug_ids).index(d) for d in u.drug_ids]
    assert np.array_equal(u.ic50[~src], gdsc.ic50[np.ix_(rows, cols)], equal_nan=True)
    f = p.folds(u, 0, **p.resolve_options({}))[0]
    assert np.array_equal(f.test, u.measured & ~src[:, None]) and not (f.train | f.valid)[~src].any()
