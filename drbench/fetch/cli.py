"""The command line: ``drbench data fetch/verify`` and ``python -m drbench.fetch build-manifest``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drbench.fetch.download import fetch_report
from drbench.fetch.integrity import _dataset_dir, verify, verify_report
from drbench.fetch.manifest import MANIFEST_PATH, MIRROR_HINT, build_manifest, dataset_names, read_upstream_tsv


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
