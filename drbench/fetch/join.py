"""Joining the release's column-split zipped CSV parts into one gzipped CSV."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path

from drbench.errors import DataError
from drbench.fetch.hashes import _fields, _records, _TableHasher


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
