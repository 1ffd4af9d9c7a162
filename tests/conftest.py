"""Shared fixtures: a temp MLflow store for every test, and the real data bundle when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DRBENCH_DATA") or (REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _mlflow_tmp(tmp_path_factory, monkeypatch):
    """Every test gets its own MLflow sqlite store; nothing is written to the working directory."""
    d = tmp_path_factory.mktemp("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{d}/mlflow.db")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    yield


@pytest.fixture()
def one_torch_thread():
    """Tiny problems: one intra-op thread avoids OpenMP barrier waits on a busy 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "gdsc").is_dir():
        pytest.skip(f"real data bundle not found at {DATA} (set DRBENCH_DATA)")
    return DATA


@pytest.fixture(scope="session")
def gdsc(data_dir):
    from drbench.datasets import load_dataset

    return load_dataset("gdsc", data_dir)


@pytest.fixture(scope="session")
def ccle(data_dir):
    from drbench.datasets import load_dataset

    return load_dataset("ccle", data_dir)
