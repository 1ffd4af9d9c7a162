"""Bad user input is refused before any work starts (one line, exit status 2), hyperparameters are checked against
their declared types, devices are checked, and one run context reaches both ``defaults_for`` and ``fit``."""

from __future__ import annotations

import csv
import json
import re
import typing
from pathlib import Path

import numpy as np
import pytest

import drbench
from drbench import tracking
from drbench.api import Capabilities, Method, Prediction, supports
from drbench.cli import main
from drbench.context import RunContext
from drbench.errors import UnsupportedProtocolError, UsageError
from drbench.inputs import check_device
from drbench.params import (DropoutRate, Mismatch, NonNegativeFloat, PositiveFloat, PositiveInt, Range, UnitInterval,
                            check_params, coerce, declared_types, describe)
from drbench.protocols import Protocol, get_protocol
from drbench.registry import get_method, methods, protocols
from drbench.runner import SweepSpec, job_key, key_params, method_params, plan_sweep, run_sweep

REPO = Path(__file__).resolve().parents[1]
RUN = ["run", "--methods", "global-mean", "--protocol", "random", "--dataset", "synthetic", "-q"]


def _run(method="global-mean", protocol="random"):
    return ["run", "--methods", method, "--protocol", protocol, "--dataset", "synthetic", "-q"]


