import pytest

from avfusion.corpus.phones import PHONES, SIL, VISEME_CLASSES, UnknownPhoneError, fold, viseme_of
from avfusion.synth.arpabet import ESPEAK_TO_ARPABET, UnmappedPhonemeError, to_arpabet


def test_phone_set_is_lee_hon_39():
    assert len(PHONES) == 39 and len(set(PHONES)) == 39
    assert SIL in PHONES
    # folded-away symbols are not classes of their own
    for gone in ("ao", "zh", "ax", "ix", "el", "en", "hv", "q"):
        assert gone not in PHONES


@pytest.mark.parametrize("symbol, folded", [
    ("ao", "aa"), ("ax", "ah"), ("ax-h", "ah"), ("axr", "er"), ("hv", "hh"), ("ix", "ih"), ("el", "l"),
    ("em", "m"), ("en", "n"), ("nx", "n"), ("eng", "ng"), ("zh", "sh"), ("ux", "uw"), ("pcl", SIL),
    ("tcl", SIL), ("kcl", SIL), ("bcl", SIL), ("dcl", SIL), ("gcl", SIL), ("h#", SIL), ("pau", SIL),
    ("epi", SIL), ("q", None), ("AH0", "ah"), ("AO1", "aa"), ("ER2", "er"), ("ZH", "sh"), ("dx", "dx"),
    ("", SIL), ("sp", SIL), ("spn", SIL), ("T", "t"),
])
def test_folding(symbol, folded):
    assert fold(symbol) == folded


def test_unknown_phone_is_named():
    with pytest.raises(UnknownPhoneError, match="'xx'"):
        fold("xx")


@pytest.mark.parametrize("phone, viseme", [
    ("ao", "V1"), ("ah", "V1"), ("hh", "V1"), ("oy", "V1"), ("uw", "V2"), ("ow", "V2"), ("ae", "V3"),
    ("ay", "V3"), ("ih", "V4"), ("iy", "V4"), ("l", "A"), ("el", "A"), ("y", "A"), ("s", "B"), ("z", "B"),
    ("t", "C"), ("en", "C"), ("dx", "C"), ("sh", "D"), ("zh", "D"), ("jh", "D"), ("p", "E"), ("b", "E"),
    ("m", "E"), ("th", "F"), ("dh", "F"), ("f", "G"), ("v", "G"), ("ng", "H"), ("w", "H"), ("k", "H"),
    ("sil", "S"),
])
def test_viseme_map_neti(phone, viseme):
    assert viseme_of(phone) == viseme


def test_thirteen_visemes_each_used():
    assert len(VISEME_CLASSES) == 13
    assert {viseme_of(p) for p in PHONES} == set(VISEME_CLASSES)


def test_espeak_map_targets_only_known_phones():
    for mnemonic, phones in ESPEAK_TO_ARPABET.items():
        for p in phones:
            assert fold(p) is not None, mnemonic


def test_espeak_stress_and_unmapped_symbol():
    assert to_arpabet("'aI") == ("AY1",)
    assert to_arpabet(",E") == ("EH2",)
    assert to_arpabet("'@") == ("AH0",)  # schwa is never stressed
    assert to_arpabet("A@") == ("AA0", "R")
    with pytest.raises(UnmappedPhonemeError, match="'Q~'"):
        to_arpabet("Q~")
