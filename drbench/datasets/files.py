"""Reading and checking the CSV files of the MTIGCN data layout, with errors that name file, row and column."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from drbench.errors import DataError


@dataclass(frozen=True)
class ValueRange:
    """The numbers a data file may hold: finite, within ``[low, high]`` and, when ``levels`` is given, one of
    those. ``meaning`` says what the numbers are (it is shown in the error)."""

    low: float
    high: float
    meaning: str
    levels: tuple = ()

    def describe(self) -> str:
        if self.levels:
            return " or ".join(f"{v:g}" for v in self.levels)
        return f"within the documented range [{self.low:g}, {self.high:g}] ({self.meaning})"


#: labels, null-mask flags and fingerprint bits
ZERO_ONE = ValueRange(0.0, 1.0, "a 0/1 flag", levels=(0.0, 1.0))
#: features are cast to float32: a larger magnitude would become inf
FLOAT32 = ValueRange(-float(np.finfo(np.float32).max), float(np.finfo(np.float32).max), "the float32 range")

#: delimiters recognised in a header line, so that a file with another one than expected gets a clear error
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def _pandas_rounds_correctly() -> bool:
    """pandas 3.1 parses every decimal to the nearest double (and deprecates ``float_precision``); earlier
    versions' default C parser can be one unit in the last place off."""
    try:
        major, minor = (int(x) for x in pd.__version__.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= (3, 1)


#: passed to ``pd.read_csv``: correctly rounded numbers whatever the pandas version, so that a dataset's content
#: hash (and the runs keyed by it) does not depend on the machine's pandas (measured: pandas 3.0.6's default parser
#: put 23,809 of GDSC's ln IC50 values one unit in the last place off, ≤ 1.8e-15, and changed the hash)
_EXACT_FLOATS = {} if _pandas_rounds_correctly() else {"float_precision": "round_trip"}


def _header_line(path: Path) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as f:
        return f.readline()


def read_table(path: Path, index_col=0, dtype=None, sep: str = ",") -> pd.DataFrame:
    """Read a comma-separated file (optionally gzipped; ``sep="\\t"`` for a tab-separated one) or raise a
    :class:`DataError` that names the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"missing file: {path}")
    try:
        header = _header_line(path)
        for other, name in _DELIMITERS.items():
            if other != sep and header.count(other) > header.count(sep):
                raise DataError(f"{path}: expected {_DELIMITERS[sep]}-separated values, but the header line is "
                                f"{name}-separated")
        df = pd.read_csv(path, index_col=index_col, dtype=dtype, sep=sep, **_EXACT_FLOATS)
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


def numeric(df: pd.DataFrame, path: Path, valid: ValueRange, allow_nan: bool, what: str = "value") -> np.ndarray:
    """The frame as float64, every number checked against ``valid``.

    A non-numeric cell, a missing one (unless ``allow_nan``), ``inf``/``-inf`` (also a number too large for
    float64, which reads as inf) and a number outside ``valid`` are each an error naming file, row and column.
    """
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
    if np.isinf(a).any():
        i, j = np.argwhere(np.isinf(a))[0]
        raise DataError(f"{path}: non-finite {what} {a[i, j]:g} at row {str(df.index[i])!r}, "
                        f"column {str(df.columns[j])!r}; {what}s must be {valid.describe()}")
    with np.errstate(invalid="ignore"):
        outside = (a < valid.low) | (a > valid.high)
        if valid.levels:
            outside |= ~np.isin(a, valid.levels) & ~np.isnan(a)
    if outside.any():
        i, j = np.argwhere(outside)[0]
        raise DataError(f"{path}: {what}s must be {valid.describe()}; found {a[i, j]:g} at row {str(df.index[i])!r}, "
                        f"column {str(df.columns[j])!r}")
    return a


def same_ids(expected, found, path: Path, expected_from: Path, what: str) -> None:
    """Raise unless ``found`` equals ``expected`` element for element (same ids, same order)."""
    expected, found = list(expected), list(found)
    if expected == found:
        return
    for short, n, long, m in ((path, len(found), expected_from, len(expected)),
                              (expected_from, len(expected), path, len(found))):
        if n < m and (found[:n] == expected[:n]):
            raise DataError(f"{short} has only the first {n} of the {m} {what} ids of {long} "
                            f"(is {short.name} truncated?)")
    missing = [str(x) for x in expected if x not in set(found)]
    extra = [str(x) for x in found if x not in set(expected)]
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
    missing = [str(x) for x in ids if x not in df.index]
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
    return numeric(df, path, ZERO_ONE, allow_nan=False, what="fingerprint bit")
