"""Sentence source for the synthetic corpus.

Sentences drawn from a small grammar over a vocabulary chosen so that each English phone occurs many
times, so speakers of every split cover the whole phone set; no sentence is read twice in a corpus, so
no test sentence is read in training. (TIMIT's two dialect sentences, read by every TIMIT speaker, are
left out, as TIMIT's recipes leave them out: text shared by every split.)
"""

from __future__ import annotations

import numpy as np

# Vocabulary chosen for phone coverage (rare ones: oy, aw, uh, zh, jh, ch, th, dh, ng, y).
_DETERMINERS = ("the", "a", "this", "that", "every", "one", "my", "your", "our", "their", "some")
_ADJECTIVES = (
    "young", "yellow", "loud", "brown", "good", "quiet", "usual", "huge", "thick", "smooth", "cheap",
    "large", "joyful", "noisy", "foolish", "bright", "heavy", "little", "pretty", "better", "royal",
    "orange", "purple", "wooden", "golden", "empty", "thirsty", "shiny", "rough", "calm", "sharp",
)
_NOUNS = (
    "boy", "cow", "house", "book", "judge", "chair", "voice", "coin", "mouth", "thing", "father",
    "mother", "water", "city", "garage", "measure", "vision", "treasure", "king", "ring", "song",
    "window", "fisherman", "teacher", "village", "bridge", "sheep", "ship", "cheese", "shoe", "toy",
    "oil", "tower", "flower", "wolf", "foot", "wood", "bird", "nurse", "girl", "church", "hedge",
    "pencil", "garden", "kitten", "bottle", "ladder", "butter", "engine", "journey", "thumb", "zoo",
    "player", "letter", "river", "mountain", "doctor", "pillow", "jacket", "wagon", "feather",
)
_VERBS = (
    "found", "bought", "pushed", "pulled", "caught", "brought", "threw", "watched", "joined", "chose",
    "measured", "avoided", "enjoyed", "borrowed", "carried", "washed", "touched", "loved", "moved",
    "followed", "cooked", "looked at", "thought about", "played with", "sang about", "painted",
    "showed", "took", "put away", "shook", "ignored", "noticed", "visited", "judged", "hugged",
)
_PREPOSITIONS = ("near", "under", "behind", "beside", "through", "with", "without", "outside", "above")
_ADVERBS = (
    "quickly", "usually", "slowly", "rather loudly", "very early", "yesterday", "around noon",
    "each Thursday", "again", "happily", "at the end of the day", "for years",
)


def _noun_phrase(rng: np.random.Generator) -> str:
    words = [str(rng.choice(_DETERMINERS))]
    if rng.random() < 0.6:
        words.append(str(rng.choice(_ADJECTIVES)))
    words.append(str(rng.choice(_NOUNS)))
    return " ".join(words)


def grammar_sentence(rng: np.random.Generator) -> str:
    """One sentence of the form: NP VP [PP] [ADV]."""
    parts = [_noun_phrase(rng), str(rng.choice(_VERBS)), _noun_phrase(rng)]
    if rng.random() < 0.5:
        parts += [str(rng.choice(_PREPOSITIONS)), _noun_phrase(rng)]
    if rng.random() < 0.4:
        parts.append(str(rng.choice(_ADVERBS)))
    sentence = " ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def speaker_sentences(n: int, rng: np.random.Generator, taken: set[str] | None = None) -> list[str]:
    """The n grammar sentences one speaker reads, none in `taken` (which grows by them: pass one set for a
    whole corpus to read each sentence once)."""
    taken = set() if taken is None else taken
    out: list[str] = []
    while len(out) < n:
        sentence = grammar_sentence(rng)
        if sentence not in taken:
            taken.add(sentence)
            out.append(sentence)
    return out
