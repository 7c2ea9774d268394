"""Explicit map from espeak-ng's English phoneme mnemonics to ARPAbet (CMU set, plus TIMIT's dx).

Covers every English voice shipped with espeak-ng (en-us, en-us-nyc, en, en-gb-x-rp,
en-gb-scotland, en-029, en-gb-x-gbclan, en-gb-x-gbcwmd). A symbol that is not listed is an error
naming it: silently dropping a phone would shift every later label.

A mnemonic maps to a tuple of ARPAbet phones: one phone, a sequence (diphthongs with r-colouring,
syllabic consonants; the espeak interval is split in the ratio of the phones' typical durations,
`TYPICAL_MS`), or nothing (a pause, or a linking symbol whose short interval is absorbed by the
preceding phone, as TIMIT deletes its glottal stop q).
"""

from __future__ import annotations

import numpy as np

PAUSE = "sil"

ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # vowels
    "0": ("AA",), "A:": ("AA",), "A@": ("AA", "R"), "aa": ("AE",), "a": ("AE",), "a#": ("AH",),
    "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "V": ("AH",), "3": ("ER",), "3:": ("ER",),
    "IR": ("ER",), "VR": ("ER",), "E": ("EH",), "e@": ("EH", "R"), "eI": ("EY",), "I": ("IH",),
    "I#": ("IH",), "I2": ("IH",), "i": ("IY",), "i:": ("IY",), "i@3": ("IY", "R"), "O:": ("AO",),
    "O2": ("AO",), "O@": ("AO", "R"), "o@": ("AO", "R"), "OI": ("OY",), "oU": ("OW",), "U": ("UH",),
    "U@": ("UH", "R"), "u:": ("UW",), "aI": ("AY",), "aI2": ("AY",), "aI@": ("AY", "ER"),
    "aU": ("AW",),
    # syllabic consonants
    "@L": ("AH", "L"), "n-": ("AH", "N"),
    # consonants
    "b": ("B",), "d": ("D",), "D": ("DH",), "dZ": ("JH",), "f": ("F",), "g": ("G",), "h": ("HH",),
    "j": ("Y",), "k": ("K",), "l": ("L",), "m": ("M",), "n": ("N",), "N": ("NG",), "p": ("P",),
    "r": ("R",), "r-": ("R",), "s": ("S",), "S": ("SH",), "t": ("T",), "t2": ("T",), "t[": ("T",),
    "t#": ("DX",), "tS": ("CH",), "T": ("TH",), "v": ("V",), "w": ("W",), "z": ("Z",), "Z": ("ZH",),
    # pauses
    "_": (PAUSE,), "_:": (PAUSE,), "_!": (PAUSE,),
    # absorbed: the linking glide after i, and the glottal stop
    ";": (), "?": (),
}

# Mean durations (ms) of the phones that share an espeak interval, roughly as in TIMIT's read speech
# (a reduced AH is a short schwa; the r of an r-coloured vowel is its offglide).
TYPICAL_MS = {"AA": 120, "AE": 130, "AH": 50, "AO": 125, "AY": 140, "EH": 95, "ER": 105, "IY": 95, "UH": 70,
              "R": 55, "L": 65, "N": 55}


def split_interval(phones: tuple[str, ...], start: float, end: float) -> list[float]:
    """The edges that split [start, end] among `phones` in the ratio of their typical durations."""
    weights = [TYPICAL_MS.get(p.rstrip("012"), 80) for p in phones]
    edges = start + (end - start) * (np.cumsum([0] + weights) / sum(weights))
    edges[-1] = end
    return [float(e) for e in edges]


_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
_REDUCED = {"@", "@2", "@5", "3", "a#", "I#", "@L", "n-"}


class UnmappedPhonemeError(KeyError):
    def __str__(self) -> str:
        return f"espeak-ng phoneme {self.args[0]!r} has no ARPAbet mapping (avfusion/synth/arpabet.py)"


def to_arpabet(mnemonic: str) -> tuple[str, ...]:
    """ARPAbet phones for one espeak mnemonic; vowels carry a CMU stress digit from espeak's marks."""
    stress = "1" if mnemonic.startswith("'") else "2" if mnemonic.startswith(",") else "0"
    base = mnemonic.lstrip("',")
    if base not in ESPEAK_TO_ARPABET:
        raise UnmappedPhonemeError(mnemonic)
    if base in _REDUCED:
        stress = "0"
    return tuple(p + stress if p in _VOWELS else p for p in ESPEAK_TO_ARPABET[base])
