"""Where a sweep's jobs run: a pool with ``slots`` workers, one ``submit`` and one ``shutdown``.

Backends: ``sequential`` (in the driver), ``threading``, ``loky`` (processes on this machine, through joblib's
memmapping executor), ``dask`` (a local cluster, or ``scheduler``'s) and ``ray``. Every ``submit`` returns a
:class:`concurrent.futures.Future`, so the driver hands out one job at a time, when a worker is free.
A loky worker dies with its driver (Linux: ``PR_SET_PDEATHSIG``), and an interrupted driver kills its workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import os
import re
import signal
import socket
import sys
import threading

from drbench.errors import UsageError

BACKENDS = ("loky", "threading", "sequential", "dask", "ray")
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_PACKAGES = {"dask": ("distributed", "drbench[dask]"), "ray": ("ray", "drbench[ray]")}  # backend: (module, extra)
CONNECT_TIMEOUT_S = 5  # how long the check waits for a --scheduler address to accept a connection
HANDSHAKE_TIMEOUT_S = 15  # how long a dask scheduler may take to answer a new client
WORKERS_TIMEOUT_S = 60  # how long a dask scheduler may take to show its first worker
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})/?$")


def check_backend(backend: str, scheduler: str | None = None, probe: bool = True) -> None:
    """A backend and ``--scheduler`` checked before any data is read: a known backend, its package installed, a
    scheduler address only where the backend takes one, and (``probe``) that address accepting a TCP connection
    within :data:`CONNECT_TIMEOUT_S`. Raises :class:`UsageError` with one line."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend: unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend in _PACKAGES:
        module, extra = _PACKAGES[backend]
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"--backend {backend} needs the {module!r} package: pip install '{extra}'")
    if scheduler is None:
        return
    if backend not in _PACKAGES:
        raise UsageError(f"--scheduler is the address of a dask scheduler or a ray cluster: give it with --backend "
                         f"dask or --backend ray (got --backend {backend})")
    if backend == "ray" and scheduler in ("auto", "local"):  # ray's own words for "find it" and "start one"
        return
    m = _ADDRESS.match(scheduler.strip())
    if m is None or not 0 < int(m["port"]) < 65536:
        example = "tcp://HOST:8786" if backend == "dask" else "ray://HOST:10001, HOST:6379 or auto"
        raise UsageError(f"--scheduler: expected an address like {example}, got {scheduler!r}")
    if not probe:
        return
    host = m["host"].strip("[]")
    try:
        socket.create_connection((host, int(m["port"])), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__).lower()
        raise UsageError(f"{backend} scheduler {scheduler} did not accept a connection within {CONNECT_TIMEOUT_S} s "
                         f"({why}): is it running and reachable? (--scheduler)") from None


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent (the driver) dies. Linux only; a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the driver died before the call
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _in_child(fn, *args):
    die_with_parent()
    return fn(*args)


class Pool:
    """``slots`` workers of one backend; see the module docstring."""

    def __init__(self, backend: str, jobs: int, threads: int, scheduler: str | None = None):
        check_backend(backend, scheduler, probe=False)  # the sweep probed it; the client below says why it fails
        if jobs < 1:
            raise UsageError(f"--jobs must be 1 or more, got {jobs}")
        if backend in ("loky", "threading") and jobs == 1:
            backend = "sequential"
        self.backend, self.jobs, self.threads, self.slots = backend, jobs, threads, jobs
        self._executor, self._dask, self._ray_fn = None, None, None
        if backend == "sequential":
            self.slots = 1
        elif backend == "threading":
            self._executor = cf.ThreadPoolExecutor(jobs, thread_name_prefix="drbench-job")
        elif backend == "dask":
            from dask.distributed import Client
            if scheduler:
                self._dask = self._dask_client(Client, scheduler)
                # the cluster's own size, as joblib's n_jobs=-1 used it
                self.slots = max(jobs, sum(w["nthreads"] for w in self._dask.scheduler_info()["workers"].values()))
            else:
                self._dask = Client(processes=True, n_workers=jobs, threads_per_worker=1)
            self._executor = self._dask.get_executor()
        elif backend == "ray":
            import ray
            if not ray.is_initialized():
                try:
                    ray.init(address=scheduler) if scheduler else ray.init(num_cpus=jobs)
                except ConnectionError as e:  # the address answered a TCP connection but is no ray cluster
                    why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                    raise UsageError(f"ray cluster {scheduler} cannot be used: {why} (--scheduler)") from None
            self._ray_fn = ray.remote(_in_child)

    @staticmethod
    def _dask_client(Client, scheduler: str):
        """A client of the dask scheduler at ``scheduler`` with at least one worker; :class:`UsageError` (one line)
        when it does not answer as a scheduler within :data:`HANDSHAKE_TIMEOUT_S` or shows no worker within
        :data:`WORKERS_TIMEOUT_S`. distributed waits forever on an address that accepts connections but never
        answers its handshake, so the client is made in a daemon thread that is given up on after the timeout."""
        box: dict = {}

        def connect():
            try:
                box["client"] = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
            except BaseException as e:  # handed to the caller below
                box["error"] = e

        thread = threading.Thread(target=connect, name="drbench-dask-connect", daemon=True)
        thread.start()
        thread.join(HANDSHAKE_TIMEOUT_S)
        if thread.is_alive():
            raise UsageError(f"dask scheduler {scheduler} accepted a connection but did not answer as a dask scheduler "
                             f"within {HANDSHAKE_TIMEOUT_S} s: is it the scheduler's address? (--scheduler)")
        error = box.get("error")
        if isinstance(error, (OSError, TimeoutError)):
            why = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise UsageError(f"dask scheduler {scheduler} cannot be used: {why} (--scheduler)") from None
        if error is not None:
            raise error
        client = box["client"]
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except TimeoutError:
            client.close()
            raise UsageError(f"dask scheduler {scheduler} has no worker after {WORKERS_TIMEOUT_S} s: start one "
                             f"(dask worker {scheduler}) or leave --scheduler out for a local cluster") from None
        return client

    def _loky(self):
        from joblib.executor import get_memmapping_executor

        # reused while alive, replaced when a worker crashed; numpy arrays are shared by memory map as joblib does
        self._executor = get_memmapping_executor(self.jobs, env={k: str(self.threads) for k in _THREAD_ENV})
        return self._executor

    @property
    def in_process(self) -> bool:
        """Whether :meth:`submit` runs the job in this process, to its end (the sequential backend)."""
        return self.backend == "sequential"

    def submit(self, fn, *args) -> cf.Future:
        if self.backend == "sequential":
            future = cf.Future()
            try:
                future.set_result(fn(*args))
            except Exception as e:
                future.set_exception(e)
            return future
        if self.backend == "loky":
            return self._loky().submit(_in_child, fn, *args)
        if self.backend == "ray":
            return self._ray_fn.remote(fn, *args).future()
        return self._executor.submit(fn, *args)

    def shutdown(self, kill: bool = False) -> None:
        """Release the workers; ``kill`` stops running jobs too (loky workers are killed)."""
        if self.backend == "loky" and kill and self._executor is not None:
            self._executor.shutdown(wait=True, kill_workers=True)
        elif self.backend == "threading":
            self._executor.shutdown(wait=not kill, cancel_futures=True)
        elif self._dask is not None:
            self._dask.close()


__all__ = ["Pool", "BACKENDS", "check_backend", "die_with_parent"]
