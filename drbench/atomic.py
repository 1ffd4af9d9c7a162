"""Atomic file writes: a reader, a crash or a failed write leaves the old file or the new one, never part of one.

Every file drbench writes (boards, CSVs, pictures, the data it fetches) goes through :func:`replacing`: the
content is written to a temporary file in the same folder, flushed to disk and renamed over the target in one
step. The temporary file is created like any other file (``0o666`` less the umask, not ``0o600``), so the
result has the usual permissions, and its name ends with the target's name so that writers that pick a format
from the suffix (``savefig``, ``to_csv(compression="infer")``) see the right one.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: marks a temporary file: ``.<token>.part.<target name>``
TEMP_MARK = ".part."


def temp_beside(path: str | os.PathLike) -> Path:
    """A new empty file in ``path``'s folder (which must exist), with the permissions a plain ``open`` gives."""
    path = Path(path)
    while True:
        tmp = path.parent / f".{secrets.token_hex(6)}{TEMP_MARK}{path.name}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def commit(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Flush ``tmp`` to disk and rename it over ``path`` (one atomic step), then flush the folder entry."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:
        fd = os.open(Path(path).parent, os.O_RDONLY)
    except OSError:  # a folder that cannot be opened (some platforms): the rename itself is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """``with replacing(p) as tmp:`` write ``tmp``; when the block succeeds ``tmp`` replaces ``p``.

    When the block raises, ``p`` is untouched and the temporary file is removed. A process killed before the
    rename leaves ``p`` untouched too, and possibly its hidden temporary file (``.<token>.part.<name>``).
    """
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_csv(frame, path: str | os.PathLike, **to_csv) -> None:
    """Replace ``path`` with ``frame.to_csv(**to_csv)`` atomically."""
    with replacing(path) as tmp:
        frame.to_csv(tmp, **to_csv)


__all__ = ["replacing", "write_text", "write_csv", "temp_beside", "commit", "TEMP_MARK"]
