"""Where a sweep's jobs run: a pool with ``slots`` workers, one ``submit`` and one ``shutdown``.

Backends: ``sequential`` (in the driver), ``threading``, ``loky`` (processes on this machine, through joblib's
memmapping executor), ``dask`` (a local cluster, or ``scheduler``'s) and ``ray``. Every ``submit`` returns a
:class:`concurrent.futures.Future`, so the driver hands out one job at a time, when a worker is free.
A loky worker dies with its driver (Linux: ``PR_SET_PDEATHSIG``), and an interrupted driver kills its workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sys

from drbench.errors import UsageError

BACKENDS = ("loky", "threading", "sequential", "dask", "ray")
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
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
            try:
                from dask.distributed import Client
            except ImportError:
                raise UsageError("--backend dask needs the 'distributed' package: pip install 'drbench[dask]'") from None
            self._dask = Client(scheduler) if scheduler else Client(processes=True, n_workers=jobs,
                                                                    threads_per_worker=1)
            if scheduler:  # the cluster's own size, as joblib's n_jobs=-1 used it
                self._dask.wait_for_workers(1, timeout=60)
                self.slots = max(jobs, sum(w["nthreads"] for w in self._dask.scheduler_info()["workers"].values()))
            self._executor = self._dask.get_executor()
        elif backend == "ray":
            try:
                import ray
            except ImportError:
                raise UsageError("--backend ray needs the 'ray' package: pip install 'drbench[ray]'") from None
            if not ray.is_initialized():
                ray.init(address=scheduler) if scheduler else ray.init(num_cpus=jobs)
            self._ray_fn = ray.remote(_in_child)

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


__all__ = ["Pool", "BACKENDS", "die_with_parent"]
