"""A file's identity for caches: its resolved path, size and modification time (not its bytes, which
would cost a read of every recording), so a file rewritten in place is another file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_stamp(path: str | os.PathLike) -> str:
    st = os.stat(path)
    return hashlib.sha1(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