# every class of bad input: (argv, a fragment the one error line must hold: the valid range or choices)
BAD_INPUTS = {
    "n_folds too small": (RUN + ["--option", "n_folds=1"], "n_folds must be int >= 2"),
    "n_folds not a number": (RUN + ["--option", "n_folds=abc"], "n_folds must be int >= 2"),
    "n_folds not an integer": (RUN + ["--option", "n_folds=2.5"], "n_folds must be int >= 2"),
    "valid_fraction above 1": (RUN + ["--option", "valid_fraction=5"], "valid_fraction must be float > 0 and < 1"),
    "valid_fraction zero": (RUN + ["--option", "valid_fraction=0"], "valid_fraction must be float > 0 and < 1"),
    "per_target not a bool": (_run(protocol="new-drug") + ["--option", "per_target=maybe"], "must be bool"),
    "min_positives zero": (_run(protocol="new-drug") + ["--option", "min_positives=0"],
                           "min_positives must be int >= 1"),
    "negative --n-targets": (_run(protocol="new-drug") + ["--per-target", "--n-targets", "-1"],
                             "n_targets must be int >= 0"),
    "--n-targets without --per-target": (_run(protocol="new-drug") + ["--n-targets", "3"],
                                         "n_targets samples per-target folds; give per_target=true"),
    "n_folds with --per-target": (_run(protocol="new-cell-line") + ["--per-target", "--option", "n_folds=3"],
                                  "with per_target each eligible entity is its own fold"),
    "top_k zero": (_run(protocol="case-study") + ["--option", "top_k=0"], "top_k must be int >= 1"),
    "drop_overlap unknown": (_run(protocol="transfer") + ["--option", "drop_overlap=both"],
                             "one of 'source', 'target', 'auto', 'none'"),
    "unknown option": (RUN + ["--option", "k=3"], "its options are: n_folds"),
    "negative seed": (RUN + ["--seeds", "-1"], "from 0 to 4294967295"),
    "seed 2**32": (RUN + ["--seeds", str(2**32)], "from 0 to 4294967295"),
    "negative --folds": (RUN + ["--folds", "-1"], "--folds: fold indices must be integers >= 0; got -1"),
    "reversed --seeds range": (RUN + ["--seeds", "4-0"], "'4-0' is an empty range"),
    "huge --seeds range": (RUN + ["--seeds", "0-100000000"], "'0-100000000' holds more than 10000 values"),
    "reproduce negative --folds": (["reproduce", "--folds", "-2", "--dry-run"], "fold indices must be integers >= 0"),
    "--jobs 0": (RUN + ["--jobs", "0"], "--jobs must be an integer >= 1"),
    "--jobs not a number": (RUN + ["--jobs", "x"], "invalid int value"),
    "negative --threads": (RUN + ["--threads", "-1"], "--threads must be an integer >= 1"),
    "empty --experiment": (RUN + ["--experiment", ""], "--experiment must be a non-empty name"),
    "blank --experiment": (RUN + ["--experiment", "  "], "--experiment must be a non-empty name"),
    "unknown --select": (RUN + ["--select", "best"], "choose from 'validation', 'test'"),
    "unknown --backend": (RUN + ["--backend", "spark"], "loky, threading, sequential, dask, ray"),
    "--scheduler without dask or ray": (RUN + ["--scheduler", "tcp://127.0.0.1:8786"],
                                        "give it with --backend dask or --backend ray (got --backend loky)"),
    "malformed --scheduler": (RUN + ["--backend", "dask", "--scheduler", "my cluster"],
                              "--scheduler: expected an address like tcp://HOST:8786, got 'my cluster'"),
    "--scheduler nobody listens on": (RUN + ["--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"],
                                      "dask scheduler tcp://127.0.0.1:1 did not accept a connection"),
    "unknown --device": (RUN + ["--device", "tpu"], "cpu, cuda, cuda:N"),
    "malformed cuda device": (RUN + ["--device", "cuda:x"], "cpu, cuda, cuda:N"),
    "unknown method": (_run(method="nope"), "choose from: all,"),
    "unknown protocol": (_run(protocol="nope"), "choose one of: case-study"),
    "float for an int hyperparameter": (_run(method="srmf") + ["--set", "srmf.k=2.5"], "k expects int, got 2.5"),
    "text for an int hyperparameter": (_run(method="srmf") + ["--set", "srmf.k=abc"], "k expects int, got 'abc'"),
    "number for a str hyperparameter": (_run(method="srmf") + ["--set", "srmf.target=3"],
                                        "target expects one of 'ic50', 'binary', got 3"),
    "unknown choice of a hyperparameter": (_run(method="hnmdrp") + ["--set", "hnmdrp.targets=nope"],
                                           "targets expects one of 'auto', 'fingerprint', 'dataset', got 'nope'"),
    "rank 0": (_run(method="srmf") + ["--set", "srmf.k=0"], "hyperparameter k expects int >= 1, got 0"),
    "negative penalty": (_run(method="srmf") + ["--set", "srmf.lambda_l=-1"], "lambda_l expects float >= 0, got -1"),
    "decay outside [0, 1]": (_run(method="hnmdrp") + ["--set", "hnmdrp.decay=5"], "decay expects float >= 0 and <= 1"),
    "zero kernel width": (_run(method="mofgcn") + ["--set", "mofgcn.sigma=0"], "sigma expects float > 0, got 0"),
    "dropout of 1": (_run(method="deepcdr") + ["--set", "deepcdr.dropout=1"], "dropout expects float >= 0 and < 1"),
    "a layer of width 0": (_run(method="deepdsc") + ["--set", "deepdsc.hidden=[10,0]"],
                           "hidden expects tuple of int >= 1, got [10, 0]"),
    "patience 0": (_run(method="nihgcn") + ["--set", "nihgcn.patience=0"], "patience expects int >= 1 or None, got 0"),
    "missing --methods": (["run", "--protocol", "random"], "the following arguments are required: --methods"),
    "missing command": ([], "the following arguments are required"),
    "reproduce --jobs 0": (["reproduce", "--jobs", "0", "--dry-run"], "--jobs must be an integer >= 1"),
    "reproduce --threads 0": (["reproduce", "--threads", "0", "--dry-run"], "--threads must be an integer >= 1"),
    "reproduce negative seed": (["reproduce", "--seeds", "-3", "--dry-run"], "from 0 to 4294967295"),
    "reproduce empty --experiment": (["reproduce", "--experiment", "", "--dry-run"], "non-empty name"),
    "reproduce unknown --device": (["reproduce", "--device", "tpu", "--dry-run"], "cpu, cuda, cuda:N"),
    "reproduce unknown --methods": (["reproduce", "--methods", "nope", "--dry-run"], "unknown method(s) ['nope']"),
    "reproduce without the data": (["reproduce", "--only", "gdsc-random", "--dry-run", "--data-dir", "/nonexistent-dr"],
                                   "dataset 'gdsc' not found"),
    "reproduce bad --also-read": (["reproduce", "--only", "ccle-random", "--write-only", "--out-dir", "nonexistent-dr",
                                   "--also-read", "sqlite:////nonexistent-dr/x.db"],
                                  "no such database file /nonexistent-dr/x.db"),
    "leaderboard empty --experiment": (["leaderboard", "--experiment", ""], "non-empty name"),
    "leaderboard of a store that does not exist": (["leaderboard"], "mlflow.db, so nothing recorded to read"),
    "compare with a store that does not exist": (["compare", "srmf", "nihgcn", "--board", "gdsc-random",
                                                  "--tracking-uri", "sqlite:////nonexistent-dr/runs.db"],
                                                 "no such database file /nonexistent-dr/runs.db"),
    "reproduce --rerun-without-records with --write-only": (["reproduce", "--write-only", "--rerun-without-records"],
                                                            "give one of them"),
}


