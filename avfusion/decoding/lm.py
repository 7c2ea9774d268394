"""Unit (phone or word) n-gram language models for the decoder's unit loop, estimated on the training
alignments' unit sequences (silence included: it is a unit of the loop).

- `bigram`: interpolated absolute discounting (Ney, Essen & Kneser 1994):
      P(v | u) = max(c(u, v) - D, 0) / c(u) + D N1+(u) / c(u) P1(v)
  with P1 the add-one unigram, histories <s> and every unit, events every unit and </s>;
- `unigram`: P(v | u) = P1(v) for every history;
- `none`: a flat loop, every event equally likely.
Every row is a distribution over the units and </s> (the start row over the units: an utterance holds at
least one), so the LM weight is the only scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avfusion.errors import ConfigError

KINDS = ("bigram", "unigram", "none")


@dataclass
class UnitLanguageModel:
    log_start: np.ndarray  # (U,) log P(u | <s>)
    log_next: np.ndarray  # (U, U) log P(v | u)
    log_end: np.ndarray  # (U,) log P(</s> | u)

    @classmethod
    def fit(cls, sequences: Sequence[Sequence[int]], n_units: int, kind: str = "bigram",
            discount: float = 0.5) -> "UnitLanguageModel":
        if kind not in KINDS:
            raise ConfigError(f"decoding.lm={kind!r}: choose from {list(KINDS)}")
        if not 0 < discount < 1:
            raise ConfigError(f"decoding.discount={discount}: must be between 0 and 1")
        end = n_units  # event index of </s>; history index n_units is <s>
        if kind == "none":
            probs = np.full((n_units + 1, n_units + 1), 1.0 / (n_units + 1))
        else:
            counts = np.zeros((n_units + 1, n_units + 1))  # history x event
            for seq in sequences:
                history = [n_units, *seq]
                events = [*seq, end]
                np.add.at(counts, (history, events), 1)
            unigram = (counts.sum(axis=0) + 1) / (counts.sum() + n_units + 1)
            if kind == "unigram":
                probs = np.tile(unigram, (n_units + 1, 1))
            else:
                totals = counts.sum(axis=1, keepdims=True)
                seen = (counts > 0).sum(axis=1, keepdims=True)
                safe = np.maximum(totals, 1)
                probs = np.where(totals > 0, np.maximum(counts - discount, 0) / safe + discount * seen / safe * unigram,
                                 unigram)
        start = probs[n_units, :n_units] / probs[n_units, :n_units].sum()  # an utterance holds at least one unit
        logs = np.log(probs)
        return cls(log_start=np.log(start), log_next=logs[:n_units, :n_units].copy(), log_end=logs[:n_units, end].copy())
