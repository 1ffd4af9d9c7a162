"""Sweeps beyond one process: a dask LocalCluster on loopback and a shared MLflow tracking server.

Both are started by the test on 127.0.0.1 and stopped by it; every job must arrive exactly once, and
resume must work through the server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import pytest

from drbench import tracking
from drbench.runner import SweepSpec, run_sweep

distributed = pytest.importorskip("distributed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def mlflow_server(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited at start")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not answer within 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_dask_cluster_and_tracking_server_log_every_job_exactly_once(mlflow_server):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        spec = SweepSpec(methods="drug-mean,mean-effects", protocol="random", dataset="synthetic", progress=False,
                         jobs=2, backend="dask", scheduler=cluster.scheduler_address, tracking_uri=mlflow_server,
                         experiment="remote")
        rep = run_sweep(spec)
        assert (rep.planned, rep.finished, rep.failed) == (10, 10, 0)
        c = tracking.client(mlflow_server)
        exp = tracking.experiment_id(c, "remote", create=False)
        runs = tracking.search_job_runs(c, [exp])
        keys = Counter(r.data.tags["drbench.job_key"] for r in runs)
        assert len(keys) == 10 and set(keys.values()) == {1}
        assert tracking.load_predictions(c, runs[0].info.run_id).shape[0] > 0  # artifacts went to the server
        again = run_sweep(spec)
        assert (again.skipped_done, again.finished) == (10, 0)


def test_local_dask_backend_without_a_scheduler_address():
    rep = run_sweep(SweepSpec(methods="mean-effects", protocol="random", dataset="synthetic", progress=False,
                              jobs=2, backend="dask", folds=[0, 1]))
    assert rep.finished == 2


def test_ray_backend_when_installed():
    pytest.importorskip("ray")
    rep = run_sweep(SweepSpec(methods="mean-effects", protocol="random", dataset="synthetic", progress=False,
                              jobs=2, backend="ray", folds=[0, 1]))
    assert rep.finished == 2
