"""Atomic file writes: a reader (or a resumed run) never sees a half-written file."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from avfusion.errors import UserError

log = logging.getLogger(__name__)

NEARLY_FULL_BYTES = 1 << 20  # an OSError while writing with less than this free is a full disk
STALE_AFTER_S = 3600.0  # a temporary file this old belongs to a writer that was killed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # what open() gives a new file (mkstemp makes it owner-only)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); rename it over `path` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}")
    os.close(fd)
    os.chmod(tmp, _MODE)  # readable by whom the user's umask allows, like any file they write
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and _disk_full(err, target.parent):
            raise DiskFullError(f"{target}: the disk is full ({shutil.disk_usage(target.parent).free / 2**20:.1f} MiB "
                                f"free on the device of {target.parent}); nothing half-written was left: free some "
                                "space (or point the cache or run folder elsewhere) and run again") from None
        raise


class DiskFullError(UserError):
    """No space left where a file was being written."""


def _disk_full(err: OSError, folder: Path) -> bool:
    """ENOSPC, or an errno-less short write (numpy's "N requested and M written") on a nearly full device."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    with contextlib.suppress(OSError):
        return err.errno is None and shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    return False


def remove_stale_temporaries(folder: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove the temporary files `atomic_path` made in `folder` (`.<stem>.<random>.tmp<suffix>`) that are
    older than any live writer's (a writer killed with -9 leaves its temporary behind); return how many."""
    now, removed = time.time(), 0
    for path in Path(folder).glob(".*.tmp*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and now - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed += 1
    if removed:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", folder, removed)
    return removed


def ensure_writable(folder: str | os.PathLike, key: str) -> Path:
    """`folder`, created if need be, after a test write: refused before any work, not after it (`key`: the
    setting that named it)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UserError(f"{key}={folder}: cannot write there ({err.strerror or err}); give a folder you can "
                        "write to") from None
    return folder


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
