"""Per-frame arrays of a long recording on disk: written a block of rows at a time, read back by rows.

A recording's waveform, raw features and posteriors grow with its length; `predict` keeps them in a
scratch folder instead of memory. Writes and reads are plain file I/O, not a memory map, so the process
holds one block at a time (pages of a mapped file count as resident once touched). What `predict`
returns views the files as read-only memory maps, which a user touches only where they look.
"""

from __future__ import annotations

import mmap
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from avfusion.utils.atomic import atomic_path


class RowFile:
    """A (T, *tail) array appended to a raw file; `len`, `x[lo:hi]` and `array()` read it back."""

    def __init__(self, path: str | Path, tail: tuple[int, ...] = (), dtype=np.float32):
        self.path, self.tail, self.dtype = Path(path), tuple(tail), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.tail, dtype=np.int64)) * self.dtype.itemsize
        self._file = open(self.path, "wb")
        self.rows = 0

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, self.dtype)
        if rows.shape[1:] != self.tail:
            raise ValueError(f"{self.path.name}: rows of shape {rows.shape[1:]}, expected {self.tail}")
        self._file.write(rows.tobytes())
        self.rows += len(rows)

    def __len__(self) -> int:
        return self.rows

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.rows, *self.tail)

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("a RowFile reads contiguous rows: x[lo:hi]")
        lo, hi, _ = rows.indices(self.rows)
        self._file.flush()
        count = max(0, hi - lo)
        values = np.fromfile(self.path, self.dtype, count * self.row_bytes // self.dtype.itemsize,
                             offset=lo * self.row_bytes)
        return values.reshape(count, *self.tail)

    def array(self) -> np.ndarray:
        """All rows as a read-only memory map (an empty array when there are none)."""
        self._file.close()
        if self.rows == 0:
            return np.zeros(self.shape, self.dtype)
        return np.memmap(self.path, self.dtype, "r", shape=self.shape)


class Scratch:
    """A temporary folder for a prediction's `RowFile`s, removed with the object that owns it (`keep_for`)
    or by `remove`. `directory`: where to make it (default: the system's temporary folder, $TMPDIR)."""

    def __init__(self, directory: str | Path | None = None):
        self.path = Path(tempfile.mkdtemp(prefix="avfusion-predict-", dir=directory))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)

    def rows(self, name: str, tail: tuple[int, ...] = (), dtype=np.float32) -> RowFile:
        return RowFile(self.path / f"{name}.bin", tail, dtype)

    def keep_for(self, owner: object) -> None:
        """Remove the folder when `owner` is garbage-collected (or at exit), not before."""
        self._finalizer.detach()
        weakref.finalize(owner, shutil.rmtree, self.path, True)

    def remove(self) -> None:
        self._finalizer()


def save_npy(array: np.ndarray, path: str | Path, block_bytes: int = 1 << 22) -> None:
    """`np.save` of a float32 array, atomically. A memory map of a whole file (what `RowFile.array` gives)
    is copied from its file a block at a time, so saving does not make it resident."""
    whole_file_map = isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and \
        array.dtype == np.float32 and array.flags.c_contiguous and Path(array.filename or "").is_file()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if not whole_file_map:
            np.save(f, np.asarray(array, np.float32))
            return
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(array.dtype),
                                                 "fortran_order": False, "shape": array.shape})
        with open(array.filename, "rb") as src:
            src.seek(array.offset)
            remaining = array.nbytes
            while remaining:
                chunk = src.read(min(remaining, block_bytes))
                if not chunk:
                    raise OSError(f"{array.filename}: ends {remaining} bytes short of its array")
                f.write(chunk)
                remaining -= len(chunk)
