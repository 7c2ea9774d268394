"""How close an alignment's phone boundaries are to a reference's: the measure forced aligners are judged by
(the share of boundaries within 10, 20 and 40 ms; McAuliffe et al. 2017 on TIMIT).

The speech phones of the two alignments (silence left out) are matched by edit distance (rapidfuzz's
opcodes), so a pronunciation that differs from the reference's in a phone or two costs only its own
boundaries; the start and the end of every matched phone count as boundaries. `matched` says how many of the
reference's phones took part.

Stop and affricate onsets are also reported apart (`stop_onsets`): where a closure ends a vowel, references
disagree on whose it is (espeak-ng, which times the embedded corpus, starts the stop at its burst; an aligner
finds the acoustic change at the closure, some 40 ms earlier).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment

TOLERANCES_MS = (10, 20, 40)
CLOSURES = frozenset({"p", "t", "k", "b", "d", "g", "ch", "jh"})  # phones that start with a closure


def matched_phones(aligned: Sequence[Segment], reference: Sequence[Segment]
                   ) -> tuple[list[tuple[Segment, Segment, str]], int]:
    """The speech phones both alignments agree on, as (aligned, reference, the reference's previous speech phone
    or sil), and the number of the reference's speech phones."""
    hyp = [s for s in aligned if s.label != SIL]
    ref = [s for s in reference if s.label != SIL]
    pairs = []
    for tag, a0, a1, b0, b1 in Levenshtein.opcodes([s.label for s in hyp], [s.label for s in ref]):
        if tag == "equal":
            pairs += [(hyp[a0 + j], ref[b0 + j], ref[b0 + j - 1].label if b0 + j else SIL) for j in range(a1 - a0)]
    return pairs, len(ref)


def boundary_errors(aligned: Sequence[Segment], reference: Sequence[Segment]
                    ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """|time differences| (s) of the boundaries of the phones both alignments agree on, whether each is a stop
    onset, the number of phones matched and the reference's speech phones."""
    pairs, total = matched_phones(aligned, reference)
    errors = [e for h, r, _ in pairs for e in (abs(h.start - r.start), abs(h.end - r.end))]
    stops = [s for _, r, _ in pairs for s in (r.label in CLOSURES, False)]
    return np.asarray(errors, float), np.asarray(stops, bool), len(pairs), total


def boundary_accuracy(pairs: Iterable[tuple[Sequence[Segment], Sequence[Segment]]],
                      tolerances_ms: Sequence[float] = TOLERANCES_MS) -> dict:
    """Over (aligned, reference) phone segments of many utterances: the share of boundaries within each
    tolerance and the median error in ms, of all boundaries, of the stop onsets and of the others; the
    boundaries counted and the share of reference phones matched."""
    errors, stops, matched, total = [np.zeros(0)], [np.zeros(0, bool)], 0, 0
    for aligned, reference in pairs:
        e, s, m, n = boundary_errors(aligned, reference)
        errors.append(e)
        stops.append(s)
        matched, total = matched + m, total + n
    e, s = np.concatenate(errors), np.concatenate(stops)
    out = {"boundaries": int(len(e)), "phones_matched": round(matched / max(total, 1), 4)}
    for name, chosen in (("all", np.ones(len(e), bool)), ("stop_onsets", s), ("others", ~s)):
        out[name] = _shares(e[chosen], tolerances_ms)
    return out


def _shares(errors: np.ndarray, tolerances_ms: Sequence[float]) -> dict:
    if not len(errors):
        return {"n": 0}
    return {"n": int(len(errors)), **{f"within_{t:g}ms": round(float((errors <= t / 1000 + 1e-9).mean()), 4)
                                      for t in tolerances_ms},
            "median_ms": round(1000 * float(np.median(errors)), 2)}
