"""Frame error, sequence phone error rate (TIMIT convention) and segment classification error.

`frame_error` is what Mroueh et al. (2015) call PER: the share of misclassified frames. `per` is the
sequence phone error rate of TIMIT papers: a decoder (`avfusion.decoding`) turns frames into a phone
sequence, which is aligned to the reference sequence as aligned (adjacent identical phones kept, silence
left out of both) by Levenshtein distance, and (S + D + I) / N is summed over the whole set.
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


def segment_predictions(log_posteriors: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Per span (first frame, end frame) of an (N, U) log-posterior matrix: the unit of highest mean."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if len(spans) and (np.any(spans[:, 1] <= spans[:, 0]) or spans.min() < 0 or spans.max() > len(log_posteriors)):
        raise ValueError("segment spans must be non-empty and inside the frames")
    totals = np.concatenate([np.zeros((1, log_posteriors.shape[1])), np.cumsum(log_posteriors, axis=0)])
    means = (totals[spans[:, 1]] - totals[spans[:, 0]]) / (spans[:, 1] - spans[:, 0])[:, None]
    return means.argmax(axis=1)
