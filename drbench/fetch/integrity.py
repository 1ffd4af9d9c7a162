"""Checking a data folder against the manifest: ``drbench data verify`` and the fetch command to suggest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drbench.errors import DataError, UsageError
from drbench.fetch.hashes import file_hashes, table_hash
from drbench.fetch.manifest import MIRROR_HINT, ROLE_TEXT, Entry, Manifest, load_manifest


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

