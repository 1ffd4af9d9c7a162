"""Fetch and verify the real data sets: ``drbench data fetch NAME`` and ``drbench data verify NAME``.

A manifest inside the package (``drbench/manifest/datasets.json``) lists, for every data set, each file
of the data layout the loaders read (``<data_dir>/<name>/<file>``) with its size and hashes and where it
can be had:

* **upstream** files are byte-identical to a file of the MTIGCN data release at a pinned commit. They are
  downloaded from the code host's raw-file URL (:data:`RAW_URL_TEMPLATE`) and checked against their git
  blob SHA-1 (``sha1(b"blob <size>\\0" + content)``), i.e. the very hash the pinned commit names.
* **joined** files were split by the release into column parts (``<dir>/<stem>_dim_1_num_<k>.csv.zip``).
  Each part is downloaded and checked against its blob SHA-1, then the parts are joined column-wise into
  one gzipped CSV, which is checked against the table hash of the reference bundle (see :func:`table_hash`).
* **mirror-only** files (the expression matrices ``cell_exprs.csv.gz``, ``drug_smiles.csv``,
  ``cell_map.csv``, ...) are not in the release: they were derived from other sources for the drbench
  data bundle (see its PROVENANCE.md). They have no public source and come only from a mirror
  (``--mirror DIR|URL``: a folder or server holding a copy of the bundle, ``<mirror>/<name>/<file>``),
  checked against their sha256.
* **upstream-only** files are in the release but not in the bundle (the release's own expression zips,
  which could not be obtained when the bundle was made). No loader reads them; they are fetched only with
  ``--all-release-files`` and checked against their blob SHA-1.

Every file is written to a temporary name beside its destination, checked, and only then renamed into
place, so a corrupted, changed or truncated download is refused and never read by a loader.

The manifest is generated from a data folder by ``python -m drbench.fetch build-manifest DIR``.

Modules: :mod:`~drbench.fetch.hashes` (blob SHA-1, sha256, table hash), :mod:`~drbench.fetch.manifest` (the
manifest: model, loading, building), :mod:`~drbench.fetch.integrity` (checking a folder against it),
:mod:`~drbench.fetch.join` (joining column-split parts), :mod:`~drbench.fetch.download` (downloads and
mirrors), :mod:`~drbench.fetch.cli` (the commands).
"""

from drbench.fetch.cli import add_cli, main
from drbench.fetch.download import RAW_URL_TEMPLATE, FetchReport, fetch, fetch_report
from drbench.fetch.hashes import file_hashes, git_blob_sha1, table_hash
from drbench.fetch.integrity import FileStatus, check_file, fetch_command_hint, verify, verify_report
from drbench.fetch.join import join_columns
from drbench.fetch.manifest import (
    LOADER_FILES, MANIFEST_PATH, Entry, Manifest, Source, build_manifest, dataset_names, load_manifest,
    read_upstream_tsv,
)

__all__ = [
    "RAW_URL_TEMPLATE", "FetchReport", "fetch", "fetch_report", "file_hashes", "git_blob_sha1", "table_hash",
    "FileStatus", "check_file", "fetch_command_hint", "verify", "verify_report", "join_columns", "LOADER_FILES",
    "MANIFEST_PATH", "Entry", "Manifest", "Source", "build_manifest", "dataset_names", "load_manifest",
    "read_upstream_tsv", "add_cli", "main",
]
