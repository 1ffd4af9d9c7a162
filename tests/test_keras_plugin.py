"""The Keras example plugin (examples/keras-plugin) as seen from drbench's own test suite, where TensorFlow
is not installed: its packaging registers the method through the entry point, TensorFlow stays an optional
extra of the example (never a dependency of drbench), the module imports without TensorFlow, and fitting
without it fails with an error that says how to install it. The plugin's own tests (check_method, a
synthetic sweep) run in `tox -e keras`."""

from __future__ import annotations

import configparser
import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from drbench.api import Method
from drbench.errors import DrbenchError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "keras-plugin"


def test_packaging_registers_keras_mlp_and_keeps_tensorflow_optional():
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert meta["name"] == "drbench-keras-example"
    assert meta["entry-points"]["drbench.methods"] == {"keras-mlp": "drbench_keras_example:KerasMLP"}
    assert any(d.startswith("drbench") for d in meta["dependencies"])
    assert not any("tensorflow" in d or "keras" in d for d in meta["dependencies"])
    assert any(d.startswith("tensorflow-cpu") for d in meta["optional-dependencies"]["tensorflow"])
    own = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    every = own["dependencies"] + [d for ds in own.get("optional-dependencies", {}).values() for d in ds]
    assert not any("tensorflow" in d or d.startswith("keras") for d in every)


def test_tox_env_installs_the_plugin_with_tensorflow_and_the_constraints():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "tox.ini")
    env = cfg["testenv:keras"]
    deps = env["deps"]
    assert "-c {toxinidir}/constraints.txt" in deps and "examples/keras-plugin[tensorflow" in deps
    assert "pytest" in env["commands"] and env["changedir"].endswith("examples/keras-plugin")


@pytest.fixture
def plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    sys.modules.pop("drbench_keras_example", None)
    had_tf = "tensorflow" in sys.modules
    import drbench_keras_example as mod

    assert had_tf or "tensorflow" not in sys.modules  # TensorFlow is imported only when a model is fitted
    yield mod
    sys.modules.pop("drbench_keras_example", None)


def test_method_class_and_capabilities(plugin):
    cls = plugin.KerasMLP
    assert issubclass(cls, Method)
    caps = cls.capabilities.describe()
    assert caps == {"tasks": ["classification"], "protocols": ["random", "new-cell-line", "new-drug", "in-vivo"],
                    "transductive": False, "needs": ["expression", "fingerprint"], "selects": True}
    m = cls(**cls.fast_params())
    assert m.get_params()["epochs"] == cls.fast_params()["epochs"]


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed here")
def test_fit_without_tensorflow_says_how_to_install_it(plugin):
    from drbench.protocols import get_protocol
    from drbench.testing import tiny_dataset
    from drbench.view import build_train_view

    cells, _ = tiny_dataset(0)
    fold = get_protocol("random").folds(cells, 0, n_folds=5)[0]
    view = build_train_view(cells, fold, plugin.KerasMLP.capabilities, seed=0)
    with pytest.raises(DrbenchError, match=r"drbench-keras-example\[tensorflow\]"):
        plugin.KerasMLP(**plugin.KerasMLP.fast_params()).fit(view)
