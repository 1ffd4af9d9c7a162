"""Plugin registry and the conformance checker, including that the checker catches real faults."""

from __future__ import annotations

import numpy as np
import pytest

import drbench
import drbench.testing as testing
from drbench.api import Capabilities, Method, Prediction
from drbench.errors import UnsupportedProtocolError, UsageError
from drbench.registry import get_method, method_names, methods, resolve_methods
from drbench.testing import MethodCheckError, check_method, method_checks, parametrize_with_checks

NAIVE = ["global-mean", "drug-mean", "cell-mean", "mean-effects"]


def test_builtins_register_through_the_entry_point_group():
    for name in NAIVE:
        assert name in method_names()
        assert methods().provider(name) == "drbench"
        assert get_method(name).name == name


@parametrize_with_checks([get_method(name) for name in NAIVE])
def test_naive_baselines_conformance(check):
    check()


def test_check_method_runs_every_named_check_in_order():
    names = [name for name, _ in method_checks(get_method("mean-effects"), protocols=["random", "new-drug"])]
    assert names == ["params", "protocols", "fit-predict[random]", "determinism[random]", "leak-test[random]",
                     "fit-predict[new-drug]", "determinism[new-drug]", "leak-test[new-drug]", "unsupported-protocol"]
    report = check_method(get_method("mean-effects"), protocols=["random", "new-drug"])
    assert report == {"method": "mean-effects", "checks": names}


def test_unknown_method_lists_choices():
    with pytest.raises(UsageError, match="choose from: all, .*mean-effects"):
        resolve_methods("mean-effect")


def test_decorator_registers_a_script_method():
    @drbench.register("test-constant-drug")
    class ConstantDrug(Method):
        capabilities = Capabilities(protocols={"random"})

        def __init__(self, value: float = 0.5):
            self.value = value

        def fit(self, view):
            self.rate_ = np.nanmean(np.where(view.train, view.binary, np.nan), axis=0)
            return self

        def predict(self, query):
            return Prediction(np.nan_to_num(self.rate_[query.cols], nan=self.value))

    try:
        assert get_method("test-constant-drug") is ConstantDrug
        assert methods().provider("test-constant-drug") == "script"
        check_method(ConstantDrug)
    finally:
        methods().remove("test-constant-drug")


class _Memoriser(Method):
    """Predicts the labels it was given: perfect on any label that leaks into the view."""

    capabilities = Capabilities(protocols={"random"})

    def fit(self, view):
        self.b_ = np.nan_to_num(view.binary, nan=0.5)
        return self

    def predict(self, query):
        return Prediction(self.b_[query.rows, query.cols])


def test_leak_test_catches_a_harness_that_leaks(monkeypatch):
    check_method(_Memoriser)  # with the real firewall the memoriser is harmless
    import drbench.execution as execution
    from drbench import view as view_mod

    real = view_mod.build_train_view

    def leaky(dataset, fold, caps, **kw):
        v = real(dataset, fold, caps, **kw)
        object.__setattr__(v, "binary", dataset.binary.copy())  # test labels slip through
        return v

    monkeypatch.setattr(execution, "build_train_view", leaky)
    monkeypatch.setattr(testing, "build_train_view", leaky)
    with pytest.raises(MethodCheckError, match="firewall|leak test"):
        check_method(_Memoriser)


def test_checker_catches_nondeterminism_and_bad_ranges():
    class Noisy(_Memoriser):
        def fit(self, view):
            self.r_ = np.random.default_rng().random(view.shape)  # ignores the seed
            return self

        def predict(self, query):
            return Prediction(self.r_[query.rows, query.cols])

    with pytest.raises(MethodCheckError, match="determinism"):
        check_method(Noisy)

    class OutOfRange(_Memoriser):
        def predict(self, query):
            return Prediction(np.full(len(query), 2.0))

    with pytest.raises(MethodCheckError, match="outside \\[0, 1\\]"):
        check_method(OutOfRange)


def test_unsupported_protocol_is_a_clear_error():
    from drbench.datasets import make_synthetic
    from drbench.protocols import get_protocol
    from drbench.view import build_train_view

    ds = make_synthetic(n_cells=60, n_drugs=20)
    f = get_protocol("random").folds(ds, 0)[0]
    v = build_train_view(ds, f, _Memoriser.capabilities, context={"protocol": "new-drug"})
    with pytest.raises(UnsupportedProtocolError, match="does not support protocol 'new-drug'; it supports: random"):
        _Memoriser().fit(v)


def test_a_broken_plugin_is_reported_by_name(monkeypatch):
    from drbench.registry import Entry

    class BrokenEP:
        value = "nowhere:Thing"

        def load(self):
            raise ImportError("No module named 'nowhere'")

    reg = methods()
    reg._discover()
    monkeypatch.setitem(reg._entries, "broken", Entry("broken", "some-plugin", BrokenEP()))
    with pytest.raises(UsageError, match="plugin 'broken' from some-plugin failed to load: ImportError"):
        get_method("broken")
