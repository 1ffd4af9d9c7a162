"""Job claims in the tracking store: any number of drivers sharing one store run each job once.

A driver claims a job just before it dispatches it, when a worker is free:

1. it looks at the job's runs (same ``drbench.job_key``): a FINISHED run (or one that FAILED since this sweep
   began) means *done*; a RUNNING run whose lease has not expired means *taken* by another driver; a RUNNING
   run whose lease expired was left by a driver that died, and is marked KILLED (``drbench.killed_reason``);
2. otherwise it creates the job's run, RUNNING, tagged with the job key and a lease expiry
   (``drbench.lease_until``, epoch seconds), and looks again: if any other live or done run of the job is
   there now, it deletes its own claim and tries again later (*contended*); else the job is its own.

Two drivers cannot both win: the one whose second look came later sees the other's claim, which was stored
before the other's look. When both see each other, both step back and retry after a random wait.

The driver renews the leases of its RUNNING runs (jobs in flight and the sweep run) from a heartbeat thread;
a lease lasts ``DRBENCH_LEASE_SECONDS`` (default 300) and is renewed every third of that. Drivers on several
machines compare leases by their own clocks, so clocks must agree to well within a lease.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from drbench.errors import UsageError
from drbench.tracking import TAG, search_job_runs

log = logging.getLogger("drbench.claims")

LEASE_ENV = "DRBENCH_LEASE_SECONDS"
DEFAULT_LEASE_S = 300.0
LEASE = f"{TAG}lease_until"
KILLED_REASON = f"{TAG}killed_reason"
EXPIRED = "its driver stopped renewing the lease (killed, or lost its connection to the store)"

WON, DONE, TAKEN, CONTENDED = "won", "done", "taken", "contended"


def lease_seconds() -> float:
    """The lease length: ``$DRBENCH_LEASE_SECONDS`` or 300 s."""
    text = os.environ.get(LEASE_ENV, "")
    if not text:
        return DEFAULT_LEASE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"{LEASE_ENV}={text!r}: expected a positive number of seconds")
    return value


def lease_tag(lease_s: float) -> dict:
    return {LEASE: f"{time.time() + lease_s:.3f}"}


def _lease_alive(run, now: float) -> bool:
    try:
        return float(run.data.tags.get(LEASE, "")) > now
    except ValueError:  # no lease: a run from a drbench that did not claim; RUNNING means it was abandoned
        return False


def kill(c, run_id: str, reason: str) -> None:
    """Mark a run KILLED and say why."""
    c.set_tag(run_id, KILLED_REASON, reason)
    c.set_terminated(run_id, "KILLED")


def claim(c, exp_id: str, key: str, tags: dict, lease_s: float, since_ms: int, force: bool = False,
          on_create=None, on_delete=None):
    """Try to claim job ``key``: returns ``(outcome, run_id)``, the run id only when the outcome is ``WON``.

    ``tags`` are set on the claimed run (they must include ``drbench.kind`` and ``drbench.job_key``).
    ``on_create(run_id)`` / ``on_delete(run_id)`` are called as soon as the claim run is created / deleted, so
    that a driver interrupted in between still knows which run to mark KILLED.
    FINISHED runs count as done unless ``force``, then only those started at or after ``since_ms``
    (the sweep's start, epoch ms); FAILED runs count as done only when started at or after ``since_ms``.
    """
    def done(r) -> bool:
        if r.info.status == "FINISHED":
            return not force or r.info.start_time >= since_ms
        return r.info.status == "FAILED" and r.info.start_time >= since_ms

    def job_runs():
        return search_job_runs(c, [exp_id], status=None, extra=f"tags.`{TAG}job_key` = '{key}'")

    now = time.time()
    for r in job_runs():
        if done(r):
            return DONE, None
        if r.info.status == "RUNNING":
            if _lease_alive(r, now):
                return TAKEN, None
            log.warning("job %s: run %s was left RUNNING by a dead driver; marking it KILLED", key, r.info.run_id)
            kill(c, r.info.run_id, EXPIRED)
    mine = c.create_run(exp_id, tags={**{k: str(v) for k, v in tags.items()}, **lease_tag(lease_s)}).info.run_id
    if on_create is not None:
        on_create(mine)
    now = time.time()
    others = [r for r in job_runs() if r.info.run_id != mine
              and (done(r) or (r.info.status == "RUNNING" and _lease_alive(r, now)))]
    if not others:
        return WON, mine
    c.delete_run(mine)
    if on_delete is not None:
        on_delete(mine)
    return (DONE if any(done(r) for r in others) else CONTENDED), None


def kill_stale_runs(c, exp_id: str) -> int:
    """Mark KILLED every RUNNING run (job or sweep) of the experiment whose lease expired; returns how many."""
    now, n, token = time.time(), 0, None
    while True:
        page = c.search_runs([exp_id], filter_string="attributes.status = 'RUNNING'", max_results=1000,
                             page_token=token)
        for r in page:
            if not _lease_alive(r, now):
                kill(c, r.info.run_id, EXPIRED)
                n += 1
        token = page.token
        if not token:
            break
    if n:
        log.warning("marked %d run(s) KILLED that a dead driver had left RUNNING", n)
    return n


class Heartbeat:
    """A daemon thread renewing the leases of a driver's RUNNING runs every third of the lease.

    ``runs`` is read under ``lock``: the driver adds a run when it claims it and removes it when it ends it.
    """

    def __init__(self, c, lease_s: float):
        self.c, self.lease_s = c, lease_s
        self.runs: set[str] = set()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="drbench-heartbeat", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=self.lease_s)
        return False

    def _beat(self):
        while not self._stop.wait(self.lease_s / 3):
            with self.lock:
                ids = list(self.runs)
            for rid in ids:
                try:
                    self.c.set_tag(rid, LEASE, lease_tag(self.lease_s)[LEASE])
                except Exception as e:  # a store hiccup: the next beat tries again, well within the lease
                    log.warning("could not renew the lease of run %s: %s", rid, e)


__all__ = ["claim", "kill", "kill_stale_runs", "lease_seconds", "Heartbeat", "WON", "DONE", "TAKEN", "CONTENDED"]
