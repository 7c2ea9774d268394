"""Pronunciations of transcripts: CMUdict folded, espeak for the rest, a user lexicon over both."""

import pytest

from avfusion.corpus.lexicon import Lexicon, UnpronounceableWordError, number_words, words_of
from avfusion.errors import UserError


def test_a_cmudict_word_gets_its_dictionary_pronunciation_folded():
    lexicon = Lexicon()
    assert lexicon.pronounce("thought") == ("th", "aa", "t")  # CMUdict TH AO1 T: ao folds into aa
    assert lexicon.pronounce("measure") == ("m", "eh", "sh", "er")  # M EH1 ZH ER0: zh folds into sh
    assert lexicon.guessed == {}


def test_a_word_cmudict_lacks_gets_espeaks_pronunciation_and_is_listed():
    lexicon = Lexicon()
    phones = lexicon.pronounce("zorblax")
    assert phones[0] == "z" and phones[-2:] == ("k", "s") and "b" in phones and "l" in phones
    assert lexicon.guessed == {"zorblax": phones}


def test_a_user_lexicon_overrides_both(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text(";;; comment\nTHOUGHT  TH AO1 T D\nzorblax Z AO R B L AE K S\nthought(2) T AA T\n")
    lexicon = Lexicon(path)
    assert lexicon.pronounce("thought") == ("th", "aa", "t", "d")  # the first entry of the word wins
    assert lexicon.pronounce("zorblax") == ("z", "aa", "r", "b", "l", "ae", "k", "s") and lexicon.guessed == {}
    path.write_text("good G UH D\nbad B AE XX D\n")
    with pytest.raises(UserError, match=r"lexicon.txt:2: phone 'XX' is neither in the 39-phone set"):
        Lexicon(path)
    path.write_text("lonely\n")
    with pytest.raises(UserError, match=r"lexicon.txt:1: 'lonely' has no phones"):
        Lexicon(path)


def test_transcripts_are_normalised_as_the_corpora_need():
    assert words_of("Bin blue at F 2 now.", spell_letters=True) == ["bin", "blue", "at", "f.", "two", "now"]
    assert words_of("Don't stop: 42 o'clock!") == ["don't", "stop", "forty", "two", "o'clock"]
    assert number_words(1905) == ["one", "thousand", "nine", "hundred", "five"]
    assert number_words(2_000_013) == ["two", "million", "thirteen"]
    transcribed = Lexicon(spell_letters=True).transcribe("bin blue at F two now")
    assert transcribed[3] == ("f.", ("eh", "f"))  # the letter's name, not the word "f"


def test_a_word_that_cannot_be_pronounced_is_one_line_naming_it_and_the_utterance():
    with pytest.raises(UnpronounceableWordError, match=r"^s01_u003: the word 'zorblax' has no pronunciation"):
        Lexicon(letter_to_sound=False).pronounce("zorblax", "s01_u003")


def test_cmudict_covers_the_embedded_corpus_vocabulary():
    from avfusion.corpus.lexicon import cmu_dictionary
    from avfusion.synth import text

    groups = (text._DETERMINERS, text._ADJECTIVES, text._NOUNS, text._VERBS, text._PREPOSITIONS, text._ADVERBS)
    vocabulary = {w for group in groups for phrase in group for w in words_of(phrase)}
    assert len(vocabulary) == 169 and vocabulary <= set(cmu_dictionary())
