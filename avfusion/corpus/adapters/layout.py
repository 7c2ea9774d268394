"""File discovery shared by the adapters."""

from __future__ import annotations

from pathlib import Path

from avfusion.corpus.types import CorpusError


def require_dir(root: str | Path, corpus: str, layout: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(f"{corpus}: root {root} is not a folder (expected layout: {layout})")
    return root


def files_with_suffix(folder: Path, suffixes: set[str]) -> list[Path]:
    """Files of `folder` whose suffix is one of `suffixes` (any case), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def sibling(path: Path, suffix: str) -> Path:
    """`path` with another suffix, matching the case on disk (TIMIT ships .WAV/.PHN or .wav/.phn)."""
    for candidate in (path.with_suffix(suffix.lower()), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return path.with_suffix(suffix.lower() if path.suffix.islower() else suffix.upper())


def nothing_found(corpus: str, root: Path, layout: str) -> CorpusError:
    return CorpusError(f"{corpus}: no utterances under {root} (expected layout: {layout})")
