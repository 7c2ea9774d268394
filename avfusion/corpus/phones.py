"""Phone set, TIMIT 61 -> 39 folding (Lee & Hon 1989) and the 13-class viseme map (Neti et al. 2000).

The folded set is Lee & Hon's 39 classes: 38 phones (the CMU ARPAbet vowels and consonants with ao
folded into aa and zh into sh, plus TIMIT's flap dx) and `sil`. Input symbols may be TIMIT-61 or
CMU ARPAbet, in any case, with or without stress digits (AH0), or Montreal Forced Aligner silence
markers.
"""

from __future__ import annotations

import re

from avfusion.errors import UserError

SIL = "sil"

PHONES: tuple[str, ...] = (
    "aa", "ae", "ah", "aw", "ay", "b", "ch", "d", "dh", "dx", "eh", "er", "ey", "f", "g", "hh", "ih",
    "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th", "uh", "uw", "v",
    "w", "y", "z", SIL,
)
PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}

# TIMIT-61 symbols that fold into another class; None means "deleted" (the glottal stop q).
FOLDING: dict[str, str | None] = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l", "em": "m",
    "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    "pcl": SIL, "tcl": SIL, "kcl": SIL, "bcl": SIL, "dcl": SIL, "gcl": SIL, "h#": SIL, "pau": SIL,
    "epi": SIL, "q": None,
    # Montreal Forced Aligner / Kaldi silence and noise markers
    "": SIL, "sp": SIL, "spn": SIL, "<eps>": SIL, "sil": SIL,
}

VISEMES: dict[str, tuple[str, ...]] = {
    "V1": ("ao", "ah", "aa", "er", "oy", "aw", "hh"),
    "V2": ("uw", "uh", "ow"),
    "V3": ("ae", "eh", "ey", "ay"),
    "V4": ("ih", "iy", "ax"),
    "A": ("l", "el", "r", "y"),
    "B": ("s", "z"),
    "C": ("t", "d", "n", "en", "dx"),
    "D": ("sh", "zh", "ch", "jh"),
    "E": ("p", "b", "m"),
    "F": ("th", "dh"),
    "G": ("f", "v"),
    "H": ("ng", "g", "k", "w"),
    "S": (SIL,),
}
VISEME_CLASSES: tuple[str, ...] = tuple(VISEMES)
PHONE_TO_VISEME: dict[str, str] = {p: v for v, phones in VISEMES.items() for p in phones}

_STRESS = re.compile(r"[0-9]+$")


class UnknownPhoneError(UserError):
    pass


def fold(symbol: str) -> str | None:
    """Folded 39-set phone for `symbol`; None when the symbol is deleted by the folding (q)."""
    s = _STRESS.sub("", symbol.strip().lower())
    if s in FOLDING:
        return FOLDING[s]
    if s in PHONE_INDEX:
        return s
    raise UnknownPhoneError(f"phone {symbol!r} is neither in the 39-phone set nor in the TIMIT-61 folding map")


def viseme_of(phone: str) -> str:
    """Viseme class of a phone (folded first, so unfolded TIMIT symbols work too)."""
    folded = fold(phone)
    if folded is None:
        raise UnknownPhoneError(f"phone {phone!r} is deleted by the folding and has no viseme")
    return PHONE_TO_VISEME[folded]


assert all(p in PHONE_TO_VISEME for p in PHONES), "every folded phone needs a viseme"
