"""The Keras example plugin: registered through its entry point, conformant (check_method), and usable in a
sweep from the drbench command line. Needs the package installed with its ``tensorflow`` extra
(``tox -e keras`` from the drbench checkout does that)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="install drbench-keras-example[tensorflow]")

from drbench.registry import get_method, methods  # noqa: E402
from drbench.testing import check_method, tiny_dataset  # noqa: E402


def test_registered_through_the_entry_point():
    from drbench_keras_example import KerasMLP

    assert get_method("keras-mlp") is KerasMLP
    assert methods().provider("keras-mlp") == "drbench-keras-example"
    caps = KerasMLP.capabilities.describe()
    assert caps["tasks"] == ["classification"] and caps["transductive"] is False
    assert caps["needs"] == ["expression", "fingerprint"] and caps["selects"] is True


def test_check_method_passes():
    report = check_method(get_method("keras-mlp"))
    # every declared protocol was checked (shapes, range, pure predict, determinism, leak test)
    protocols = ["random", "new-cell-line", "new-drug", "in-vivo"]
    assert [c for c in report["checks"] if c.startswith("leak-test")] == [f"leak-test[{p}]" for p in protocols]


def test_epochs_are_selected_on_valid_entries_only():
    from drbench.execution import fit_predict
    from drbench.protocols import get_protocol

    cells, _ = tiny_dataset(0)
    p = get_protocol("random")
    fold = p.folds(cells, 0, n_folds=5)[0]
    cls = get_method("keras-mlp")
    params = {**cls.fast_params(), "epochs": 6, "patience": 100}
    model = cls(**params)
    pred = fit_predict(model, cells, fold, seed=0, context={})[0]
    info = model.fit_info_
    assert info["epochs_run"] == 6 and 1 <= info["best_epoch"] <= 6
    assert np.isfinite(info["valid_value_best"])
    # another seed gives another model
    pred2 = fit_predict(cls(**params), cells, fold, seed=1, context={})[0]
    assert not np.allclose(pred.score, pred2.score)


def test_short_synthetic_sweep_from_the_command_line(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    cmd = [sys.executable, "-m", "drbench.cli", "run", "--methods", "keras-mlp", "--protocol", "random",
           "--dataset", "synthetic", "--folds", "0", "--set", "keras-mlp.epochs=4", "-q"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "board.md"
    r = subprocess.run([sys.executable, "-m", "drbench.cli", "leaderboard", "--out", str(out)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    board = out.read_text()
    assert "keras-mlp" in board
