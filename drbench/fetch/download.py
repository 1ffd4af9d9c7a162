"""Downloading a data set's files (upstream release, mirror folder or URL), each checked before it is
renamed into place: :func:`fetch` and :func:`fetch_report`."""

from __future__ import annotations

import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from drbench import atomic
from drbench.errors import DataError
from drbench.fetch.hashes import file_hashes, table_hash
from drbench.fetch.integrity import check_file
from drbench.fetch.join import join_columns
from drbench.fetch.manifest import MIRROR_HINT, ROLE_TEXT, Entry, Manifest, load_manifest
from drbench.inputs import check_output_dir

log = logging.getLogger("drbench.fetch")

#: The one place a code host is named: the raw-file URL of ``path`` in ``repo`` at ``commit``.
#: ``DRBENCH_RAW_URL_TEMPLATE`` (same placeholders) overrides it, e.g. for a caching proxy.
RAW_URL_TEMPLATE = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"

#: download attempts per file (transient network errors and truncated bodies are retried) and the pause
#: before the second attempt (doubled after each failure); a 404 is never retried.
RETRIES = 3
BACKOFF_SECONDS = 1.0
TIMEOUT_SECONDS = 60.0
CHUNK = 1 << 16


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
    flag = "--dest" if dest is not None else "the user cache"
    dest = Path(dest) if dest is not None else default_cache_dir()
    template = url_template or os.environ.get("DRBENCH_RAW_URL_TEMPLATE") or RAW_URL_TEMPLATE
    if mirror is not None and not _is_url(mirror) and not (Path(mirror) / name).is_dir():
        raise DataError(f"mirror folder {mirror} has no {name}/ folder; point --mirror at the folder that holds "
                        "gdsc/, ccle/, pdx/, tcga/")
    ddir = check_output_dir(dest / name, flag, shown=dest)
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

