"""Context-dependent phone states tied by a count back-off on the training split (`label_scheme=cd_state`).

Mroueh et al. (2015) trained on 1328 tied context-dependent HMM states; a decision-tree tying needs
phonetic questions and likelihoods, so this does the data-driven back-off the frame counts allow:

- each (left phone, phone, right phone) x state third with at least `min_frames` training frames is a
  class of its own;
- the frames left over back off to a biphone state: begin and middle thirds to the left biphone
  (l-p), the end third to the right biphone (p+r), the side whose context shapes it most; a biphone
  state with at least `min_frames` left-over frames is a class;
- everything else falls back to the context-free state (p_b, p_m, p_e), which always exists, so every
  frame of any split maps to a class; `sil` is one context-independent class.

Contexts are the neighbouring segments in the utterance (sil at its ends and across pauses). The
inventory depends only on the training alignments and `min_frames`, and is listed in sorted order, so
it is deterministic; a run saves it (run.json's classes) and rebuilds the scheme from it.
"""

from __future__ import annotations

from collections import Counter

from avfusion.errors import ConfigError
from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.labels import STATES, LabelScheme, cd_state_scheme, corpus_scheme
from avfusion.corpus.phones import PHONES, SIL
from avfusion.corpus.types import Corpus
from avfusion.frames.clock import num_frames
from avfusion.frames.labelling import frame_segments


def context_state_counts(corpus: Corpus) -> Counter:
    """Training frames per (left, phone, right, state) of the speech segments."""
    counts: Counter = Counter()
    for utt in corpus.split("train"):
        segments = utterance_labels(utt)
        if not segments:
            continue
        seg, third = frame_segments(segments, num_frames(segments[-1].end))
        names = [s.label for s in segments]
        for i, k in zip(seg[seg >= 0].tolist(), third[seg >= 0].tolist()):
            if names[i] == SIL:
                continue
            left = names[i - 1] if i > 0 else SIL
            right = names[i + 1] if i + 1 < len(names) else SIL
            counts[(left, names[i], right, STATES[k])] += 1
    return counts


def tie_states(counts: Counter, min_frames: int) -> tuple[str, ...]:
    """The class inventory of the back-off described above, sorted."""
    if min_frames < 1:
        raise ConfigError(f"cd_min_frames must be at least 1, not {min_frames}")
    classes = {SIL} | {f"{p}_{s}" for p in PHONES if p != SIL for s in STATES}
    leftover: Counter = Counter()
    for (left, phone, right, state), n in counts.items():
        if n >= min_frames:
            classes.add(f"{left}-{phone}+{right}_{state}")
        else:
            near = f"{left}-{phone}" if state != STATES[-1] else f"{phone}+{right}"
            leftover[f"{near}_{state}"] += n
    classes |= {name for name, n in leftover.items() if n >= min_frames}
    return tuple(sorted(classes))


def cd_state_scheme_of(corpus: Corpus, min_frames: int) -> LabelScheme:
    """The cd_state scheme tied on `corpus`'s training split."""
    return cd_state_scheme(tie_states(context_state_counts(corpus), min_frames))


def scheme_of(name: str, corpus: Corpus, cd_min_frames: int) -> LabelScheme:
    """The label scheme `name` for `corpus` (`label_scheme` in conf/train.yaml): cd_state tied on its
    training split, the others as `corpus_scheme` gives them."""
    if name == "cd_state":
        return cd_state_scheme_of(corpus, cd_min_frames)
    return corpus_scheme(name, corpus)
