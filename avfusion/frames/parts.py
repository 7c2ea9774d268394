"""Rows kept in several arrays, read as one array: a split's frames stored in parts (each part's matrices
memory-mapped .npy files of their own), or a split with its noisy copies, without copying them into one.

Reading `RowParts` is what reading the array the parts would join into gives: a slice inside one part is a
view of it, a slice across parts or rows by index are gathered from each part they fall in (one fancy-indexing
read per part), and `np.asarray` joins every part (all of it in memory: for small arrays and tests).
"""

from __future__ import annotations

import numpy as np


def plain(array):
    """A memory map as a plain ndarray view of the same pages (np.memmap's indexing costs microseconds a call)."""
    return array.view(np.ndarray) if isinstance(array, np.memmap) else array


class RowParts:
    """The rows of `parts` (arrays of one dtype and trailing shape) one after another, read-only."""

    def __init__(self, parts: list) -> None:
        if not parts:
            raise ValueError("RowParts needs at least one part")
        if len({(p.shape[1:], np.dtype(p.dtype)) for p in parts}) > 1:
            raise ValueError(f"parts of different row shapes or types: {sorted({(p.shape[1:], str(p.dtype)) for p in parts})}")
        self.parts = [plain(q) for p in parts for q in (p.parts if isinstance(p, RowParts) else [p])]  # one level
        self.starts = np.concatenate([[0], np.cumsum([len(p) for p in self.parts])]).astype(np.int64)
        self.shape = (int(self.starts[-1]), *self.parts[0].shape[1:])
        self.dtype = np.dtype(self.parts[0].dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        joined = np.concatenate([np.asarray(p) for p in self.parts])
        return joined if dtype is None else joined.astype(dtype, copy=False)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # rows first, then the rest on what they give
            first, rest = key[0], key[1:]
            rows = self[first]
            return rows[rest] if isinstance(first, (int, np.integer)) else rows[(slice(None), *rest)]
        if isinstance(key, (int, np.integer)):
            row = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= row < len(self):
                raise IndexError(f"row {key} out of {len(self)}")
            part = int(np.searchsorted(self.starts, row, side="right")) - 1
            return self.parts[part][row - self.starts[part]]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._span(start, max(start, stop))
        return self._gather(np.asarray(key))

    def _span(self, start: int, stop: int) -> np.ndarray:
        """Rows start:stop: a view of one part when they lie in it."""
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        last = int(np.searchsorted(self.starts, stop, side="left")) - 1
        if stop == start or first == last:
            part = max(min(first, len(self.parts) - 1), 0)
            return self.parts[part][start - self.starts[part]:stop - self.starts[part]]
        return np.concatenate([self.parts[k][max(start - self.starts[k], 0):stop - self.starts[k]]
                               for k in range(first, last + 1)])

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64).ravel()
        rows = np.where(rows < 0, rows + len(self), rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of {len(self)}")
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        ordered = bool(np.all(rows[1:] >= rows[:-1]))  # training batches come sorted: each part's rows a slice of out
        order = None if ordered else np.argsort(rows, kind="stable")
        in_order = rows if ordered else rows[order]
        bounds = np.searchsorted(in_order, self.starts)  # each part's run of (ordered) rows
        for k in np.flatnonzero(np.diff(bounds)):
            a, b = int(bounds[k]), int(bounds[k + 1])
            values = self.parts[k][in_order[a:b] - self.starts[k]]
            if ordered:
                out[a:b] = values
            else:
                out[order[a:b]] = values
        return out
