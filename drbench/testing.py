"""``check_method``: the conformance checker every method must pass (like sklearn's ``check_estimator``).

It runs the method on a tiny synthetic dataset under every protocol it declares and checks:
hyperparameter round trip and declared types, output shapes and ranges, ``fit`` returning ``self``, a pure ``predict``,
determinism under a seed, a clear error for an unsupported protocol, and the **leak test**:
scrambling every held-out label in the dataset changes no prediction.
"""

from __future__ import annotations

import numpy as np

from drbench.api import PROTOCOL_KINDS, Method, supports
from drbench.datasets import combine, make_synthetic
from drbench.errors import UnsupportedProtocolError, UsageError
from drbench.execution import fit_predict, seed_everything
from drbench.params import check_params
from drbench.view import build_query, build_train_view

PROTOCOL_OPTIONS = {
    "random": {"n_folds": 5},
    "new-cell-line": {"n_folds": 3, "min_positives": 3},
    "new-drug": {"n_folds": 3, "min_positives": 3},
    "in-vivo": {},
    "new-pair": {"n_folds": 3, "min_positives": 3},
}


class MethodCheckError(AssertionError):
    pass


def tiny_dataset(seed: int = 0):
    """A small synthetic cell-line set and its in-vivo union (fast enough for every method)."""
    kw = dict(n_cells=48, n_drugs=16, n_genes=40, rank=4, n_invivo=12, invivo_drugs=4, seed=seed)
    cells = make_synthetic(**kw, pos_rate=0.2, part="cells")
    vivo = make_synthetic(**kw, pos_rate=0.2, part="invivo")
    return cells, combine(cells, vivo)


def _folds(protocol: str, cells, union, seed: int):
    from drbench.protocols import get_protocol

    p = get_protocol(protocol)
    ds = union if protocol == "in-vivo" else cells
    return ds, p.folds(ds, seed, **PROTOCOL_OPTIONS[protocol])


def _scramble(dataset, fold, rng):
    """The dataset with every label outside train | valid replaced by noise (flipped, shuffled)."""
    keep = fold.train | fold.valid
    b = dataset.binary.copy()
    r = dataset.ic50.copy()
    hidden = ~keep
    b[hidden] = rng.integers(0, 2, size=int(hidden.sum()))
    r[hidden] = rng.normal(5.0, 3.0, size=int(hidden.sum()))
    return dataset.with_labels(b, r)


def _fail(name, check, msg):
    raise MethodCheckError(f"check_method({name}): {check}: {msg}")


def check_method(cls, params: dict | None = None, protocols=None, seed: int = 0) -> dict:
    """Run every conformance check on method class ``cls``. Returns a report; raises on the first failure."""
    name = getattr(cls, "name", "") or cls.__name__
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        _fail(name, "type", "must be a subclass of drbench.methods.Method")
    params = {**cls.fast_params(), **(params or {})}
    report = {"method": name, "checks": []}

    # hyperparameters: sklearn-style round trip
    est = cls(**params)
    got = est.get_params()
    for k, v in params.items():
        if k not in got or got[k] is not v and got[k] != v:
            _fail(name, "get_params", f"hyperparameter {k!r} is not stored under its own name")
    cls(**got)
    try:
        check_params(cls, got)
    except UsageError as e:
        _fail(name, "param types", f"a default or fast_params value does not have its declared type: {e}")
    report["checks"].append("params")

    cells, union = tiny_dataset(seed)
    kinds = [p for p in (protocols or PROTOCOL_KINDS) if supports(cls, p)]
    if not kinds:
        _fail(name, "capabilities", "declares no protocol")
    for protocol in kinds:
        ds, folds = _folds(protocol, cells, union, seed)
        fold = folds[0]
        ctx = {"profile": "check"}
        try:
            ds.require(cls.capabilities.needs)
        except Exception as e:
            _fail(name, "needs", f"tiny synthetic data lacks a declared need: {e}")
        view = build_train_view(ds, fold, cls.capabilities, seed=seed, context=ctx)
        hidden = ~(fold.train | fold.valid)
        if not np.isnan(view.binary[hidden]).all() or not np.isnan(view.ic50[hidden]).all():
            _fail(name, "firewall", "the view holds labels outside train | valid")  # harness bug guard
        m = cls(**params)
        seed_everything(seed)
        if m.fit(view) is not m:
            _fail(name, "fit", "fit() must return self")
        q = build_query(ds, fold.score)
        p1 = m.predict(q)
        n = len(q)
        if p1.score.shape != (n,):
            _fail(name, "shape", f"{protocol}: {p1.score.shape} scores for {n} pairs")
        if not np.isfinite(p1.score).all():
            _fail(name, "range", f"{protocol}: scores have NaN or inf")
        if (p1.score < 0).any() or (p1.score > 1).any():
            _fail(name, "range", f"{protocol}: scores outside [0, 1]: min {p1.score.min()}, max {p1.score.max()}")
        if cls.capabilities.regression:
            if p1.ic50 is None or p1.ic50.shape != (n,) or not np.isfinite(p1.ic50).all():
                _fail(name, "ic50", f"{protocol}: declares regression but gives no finite IC50 per pair")
        p1b = m.predict(q)
        if not np.array_equal(p1.score, p1b.score):
            _fail(name, "pure predict", f"{protocol}: predict() gave different scores on a second call")
        # determinism under a seed
        p2, *_ = fit_predict(cls(**params), ds, fold, seed=seed, context=ctx)
        if not np.allclose(p1.score, p2.score, rtol=1e-5, atol=1e-6):
            _fail(name, "determinism", f"{protocol}: two fits with seed {seed} differ "
                  f"(max |diff| {np.abs(p1.score - p2.score).max():.3g})")
        # leak test: scrambled held-out labels change nothing
        scrambled = _scramble(ds, fold, np.random.default_rng(seed + 1))
        p3, *_ = fit_predict(cls(**params), scrambled, fold, seed=seed, context=ctx)
        if not np.allclose(p1.score, p3.score, rtol=1e-5, atol=1e-6):
            _fail(name, "leak test", f"{protocol}: scrambling held-out labels changed predictions "
                  f"(max |diff| {np.abs(p1.score - p3.score).max():.3g})")
        if p1.ic50 is not None and not np.allclose(p1.ic50, p3.ic50, rtol=1e-5, atol=1e-6):
            _fail(name, "leak test", f"{protocol}: scrambling held-out labels changed IC50 predictions")
        report["checks"].append(f"{protocol}: shape, range, pure predict, determinism, leak test")

    # unsupported protocol gives a clear error
    unsupported = [p for p in PROTOCOL_KINDS if not supports(cls, p)] or ["no-such-protocol"]
    ds, folds = _folds("random", cells, union, seed)
    view = build_train_view(ds, folds[0], cls.capabilities, seed=seed,
                            context={"protocol": unsupported[0], "profile": "check"})
    try:
        cls(**params).fit(view)
    except UnsupportedProtocolError as e:
        if unsupported[0] not in str(e):
            _fail(name, "unsupported protocol", f"the error does not name the protocol: {e}")
    else:
        _fail(name, "unsupported protocol", f"fit() accepted protocol {unsupported[0]!r}")
    report["checks"].append("unsupported protocol error")
    return report
