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


def test_a_listening_address_that_is_no_dask_scheduler_is_one_line_not_a_hang(monkeypatch):
    """The TCP probe passes (something listens) but never answers dask's handshake, on which distributed's
    client waits forever: the pool gives up after HANDSHAKE_TIMEOUT_S with one line."""
    from drbench import workers
    from drbench.errors import UsageError

    monkeypatch.setattr(workers, "HANDSHAKE_TIMEOUT_S", 2)
    with socket.socket() as srv:  # accepts connections and never speaks dask's protocol
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        address = f"tcp://127.0.0.1:{srv.getsockname()[1]}"
        workers.check_backend("dask", address)  # reachable: the cheap check passes
        with pytest.raises(UsageError, match=f"dask scheduler {address} accepted a connection but did not answer "
                                             f"as a dask scheduler within 2 s"):
            workers.Pool("dask", 2, 1, address)


def test_scheduler_checks_before_any_work():
    from drbench.errors import UsageError
    from drbench.workers import check_backend

    check_backend("loky")  # no scheduler: nothing to check
    with pytest.raises(UsageError, match="give it with --backend dask or --backend ray"):
        check_backend("threading", "tcp://127.0.0.1:8786")
    with pytest.raises(UsageError, match="expected an address like tcp://HOST:8786, got 'tcp://host'"):
        check_backend("dask", "tcp://host")
    with pytest.raises(UsageError, match="expected an address like tcp://HOST:8786, got 'h:99999'"):
        check_backend("dask", "h:99999")
    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(UsageError, match=rf"dask scheduler 127.0.0.1:{free} did not accept a connection .*refused"):
        check_backend("dask", f"127.0.0.1:{free}")
