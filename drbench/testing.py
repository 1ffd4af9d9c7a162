"""``check_method``: the conformance checker every method must pass (like sklearn's ``check_estimator``).

It runs the method on a tiny synthetic dataset under every protocol it declares and checks:
hyperparameter round trip and declared types, output shapes and ranges, ``fit`` returning ``self``, a pure
``predict``, determinism under a seed, a clear error for an unsupported protocol, and the **leak test**:
scrambling every held-out label in the dataset changes no prediction. :func:`method_checks` yields
the checks one by one (by name) and :func:`parametrize_with_checks` makes one pytest test of each, as
scikit-learn's ``parametrize_with_checks`` does; :func:`check_method` runs them all.
"""

from __future__ import annotations

import functools

import numpy as np

from drbench.api import PROTOCOL_KINDS, Method, supports
from drbench.datasets import combine, make_synthetic
from drbench.errors import UnsupportedProtocolError, UsageError
from drbench.execution import fit_predict, seed_everything
from drbench.params import check_params as check_param_types
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


def method_checks(cls, params: dict | None = None, protocols=None, seed: int = 0):
    """Yield ``(name, check)`` for every conformance check of method class ``cls`` (sklearn's style).

    ``check()`` runs one check and raises :class:`MethodCheckError` when it fails. The checks are
    ``params`` (hyperparameter round trip and declared types), ``protocols`` (declares one), per declared protocol
    ``fit-predict[p]`` (a firewalled view, ``fit`` returns self, one finite score in [0, 1] per pair, an
    IC50 per pair when regression is declared, a pure ``predict``), ``determinism[p]`` (two fits with one
    seed agree) and ``leak-test[p]`` (scrambling every held-out label changes no prediction), and
    ``unsupported-protocol`` (a clear error). Each check can run alone; the fit of a protocol is shared by
    its three checks. Nothing is computed until a check runs.
    """
    name = getattr(cls, "name", "") or getattr(cls, "__name__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        _fail(name, "type", "must be a subclass of drbench.methods.Method")
    params = {**cls.fast_params(), **(params or {})}
    kinds = [p for p in (protocols or PROTOCOL_KINDS) if supports(cls, p)]
    ctx = {"profile": "check"}

    @functools.lru_cache(maxsize=None)
    def data():
        return tiny_dataset(seed)

    @functools.lru_cache(maxsize=None)
    def first_fit(protocol):
        """(dataset, fold, query, prediction) of one fit on the protocol's first fold, checked on the way."""
        ds, folds = _folds(protocol, *data(), seed)
        fold = folds[0]
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
        return ds, fold, q, m, m.predict(q)

    def check_params():
        est = cls(**params)
        got = est.get_params()
        for k, v in params.items():
            if k not in got or got[k] is not v and got[k] != v:
                _fail(name, "get_params", f"hyperparameter {k!r} is not stored under its own name")
        cls(**got)
        try:
            check_param_types(cls, got)
        except UsageError as e:
            _fail(name, "param types", f"a default or fast_params value does not have its declared type: {e}")

    def check_protocols():
        if not kinds:
            _fail(name, "capabilities", "declares no protocol")

    def check_fit_predict(protocol):
        _, _, q, m, p1 = first_fit(protocol)
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
        if not np.array_equal(p1.score, m.predict(q).score):
            _fail(name, "pure predict", f"{protocol}: predict() gave different scores on a second call")

    def check_determinism(protocol):
        ds, fold, _, _, p1 = first_fit(protocol)
        p2, *_ = fit_predict(cls(**params), ds, fold, seed=seed, context=ctx)
        if not np.allclose(p1.score, p2.score, rtol=1e-5, atol=1e-6):
            _fail(name, "determinism", f"{protocol}: two fits with seed {seed} differ "
                  f"(max |diff| {np.abs(p1.score - p2.score).max():.3g})")

    def check_leak(protocol):
        ds, fold, _, _, p1 = first_fit(protocol)
        scrambled = _scramble(ds, fold, np.random.default_rng(seed + 1))
        p3, *_ = fit_predict(cls(**params), scrambled, fold, seed=seed, context=ctx)
        if not np.allclose(p1.score, p3.score, rtol=1e-5, atol=1e-6):
            _fail(name, "leak test", f"{protocol}: scrambling held-out labels changed predictions "
                  f"(max |diff| {np.abs(p1.score - p3.score).max():.3g})")
        if p1.ic50 is not None and not np.allclose(p1.ic50, p3.ic50, rtol=1e-5, atol=1e-6):
            _fail(name, "leak test", f"{protocol}: scrambling held-out labels changed IC50 predictions")

    def check_unsupported():
        unsupported = [p for p in PROTOCOL_KINDS if not supports(cls, p)] or ["no-such-protocol"]
        ds, folds = _folds("random", *data(), seed)
        view = build_train_view(ds, folds[0], cls.capabilities, seed=seed,
                                context={"protocol": unsupported[0], "profile": "check"})
        try:
            cls(**params).fit(view)
        except UnsupportedProtocolError as e:
            if unsupported[0] not in str(e):
                _fail(name, "unsupported protocol", f"the error does not name the protocol: {e}")
        else:
            _fail(name, "unsupported protocol", f"fit() accepted protocol {unsupported[0]!r}")

    yield "params", check_params
    yield "protocols", check_protocols
    for protocol in kinds:
        yield f"fit-predict[{protocol}]", functools.partial(check_fit_predict, protocol)
        yield f"determinism[{protocol}]", functools.partial(check_determinism, protocol)
        yield f"leak-test[{protocol}]", functools.partial(check_leak, protocol)
    yield "unsupported-protocol", check_unsupported


def check_method(cls, params: dict | None = None, protocols=None, seed: int = 0) -> dict:
    """Run every check of :func:`method_checks` on method class ``cls``, in order.

    Returns ``{"method": name, "checks": [names of the checks passed]}``; raises :class:`MethodCheckError`
    on the first failure.
    """
    report = {"method": getattr(cls, "name", "") or getattr(cls, "__name__", repr(cls)), "checks": []}
    for check_name, check in method_checks(cls, params, protocols, seed):
        check()
        report["checks"].append(check_name)
    return report


def parametrize_with_checks(methods):
    """A pytest ``parametrize`` mark over every check of every method: one test per check, reported by name.

    ``methods`` holds method classes or ``(class, params)`` pairs; the test takes one argument, ``check``::

        @parametrize_with_checks([MyMethod])
        def test_conformance(check):
            check()
    """
    import pytest

    checks, ids = [], []
    for entry in methods:
        cls, params = entry if isinstance(entry, tuple) else (entry, None)
        label = getattr(cls, "name", "") or cls.__name__
        for check_name, check in method_checks(cls, params):
            checks.append(check)
            ids.append(f"{label}-{check_name}")
    return pytest.mark.parametrize("check", checks, ids=ids)
