"""Reading and checking the CSV files of the MTIGCN data layout, with errors that name file, row and column."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from drbench.errors import DataError


def read_table(path: Path, index_col=0, dtype=None, sep: str = ",") -> pd.DataFrame:
    """Read a CSV (optionally gzipped; ``sep="\\t"`` for a TSV) or raise a :class:`DataError` that names the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"missing file: {path}")
    try:
        df = pd.read_csv(path, index_col=index_col, dtype=dtype, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError,
            zlib.error, gzip.BadGzipFile, OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: the file is unreadable or truncated ({type(e).__name__}: {e})") from None
    if df.shape[0] == 0:
        raise DataError(f"cannot read {path}: no data rows")
    df.index = df.index.map(str)
    df.columns = df.columns.map(str)
    return df


def check_unique(ids, path: Path, what: str) -> None:
    s = pd.Index(ids)
    if s.has_duplicates:
        dup = s[s.duplicated()].unique()[:5].tolist()
        raise DataError(f"{path}: duplicate {what} ids {dup}")


def numeric(df: pd.DataFrame, path: Path, allow_nan: bool, what: str = "value") -> np.ndarray:
    """The frame as float64; a non-numeric cell or (unless allowed) a missing one is an error naming it."""
    conv = df.apply(pd.to_numeric, errors="coerce")
    bad = conv.isna().to_numpy() & ~df.isna().to_numpy()
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: non-numeric {what} {df.iat[i, j]!r} at row {str(df.index[i])!r}, column {str(df.columns[j])!r}"
        )
    a = conv.to_numpy(dtype=np.float64)
    if not allow_nan and np.isnan(a).any():
        i, j = np.argwhere(np.isnan(a))[0]
        raise DataError(
            f"{path}: missing {what} at row {str(df.index[i])!r}, column {str(df.columns[j])!r} "
            "(no value may be missing in this file; is it truncated?)"
        )
    return a


def same_ids(expected, found, path: Path, expected_from: Path, what: str) -> None:
    """Raise unless ``found`` equals ``expected`` element for element (same ids, same order)."""
    expected, found = list(expected), list(found)
    if expected == found:
        return
    missing = [x for x in expected if x not in set(found)]
    extra = [x for x in found if x not in set(expected)]
    if missing or extra:
        raise DataError(
            f"{what} ids in {path} do not line up with {expected_from}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]})"
        )
    k = next(i for i, (a, b) in enumerate(zip(expected, found)) if a != b)
    raise DataError(
        f"{what} ids in {path} are in another order than in {expected_from} "
        f"(first difference at position {k}: {found[k]!r} vs {expected[k]!r})"
    )


def align_rows(df: pd.DataFrame, ids, path: Path, what: str, required: bool = True) -> pd.DataFrame:
    """``df`` reindexed to ``ids``; missing ids are an error when ``required``."""
    check_unique(df.index, path, what)
    missing = [x for x in ids if x not in df.index]
    if missing and required:
        raise DataError(
            f"{path} has no row for {len(missing)} {what} id(s) of the response matrix (e.g. {missing[:3]})"
        )
    return df.reindex([x for x in ids if x in df.index])


def fingerprints(path: Path, drug_ids, width: int = 920) -> np.ndarray:
    df = read_table(path)
    df = align_rows(df, drug_ids, path, "drug")
    if df.shape[1] != width:
        raise DataError(f"{path}: fingerprints must have {width} bits per drug, found {df.shape[1]} columns")
    a = numeric(df, path, allow_nan=False, what="fingerprint bit")
    bad = (a != 0) & (a != 1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{path}: fingerprint bits must be 0/1; found {float(a[i, j])!r} at row {str(df.index[i])!r}, column {str(df.columns[j])!r}")
    return a
