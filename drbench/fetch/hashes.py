"""The hashes the data manifest records: git blob SHA-1, sha256, and the table hash of a CSV's cell texts."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from pathlib import Path

from drbench.errors import DataError


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
