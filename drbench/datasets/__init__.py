"""Datasets: the :class:`Dataset` type, loaders by name, and where data directories are found.

Besides the built-ins (:data:`DATASETS`), ``load_dataset`` accepts a folder in the long layout
(:mod:`drbench.datasets.long_layout`), a name under a data directory holding such a folder, and a dataset a
package registers under the entry-point group ``drbench.datasets`` (``name = "pkg.module:load"``; ``load`` is
called with the ``--data-dir`` value, None when none was given, and returns a :class:`Dataset`).

A data directory is found in this order: the ``data_dir`` argument (``--data-dir``), the
``DRBENCH_DATA`` environment variable, then the per-user cache ``$XDG_CACHE_HOME/drbench/data``
(``~/.cache/drbench/data``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from drbench.datasets.core import Dataset, combine
from drbench.datasets.synthetic import make_synthetic
from drbench.errors import DataError, UsageError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    needs_data_dir: bool
    loader: Callable[..., Dataset]


def _file_loader(fn_name: str):
    def load(data_dir: Path) -> Dataset:
        from drbench.datasets import mtigcn_layout

        return getattr(mtigcn_layout, fn_name)(data_dir)

    return load


DATASETS: dict[str, DatasetInfo] = {
    "synthetic": DatasetInfo("synthetic", "seeded GDSC-shaped synthetic cell-line set (no files needed)", False,
                             lambda data_dir=None: make_synthetic(part="cells")),
    "synthetic-vivo": DatasetInfo("synthetic-vivo", "in-vivo companion of 'synthetic': extra rows, few drugs, labels only",
                                  False, lambda data_dir=None: make_synthetic(part="invivo")),
    "gdsc": DatasetInfo("gdsc", "GDSC cell lines x 228 drugs (ln IC50, binary by per-drug thresholds)", True,
                        _file_loader("load_gdsc")),
    "ccle": DatasetInfo("ccle", "CCLE cell lines x 24 drugs (raw IC50 in uM, binary labels)", True,
                        _file_loader("load_ccle")),
    "pdx": DatasetInfo("pdx", "PDX models x GDSC drugs, binary responses only (no expression in the bundle)", True,
                       _file_loader("load_pdx")),
    "tcga": DatasetInfo("tcga", "TCGA patients x GDSC drugs, binary responses only (no expression in the bundle)", True,
                        _file_loader("load_tcga")),
}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "drbench" / "data"


def candidate_data_dirs(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    out = []
    if data_dir is not None:
        out.append(("--data-dir", Path(data_dir)))
    if os.environ.get("DRBENCH_DATA"):
        out.append(("DRBENCH_DATA", Path(os.environ["DRBENCH_DATA"])))
    out.append(("user cache", default_cache_dir()))
    return out


def resolve_data_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The first candidate directory holding ``<dir>/<name>/``; a clear error if none does."""
    tried = []
    for how, d in candidate_data_dirs(data_dir):
        if (d / name).is_dir():
            return d
        tried.append(f"{d} ({how})")
        if how == "--data-dir":
            break  # an explicit directory is not silently replaced by another one
    try:
        from drbench.fetch import fetch_command_hint

        hint = fetch_command_hint(name)
    except Exception:  # the hint is a courtesy; never let it hide the real error
        hint = f"drbench data fetch {name}"
    raise DataError(
        f"dataset {name!r} not found: no folder {name}/ in " + "; ".join(tried)
        + f". Fetch it with `{hint}`, or pass --data-dir DIR (the folder holding gdsc/, ccle/, ...) "
        "or set DRBENCH_DATA"
    )


def dataset_names() -> list[str]:
    """Built-in names, then the names packages register (a built-in name wins over a package's)."""
    return list(DATASETS) + [n for n in plugin_datasets().names() if n not in DATASETS]


_reused: dict | None = None  # (name, directory) -> Dataset while inside reuse_loaded_datasets()


@contextmanager
def reuse_loaded_datasets():
    """Within the block, loading the same dataset from the same directory again returns the first load.

    Datasets are immutable (read-only arrays), so sharing one object is safe; a command that plans many
    sweeps over the same data (``drbench reproduce``) parses each file once instead of once per sweep.
    Nested blocks share the outermost block's loads; outside any block every call reads the files.
    """
    global _reused
    outermost = _reused is None
    if outermost:
        _reused = {}
    try:
        yield
    finally:
        if outermost:
            _reused = None


#: entry-point group through which packages register datasets
DATASET_GROUP = "drbench.datasets"
_plugins = None  # the Registry of DATASET_GROUP, made on first use


def plugin_datasets():
    """The registry of datasets from packages (entry-point group :data:`DATASET_GROUP`); tests and scripts may
    ``add(name, load)`` to it."""
    global _plugins
    if _plugins is None:
        from drbench.registry import Registry

        _plugins = Registry(DATASET_GROUP, "dataset")
    return _plugins


def _long_layout_folder(name: str, data_dir) -> Path | None:
    """The long-layout folder ``name`` names: a path, else ``<data dir>/<name>/`` in the first data directory."""
    from drbench.datasets.long_layout import is_long_layout

    if is_long_layout(name):
        return Path(name)
    if os.sep in name or "/" in name or Path(name).exists():
        return None
    for how, d in candidate_data_dirs(data_dir):
        if is_long_layout(d / name):
            return d / name
        if how == "--data-dir":
            break
    return None


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset: a built-in name (:data:`DATASETS`), a long-layout folder (a path, or a name under the data
    directory), or a dataset registered by a package (:func:`plugin_datasets`)."""
    if name in DATASETS:
        info = DATASETS[name]
        where = resolve_data_dir(name, data_dir) if info.needs_data_dir else None
        key = (name, None if where is None else str(where.resolve()))
        load = (lambda: info.loader()) if where is None else (lambda: info.loader(where))
    elif name in plugin_datasets().names():
        key = (name, f"plugin:{data_dir}")
        load = lambda: _plugin_dataset(name, data_dir)  # noqa: E731
    else:
        folder = _long_layout_folder(name, data_dir)
        if folder is None:
            if Path(name).is_dir():
                raise DataError(f"{name}: not a dataset folder (no responses.csv; see the long layout in the README)")
            raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(dataset_names())}, "
                             "or give a folder in the long layout")
        key = (name, str(folder.resolve()))
        load = lambda: _own_dataset(folder)  # noqa: E731
    if _reused is not None and key in _reused:
        return _reused[key]
    ds = load()
    if _reused is not None:
        _reused[key] = ds
    return ds


def _own_dataset(folder: Path) -> Dataset:
    """The long-layout dataset in ``folder``; its name may not be a built-in's (runs are recorded by name)."""
    from drbench.datasets.long_layout import load_long_layout

    ds = load_long_layout(folder)
    if ds.name in DATASETS:
        raise DataError(f"{folder}: dataset name {ds.name!r} is a built-in dataset's, and runs are recorded by name; "
                        'rename the folder or set "name" in its dataset.json')
    return ds


def _plugin_dataset(name: str, data_dir) -> Dataset:
    ds = plugin_datasets().get(name)(data_dir)
    if not isinstance(ds, Dataset):
        raise UsageError(f"dataset {name!r} from {plugin_datasets().provider(name)} returned "
                         f"{type(ds).__name__}, not a drbench Dataset")
    return ds


__all__ = ["Dataset", "combine", "make_synthetic", "load_dataset", "reuse_loaded_datasets", "dataset_names",
           "resolve_data_dir", "DATASETS", "DATASET_GROUP", "plugin_datasets", "default_cache_dir",
           "candidate_data_dirs"]
