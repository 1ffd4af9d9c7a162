"""``drbench data fetch`` / ``verify``: hash-checked downloads from a local HTTP server and a local folder.

A thread-run http.server on 127.0.0.1 plays both the code host (raw-file URLs of the release at a pinned
commit) and a mirror of the data bundle. Generated stand-in files with their own manifest test every path
(upstream file, column-part join, mirror-only file, upstream-only file) and every failure (corrupted byte,
missing file, connection closed mid-body); the real-data tests check the package manifest against the
bundle in ../shared/data and fetch real files through the same server. Nothing leaves this machine.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from drbench import fetch as F
from drbench.fetch import download, manifest
from drbench.atomic import TEMP_MARK
from drbench.errors import DataError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DRBENCH_DATA") or (REPO.parent / "shared" / "data"))
COMMIT = "0123456789abcdef0123456789abcdef01234567"


# ============================================================================================ local server
class _Server:
    """Serves ``routes`` (URL path -> bytes); ``faults`` (path -> (kind, times)) inject failures:
    ``truncate`` sends the full Content-Length but only half the body, then closes; ``flip`` changes one
    byte; ``missing`` answers 404. ``times`` is how many requests get the fault (None: all)."""

    def __init__(self):
        self.routes: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                data = server.routes.get(path)
                kind = None
                if path in server.faults:
                    kind, times = server.faults[path]
                    if times is not None:
                        if times <= 0:
                            kind = None
                        server.faults[path][1] = times - 1
                if data is None or kind == "missing":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if kind == "flip":
                    b = bytearray(data)
                    b[len(b) // 2] ^= 0x01
                    data = bytes(b)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                if kind == "truncate":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        # bounded: the server stops by itself after two minutes even if a test forgets to stop it
        self.watchdog = threading.Timer(120.0, self.httpd.shutdown)
        self.watchdog.daemon = True

    def start(self):
        self.thread.start()
        self.watchdog.start()
        return self

    def stop(self):
        self.watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    @property
    def template(self) -> str:
        return self.base + "/raw/{repo}/{commit}/{path}"

    @property
    def mirror(self) -> str:
        return self.base + "/mirror"


@pytest.fixture
def server():
    s = _Server().start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(download, "BACKOFF_SECONDS", 0.0)
    monkeypatch.setattr(download, "TIMEOUT_SECONDS", 10.0)


# ============================================================================================ stand-ins
def _csv_bytes(rows, lineterminator="\n") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=lineterminator).writerows(rows)
    return buf.getvalue().encode()


def _zip_bytes(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, data)
    return buf.getvalue()


def _split_columns(rows, k):
    """``rows`` (header first, first column the id) split into ``k`` column parts, each keeping the id."""
    width = len(rows[0]) - 1
    bounds = np.linspace(1, width + 1, k + 1).astype(int)
    return [[[r[0]] + r[a:b] for r in rows] for a, b in zip(bounds[:-1], bounds[1:])]


class Toy:
    """A stand-in release and bundle for dataset ``toy``; files are served from ``server``."""

    ROLES = {"toy": {"required": ("resp.csv", "expr.csv.gz"), "optional": ("smiles.csv",)}}

    def __init__(self, root: Path):
        rng = np.random.default_rng(0)
        self.bundle = root / "bundle"
        (self.bundle / "toy").mkdir(parents=True)
        cells = [f"c{i}" for i in range(20)]
        resp = [["", "d1", "d2", "d3"]] + [[c] + [f"{v:.4f}" for v in rng.normal(size=3)] for c in cells]
        expr = [["", *[f"g{j}" for j in range(8)]]] + [[c] + [f"{v:.3g}" for v in rng.normal(size=8)] for c in cells]
        cna = [["", *[str(100 + j) for j in range(30)]]] + [[c] + [f"{v:.2f}" for v in rng.normal(size=30)]
                                                             for c in cells]
        self.files = {  # the bundle (what a data folder holds)
            "resp.csv": _csv_bytes(resp),
            "expr.csv.gz": gzip.compress(_csv_bytes(expr), mtime=0),
            "smiles.csv": b"cid,smiles\nd1,CCO\nd2,c1ccccc1\n",
            "notes.txt": b"a bundle-only file no loader reads\n",
            # the bundle's copy of the joined table: other line endings and gzip header than a local join
            "cell_cna.csv.gz": gzip.compress(_csv_bytes(cna, "\r\n"), mtime=12345),
        }
        for name, data in self.files.items():
            (self.bundle / "toy" / name).write_bytes(data)
        # the release: resp.csv byte-identical, cell_cna in three zipped column parts (index header "id"),
        # and a file that is not in the bundle
        cna_parts = _split_columns([["id", *cna[0][1:]]] + cna[1:], 3)
        self.upstream = {
            "Data/TOY/resp.csv": self.files["resp.csv"],
            "Data/TOY/extra.bin": bytes(range(256)) * 4,
        }
        for k, part in enumerate(cna_parts):
            self.upstream[f"Data/TOY/cell_cna/cell_cna_dim_1_num_{k}.csv.zip"] = _zip_bytes(
                f"cell_cna_dim_1_num_{k}.csv", _csv_bytes(part))
        self.rows = [F.Source("example/toy", COMMIT, p, F.git_blob_sha1(b), len(b)) for p, b in self.upstream.items()]
        self.manifest = F.build_manifest(self.bundle, self.rows, roles=self.ROLES)
        self.dest = root / "dest"

    def serve(self, server: _Server):
        for p, b in self.upstream.items():
            server.routes[f"/raw/example/toy/{COMMIT}/{p}"] = b
        for name, b in self.files.items():
            server.routes[f"/mirror/toy/{name}"] = b

    def fetch(self, server, **kw):
        kw.setdefault("dest", self.dest)
        return F.fetch("toy", progress=False, manifest=self.manifest, url_template=server.template, **kw)

    def report(self, server, **kw):
        kw.setdefault("dest", self.dest)
        return F.fetch_report("toy", progress=False, manifest=self.manifest, url_template=server.template, **kw)

    def verify(self):
        return F.verify("toy", self.dest, manifest=self.manifest)


@pytest.fixture
def toy(tmp_path, server):
    t = Toy(tmp_path)
    t.serve(server)
    return t


def _no_temp_files(d: Path):
    return [p.name for p in d.rglob(f"*{TEMP_MARK}*")]


# ============================================================================================ unit
def test_git_blob_sha1_is_gits_hash(tmp_path):
    # `printf 'hello\n' | git hash-object --stdin` and the empty blob
    assert F.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert F.git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    if shutil.which("git"):
        import subprocess

        p = tmp_path / "x.bin"
        p.write_bytes(bytes(range(256)) * 3 + b"\r\n\0")
        want = subprocess.run(["git", "hash-object", "--no-filters", str(p)], capture_output=True, text=True,
                              check=True).stdout.strip()
        assert F.file_hashes(p)["git_sha1"] == want == F.git_blob_sha1(p.read_bytes())


def test_build_manifest_classifies_files(toy):
    by = {e.path: e for e in toy.manifest.entries("toy")}
    assert by["resp.csv"].role == "required" and by["resp.csv"].source.path == "Data/TOY/resp.csv"
    assert by["resp.csv"].git_sha1 == F.git_blob_sha1(toy.files["resp.csv"])
    assert by["expr.csv.gz"].role == "required" and not by["expr.csv.gz"].public  # mirror only
    assert by["smiles.csv"].role == "loader" and not by["smiles.csv"].public
    assert by["notes.txt"].role == "bundle"
    cna = by["cell_cna.csv.gz"]
    assert [p.path.rsplit("_", 1)[1] for p in cna.parts] == ["0.csv.zip", "1.csv.zip", "2.csv.zip"]
    assert cna.sha256 == hashlib.sha256(toy.files["cell_cna.csv.gz"]).hexdigest() and cna.table_sha256
    assert by["extra.bin"].role == "upstream-only" and by["extra.bin"].sha256 is None
    # JSON round trip
    again = F.Manifest.from_json(json.loads(json.dumps(toy.manifest.to_json())))
    assert again.entries("toy") == toy.manifest.entries("toy")
    assert F.fetch_command_hint("toy", toy.manifest) == "drbench data fetch toy --mirror DIR|URL"


def test_build_manifest_refuses_a_changed_release_file(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "resp.csv").write_bytes(b"a,b\n1,2\n")
    row = F.Source("example/toy", COMMIT, "Data/TOY/resp.csv", F.git_blob_sha1(b"a,b\n1,3\n"), 8)
    with pytest.raises(DataError, match="differs from the release file"):
        F.build_manifest(tmp_path, [row])


# ============================================================================================ fetch paths
def test_fetch_from_http_mirror_then_verify_and_resume(toy, server):
    out = toy.fetch(server, mirror=server.mirror)
    assert out == toy.dest
    for name, data in toy.files.items():
        assert (toy.dest / "toy" / name).read_bytes() == data
    assert toy.verify() == []
    assert not (toy.dest / "toy" / "extra.bin").exists()  # upstream-only files need asking for
    hits = dict(server.hits)
    rep = toy.report(server, mirror=server.mirror)  # everything present and intact: nothing downloaded
    assert rep.fetched == [] and len(rep.present) == len(toy.files) and server.hits == hits
    assert _no_temp_files(toy.dest) == []


def test_fetched_files_have_the_usual_permissions(toy, server):
    """Downloads go through a temporary file renamed into place; the result is a normal file (umask), not 0600."""
    old = os.umask(0o022)
    try:
        toy.fetch(server, mirror=server.mirror)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (toy.dest / "toy").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes


def test_fetch_from_local_folder_mirror(toy, server):
    toy.fetch(server, mirror=str(toy.bundle))
    assert toy.verify() == []
    assert not any(p.startswith("/raw/") for p in server.hits)  # the release was not needed
    with pytest.raises(DataError, match="has no toy/ folder"):
        toy.fetch(server, mirror=str(toy.bundle / "toy"))


def test_fetch_without_mirror_gets_release_files_and_names_the_mirror_only_ones(toy, server):
    with pytest.raises(DataError) as ei:
        toy.fetch(server)
    msg = str(ei.value)
    assert "expr.csv.gz" in msg and "--mirror" in msg and "no public source" in msg
    d = toy.dest / "toy"
    assert (d / "resp.csv").read_bytes() == toy.files["resp.csv"]
    # joined here from the three verified parts: other bytes than the bundle's copy, the same table
    joined = d / "cell_cna.csv.gz"
    assert joined.read_bytes() != toy.files["cell_cna.csv.gz"]
    with gzip.open(joined, "rt", newline="") as f:
        got = list(csv.reader(f))
    with gzip.open(toy.bundle / "toy" / "cell_cna.csv.gz", "rt", newline="") as f:
        want = list(csv.reader(f))
    assert got[1:] == want[1:] and got[0][1:] == want[0][1:]
    assert not (d / "expr.csv.gz").exists() and not (d / "smiles.csv").exists()
    problems = toy.verify()
    assert any("expr.csv.gz: missing" in p and "required" in p for p in problems)
    assert any("smiles.csv: missing" in p for p in problems)
    assert not any("notes.txt" in p for p in problems)  # not read by a loader: not a problem
    assert not any("cell_cna" in p for p in problems)  # a local join passes verify
    # the report lists the mirror-only files; a mirror then completes the folder, reusing what is there
    rep = toy.report(server)
    assert sorted(e.path for e in rep.no_source) == ["expr.csv.gz", "notes.txt", "smiles.csv"]
    toy.fetch(server, mirror=server.mirror)
    assert toy.verify() == []


def test_fetch_all_release_files_files_on_request(toy, server):
    toy.fetch(server, mirror=server.mirror, all_release_files=True)
    assert (toy.dest / "toy" / "extra.bin").read_bytes() == toy.upstream["Data/TOY/extra.bin"]
    st = {s.entry.path: s.status for s in F.verify_report("toy", toy.dest, toy.manifest)}
    assert st["extra.bin"] == "ok"


def test_mirror_missing_a_public_file_falls_back_to_the_release(toy, server):
    server.faults["/mirror/toy/resp.csv"] = ["missing", None]
    toy.fetch(server, mirror=server.mirror)
    assert toy.verify() == []
    assert server.hits[f"/raw/example/toy/{COMMIT}/Data/TOY/resp.csv"] == 1


# ============================================================================================ failures
def test_corrupted_byte_on_the_mirror_is_refused(toy, server):
    server.faults["/mirror/toy/expr.csv.gz"] = ["flip", None]
    with pytest.raises(DataError) as ei:
        toy.fetch(server, mirror=server.mirror)
    msg = str(ei.value)
    assert "refused toy/expr.csv.gz" in msg and "corrupted" in msg and "sha256" in msg
    d = toy.dest / "toy"
    assert not (d / "expr.csv.gz").exists()  # never written under its real name
    assert (d / "resp.csv").exists()  # the other files were fetched
    assert _no_temp_files(toy.dest) == []
    assert any("expr.csv.gz: missing" in p for p in toy.verify())


def test_corrupted_release_file_and_part_are_refused(toy, server):
    server.faults[f"/raw/example/toy/{COMMIT}/Data/TOY/resp.csv"] = ["flip", None]
    server.faults[f"/raw/example/toy/{COMMIT}/Data/TOY/cell_cna/cell_cna_dim_1_num_1.csv.zip"] = ["flip", None]
    rep = toy.report(server)
    failed = {e.path: why for e, why in rep.failed}
    assert "git blob sha1" in failed["resp.csv"] and "refused" in failed["resp.csv"]
    assert "part example/toy@" in failed["cell_cna.csv.gz"] and "num_1" in failed["cell_cna.csv.gz"]
    assert not (toy.dest / "toy" / "resp.csv").exists() and not (toy.dest / "toy" / "cell_cna.csv.gz").exists()
    assert _no_temp_files(toy.dest) == []


def test_missing_mirror_only_file_is_a_clear_error(toy, server):
    server.faults["/mirror/toy/smiles.csv"] = ["missing", None]
    with pytest.raises(DataError) as ei:
        toy.fetch(server, mirror=server.mirror)
    msg = str(ei.value)
    assert "smiles.csv" in msg and "not on the mirror" in msg and "no public source" in msg
    assert not (toy.dest / "toy" / "smiles.csv").exists()


def test_interrupted_download_is_retried_then_refused(toy, server, monkeypatch):
    path = "/mirror/toy/expr.csv.gz"
    server.faults[path] = ["truncate", 1]  # the first attempt is cut mid-body, the retry succeeds
    toy.fetch(server, mirror=server.mirror)
    assert server.hits[path] == 2 and toy.verify() == []

    shutil.rmtree(toy.dest)
    monkeypatch.setattr(download, "RETRIES", 2)
    server.faults[path] = ["truncate", None]  # every attempt is cut
    server.hits.clear()
    with pytest.raises(DataError) as ei:
        toy.fetch(server, mirror=server.mirror)
    n = len(toy.files["expr.csv.gz"])
    assert f"closed after {n // 2} of {n} bytes" in str(ei.value) and "tried 2 times" in str(ei.value)
    assert server.hits[path] == 2
    assert not (toy.dest / "toy" / "expr.csv.gz").exists() and _no_temp_files(toy.dest) == []


def test_unreachable_host_is_not_retried_for_every_file(toy, server, monkeypatch):
    server.stop()  # nothing listens on the port any more: connection refused
    rep = toy.report(server)
    assert rep.failed and all("cannot download" in why for _, why in rep.failed)
    assert sum("could not be reached earlier" in why for _, why in rep.failed) == len(rep.failed) - 1
    server.start = lambda: None  # the fixture's stop() must not fail on the stopped server
    server.stop = lambda: None


def test_verify_finds_a_changed_byte_and_fetch_repairs_it(toy, server):
    toy.fetch(server, mirror=server.mirror)
    p = toy.dest / "toy" / "resp.csv"
    b = bytearray(p.read_bytes())
    b[5] ^= 0x20
    p.write_bytes(bytes(b))
    problems = toy.verify()
    assert len(problems) == 1 and "toy/resp.csv: corrupted or changed" in problems[0]
    (toy.dest / "toy" / "notes.txt").unlink()  # bundle-only file: absence is no problem
    (toy.dest / "toy" / "smiles.csv").unlink()  # read by the loader: a problem
    problems = toy.verify()
    assert len(problems) == 2 and any("smiles.csv: missing" in x for x in problems)
    toy.fetch(server, mirror=server.mirror)
    assert toy.verify() == [] and p.read_bytes() == toy.files["resp.csv"]
    assert F.verify("toy", toy.dest / "toy", manifest=toy.manifest) == []  # the dataset folder itself works too


def test_join_keeps_quoted_fields_and_texts(tmp_path):
    rows = [["name", "a", "b,c", "d"], ["x 1", "1.50", 'say "hi"', ""], ["y,2", "line\nbreak", "007", "-0"]]
    for k, part in enumerate(_split_columns(rows, 2)):
        (tmp_path / f"p{k}.zip").write_bytes(_zip_bytes(f"p{k}.csv", _csv_bytes(part, "\r\n")))
    out = tmp_path / "out.csv.gz"
    got_hash = F.join_columns([tmp_path / "p0.zip", tmp_path / "p1.zip"], out)
    with gzip.open(out, "rt", newline="") as f:
        assert list(csv.reader(f)) == rows  # every text kept, quoting where needed
    ref = tmp_path / "ref.csv"
    ref.write_bytes(_csv_bytes([[""] + rows[0][1:]] + rows[1:]))  # other top-left name, other line ends
    assert got_hash == F.table_hash(out) == F.table_hash(ref)
    ref.write_bytes(_csv_bytes([[""] + rows[0][1:]] + rows[1:2] + [["y,2", "line\nbreak", "7", "-0"]]))
    assert F.table_hash(ref) != got_hash  # one value text differs


def test_join_refuses_parts_whose_rows_differ(tmp_path):
    a = tmp_path / "a.zip"
    b = tmp_path / "b.zip"
    a.write_bytes(_zip_bytes("a.csv", b"id,x\nc1,1\nc2,2\n"))
    b.write_bytes(_zip_bytes("b.csv", b"id,y\nc1,3\nc3,4\n"))
    with pytest.raises(DataError, match="different ids"):
        F.join_columns([a, b], tmp_path / "out.csv.gz")
    b.write_bytes(_zip_bytes("b.csv", b"id,y\nc1,3\n"))
    with pytest.raises(DataError, match="before the other parts"):
        F.join_columns([a, b], tmp_path / "out.csv.gz")


# ============================================================================================ CLI
def test_cli_parser_and_exit_codes(toy, server, monkeypatch, capsys):
    import argparse

    monkeypatch.setattr(manifest, "_MANIFEST", toy.manifest)
    monkeypatch.setenv("DRBENCH_RAW_URL_TEMPLATE", server.template)
    p = argparse.ArgumentParser()
    F.add_cli(p.add_subparsers(dest="c", required=True))
    args = p.parse_args(["fetch", "toy", "--dest", str(toy.dest), "--no-progress"])
    assert args.func(args) == 1  # the required mirror-only file is missing
    assert "expr.csv.gz" in capsys.readouterr().out
    args = p.parse_args(["fetch", "toy", "--mirror", server.mirror, "--dest", str(toy.dest), "--no-progress"])
    assert args.func(args) == 0
    args = p.parse_args(["verify", "toy", "--data-dir", str(toy.dest)])
    assert args.func(args) == 0
    (toy.dest / "toy" / "expr.csv.gz").write_bytes(b"not gzip")
    assert args.func(args) == 1
    assert "PROBLEM: toy/expr.csv.gz: corrupted or changed" in capsys.readouterr().out


# ============================================================================================ real data
needs_data = pytest.mark.skipif(not (DATA / "gdsc").is_dir(), reason=f"real data bundle not found at {DATA}")


def _serve_real(server: _Server, mirror: bool = True, upstream: bool = True):
    m = F.load_manifest()
    for name, entries in m.datasets.items():
        for e in entries:
            local = DATA / name / e.path
            if not local.is_file():
                continue
            if mirror:
                server.routes[f"/mirror/{name}/{e.path}"] = local.read_bytes()
            if upstream and e.source is not None:
                server.routes[f"/raw/{e.source.repo}/{e.source.commit}/{e.source.path}"] = local.read_bytes()


@pytest.mark.realdata
@needs_data
def test_package_manifest_matches_the_bundle_and_upstream_tsv():
    m = F.load_manifest()
    assert F.dataset_names() == ["gdsc", "ccle", "pdx", "tcga"]
    for name in m.datasets:
        assert F.verify(name, DATA) == [], name
        on_disk = {p.relative_to(DATA / name).as_posix() for p in (DATA / name).rglob("*") if p.is_file()}
        listed = {e.path for e in m.entries(name) if e.role != "upstream-only"}
        assert on_disk == listed, name
    rows = {(r.repo, r.commit, r.path): r for r in F.read_upstream_tsv(DATA / "UPSTREAM.tsv")}
    seen = set()
    for entries in m.datasets.values():
        for e in entries:
            for s in ([e.source] if e.source else []) + list(e.parts):
                r = rows[(s.repo, s.commit, s.path)]
                assert s.git_sha1 == r.git_sha1 and s.size == r.size
                seen.add((s.repo, s.commit, s.path))
    assert seen == set(rows)  # every release file is described
    # what the loader requires is in the manifest with that role, and the expression is mirror-only
    for name, roles in F.LOADER_FILES.items():
        by = {e.path: e for e in m.entries(name)}
        assert all(by[f].role == "required" for f in roles["required"])
    assert F.fetch_command_hint("gdsc").endswith("--mirror DIR|URL")
    assert F.fetch_command_hint("pdx") == "drbench data fetch pdx"


@pytest.mark.realdata
@needs_data
def test_real_fetch_from_http_mirror_loads_the_same_data(tmp_path, server):
    from drbench.datasets import load_dataset

    _serve_real(server, upstream=False)
    for name, shape in (("ccle", (328, 24)), ("pdx", (118, 228)), ("tcga", (403, 228))):
        out = F.fetch(name, dest=tmp_path, mirror=server.mirror, progress=False)
        assert out == tmp_path and F.verify(name, tmp_path) == []
        for e in F.load_manifest().entries(name):  # byte-identical to the bundle, hence the same data
            if e.role != "upstream-only":
                assert (tmp_path / name / e.path).read_bytes() == (DATA / name / e.path).read_bytes()
        assert load_dataset(name, tmp_path).shape == shape


@pytest.mark.realdata
@needs_data
def test_real_fetch_from_the_release_without_mirror(tmp_path, server):
    from drbench.datasets import load_dataset

    _serve_real(server, mirror=False)
    out = F.fetch("pdx", dest=tmp_path, progress=False, url_template=server.template)  # SMILES: mirror only
    ds = load_dataset("pdx", out)
    ref = load_dataset("pdx", DATA)
    assert np.array_equal(ds.binary, ref.binary, equal_nan=True) and not ds.has_smiles and ref.has_smiles
    assert any("drug_smiles.csv: missing" in p for p in F.verify("pdx", out))
    with pytest.raises(DataError) as ei:
        F.fetch("ccle", dest=tmp_path, progress=False, url_template=server.template)
    assert "cell_exprs.csv.gz" in str(ei.value) and "--mirror" in str(ei.value)
    assert (tmp_path / "ccle" / "cell_drug.csv").read_bytes() == (DATA / "ccle" / "cell_drug.csv").read_bytes()


@pytest.mark.realdata
@needs_data
def test_real_join_of_column_parts_reproduces_the_bundle_table(tmp_path, server):
    """The bundle's gdsc/cell_mutation.csv.gz split into two zipped column parts and joined by fetch gives
    the table hash the package manifest holds (the release's own parts are not in the bundle)."""
    m = F.load_manifest()
    entry = next(e for e in m.entries("gdsc") if e.path == "cell_mutation.csv.gz")
    with gzip.open(DATA / "gdsc" / "cell_mutation.csv.gz", "rt", newline="") as f:
        rows = list(csv.reader(f))
    parts = []
    for k, (src, part) in enumerate(zip(entry.parts, _split_columns(rows, len(entry.parts)))):
        data = _zip_bytes(src.path.rsplit("/", 1)[1][:-4], _csv_bytes(part))
        server.routes[f"/raw/{src.repo}/{src.commit}/{src.path}"] = data
        parts.append(F.Source(src.repo, src.commit, src.path, F.git_blob_sha1(data), len(data)))
    import dataclasses

    stand_in = dataclasses.replace(entry, parts=tuple(parts))
    man = F.Manifest({"gdsc": [stand_in]})
    F.fetch("gdsc", dest=tmp_path, progress=False, manifest=man, url_template=server.template)
    out = tmp_path / "gdsc" / "cell_mutation.csv.gz"  # fetch checked its table hash against the manifest's
    assert F.file_hashes(out)["sha256"] != entry.sha256  # other gzip bytes than the bundle's copy ...
    assert F.check_file(out, entry).status == "ok"  # ... and still the same table: verify accepts it


@pytest.mark.realdata
@needs_data
def test_loader_roles_match_the_loaders(tmp_path):
    from drbench.datasets import load_dataset

    for name in ("ccle", "tcga"):
        (tmp_path / name).mkdir()
        for f in F.LOADER_FILES[name]["required"]:
            shutil.copy(DATA / name / f, tmp_path / name / f)
        ds = load_dataset(name, tmp_path)  # the required files suffice
        assert ds.shape[1] == {"ccle": 24, "tcga": 228}[name]
        first = F.LOADER_FILES[name]["required"][0]
        (tmp_path / name / first).unlink()
        with pytest.raises(DataError, match=first):
            load_dataset(name, tmp_path)
        shutil.rmtree(tmp_path / name)


@pytest.mark.realdata
@needs_data
def test_drbench_cli_fetch_and_verify_from_a_folder_mirror(tmp_path, capsys):
    from drbench.cli import main

    assert main(["data", "fetch", "tcga", "--mirror", str(DATA), "--dest", str(tmp_path), "--no-progress"]) == 0
    assert main(["data", "verify", "tcga", "--data-dir", str(tmp_path)]) == 0
    p = tmp_path / "tcga" / "null_mask.csv"
    p.write_bytes(p.read_bytes()[:-10])
    assert main(["data", "verify", "tcga", "--data-dir", str(tmp_path)]) == 1
    assert "tcga/null_mask.csv: corrupted or changed" in capsys.readouterr().out
