"""The positive control for audio-visual interaction: phone labels told apart only by the product of the streams.

For each pair [P, Q] of `data.realism.interaction_pairs`, every token spoken as P or as Q gets one of the two
labels at random (its own draw, so nothing else in the corpus moves). Both labels then sound and look alike:
each is the same mixture of P's and Q's tokens, with the same per-token deviations. What differs is the sign of
the coupling between a token's deviation seen on the lips and heard in the formants: +1 under label P, -1 under
Q, the deviations `interaction_sd` times the usual ones. A linear probe on either stream alone stays at chance
on the pair; one on the product of the streams need not (measured in experiments/positive_control). With no
pairs (the default) the corpus is the one it always was, bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from avfusion.corpus.types import Segment

LABEL_DRAW = 40  # the labels' own seed stream beside the utterance's


def relabelled(folded: list[Segment], pairs: list[list[str]], coupling: float, spread: float, seed: int
               ) -> tuple[list[Segment], np.ndarray | float, np.ndarray | None]:
    """The tokens' labels, each token's coupling between lips and sound, and the factor on its deviations. With
    no pairs: `folded`, `coupling` and None (nothing scaled)."""
    if not pairs:
        return folded, coupling, None
    partner = {p: (p, q) for p, q in pairs} | {q: (p, q) for p, q in pairs}
    draw = np.random.default_rng([seed, LABEL_DRAW]).random(len(folded)) < 0.5
    labels, couplings, scale = [], np.full(len(folded), float(coupling)), np.ones(len(folded))
    for i, seg in enumerate(folded):
        if seg.label not in partner:
            labels.append(seg)
            continue
        p, q = partner[seg.label]
        label = p if draw[i] else q
        labels.append(dataclasses.replace(seg, label=label))
        couplings[i], scale[i] = (1.0 if label == p else -1.0), spread
    return labels, couplings, scale
