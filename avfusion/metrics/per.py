"""Frame error, sequence phone error rate (TIMIT convention) and segment classification error.

`frame_error` is what Mroueh et al. (2015) call PER: the share of misclassified frames. `per` is the
sequence phone error rate of TIMIT papers: frames are decoded to a phone sequence (argmax, merge
repeats, optionally drop segments shorter than `min_frames`), folded to the 39-phone set, aligned to
the reference sequence by Levenshtein distance, and (S + D + I) / N is summed over the whole set.
`segment_error` classifies each reference segment (a phone, or a word) as a whole, from the frames
inside it: the unit with the highest mean log posterior (TIMIT phone classification; GRID words).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein


def frame_error(predicted: np.ndarray, reference: np.ndarray) -> float:
    predicted, reference = np.asarray(predicted), np.asarray(reference)
    if predicted.shape != reference.shape:
        raise ValueError(f"frame_error: {predicted.shape} predictions for {reference.shape} reference frames")
    if reference.size == 0:
        raise ValueError("frame_error: no frames")
    return float(np.mean(predicted != reference))


def collapse(frames: Sequence, min_frames: int = 1) -> list:
    """Merge runs of equal labels; runs shorter than `min_frames` are dropped before merging."""
    frames = list(frames)
    runs: list[list] = []  # [label, length]
    for label in frames:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    kept = [label for label, n in runs if n >= min_frames]
    return [label for i, label in enumerate(kept) if i == 0 or label != kept[i - 1]]


@dataclass(frozen=True)
class EditCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(
            self.substitutions + other.substitutions, self.deletions + other.deletions,
            self.insertions + other.insertions, self.reference_length + other.reference_length,
        )

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        if self.reference_length == 0:
            raise ValueError("error rate of an empty reference")
        return self.errors / self.reference_length


def edit_counts(reference: Sequence, hypothesis: Sequence) -> EditCounts:
    """Substitutions, deletions and insertions of a minimum-edit alignment (rapidfuzz)."""
    ops = Levenshtein.editops(list(reference), list(hypothesis))
    tags = [op.tag for op in ops]
    return EditCounts(tags.count("replace"), tags.count("delete"), tags.count("insert"), len(reference))


def per(pairs: Iterable[tuple[Sequence, Sequence]]) -> EditCounts:
    """Sum the edit counts of (reference, hypothesis) phone sequences; `.rate` is the PER."""
    total = EditCounts()
    for reference, hypothesis in pairs:
        total = total + edit_counts(reference, hypothesis)
    return total


def frames_to_phones(frame_classes: np.ndarray, phone_of_class: np.ndarray, phone_names: Sequence[str],
                     min_frames: int = 1) -> list[str]:
    """Frame class indices -> folded phone sequence (states map to their phone before merging)."""
    phones = np.asarray(phone_of_class)[np.asarray(frame_classes)]
    return [phone_names[i] for i in collapse(phones.tolist(), min_frames)]


def segment_predictions(log_posteriors: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Per span (first frame, end frame) of an (N, U) log-posterior matrix: the unit of highest mean."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if len(spans) and (np.any(spans[:, 1] <= spans[:, 0]) or spans.min() < 0 or spans.max() > len(log_posteriors)):
        raise ValueError("segment spans must be non-empty and inside the frames")
    totals = np.concatenate([np.zeros((1, log_posteriors.shape[1])), np.cumsum(log_posteriors, axis=0)])
    means = (totals[spans[:, 1]] - totals[spans[:, 0]]) / (spans[:, 1] - spans[:, 0])[:, None]
    return means.argmax(axis=1)
