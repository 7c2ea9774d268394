"""Forced alignment: the best path of an utterance's frames through the linear HMM of its own unit sequence,
some positions optional (silence between words and at the ends), with the decoder's left-to-right unit HMMs
and durations. It runs the loop Viterbi kernel (`avfusion.decoding.viterbi`) over the positions of the
sequence instead of the units of the inventory: position p may be followed by p + 1, or by later positions
when every one between is optional, and no other arc exists. Cost O(T (P S + P^2)) for P positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment
from avfusion.errors import UserError
from avfusion.decoding.framewise import DecodedUnit
from avfusion.frames.clock import run_times
from avfusion.decoding.viterbi import viterbi


def linear_arcs(optional: Sequence[bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, P) arc weights between positions (0 allowed, -inf not), and the positions a path may start and end
    in (0 or -inf): a path visits every position that is not optional, in order."""
    optional = np.asarray(optional, bool)
    n = len(optional)
    cross = np.full((n, n), -np.inf)
    for p in range(n):
        for q in range(p + 1, n):
            cross[p, q] = 0.0
            if not optional[q]:
                break
    required = np.flatnonzero(~optional)
    first, last = (required[0], required[-1]) if len(required) else (n - 1, 0)
    start = np.where(np.arange(n) <= first, 0.0, -np.inf)
    end = np.where(np.arange(n) >= last, 0.0, -np.inf)
    return cross, start, end


@dataclass(frozen=True)
class Transcript:
    """An utterance's words as the positions of its linear HMM: every phone of every word in order, required,
    and an optional silence at the start, where two words meet and at the end."""

    units: tuple[int, ...]  # the unit id of each position
    optional: tuple[bool, ...]  # the silences
    words: tuple[int, ...]  # the index of the word each position belongs to (-1: a silence)

    @classmethod
    def of(cls, pronunciations: Sequence[Sequence[int]], silence: int) -> "Transcript":
        """From each word's unit ids (its pronunciation) and the silence unit's id."""
        if not pronunciations or any(len(p) == 0 for p in pronunciations):
            raise ValueError("a transcript needs at least one word, and every word a pronunciation")
        units, optional, words = [silence], [True], [-1]
        for w, phones in enumerate(pronunciations):
            units += list(phones) + [silence]
            optional += [False] * len(phones) + [True]
            words += [w] * len(phones) + [-1]
        return cls(tuple(units), tuple(optional), tuple(words))

    @classmethod
    def of_text(cls, text: str, scheme, lexicon, utterance: str = "") -> tuple["Transcript", list[str]]:
        """An utterance's transcript through a lexicon (`avfusion.corpus.lexicon.Lexicon`) for a phone label
        scheme, and its words; a word whose phones the scheme lacks is a one-line error naming it."""
        if scheme.unit != "phone":
            raise UserError(f"label scheme {scheme.name!r} predicts {scheme.unit_kind}: forced alignment to phones "
                            "needs a phone scheme (label_scheme=phone or phone_state)")
        index = scheme.unit_index
        words = lexicon.transcribe(text, utterance)
        if not words:
            raise UserError(f"{utterance or 'the transcript'}: no words in {text!r}")
        for word, phones in words:
            unknown = [p for p in phones if p not in index]
            if unknown:
                raise UserError(f"{utterance}: the word {word!r} is pronounced with {unknown}, which label scheme "
                                f"{scheme.name!r} lacks")
        return cls.of([[index[p] for p in phones] for _, phones in words], index[SIL]), [w for w, _ in words]

    def tiers(self, words: Sequence[str], unit_names: Sequence[str], segments: Sequence[DecodedUnit],
              n_frames: int, duration: float) -> dict[str, list[Segment]]:
        """The `words` and `phones` tiers (seconds) of an alignment's segments over positions; a silence kept is
        `sil` in both tiers, and a pause between words is left empty in the words tier only when no silence
        was aligned there."""
        phones = [Segment(unit_names[self.units[s.unit]], *run_times(s.start, s.end, n_frames, duration))
                  for s in segments]
        spans = {w: (a, b) for w, a, b in self.word_spans(segments)}
        kept = [(s.start, s.end) for s in segments if self.words[s.unit] < 0]
        runs = sorted([(a, b, words[w]) for w, (a, b) in spans.items()] + [(a, b, "sil") for a, b in kept])
        return {"words": [Segment(label, *run_times(a, b, n_frames, duration)) for a, b, label in runs],
                "phones": phones}

    def word_spans(self, segments: Sequence[DecodedUnit]) -> list[tuple[int, int, int]]:
        """(word index, first frame, end frame) of each word, from an alignment's segments over positions
        (`align_positions`: `unit` is the position)."""
        spans: dict[int, list[int]] = {}
        for s in segments:
            w = self.words[s.unit]
            if w >= 0:
                spans.setdefault(w, [s.start, s.end])[1] = s.end
        return [(w, a, b) for w, (a, b) in sorted(spans.items())]


