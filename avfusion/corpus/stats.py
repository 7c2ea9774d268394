"""Corpus statistics: speakers, utterances and hours per split, phone coverage, frames per class."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from avfusion.corpus.alignments import normalise_phones, read_phones
from avfusion.corpus.labels import get_scheme, num_frames
from avfusion.corpus.phones import PHONES
from avfusion.corpus.types import SPLITS, Corpus


@dataclass
class SplitStats:
    speakers: int = 0
    utterances: int = 0
    seconds: float = 0.0
    frames_per_class: Counter = field(default_factory=Counter)

    @property
    def phones_present(self) -> set[str]:
        return {p for p, n in self.frames_per_class.items() if n > 0}


def corpus_stats(corpus: Corpus, scheme: str = "phone") -> dict[str, SplitStats]:
    """Counts per split, from the alignments (the duration is the last phone's end)."""
    label_scheme = get_scheme(scheme)
    stats = {s: SplitStats() for s in SPLITS}
    for utt in corpus:
        phones = normalise_phones(read_phones(utt.alignment), source=utt.alignment)
        duration = phones[-1].end
        labels = label_scheme.frame_labels(phones, num_frames(duration))
        st = stats[utt.split]
        st.utterances += 1
        st.seconds += duration
        counts = np.bincount(labels, minlength=label_scheme.num_classes)
        st.frames_per_class.update({label_scheme.classes[i]: int(n) for i, n in enumerate(counts) if n})
    for split in SPLITS:
        stats[split].speakers = len(corpus.speakers(split)) if stats[split].utterances else 0
    return stats


def format_stats(stats: dict[str, SplitStats]) -> str:
    lines = ["split   speakers  utterances    hours  phones covered (of %d)" % len(PHONES)]
    for split, st in stats.items():
        missing = sorted(set(PHONES) - st.phones_present)
        cover = f"{len(st.phones_present)}" + (f"  missing: {' '.join(missing)}" if missing else "")
        lines.append(f"{split:<7} {st.speakers:>8} {st.utterances:>11} {st.seconds / 3600:>8.3f}  {cover}")
    lines.append("")
    lines.append("frames per class (train / dev / test):")
    row = []
    for p in PHONES:
        counts = "/".join(str(stats[s].frames_per_class.get(p, 0)) for s in SPLITS)
        row.append(f"{p:>4} {counts:<17}")
        if len(row) == 4:
            lines.append("  ".join(row))
            row = []
    if row:
        lines.append("  ".join(row))
    return "\n".join(lines)
