"""Checks of the values a user passes to a sweep, run before any work starts.

Each raises :class:`UsageError` with one line naming the flag, the value and what is valid, so the
command line prints ``drbench: error: ...`` and exits with status 2 instead of failing later with a
traceback (a seed numpy refuses, ``--jobs 0``, a device the machine does not have). Protocol option
values are checked by :meth:`drbench.protocols.Protocol.resolve_options`, hyperparameter values by
:func:`drbench.params.check_params`.
"""

from __future__ import annotations

import numbers
import os
import re
import tempfile
from pathlib import Path

from drbench.errors import UsageError

#: seeds feed numpy's and torch's generators, which take 0 .. 2**32 - 1
MAX_SEED = 2**32 - 1
DEVICES = "cpu, cuda, cuda:N (N = GPU index)"
_DEVICE = re.compile(r"cpu|cuda(?::(\d+))?")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_seeds(seeds, flag: str = "--seeds") -> None:
    if seeds is not None and not list(seeds):
        raise UsageError(f"{flag}: give at least one seed")
    bad = [s for s in seeds or () if not _is_int(s) or not 0 <= s <= MAX_SEED]
    if bad:
        raise UsageError(f"{flag}: seeds must be integers from 0 to {MAX_SEED} (2**32 - 1); got {bad[0]!r}")


def check_folds(folds, flag: str = "--folds") -> None:
    """Fold indices: at least one, each an integer >= 0 (whether the protocol makes that many folds is known only
    once the data are read)."""
    if folds is None:
        return
    if not list(folds):
        raise UsageError(f"{flag}: give at least one fold index")
    bad = [f for f in folds if not _is_int(f) or f < 0]
    if bad:
        raise UsageError(f"{flag}: fold indices must be integers >= 0; got {bad[0]!r}")


def check_at_least(value, minimum: int, flag: str) -> None:
    """``value`` is an int >= ``minimum`` (``None``, meaning a default, passes)."""
    if value is not None and (not _is_int(value) or value < minimum):
        raise UsageError(f"{flag} must be an integer >= {minimum}; got {value!r}")


def check_name(value, flag: str) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise UsageError(f"{flag} must be a non-empty name; got {value!r}")


def check_choice(value, choices, flag: str) -> None:
    if value not in choices:
        raise UsageError(f"{flag}: unknown {flag.lstrip('-')} {value!r}; choose one of: {', '.join(choices)}")


def check_device(device) -> None:
    """``cpu``, ``cuda`` or ``cuda:N``, and for CUDA a GPU torch can use (with index N present)."""
    match = _DEVICE.fullmatch(device) if isinstance(device, str) else None
    if match is None:
        raise UsageError(f"--device: unknown device {device!r}; choose one of: {DEVICES}")
    if device == "cpu":
        return
    try:
        import torch
    except ImportError:
        raise UsageError(f"--device {device} needs torch, which is not installed; use --device cpu") from None
    if not torch.cuda.is_available():
        raise UsageError(f"--device {device}: torch sees no CUDA GPU on this machine "
                         "(torch.cuda.is_available() is False); use --device cpu")
    n = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= n:
        raise UsageError(f"--device {device}: this machine has {n} CUDA GPU(s): "
                         + ", ".join(f"cuda:{i}" for i in range(n)))


def check_output_dir(path, flag: str, shown=None) -> Path:
    """Make sure drbench can write into folder ``path`` (made later, with its parents, by the caller), before any
    work starts and without making anything: the nearest folder of it that exists takes a probe file (written and
    removed). Returns ``path`` as a Path; one line naming the flag, the path (``shown``: what the user gave, when
    that is a file to go in the folder) and the reason (a file in the way, no permission, a read-only or virtual
    file system) otherwise."""
    folder = Path(path)
    where = f"{flag} {shown if shown is not None else folder}"
    existing = folder.absolute()
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{where}: {existing} is a file, not a folder; give a folder to write into")
    why = unwritable(existing)
    if why:
        raise UsageError(f"{where}: cannot write into {existing} ({why}); give a folder you can write into")
    return folder


def unwritable(folder: Path) -> str | None:
    """Why ``folder`` (which exists) takes no new file, or None when a probe file could be written and removed."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".drbench-probe-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        return e.strerror or str(e)
    return None


def check_sweep(spec, backends) -> None:
    """Every plain value of a :class:`drbench.runner.SweepSpec` (names are checked where they are resolved)."""
    check_seeds(spec.seeds)
    check_folds(spec.folds)
    check_at_least(spec.jobs, 1, "--jobs")
    check_at_least(spec.threads, 1, "--threads")
    check_at_least(spec.genes, 0, "--genes")
    check_seeds([spec.gene_seed], "--gene-seed")
    if spec.gene_seed and not spec.genes:
        raise UsageError(f"--gene-seed {spec.gene_seed} needs --genes N (the size of the random gene panel)")
    check_name(spec.experiment, "--experiment")
    check_choice(spec.backend, backends, "--backend")
    check_device(spec.device)


__all__ = ["check_seeds", "check_folds", "check_at_least", "check_name", "check_choice", "check_device",
           "check_output_dir", "unwritable", "check_sweep", "MAX_SEED"]
