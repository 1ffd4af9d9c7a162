"""The README's plugin example passes check_method and runs in a sweep."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from drbench.errors import UsageError
from drbench.registry import methods
from drbench.runner import SweepSpec, run_sweep
from drbench.testing import check_method

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin_example.py"


def test_plugin_example_registers_checks_and_runs():
    ns = runpy.run_path(str(EXAMPLE), run_name="plugin_example")
    try:
        cls = ns["NearestCell"]
        check_method(cls)
        rep = run_sweep(SweepSpec(methods="nearest-cell", protocol="random", dataset="synthetic", folds=[0],
                                  progress=False))
        assert rep.finished == 1 and rep.results[0].metrics["auc"] > 0.6
        with pytest.raises(UsageError, match="hyperparameter k expects int >= 1, got 0"):
            run_sweep(SweepSpec(methods="nearest-cell", protocol="random", dataset="synthetic", folds=[0],
                                progress=False, params={"nearest-cell": {"k": 0}}))
    finally:
        methods().remove("nearest-cell")
