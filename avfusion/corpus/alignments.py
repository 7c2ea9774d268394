"""Phone alignment readers (TextGrid, TIMIT .phn) and the TextGrid writer.

Readers return the labels as written; `normalise_phones` strips stress, folds to the 39-phone set and
gives the interval of a deleted symbol (TIMIT's q) to its left neighbour so no time goes unlabelled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from avfusion.corpus.phones import SIL, UnknownPhoneError, fold
from avfusion.corpus.types import Segment
from avfusion.utils.atomic import atomic_path


class AlignmentError(ValueError):
    pass


def read_textgrid(path: str | os.PathLike, tier: str = "phones") -> list[Segment]:
    """Intervals of one tier of a Praat TextGrid (Montreal Forced Aligner writes `words` and `phones`)."""
    from praatio import textgrid

    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=True, reportingMode="silence")
    except Exception as err:  # praatio raises a variety of parse errors
        raise AlignmentError(f"{path}: cannot parse TextGrid ({err})") from None
    if tier not in tg.tierNames:
        raise AlignmentError(f"{path}: no tier {tier!r} (tiers: {list(tg.tierNames)})")
    entries = tg.getTier(tier).entries
    return [Segment(e.label.strip(), float(e.start), float(e.end)) for e in entries]


def read_timit_phn(path: str | os.PathLike, sample_rate: int = 16000) -> list[Segment]:
    """TIMIT `.phn`: `start_sample end_sample label` per line."""
    segments = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3:
            raise AlignmentError(f"{path}:{lineno}: expected 'start end label', got {line!r}")
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise AlignmentError(f"{path}:{lineno}: sample offsets must be integers, got {line!r}") from None
        segments.append(Segment(fields[2], start / sample_rate, end / sample_rate))
    return segments


READERS: dict[str, Callable[[Path], list[Segment]]] = {
    ".textgrid": read_textgrid,
    ".phn": read_timit_phn,
}


def read_phones(path: str | os.PathLike) -> list[Segment]:
    """Read a phone alignment, choosing the reader by file suffix, and check the timing."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise AlignmentError(f"{path}: no alignment reader for suffix {path.suffix!r} (known: {sorted(READERS)})")
    if not path.is_file():
        raise AlignmentError(f"{path}: alignment file does not exist")
    segments = reader(path)
    check_monotonic(segments, path)
    return segments


def check_monotonic(segments: Sequence[Segment], source: object) -> None:
    for i, seg in enumerate(segments):
        if seg.end <= seg.start:
            raise AlignmentError(f"{source}: interval {i} ({seg.label!r}) ends at {seg.end} before it starts at {seg.start}")
        if i and seg.start < segments[i - 1].end - 1e-6:
            raise AlignmentError(f"{source}: interval {i} ({seg.label!r}) overlaps the previous one")


def normalise_phones(segments: Sequence[Segment], source: object = "alignment") -> list[Segment]:
    """Fold labels to the 39-phone set; merge deleted symbols and repeated silences into neighbours."""
    out: list[Segment] = []
    for seg in segments:
        try:
            label = fold(seg.label)
        except UnknownPhoneError as err:
            raise AlignmentError(f"{source}: {err}") from None
        if label is None or (out and label == SIL and out[-1].label == SIL):
            if out:  # extend the left neighbour over this interval
                out[-1] = Segment(out[-1].label, out[-1].start, seg.end)
                continue
            label = SIL
        out.append(Segment(label, seg.start, seg.end))
    return out


def write_textgrid(path: str | os.PathLike, tiers: dict[str, Sequence[Segment]], duration: float) -> None:
    """Write interval tiers (e.g. `words`, `phones`) to a long-format TextGrid, atomically."""
    from praatio import textgrid

    tg = textgrid.Textgrid()
    for name, segments in tiers.items():
        entries = [(s.start, s.end, s.label) for s in segments]
        tg.addTier(textgrid.IntervalTier(name, entries, 0.0, duration))
    with atomic_path(path) as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="silence")
