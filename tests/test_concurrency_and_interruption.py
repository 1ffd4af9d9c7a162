"""Many drivers on one store, interrupted drivers, script methods in workers, an unreachable store.

Real second processes are ``drbench run`` started through a small script (``SCRIPT``) that registers a
method with ``@drbench.register`` and can wait for a go signal, so that two drivers start their sweeps at
the same moment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest

from drbench import claims, tracking
from drbench.runner import SweepSpec, plan_sweep, run_sweep

SCRIPT = '''
import os, sys, time
import numpy as np
import drbench
from drbench.api import Capabilities, Method, Prediction


@drbench.register("script-mean")
class ScriptMean(Method):
    """Drug-blind mean response; sleeps $SLOW_SECONDS in fit and leaves its pid in $PID_DIR."""

    capabilities = Capabilities(protocols={"random"})

    def fit(self, view):
        if os.environ.get("PID_DIR"):
            open(os.path.join(os.environ["PID_DIR"], str(os.getpid())), "w").close()
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
        self.p_ = float(np.nanmean(np.where(view.train, view.binary, np.nan)))
        return self

    def predict(self, query):
        return Prediction(np.full(len(query), self.p_))


if __name__ == "__main__":
    go = os.environ.get("GO_FILE")
    if go:  # say we are ready, then wait for the test to start every driver at once
        open(f"{go}.ready.{os.getpid()}", "w").close()
        while not os.path.exists(go):
            time.sleep(0.02)
    from drbench.cli import main

    sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture()
def script(tmp_path):
    path = tmp_path / "sweep_script.py"
    path.write_text(SCRIPT)
    return path


def _default_sigint():
    # a driver started by a process that ignores SIGINT (pytest run as a shell's background job) would inherit that
    # and never see the test's Ctrl-C; start it as a terminal would
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _driver(script, args, **env):
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, str(script), "run", "--protocol", "random", "-q", *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _runs(kind="job"):
    c = tracking.client()
    exp = tracking.experiment_id(c, "drbench", create=False)
    return c, c.search_runs([exp], filter_string=f"tags.`drbench.kind` = '{kind}'", max_results=5000)


def _start_together(script, tmp_path, args, n=2, **env):
    go = tmp_path / "go"
    procs = [_driver(script, args, GO_FILE=go, **env) for _ in range(n)]
    deadline = time.time() + 180
    while len(list(tmp_path.glob("go.ready.*"))) < n and time.time() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    go.touch()
    return [_finish(p) for p in procs]


def _assert_each_job_finished_once(n_jobs):
    _, runs = _runs()
    finished = Counter(r.data.tags["drbench.job_key"] for r in runs if r.info.status == "FINISHED")
    assert len(finished) == n_jobs and set(finished.values()) == {1}, finished
    assert not [r for r in runs if r.info.status == "RUNNING"]


SWEEP = ["--methods", "script-mean,drug-mean,mean-effects", "--folds", "0-3"]  # 12 jobs


def test_two_drivers_on_a_fresh_sqlite_store_run_each_job_once(script, tmp_path):
    results = _start_together(script, tmp_path, SWEEP, SLOW_SECONDS=0.2)
    for rc, out, err in results:
        assert rc == 0, err
    _assert_each_job_finished_once(12)
    shared = sum(int(out.split(" run by another driver")[0].rsplit(", ", 1)[1]) if "another driver" in out else 0
                 for _, out, _ in results)
    finished_now = sum(int(out.split(" finished now")[0].rsplit(", ", 1)[1]) for _, out, _ in results)
    assert finished_now == 12 and shared >= 1  # the drivers split the jobs; each saw some the other ran


def test_two_drivers_on_an_existing_store_run_each_job_once(script, tmp_path):
    c = tracking.client()
    tracking.experiment_id(c, "drbench")  # the store and the experiment exist before the drivers start
    results = _start_together(script, tmp_path, SWEEP, SLOW_SECONDS=0.2)
    for rc, _, err in results:
        assert rc == 0, err
    _assert_each_job_finished_once(12)


def test_a_stale_claim_is_taken_over_and_a_live_one_is_left_to_its_driver():
    spec = SweepSpec(methods="drug-mean", protocol="random", folds=[0, 1], progress=False)
    stale_job, live_job = plan_sweep(spec).jobs
    c = tracking.client()
    exp = tracking.experiment_id(c, "drbench")

    def claim_left_by_another_driver(job, lease_until):
        return c.create_run(exp, tags={"drbench.kind": "job", "drbench.job_key": job.key,
                                       claims.LEASE: str(lease_until)}).info.run_id

    stale = claim_left_by_another_driver(stale_job, time.time() - 5)
    live = claim_left_by_another_driver(live_job, time.time() + 600)
    rep = run_sweep(spec)
    assert (rep.finished, rep.claimed_elsewhere) == (1, 1)
    dead = c.get_run(stale)
    assert dead.info.status == "KILLED" and "lease" in dead.data.tags[claims.KILLED_REASON]
    assert c.get_run(live).info.status == "RUNNING"  # another driver's job: not run twice, not killed
    _, runs = _runs()
    done = [r for r in runs if r.info.status == "FINISHED"]
    assert [r.data.tags["drbench.job_key"] for r in done] == [stale_job.key]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _wait_for_pids(pid_dir, n, proc):
    deadline = time.time() + 180
    while len(list(pid_dir.iterdir())) < n and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    pids = [int(p.name) for p in pid_dir.iterdir()]
    assert len(pids) >= n, proc.communicate()[1]
    return pids


def _gone(pids) -> bool:
    deadline = time.time() + 60  # the kernel and loky need a moment; a worker alive after a minute is a leak
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    return not any(_alive(p) for p in pids)


SLOW = ["--methods", "script-mean", "--folds", "0-3", "--jobs", "2"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker clean-up is checked through /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_driver_marks_its_runs_killed_and_stops_its_workers(script, tmp_path, sig):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    proc = _driver(script, SLOW, PID_DIR=pid_dir, SLOW_SECONDS=120)
    workers = _wait_for_pids(pid_dir, 2, proc)
    proc.send_signal(sig)
    rc, _, err = _finish(proc, timeout=120)
    assert rc == 130 and "interrupted" in err and "Traceback" not in err, err
    assert _gone(workers)
    _, jobs = _runs()
    _, sweeps = _runs("sweep")
    assert {r.info.status for r in jobs} == {"KILLED"} and len(jobs) == 2  # the two jobs in flight
    assert [r.info.status for r in sweeps] == ["KILLED"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_after_sigkill_workers_die_and_the_next_run_marks_the_stale_runs_and_finishes(script, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    lease = 2
    proc = _driver(script, SLOW, PID_DIR=pid_dir, SLOW_SECONDS=120, DRBENCH_LEASE_SECONDS=lease)
    workers = _wait_for_pids(pid_dir, 2, proc)
    proc.kill()
    proc.wait(timeout=60)
    assert _gone(workers)
    _, jobs = _runs()
    assert {r.info.status for r in jobs} == {"RUNNING"}  # what a dead driver leaves behind
    time.sleep(lease + 0.5)  # let its leases expire
    rc, _, err = _finish(_driver(script, SLOW, SLOW_SECONDS=0, DRBENCH_LEASE_SECONDS=lease))
    assert rc == 0, err
    _assert_each_job_finished_once(4)
    c, jobs = _runs()
    _, sweeps = _runs("sweep")
    killed = [r for r in jobs + sweeps if r.info.status == "KILLED"]
    assert len(killed) == 3 and all("lease" in r.data.tags[claims.KILLED_REASON] for r in killed)
    assert sorted(r.info.status for r in sweeps) == ["FINISHED", "KILLED"]


def test_a_decorator_registered_method_runs_in_loky_workers(script):
    rc, out, err = _finish(_driver(script, ["--methods", "script-mean", "--folds", "0,1", "--jobs", "2"]))
    assert rc == 0, err
    assert "2 finished now, 0 failed" in out
    _, runs = _runs()
    assert {r.data.tags["drbench.method_path"] for r in runs} == {"__main__:ScriptMean"}


def test_repeated_fold_and_seed_numbers_run_once():
    rep = run_sweep(SweepSpec(methods="drug-mean", protocol="random", folds=[0, 0, 2], seeds=[1, 1],
                              progress=False))
    assert (rep.planned, rep.finished) == (2, 2)
    _, runs = _runs()
    assert sorted(r.data.tags["drbench.fold"] for r in runs) == ["0", "2"]


def test_an_unreachable_tracking_server_is_one_clear_line(script):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    rc, out, err = _finish(_driver(script, ["--methods", "drug-mean", "--folds", "0", "--tracking-uri",
                                            f"http://127.0.0.1:{port}"]), timeout=120)
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("drbench: error: tracking server"), err


def test_jobs_run_fold_by_fold_cheapest_recorded_method_first():
    from types import SimpleNamespace

    from drbench.runner import fold_major

    jobs = [SimpleNamespace(method=m, seed=s, fold_pos=f) for m in ("slow", "new", "fast") for s in (3, 1)
            for f in (0, 1)]
    order = [(j.seed, j.fold_pos, j.method) for j in fold_major(jobs, {"slow": 9.0, "fast": 0.1})]
    assert order == [(s, f, m) for s in (3, 1) for f in (0, 1) for m in ("fast", "slow", "new")]
    seen = []
    run_sweep(SweepSpec(methods="drug-mean,mean-effects", protocol="random", folds=[0, 1], progress=False),
              on_result=lambda job, res: seen.append((job.fold_pos, job.method)))
    assert seen == [(0, "drug-mean"), (0, "mean-effects"), (1, "drug-mean"), (1, "mean-effects")]


@pytest.fixture()
def sigint(request):
    """SIGINT handled as ``request.param`` says for the test (Python's default as in a terminal, or ignored as in a
    shell's background job), whatever the process started pytest with; restored afterwards."""
    before = signal.signal(signal.SIGINT, getattr(request, "param", signal.default_int_handler))
    yield
    signal.signal(signal.SIGINT, before)


def test_a_signal_during_library_code_is_raised_after_it_returns(monkeypatch, sigint):
    # Raised in the middle of concurrent.futures / loky / MLflow code, an interrupt can leave a lock held that the
    # cleanup then waits for forever; the driver raises it only once that code has returned.
    real_claim, after_signal = claims.claim, []

    def claim_interrupted_midway(*args, **kwargs):
        outcome = real_claim(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        after_signal.append(outcome[0])  # still inside the library call: the signal must not be raised here
        return outcome

    monkeypatch.setattr(claims, "claim", claim_interrupted_midway)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(SweepSpec(methods="drug-mean", protocol="random", folds=[0, 1], progress=False))
    restored = signal.getsignal(signal.SIGINT)
    assert after_signal == [claims.WON]  # one claim, completed; no job started after the signal
    _, jobs = _runs()
    _, sweeps = _runs("sweep")
    assert [r.info.status for r in jobs] == ["KILLED"] and [r.info.status for r in sweeps] == ["KILLED"]
    assert restored is signal.default_int_handler  # the sweep's handlers are removed


def test_a_signal_during_a_job_run_in_the_drivers_process_stops_it_at_once(monkeypatch, sigint):
    from drbench.registry import get_method

    cls, reached = get_method("drug-mean"), []
    real_fit = cls.fit

    def fit_interrupted(self, view):
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("after the signal")  # the sequential backend fits in the driver: interrupted before this
        return real_fit(self, view)

    monkeypatch.setattr(cls, "fit", fit_interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(SweepSpec(methods="drug-mean", protocol="random", folds=[0, 1], backend="sequential",
                            progress=False))
    assert reached == []
    _, jobs = _runs()
    assert [r.info.status for r in jobs] == ["KILLED"]


@pytest.mark.parametrize("sigint", [signal.SIG_IGN], indirect=True)
def test_a_driver_started_ignoring_sigint_keeps_ignoring_it(monkeypatch, sigint):
    real_claim = claims.claim

    def claim_then_ctrl_c(*args, **kwargs):
        outcome = real_claim(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return outcome

    monkeypatch.setattr(claims, "claim", claim_then_ctrl_c)
    rep = run_sweep(SweepSpec(methods="drug-mean", protocol="random", folds=[0, 1], progress=False))
    assert (rep.finished, rep.interrupted) == (2, False)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
