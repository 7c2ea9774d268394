"""Decoders: class posteriors of an utterance's frames -> a unit (phone or word) sequence with times.

- `framewise`: argmax per frame, states folded to units, short runs dropped, repeats merged.
- `hybrid`: hybrid HMM/DNN Viterbi decoding: posteriors divided by the training priors, a loop of
  3-state left-to-right unit HMMs, a unit bigram (or unigram, or flat) language model, an LM weight and
  an insertion penalty tuned on dev.

Both return `DecodedUnit`s (silence included; scoring leaves it out).
"""

from avfusion.decoding.framewise import DecodedUnit, FramewiseDecoder

__all__ = ["DecodedUnit", "FramewiseDecoder"]
