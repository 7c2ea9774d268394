"""Many recordings in one prediction call (`avfusion-predict clips=...`): which files `clips` names, and the
summary table of what each gave.

`clips` is a list of files or glob patterns, or one manifest file (`.txt` / `.lst`: one recording per line,
blank lines and `#` comments skipped, relative paths against the manifest's folder). Each recording's files
go to `<output_dir>/<stem>/` as a one-clip call writes them; `<output_dir>/summary.tsv` lists them all.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from avfusion.errors import UserError
from avfusion.utils.atomic import write_text_atomic

MANIFEST_SUFFIXES = (".txt", ".lst")


def clip_list(clips: str | Sequence[str]) -> list[Path]:
    """The recordings `clips` names, in its order (a pattern's matches sorted); every one exists, and no two
    share a file stem (their output folders would collide)."""
    entries = [clips] if isinstance(clips, (str, Path)) else list(clips)
    if not entries:
        raise UserError("clips=[]: give the recordings to predict (files, glob patterns, or a manifest .txt)")
    if len(entries) == 1 and Path(entries[0]).suffix in MANIFEST_SUFFIXES:
        manifest = Path(entries[0])
        if not manifest.is_file():
            raise UserError(f"clips={manifest}: no such manifest file")
        lines = [line.split("#", 1)[0].strip() for line in manifest.read_text().splitlines()]
        paths = [p if p.is_absolute() else manifest.parent / p for p in map(Path, filter(None, lines))]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"{manifest}: {len(missing)} listed recording(s) not found, e.g. {missing[0]}")
    else:
        paths = []
        for entry in map(str, entries):
            matches = sorted(glob.glob(entry, recursive=True)) if glob.has_magic(entry) else [entry]
            if not matches:
                raise UserError(f"clips: the pattern {entry!r} matches no file")
            if not Path(matches[0]).is_file():
                raise UserError(f"clips: {entry}: no such file")
            paths += map(Path, matches)
    if not paths:
        raise UserError(f"clips={clips}: lists no recording")
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems and stems[path.stem] != path:
            raise UserError(f"clips: {stems[path.stem]} and {path} share the name {path.stem!r}, so their output "
                            "folders would be one; predict them in two calls with different output_dir")
        stems[path.stem] = path
    return list(dict.fromkeys(paths))


@dataclass
class ClipResult:
    clip: Path
    folder: Path
    seconds: float | None = None
    units: int | None = None
    error_rate: float | None = None
    error: str | None = None  # why the clip failed (the others are predicted all the same)


def write_summary(results: list[ClipResult], path: Path) -> str:
    """`summary.tsv` of every clip (atomic), and the same as a printed table."""
    header = ("clip", "seconds", "units", "error_rate", "output")
    rows = [(str(r.clip), "" if r.seconds is None else f"{r.seconds:.2f}", "" if r.units is None else str(r.units),
             "" if r.error_rate is None else f"{r.error_rate:.3f}",
             str(r.folder) if r.error is None else f"FAILED: {r.error}") for r in results]
    write_text_atomic(path, "".join("\t".join(row) + "\n" for row in [header, *rows]))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in [header, *rows])
