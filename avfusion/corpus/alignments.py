"""Alignment readers (TextGrid, TIMIT .phn, HTK MLF, Kaldi CTM, GRID .align, LRS3 .txt) and the
TextGrid writer.

Readers return the labels as written. Single-utterance formats map a path to segments; MLF and CTM hold
many utterances and are read once per file (cached), an utterance's entry chosen by its `alignment_key`.
The format is the one the utterance declares (a corpus adapter names its own; a manifest line may, with
`alignment_format`), else its file suffix where that is unambiguous: a `.txt` is read only as declared.
`utterance_labels` gives an utterance's normalised segments: phones folded to the 39-phone set (a
deleted symbol such as TIMIT's q gives its interval to its left neighbour, so no time goes
unlabelled), or words lower-cased with silence markers as `sil`.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from avfusion.errors import UserError
from avfusion.corpus.phones import SIL, UnknownPhoneError, fold
from avfusion.corpus.types import LABEL_KINDS, Segment, Utterance
from avfusion.utils.atomic import atomic_path

log = logging.getLogger(__name__)

HTK_UNITS_PER_S = 10_000_000  # HTK times are in 100 ns units
CTM_ROUNDING_S = 0.010  # CTM times rounded to two decimals overlap their neighbours by up to one frame
GRID_UNITS_PER_S = 25_000  # GRID .align times: 1/25000 s (75000 = a 3 s utterance)
WORD_SILENCES = {"", "sil", "sp", "<sil>", "<eps>", "!sil"}


class AlignmentError(UserError):
    pass


# --- single-utterance formats -------------------------------------------------------------------------

def read_textgrid(path: str | os.PathLike, tier: str = "phones", speaker: str | None = None,
                  tier_name: str | None = None) -> list[Segment]:
    """Intervals of one tier of a Praat TextGrid (Montreal Forced Aligner writes `words` and `phones`, or
    `<speaker> - phones` per speaker when it aligns several): `tier_name` if given, else the tier named
    `tier`, else the `speaker`'s `<speaker> - <tier>`, else the only `* - <tier>`."""
    from praatio.utilities import textgrid_io

    try:  # praatio's parser, not its Textgrid class: that sorts a tier's intervals, hiding a malformed file
        try:
            data = Path(path).read_text(encoding="utf-16")
        except UnicodeError:
            data = Path(path).read_text(encoding="utf-8")
        tiers = textgrid_io.parseTextgridStr(data, includeEmptyIntervals=True)["tiers"]
    except Exception as err:  # praatio raises a variety of parse errors
        raise AlignmentError(f"{path}: cannot parse TextGrid ({err})") from None
    names = [t["name"] for t in tiers]
    if tier_name is not None:
        if tier_name not in names:
            raise AlignmentError(f"{path}: no tier {tier_name!r} (alignment_tier); tiers: {names}")
        chosen = tier_name
    elif tier in names:
        chosen = tier
    else:
        per_speaker = [n for n in names if n.endswith(f" - {tier}")]
        mine = [n for n in per_speaker if speaker is not None and n == f"{speaker} - {tier}"]
        if mine or len(per_speaker) == 1:
            chosen = (mine or per_speaker)[0]
        elif per_speaker:
            whose = f" and none is speaker {speaker!r}'s '{speaker} - {tier}'" if speaker else ""
            raise AlignmentError(f"{path}: {len(per_speaker)} speakers' {tier} tiers {per_speaker}{whose}: name "
                                 "the tier with the manifest's alignment_tier field")
        else:
            raise AlignmentError(f"{path}: no tier {tier!r} or '<speaker> - {tier}' (tiers: {names})")
    if names.count(chosen) > 1:
        raise AlignmentError(f"{path}: {names.count(chosen)} tiers are named {chosen!r}")
    tier_data = tiers[names.index(chosen)]
    if tier_data["class"] != "IntervalTier":
        raise AlignmentError(f"{path}: tier {chosen!r} is a {tier_data['class']}, not an IntervalTier")
    segments = [Segment(str(label).strip(), float(start), float(end)) for start, end, label in tier_data["entries"]]
    for i in range(1, len(segments)):
        if segments[i].start < segments[i - 1].start:
            raise AlignmentError(f"{path}: tier {chosen!r}: interval {i + 1} ({segments[i].label!r} at "
                                 f"{segments[i].start} s) comes after one starting at {segments[i - 1].start} s: "
                                 "intervals out of order")
    return segments