@pytest.mark.parametrize("argv, fragment", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2_before_any_work(argv, fragment, capsys, tmp_path):
    store = tmp_path / "mlflow.db"
    if argv and argv[0] in ("run", "reproduce", "leaderboard"):
        argv = argv + ["--tracking-uri", f"sqlite:///{store}"]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("drbench: error: ") and "Traceback" not in err
    assert fragment in lines[0]
    assert not store.exists()  # refused before the tracking store was touched


def test_protocols_command_lists_each_options_valid_values(capsys):
    assert main(["protocols"]) == 0
    out = capsys.readouterr().out
    assert "--option n_folds=5: number of folds over the positives [int >= 2]" in out
    assert "[float > 0 and < 1]" in out and "[one of 'source', 'target', 'auto', 'none']" in out


def test_option_values_from_the_api_are_checked_and_converted():
    p = get_protocol("new-drug")
    got = p.resolve_options({"per_target": "yes", "valid_fraction": 0.2, "n_targets": 4.0})
    assert got["per_target"] is True and got["n_targets"] == 4 and got["valid_fraction"] == 0.2
    assert type(got["n_targets"]) is int
    assert p.resolve_options({"n_folds": "3"})["n_folds"] == 3
    # an option the others make inert is refused, not dropped; the defaults are accepted in every combination
    with pytest.raises(UsageError, match="n_folds sets grouped folds"):
        p.resolve_options({"n_folds": 3, "per_target": True})
    with pytest.raises(UsageError, match="n_targets samples per-target folds"):
        p.resolve_options({"n_targets": 20})
    assert p.resolve_options({"n_folds": 5, "per_target": True, "n_targets": 0})["per_target"] is True
    with pytest.raises(UsageError, match="per_target must be bool"):
        p.resolve_options({"per_target": 1})


# ---------------------------------------------------------------------------------------------- hyperparameter types
def test_coercion_rules():
    assert coerce(3.0, int) == 3 and type(coerce(3.0, int)) is int
    assert type(coerce(2, float)) is int  # an int is a float (numeric tower): kept, so job keys stay the same
    assert coerce(None, int | None) is None and coerce(5, typing.Optional[int]) == 5
    assert coerce([1, 2], tuple) == [1, 2] and coerce((1, 2.0), tuple[int, ...]) == (1, 2)
    assert coerce("bf16", typing.Literal["fp32", "bf16"]) == "bf16"
    assert coerce(1, PositiveInt) == 1 and coerce(2.0, PositiveInt) == 2 and type(coerce(2.0, PositiveInt)) is int
    assert coerce(0.0, DropoutRate) == 0.0 and coerce(None, PositiveInt | None) is None
    assert coerce(0.5, typing.Annotated[float, Range(gt=0, le=0.5)]) == 0.5
    for value, declared in [(2.5, int), (True, int), ("3", int), (1, bool), ("x", float), (float("nan"), float),
                            (float("inf"), int), (3, str), ("fp16", typing.Literal["fp32", "bf16"]),
                            ([1, 2.5], tuple[int, ...]), (1.5, int | None), (0, PositiveInt), (-1e-9, NonNegativeFloat),
                            (0.0, PositiveFloat), (1.0, DropoutRate), (1.01, UnitInterval), (0, PositiveInt | None),
                            ((3, 0), tuple[PositiveInt, ...]), (float("inf"), PositiveFloat),
                            (0.0, typing.Annotated[float, Range(gt=0, le=0.5)]),
                            (0.6, typing.Annotated[float, Range(gt=0, le=0.5)])]:
        with pytest.raises(Mismatch):
            coerce(value, declared)
    assert describe(PositiveInt | None) == "int >= 1 or None"
    assert describe(tuple[PositiveInt, ...]) == "tuple of int >= 1"
    assert describe(typing.Annotated[float, Range(gt=0, lt=1)]) == "float > 0 and < 1"
    with pytest.raises(Mismatch, match="expects tuple of int >= 1"):
        coerce([4, 0], tuple[PositiveInt, ...])


def test_types_come_from_annotations_else_from_the_default():
    class Typed(Method):
        def __init__(self, k: int = 2, lr=0.1, name="a", maybe=None, size: tuple = (1, 2)):
            self.k, self.lr, self.name, self.maybe, self.size = k, lr, name, maybe, size

        def fit(self, view):
            return self

        def predict(self, query):
            return Prediction(np.zeros(len(query)))

    assert declared_types(Typed) == {"k": int, "lr": float, "name": str, "maybe": None, "size": tuple}
    assert check_params(Typed, {"k": 4.0, "lr": 1, "maybe": "anything"}) == {"k": 4, "lr": 1, "maybe": "anything"}
    with pytest.raises(UsageError, match="hyperparameter lr expects float, got 'fast'"):
        check_params(Typed, {"lr": "fast"})


def test_check_method_refuses_a_default_that_contradicts_its_annotation():
    from drbench.testing import MethodCheckError, check_method

    class Mistyped(Method):
        def __init__(self, k: int = 2.5):
            self.k = k

        def fit(self, view):
            return self

        def predict(self, query):
            return Prediction(np.full(len(query), 0.5))

    with pytest.raises(MethodCheckError, match="param types: .*hyperparameter k expects int, got 2.5"):
        check_method(Mistyped)


def _contexts():
    """A run context for every (dataset, protocol) a built-in's defaults can depend on."""
    out = []
    for ds in ("gdsc", "ccle", "synthetic"):
        for name in protocols().names():
            p = get_protocol(name)
            targets = {"in-vivo": ["pdx", "tcga", "synthetic-vivo"], "transfer": ["ccle"]}.get(name, [""])
            for target in targets:
                for selection in ("validation", "test"):
                    out.append(RunContext(ds, target, f"{ds}+{target}" if target else ds, name, p.kind, p.entity_axis,
                                          selection, "cpu"))
    return out


def test_checking_the_defaults_of_every_builtin_method_changes_nothing():
    """Coercion of defaults is the identity, types included: the checked params are the ones published runs had."""
    builtins = [n for n in methods().names() if methods().provider(n) == "drbench"]
    assert len(builtins) >= 15
    for name in builtins:
        cls = get_method(name)
        for ctx in _contexts():
            params = method_params(cls, ctx, {})
            checked = check_params(cls, params)
            assert json.dumps(checked, sort_keys=True) == json.dumps(params, sort_keys=True), (name, ctx)
            assert [type(v) for v in checked.values()] == [type(v) for v in params.values()], (name, ctx)


def _published_rows():
    for path in sorted((REPO / "leaderboards").glob("*.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("job_key") and row.get("status") == "finished":
                    yield path.name, row


def test_every_published_job_key_is_what_the_default_params_give_now():
    """Each finished run on a committed board: its key, recomputed from the method's default params in the run
    context its sweep has now, is the recorded one (no published run is orphaned by the checks or the context)."""
    from drbench.boards import BOARDS

    rows = list(_published_rows())
    assert len(rows) > 500
    target = {"transfer": "ccle"}
    # a control board's variant row (``mofgcn[window=1000]``): its key is what the board's declared overrides give
    variants = {(f"{b.name}.csv", v.row): v for b in BOARDS for v in b.variants if v.params}
    for board, row in rows:
        variant = variants.get((board, row["method"]))
        # a gene-panel run (method[genes=N]) has the default params; its cut shows in its dataset_hash
        method = variant.method if variant else re.sub(r"\[genes=\d+(,gene_seed=\d+)?\]$", "", row["method"])
        cls = get_method(method)
        p = get_protocol(row["protocol"])
        t = target.get(row["protocol"], "")
        ctx = RunContext(row["dataset"], t, f"{row['dataset']}+{t}" if t else row["dataset"], p.name, p.kind,
                         p.entity_axis, row["selection"], "cpu")
        params = method_params(cls, ctx, variant.params if variant else {})
        key = job_key(cls.name, key_params(cls, params), row["dataset_hash"], row["mask_sha256"],
                      int(row["seed"]), row["selection"], row["protocol"])
        assert key == row["job_key"], (board, row["method"], row["selection"], row["fold"])


def _typed_method():
    @drbench.register("test-typed-k")
    class TypedK(Method):
        """Scores every pair ``k / 10``; records the type of ``k`` it was built with."""

        capabilities = Capabilities(tasks={"classification"})

        def __init__(self, k: int = 2):
            self.k = k

        def fit(self, view):
            self.fit_info_ = {"k_is_int": int(type(self.k) is int)}
            return self

        def predict(self, query):
            return Prediction(np.full(len(query), self.k / 10))

    return TypedK


def test_an_int_valued_float_runs_and_is_recorded_as_the_int_the_method_used():
    _typed_method()
    try:
        base = dict(methods="test-typed-k", protocol="random", dataset="synthetic", folds=[0], progress=False)
        as_float = plan_sweep(SweepSpec(**base, params={"test-typed-k": {"k": 3.0}}))
        as_int = plan_sweep(SweepSpec(**base, params={"test-typed-k": {"k": 3}}))
        assert as_float.jobs[0].params == {"k": 3} and type(as_float.jobs[0].params["k"]) is int
        assert as_float.jobs[0].key == as_int.jobs[0].key  # the same run, whichever way it was spelled
        rep = run_sweep(SweepSpec(**base, params={"test-typed-k": {"k": 3.0}}))
        assert rep.finished == 1
        c = tracking.client()
        run = tracking.search_job_runs(c, [tracking.experiment_id(c, "drbench", create=False)])[0]
        assert run.data.params["hp.k"] == "3"
        assert rep.results[0].params == {"k": 3} and rep.results[0].fit_info == {"k_is_int": 1}
        with pytest.raises(UsageError, match="hyperparameter k expects int, got 2.5"):
            plan_sweep(SweepSpec(**base, params={"test-typed-k": {"k": 2.5}}))
    finally:
        methods().remove("test-typed-k")


# ---------------------------------------------------------------------------------------------- devices
def test_cuda_without_a_gpu_is_refused_before_any_work(monkeypatch, capsys, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    store = tmp_path / "mlflow.db"
    rc = main(RUN + ["--device", "cuda", "--tracking-uri", f"sqlite:///{store}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "torch sees no CUDA GPU on this machine" in err[0] and "use --device cpu" in err[0]
    assert not store.exists()


def test_reproduce_refuses_cuda_without_a_gpu_and_passes_the_device_to_its_sweeps(monkeypatch, capsys, tmp_path):
    import torch

    from drbench import reproduce

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["reproduce", "--only", "gdsc-random", "--device", "cuda", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "torch sees no CUDA GPU on this machine" in err[0]
    assert not any(tmp_path.iterdir())
    seen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(reproduce, "run_board", lambda board, out, **kw: seen.append(kw["device"]) or {
        "board": board.name, "jobs_finished": 0, "jobs_skipped": 0, "jobs_failed": 0, "errors": []})
    monkeypatch.setattr(reproduce, "update_index", lambda *a, **k: None)
    monkeypatch.setattr(reproduce, "write_runtime", lambda *a, **k: None)
    monkeypatch.setattr(reproduce, "write_index", lambda *a, **k: None)
    monkeypatch.setattr("drbench.paper.write", lambda *a, **k: None)
    (tmp_path / "data" / "gdsc").mkdir(parents=True)  # the data folder is checked before any board starts
    assert main(["reproduce", "--only", "gdsc-random", "--device", "cuda:0", "--out-dir", str(tmp_path), "-q",
                 "--data-dir", str(tmp_path / "data")]) == 0
    assert seen == ["cuda:0"]


def test_cuda_index_must_name_a_present_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device("cuda")
    check_device("cuda:1")
    with pytest.raises(UsageError, match="this machine has 2 CUDA GPU\\(s\\): cuda:0, cuda:1"):
        check_device("cuda:2")
    for bad in ("CUDA", "cuda:", "cuda:-1", "gpu", "cpu:0", ""):
        with pytest.raises(UsageError, match="choose one of: cpu, cuda, cuda:N"):
            check_device(bad)


def test_each_run_is_tagged_with_the_device_it_computed_on(monkeypatch):
    """With --device cuda, a method that put tensors on the GPU is tagged cuda (and the GPU's model); one that
    ignores the device (numpy) is tagged cpu. CUDA is faked: torch's allocation counter grows when the GPU method fits."""
    import torch

    allocations = {"allocation.all.allocated": 0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "memory_stats", lambda device=None: dict(allocations))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"Fake GPU at {device}")

    @drbench.register("test-on-gpu")
    class OnGpu(Method):
        def fit(self, view):
            if view.device.startswith("cuda"):
                allocations["allocation.all.allocated"] += 3
            return self

        def predict(self, query):
            return Prediction(np.full(len(query), 0.5))

    try:
        rep = run_sweep(SweepSpec(methods="test-on-gpu,global-mean", protocol="random", dataset="synthetic",
                                  folds=[0], progress=False, device="cuda"))
        assert rep.finished == 2
        c = tracking.client()
        runs = tracking.search_job_runs(c, [tracking.experiment_id(c, "drbench", create=False)])
        assert {r.data.tags["drbench.method"]: r.data.tags["drbench.device"] for r in runs} == {
            "test-on-gpu": "cuda", "global-mean": "cpu"}
        # the GPU's model is recorded beside the host's CPU, only for a job that computed on it
        assert {r.data.tags["drbench.method"]: r.data.tags.get("drbench.device_name") for r in runs} == {
            "test-on-gpu": "Fake GPU at cuda", "global-mean": None}
    finally:
        methods().remove("test-on-gpu")


# ---------------------------------------------------------------------------------------------- run context
def test_plan_builds_one_frozen_context_that_reads_like_a_mapping():
    plan = plan_sweep(SweepSpec(methods="global-mean", protocol="in-vivo", dataset="synthetic", progress=False))
    ctx = plan.context
    assert isinstance(ctx, RunContext)
    assert dict(ctx) == {"dataset": "synthetic", "target": "synthetic-vivo", "dataset_full": plan.dataset.name,
                         "protocol": "in-vivo", "protocol_kind": "in-vivo", "entity_axis": 1,
                         "selection": "validation", "device": "cpu"}
    assert ctx.get("target") == "synthetic-vivo" and ctx.get("profile", "none") == "none"
    with pytest.raises(AttributeError):
        ctx.target = "pdx"


def test_nihgcn_per_target_alpha_is_applied_and_recorded_through_the_runner(monkeypatch, one_torch_thread):
    """Before the run context, defaults_for got a context without the target: the per-target α never applied."""
    from drbench.methods import nihgcn

    monkeypatch.setitem(nihgcn.TARGET_ALPHA, "synthetic-vivo", 0.33)
    seen = []
    fit = nihgcn.NIHGCN.fit

    def spy(self, view):
        seen.append((self.alpha, view.context))
        return fit(self, view)

    monkeypatch.setattr(nihgcn.NIHGCN, "fit", spy)
    rep = run_sweep(SweepSpec(methods="nihgcn", protocol="in-vivo", dataset="synthetic", progress=False,
                              options={"target": "synthetic-vivo"},
                              params={"nihgcn": {"hidden": 8, "out": 8, "epochs": 2, "eval_every": 1}}))
    assert rep.finished == 1, rep.results[0].error
    assert rep.results[0].params["alpha"] == 0.33
    c = tracking.client()
    run = tracking.search_job_runs(c, [tracking.experiment_id(c, "drbench", create=False)])[0]
    assert run.data.params["hp.alpha"] == "0.33"
    (alpha, ctx), = seen
    assert alpha == 0.33 and isinstance(ctx, RunContext) and ctx.target == "synthetic-vivo"


def test_nihgcn_alpha_of_the_gdsc_to_ccle_transfer_board_is_unchanged():
    """The published transfer board ran NIHGCN with target ccle at GDSC's α 0.25."""
    cls = get_method("nihgcn")
    p = get_protocol("transfer")
    ctx = RunContext("gdsc", "ccle", "gdsc+ccle", "transfer", p.kind, p.entity_axis, "validation", "cpu")
    assert method_params(cls, ctx, {})["alpha"] == 0.25


class _Held(Protocol):
    """A third-party protocol of kind new-drug: its name is in no table of drbench's."""

    name = "test-held-drug"
    kind = "new-drug"
    entity_axis = 1

    def folds(self, dataset, seed, carve_valid=True):
        return get_protocol("new-drug").folds(dataset, seed, carve_valid, n_folds=3, min_positives=3)


def _only(kinds):
    class Only(Method):
        capabilities = Capabilities(protocols=kinds)

        def fit(self, view):
            return self

        def predict(self, query):
            return Prediction(np.full(len(query), 0.5))

    return Only


def test_check_supported_and_supports_use_the_protocols_declared_kind():
    from drbench.testing import tiny_dataset
    from drbench.view import build_train_view

    protocols().add("test-held-drug", _Held)
    try:
        new_drug, random_only = _only({"new-drug"}), _only({"random"})
        assert supports(new_drug, "test-held-drug") and not supports(random_only, "test-held-drug")
        assert supports(random_only, "case-study") and not supports(random_only, "transfer")
        cells, _ = tiny_dataset()
        fold = _Held().folds(cells, 0)[0]
        view = build_train_view(cells, fold, new_drug.capabilities, context={"protocol": "test-held-drug"})
        assert new_drug().fit(view) is not None
        with pytest.raises(UnsupportedProtocolError, match="does not support protocol 'test-held-drug'"):
            random_only().fit(view)
        ctx = RunContext("synthetic", "", "synthetic", "test-held-drug", "new-drug", 1, "validation", "cpu")
        view = build_train_view(cells, fold, new_drug.capabilities, context=ctx)
        assert view.context is ctx and new_drug().fit(view) is not None
        with pytest.raises(UnsupportedProtocolError):
            random_only().fit(view)
    finally:
        protocols().remove("test-held-drug")


def _one_error_line(argv, capsys) -> str:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("drbench: error: "), err
    return lines[0]


def test_an_output_place_that_cannot_be_written_is_refused_in_one_line_before_any_work(capsys, tmp_path):
    """Every command that writes files checks its destination first: a file where a folder should be (or a folder
    that cannot be made) is one line and exit 2, not a traceback after the work."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    board = REPO / "leaderboards" / "ccle-random.csv"
    responses = tmp_path / "r.csv"
    responses.write_text("cell_line_name,pubchem_id,LN_IC50\nc1,d1,1.0\n")
    mirror = tmp_path / "mirror"
    (mirror / "ccle").mkdir(parents=True)
    store = f"sqlite:///{tmp_path / 'm.db'}"
    cases = [
        (["leaderboard", "--from-csv", str(board), "--out", f"{blocker}/x.md"],
         f"--out {blocker}/x.md: {blocker} is a file"),
        (["leaderboard", "--from-csv", str(board), "--out", f"{blocker}/sub/x.md"], f"{blocker} is a file"),
        (["reproduce", "--only", "ccle-random", "--write-only", "--out-dir", str(blocker), "--tracking-uri", store],
         f"--out-dir {blocker}: {blocker} is a file, not a folder"),
        (["data", "import-dreval", str(responses), str(blocker)], f"dest {blocker}: {blocker} is a file"),
        (["data", "fetch", "ccle", "--mirror", str(mirror), "--dest", str(blocker), "--no-progress"],
         f"--dest {blocker}: {blocker} is a file"),
    ]
    for argv, fragment in cases:
        line = _one_error_line(argv, capsys)
        assert fragment in line, (argv, line)
    assert blocker.read_text() == "not a folder\n" and not (tmp_path / "m.db").exists()


def test_a_sqlite_store_that_cannot_be_opened_is_one_line_at_once(capsys, tmp_path):
    """MLflow retries an unopenable SQLite file for about two minutes; drbench names the cause at once."""
    folder_db = tmp_path / "store.db"
    folder_db.mkdir()
    line = _one_error_line(RUN + ["--tracking-uri", f"sqlite:///{folder_db}"], capsys)
    assert f"{folder_db} is not a file" in line
    if Path("/proc/self").is_dir():  # a folder that takes no new file
        line = _one_error_line(RUN + ["--tracking-uri", "sqlite:////proc/drbench-test.db"], capsys)
        assert "cannot create a store in /proc" in line


def test_a_plain_path_as_tracking_store_gets_the_database_uri_to_give(capsys, tmp_path, monkeypatch):
    """MLflow 3 reads a path as its retired file store and refuses it with a paragraph; drbench says what to give."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # as on a user's machine
    line = _one_error_line(RUN + ["--tracking-uri", str(tmp_path / "runs.db")], capsys)
    assert "is a path, which MLflow reads as its retired file store" in line
    assert line.endswith(f"give a database URI, e.g. sqlite:///{tmp_path.resolve() / 'runs.db'}")
    line = _one_error_line(RUN + ["--tracking-uri", str(tmp_path)], capsys)  # an existing folder: a file in it
    assert line.endswith(f"e.g. sqlite:///{tmp_path.resolve() / 'mlflow.db'}")
    assert list(tmp_path.iterdir()) == []  # nothing created
