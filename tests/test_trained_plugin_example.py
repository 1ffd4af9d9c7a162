"""The README's trained plugin example (a torch MLP on the training kit) passes every check and learns."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from drbench.execution import run_job
from drbench.registry import methods
from drbench.runner import SweepSpec, prepare
from drbench.testing import parametrize_with_checks

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "trained_plugin_example.py"
PairMLP = runpy.run_path(str(EXAMPLE), run_name="trained_plugin_example")["PairMLP"]
methods().remove("pair-mlp")  # loading the example registered it; the tests use the class itself

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_is_under_60_lines():
    assert len(EXAMPLE.read_text().splitlines()) < 60


@parametrize_with_checks([PairMLP])
def test_conformance(check):
    check()


def test_learns_both_heads_with_validation_early_stopping():
    spec = SweepSpec(methods="global-mean", protocol="random", dataset="synthetic", folds=[0])
    _, _, _, dataset, _, folds = prepare(spec)
    res = run_job(PairMLP, {"epochs": 5, "patience": 2}, dataset, folds[0][0], seed=0, keep_predictions=False)
    assert res.status == "finished" and res.metrics["auc"] > 0.7 and res.metrics["pcc"] > 0.5
    assert res.fit_info["selected_on_valid"] == 1 and 1 <= res.fit_info["best_epoch"] <= res.fit_info["epochs_run"]
