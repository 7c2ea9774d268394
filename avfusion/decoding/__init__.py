"""Decoders: class posteriors of an utterance's frames -> a unit (phone or word) sequence with times.

- `framewise`: argmax per frame, states folded to units, short runs dropped, repeats merged.
- `hybrid`: hybrid HMM/DNN Viterbi decoding: posteriors divided by the training priors, a loop of
  3-state left-to-right unit HMMs, a unit bigram (or unigram, or flat) language model, an LM weight and
  an insertion penalty tuned on dev.

Both return `DecodedUnit`s (silence included; scoring leaves it out). Each comes from a `Decoding`
(`conf/decoding/<name>.yaml`: `FramewiseDecoding`, `ViterbiDecoding`) that fits it on train and tunes it
on dev; every run saves its decoder (`saved.load_decoder` reads it back).
"""

from avfusion.decoding.base import Decoder, Decoding
from avfusion.decoding.framewise import DecodedUnit, FramewiseDecoder, FramewiseDecoding

__all__ = ["DecodedUnit", "Decoder", "Decoding", "FramewiseDecoder", "FramewiseDecoding"]