def _timed_lines(path: Path, lines: Sequence[tuple[int, str]], scale: float) -> list[Segment]:
    """`start end label [...]` lines with integer times in units of 1/scale s."""
    segments = []
    for lineno, line in lines:
        fields = line.split()
        if len(fields) < 3:
            raise AlignmentError(f"{path}:{lineno}: expected 'start end label', got {line.strip()!r}")
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise AlignmentError(f"{path}:{lineno}: times must be integers, got {line.strip()!r}") from None
        segments.append(Segment(fields[2], start / scale, end / scale))
    return segments


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise AlignmentError(f"{path}: cannot read ({err.strerror})") from None
    return [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_timit_phn(path: str | os.PathLike, sample_rate: int = 16000) -> list[Segment]:
    """TIMIT `.phn`: `start_sample end_sample label` per line."""
    path = Path(path)
    lines = _numbered_lines(path)
    for lineno, line in lines:
        if len(line.split()) != 3:
            raise AlignmentError(f"{path}:{lineno}: expected 'start end label', got {line.strip()!r}")
    return _timed_lines(path, lines, sample_rate)


def read_grid_align(path: str | os.PathLike) -> list[Segment]:
    """GRID `.align`: `start end word` per line, times in 1/25000 s; `sil` and `sp` are silences."""
    path = Path(path)
    return _timed_lines(path, _numbered_lines(path), GRID_UNITS_PER_S)


def read_lrs3_txt(path: str | os.PathLike) -> list[Segment]:
    """LRS3 `.txt`: `Text:`/`Conf:` header, then a `WORD START END ASDSCORE` line and one word per line
    with times in seconds from the start of the clip."""
    path = Path(path)
    lines = _numbered_lines(path)
    header = next((i for i, (_, line) in enumerate(lines) if line.split()[0] == "WORD"), None)
    if header is None:
        raise AlignmentError(f"{path}: no 'WORD START END' line: this LRS3 file has no word timings")
    segments = []
    for lineno, line in lines[header + 1:]:
        fields = line.split()
        try:
            segments.append(Segment(fields[0], float(fields[1]), float(fields[2])))
        except (IndexError, ValueError):
            raise AlignmentError(f"{path}:{lineno}: expected 'WORD START END [SCORE]', got {line.strip()!r}") \
                from None
    return segments


def read_transcript(path: str | os.PathLike) -> str:
    """A clip's transcript from a text file: the `Text:` line of an LRS2/LRS3 `.txt`, else the whole file."""
    path = Path(path)
    if not path.is_file():
        raise AlignmentError(f"transcript={path}: no such file")
    text = path.read_text(encoding="utf-8", errors="replace")
    header = next((line.split(":", 1)[1] for line in text.splitlines() if line.startswith("Text:")), None)
    return (header if header is not None else text).strip()


# --- multi-utterance formats --------------------------------------------------------------------------

def read_htk_mlf(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """HTK master label file: `#!MLF!#`, then per utterance a quoted path, `start end label [...]` lines
    in 100 ns units, and a `.` line. Entries are keyed by the quoted path without its extension.

    A labels-only MLF (a label per line, no times) is rejected: frame labels need times."""
    path = Path(path)
    lines = _numbered_lines(path)
    if not lines or lines[0][1].strip() != "#!MLF!#":
        raise AlignmentError(f"{path}: not an HTK MLF (the first line must be '#!MLF!#')")
    entries: dict[str, list[Segment]] = {}
    key, body = None, []
    for lineno, line in lines[1:]:
        text = line.strip()
        if key is None:
            if "->" in text or "=>" in text:
                raise AlignmentError(f"{path}:{lineno}: MLF sub-directory references ('->', '=>') are not "
                                     "supported; give the labels in the MLF itself")
            if not (text.startswith('"') and text.endswith('"') and len(text) > 2):
                raise AlignmentError(f"{path}:{lineno}: expected a quoted utterance path, got {text!r}")
            key, body, key_line = mlf_key(text[1:-1]), [], lineno
        elif text == ".":
            if key in entries:
                raise AlignmentError(f"{path}:{key_line}: utterance {key!r} occurs twice")
            entries[key] = _timed_lines(path, body, HTK_UNITS_PER_S)
            key = None
        else:
            if len(text.split()) < 3 or not text.split()[0].isdigit():
                raise AlignmentError(
                    f"{path}:{lineno}: labels-only MLF (line {text!r} has no start/end times); frame labels "
                    "need times: force-align (HVite -a, or the Montreal Forced Aligner) to get them")
            body.append((lineno, text))
    if key is not None:
        raise AlignmentError(f"{path}: entry {key!r} is not terminated by a '.' line")
    return _without_empty(entries, path)


def mlf_key(quoted: str) -> str:
    """An MLF entry's path with '/' separators and without the label extension (.lab, .rec, ...)."""
    key = quoted.replace("\\", "/")
    stem, dot, ext = key.rpartition(".")
    return stem if dot and "/" not in ext else key


def read_kaldi_ctm(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """Kaldi CTM: `utterance channel start duration label [confidence]`, seconds. Phone CTMs from
    `ali-to-phones --ctm-output` carry word-position suffixes (AH0_B) that are stripped here."""
    path = Path(path)
    entries: dict[str, list[Segment]] = {}
    for lineno, line in _numbered_lines(path):
        fields = line.split()
        if line.lstrip().startswith(";;"):
            continue  # NIST comment
        try:
            utt, start, duration, label = fields[0], float(fields[2]), float(fields[3]), fields[4]
        except (IndexError, ValueError):
            raise AlignmentError(f"{path}:{lineno}: expected 'utterance channel start duration label', "
                                 f"got {line.strip()!r}") from None
        base, _, position = label.rpartition("_")
        if base and position in {"B", "I", "E", "S"}:
            label = base
        entries.setdefault(utt, []).append(Segment(label, start, start + duration))
    trimmed = 0
    for segments in entries.values():
        segments.sort(key=lambda s: s.start)
        for i in range(1, len(segments)):  # two-decimal rounding: the previous token gives way
            overlap = segments[i - 1].end - segments[i].start
            if 1e-9 < overlap <= CTM_ROUNDING_S + 1e-9 and segments[i].start > segments[i - 1].start:
                segments[i - 1] = Segment(segments[i - 1].label, segments[i - 1].start, segments[i].start)
                trimmed += 1
    if trimmed:
        log.info("%s: %d overlap(s) of up to %.0f ms (CTM time rounding) trimmed", path, trimmed, 1000 * CTM_ROUNDING_S)
    return _without_empty(entries, path)


def _without_empty(entries: dict[str, list[Segment]], source: Path) -> dict[str, list[Segment]]:
    """Zero-length intervals (HTK's final `54300000 54300000 sil`, CTM's zero-duration tokens) hold no
    frame: dropped, and counted once per file."""
    kept = {k: [s for s in segs if abs(s.end - s.start) > 1e-9] for k, segs in entries.items()}  # reversed stay: errors
    dropped = sum(len(entries[k]) - len(kept[k]) for k in entries)
    if dropped:
        log.info("%s: %d zero-length interval(s) dropped", source, dropped)
    return kept


SINGLE_READERS: dict[str, Callable[[Path], list[Segment]]] = {  # by format name
    "textgrid": read_textgrid,
    "phn": read_timit_phn,
    "grid": read_grid_align,
    "lrs3": read_lrs3_txt,
}
MULTI_READERS: dict[str, Callable[[Path], dict[str, list[Segment]]]] = {
    "mlf": read_htk_mlf,
    "ctm": read_kaldi_ctm,
}
FORMATS = (*SINGLE_READERS, *MULTI_READERS)
WORD_ONLY = {"grid", "lrs3"}  # formats that carry word timings only
BY_SUFFIX = {".textgrid": "textgrid", ".phn": "phn", ".align": "grid", ".mlf": "mlf", ".ctm": "ctm"}
DECLARED_ONLY = {".txt": "lrs3"}  # plain text is many things: read as an alignment only when declared


def alignment_format(path: str | os.PathLike, declared: str | None = None) -> str:
    """The format to read `path` with: the declared one, else the one its suffix names."""
    path = Path(path)
    if declared is not None:
        if declared not in FORMATS:
            raise AlignmentError(f"{path}: unknown alignment_format {declared!r}; known: {list(FORMATS)}")
        return declared
    suffix = path.suffix.lower()
    if suffix in DECLARED_ONLY:
        raise AlignmentError(f"{path}: a {path.suffix} file is read as an alignment only when its format is declared "
                             f"(alignment_format: {DECLARED_ONLY[suffix]} for LRS3 word timings, in the manifest line "
                             "or by the corpus adapter)")
    if suffix not in BY_SUFFIX:
        raise AlignmentError(f"{path}: no alignment reader for suffix {path.suffix!r} (known: {sorted(BY_SUFFIX)}; "
                             f"or declare alignment_format, one of {list(FORMATS)})")
    return BY_SUFFIX[suffix]


class Entries:
    """The utterances of one MLF/CTM, found by key (indexed by the key's last path component)."""

    def __init__(self, entries: dict[str, list[Segment]], source: Path):
        self.entries, self.source = entries, source
        self.by_name: dict[str, list[str]] = {}
        for k in entries:
            self.by_name.setdefault(k.rsplit("/", 1)[-1], []).append(k)
        self.patterns = [k for k in entries if "*" in k or "?" in k]

    def find(self, key: str) -> list[Segment]:
        """The entry equal to `key`; else the one whose file name is the key's last part and whose folders
        include the key's other parts in order (`01M/sa1` finds `/any/01M/Clips/straightcam/sa1.rec`); else
        a wildcard pattern matching the key (HTK's `"*/sa1.lab"`)."""
        if key in self.entries:
            return self.entries[key]
        *folders, name = key.split("/")
        matches = [k for k in self.by_name.get(name, []) if _in_order(folders, k.split("/")[:-1])] or \
                  [k for k in self.patterns if fnmatch.fnmatchcase(key, k)]
        if not matches:
            raise AlignmentError(f"{self.source}: no entry for utterance {key!r}")
        if len(matches) > 1:
            raise AlignmentError(f"{self.source}: utterance {key!r} matches several entries: {matches[:5]}")
        return self.entries[matches[0]]


def _in_order(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


@functools.lru_cache(maxsize=8)
def _read_multi(path: str, fmt: str, mtime_ns: int, size: int) -> Entries:
    return Entries(MULTI_READERS[fmt](path), Path(path))


def read_alignment(path: str | os.PathLike, key: str | None = None, tier: str = "phones", speaker: str | None = None,
                   tier_name: str | None = None, fmt: str | None = None) -> list[Segment]:
    """One utterance's segments as written, in format `fmt` (default: by file suffix; `key`: its entry in
    an MLF/CTM; `tier`: phones or words, for formats that hold both; `speaker`, `tier_name`: which tier of a
    TextGrid with several speakers' tiers), with the timing checked and zero-length intervals dropped."""
    path = Path(path)
    fmt = alignment_format(path, fmt)
    if not path.is_file():
        raise AlignmentError(f"{path}: alignment file does not exist")
    if fmt in MULTI_READERS:
        if key is None:
            raise AlignmentError(f"{path}: holds many utterances; the utterance needs an alignment_key")
        stat = path.stat()
        segments = _read_multi(str(path), fmt, stat.st_mtime_ns, stat.st_size).find(key)
    else:
        if fmt in WORD_ONLY and tier != "words":
            raise AlignmentError(f"{path}: {fmt} alignments hold word timings only; this utterance asks for "
                                 f"{tier} (set labels: words)")
        raw = read_textgrid(path, tier, speaker, tier_name) if fmt == "textgrid" else SINGLE_READERS[fmt](path)
        segments = _without_empty({"": raw}, path)[""]
    check_monotonic(segments, f"{path}[{key}]" if key else path)
    return segments


def read_phones(path: str | os.PathLike, key: str | None = None) -> list[Segment]:
    return read_alignment(path, key, tier="phones")


def check_monotonic(segments: Sequence[Segment], source: object) -> None:
    if not segments:
        raise AlignmentError(f"{source}: alignment has no intervals")
    for i, seg in enumerate(segments):
        if seg.end <= seg.start:
            raise AlignmentError(f"{source}: interval {i} ({seg.label!r}) ends at {seg.end} before it starts at {seg.start}")
        if i and seg.start < segments[i - 1].end - 1e-6:
            raise AlignmentError(f"{source}: interval {i} ({seg.label!r}) overlaps the previous one")


# --- normalisation ------------------------------------------------------------------------------------

def _merge(segments: Sequence[Segment], to_label: Callable[[str], str | None]) -> list[Segment]:
    """Relabel; a None label (deleted symbol) or a silence after a silence extends the left neighbour."""
    out: list[Segment] = []
    for seg in segments:
        label = to_label(seg.label)
        if label is None or (out and label == SIL and out[-1].label == SIL):
            if out:
                out[-1] = Segment(out[-1].label, out[-1].start, seg.end)
                continue
            label = SIL
        out.append(Segment(label, seg.start, seg.end))
    return out


def normalise_phones(segments: Sequence[Segment], source: object = "alignment") -> list[Segment]:
    """Fold labels to the 39-phone set; merge deleted symbols and repeated silences into neighbours."""
    unknown = sorted({s.label for s in segments if not _known(s.label)})
    if unknown:
        raise AlignmentError(f"{source}: {len(unknown)} unknown phone symbol(s) {unknown} "
                             "(not TIMIT-61, ARPAbet or a silence marker)")
    return _merge(segments, fold)


def _known(label: str) -> bool:
    try:
        fold(label)
    except UnknownPhoneError:
        return False
    return True


def normalise_words(segments: Sequence[Segment], source: object = "alignment") -> list[Segment]:
    """Lower-case words; silence markers (sil, sp, empty) become `sil`, repeated silences merge."""
    return _merge(segments, lambda w: SIL if w.strip().lower() in WORD_SILENCES else w.strip().lower())


NORMALISERS = {"phones": normalise_phones, "words": normalise_words}


def utterance_labels(utt: Utterance) -> list[Segment]:
    """The utterance's normalised segments (phones or words, as `utt.labels` says)."""
    if utt.alignment is None:
        raise AlignmentError(f"utterance {utt.id} has no alignment")
    if utt.labels not in LABEL_KINDS:
        raise AlignmentError(f"utterance {utt.id}: labels must be one of {LABEL_KINDS}, not {utt.labels!r}")
    source = f"{utt.alignment}[{utt.alignment_key}]" if utt.alignment_key else utt.alignment
    segments = read_alignment(utt.alignment, utt.alignment_key, utt.labels, utt.speaker, utt.alignment_tier,
                              utt.alignment_format)
    return NORMALISERS[utt.labels](segments, source=source)


def write_textgrid(path: str | os.PathLike, tiers: dict[str, Sequence[Segment]], duration: float) -> None:
    """Write interval tiers (e.g. `words`, `phones`) to a long-format TextGrid, atomically."""
    from praatio import textgrid

    tg = textgrid.Textgrid()
    for name, segments in tiers.items():
        entries = [(s.start, s.end, s.label) for s in segments]
        tg.addTier(textgrid.IntervalTier(name, entries, 0.0, duration))
    with atomic_path(path) as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="silence")