def flat_start(n_frames: int, transcript: Transcript, n_states: int, edges: bool = True) -> list[DecodedUnit]:
    """The first alignment of a flat start: the frames shared evenly among the required positions and, with
    `edges` (recordings start and end in silence), the silences at the start and the end, as (position, first
    frame, end frame); the silences between words are left out. The edges are dropped when the frames cannot
    hold them; a ValueError when they cannot hold the phones' states."""
    required = [p for p, optional in enumerate(transcript.optional) if not optional]
    if n_frames < len(required) * n_states:
        raise ValueError(f"{n_frames} frames cannot hold the {len(required) * n_states} states of the transcript's units")
    ends = [0, len(transcript.units) - 1] if edges and transcript.optional[0] and transcript.optional[-1] else []
    if ends and n_frames >= (len(required) + 2) * n_states:
        required = [ends[0], *required, ends[1]]
    bounds = np.round(np.linspace(0, n_frames, len(required) + 1)).astype(int)
    return [DecodedUnit(p, int(a), int(b)) for p, a, b in zip(required, bounds[:-1], bounds[1:])]


def align_positions(loglik: np.ndarray, transcript: Transcript, log_stay: np.ndarray, log_move: np.ndarray
                    ) -> tuple[list[DecodedUnit], float]:
    """`force_align` through a transcript, its segments over positions (`unit` is the position: a silence
    kept or a word's phone), and the path's score."""
    return _aligned(loglik, transcript.units, transcript.optional, log_stay, log_move)


def force_align(loglik: np.ndarray, units: Sequence[int], optional: Sequence[bool], log_stay: np.ndarray,
                log_move: np.ndarray) -> tuple[list[DecodedUnit], float]:
    """The segments (unit, first frame, end frame) of the best path of (T, U, S) state log-likelihoods
    through `units` in order (unit ids, `optional` per position), and its score. A ValueError when no path
    fits: fewer frames than the states of the required units."""
    segments, score = _aligned(loglik, units, optional, log_stay, log_move)
    return [DecodedUnit(int(units[s.unit]), s.start, s.end) for s in segments], score


def _aligned(loglik: np.ndarray, units: Sequence[int], optional: Sequence[bool], log_stay: np.ndarray,
             log_move: np.ndarray) -> tuple[list[DecodedUnit], float]:
    """The best path's segments over positions, and its score."""
    units = np.asarray(units, np.int64)
    n_states = loglik.shape[2]
    needed = int((~np.asarray(optional, bool)).sum()) * n_states
    if len(loglik) < max(needed, 1):
        raise ValueError(f"{len(loglik)} frames cannot hold the {needed} states of the transcript's units")
    cross, start, end = linear_arcs(optional)
    path, segments, score = viterbi(loglik[:, units], log_stay[units], log_move[units], cross, start, end)
    if not np.isfinite(score):
        raise ValueError("no path through the transcript's units fits these frames")
    return [DecodedUnit(int(s.unit), s.start, s.end) for s in segments], score
