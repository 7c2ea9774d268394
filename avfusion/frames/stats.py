"""Corpus statistics: speakers, utterances and hours per split, phone (word) coverage, frames per class."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import SPLITS, Corpus
from avfusion.frames.clock import num_frames
from avfusion.frames.labelling import frame_labels


@dataclass
class SplitStats:
    speakers: int = 0
    utterances: int = 0
    seconds: float = 0.0
    frames_per_class: Counter = field(default_factory=Counter)

    @property
    def units_present(self) -> set[str]:
        return {p for p, n in self.frames_per_class.items() if n > 0}


def corpus_stats(corpus: Corpus, label_scheme: LabelScheme) -> dict[str, SplitStats]:
    """Counts per split in the classes of `label_scheme`, from the alignments (the duration is the last
    segment's end)."""
    stats = {s: SplitStats() for s in SPLITS}
    for utt in corpus:
        segments = utterance_labels(utt)
        duration = segments[-1].end
        labels = frame_labels(label_scheme, segments, num_frames(duration))
        st = stats[utt.split]
        st.utterances += 1
        st.seconds += duration
        counts = np.bincount(labels, minlength=label_scheme.num_classes)
        st.frames_per_class.update({label_scheme.classes[i]: int(n) for i, n in enumerate(counts) if n})
    for split in SPLITS:
        stats[split].speakers = len(corpus.speakers(split)) if stats[split].utterances else 0
    return stats


def format_stats(stats: dict[str, SplitStats], label_scheme: LabelScheme, max_listed: int = 60) -> str:
    classes = label_scheme.classes
    lines = [f"split   speakers  utterances    hours  classes covered (of {len(classes)})"]
    for split, st in stats.items():
        missing = [c for c in classes if c not in st.units_present]
        listed = " ".join(missing[:max_listed]) + (" ..." if len(missing) > max_listed else "")
        cover = f"{len(st.units_present)}" + (f"  missing: {listed}" if missing else "")
        lines.append(f"{split:<7} {st.speakers:>8} {st.utterances:>11} {st.seconds / 3600:>8.3f}  {cover}")
    if len(classes) > max_listed:
        return "\n".join(lines)
    lines.append("")
    lines.append("frames per class (train / dev / test):")
    row = []
    for p in classes:
        counts = "/".join(str(stats[s].frames_per_class.get(p, 0)) for s in SPLITS)
        row.append(f"{p:>4} {counts:<17}")
        if len(row) == 4:
            lines.append("  ".join(row))
            row = []
    if row:
        lines.append("  ".join(row))
    return "\n".join(lines)

