"""Sentence source for the synthetic corpus.

Every speaker first reads the two TIMIT dialect sentences (as every TIMIT speaker does), then
sentences drawn from a small grammar over a vocabulary chosen so that each English phone occurs
many times. Speakers of every split therefore cover the whole phone set.
"""

from __future__ import annotations

import numpy as np

# TIMIT's SA1/SA2, read by every speaker: phonetically rich and shared across splits.
DIALECT_SENTENCES = (
    "She had your dark suit in greasy wash water all year.",
    "Don't ask me to carry an oily rag like that.",
)

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


def speaker_sentences(n: int, rng: np.random.Generator) -> list[str]:
    """The n sentences one speaker reads: the dialect sentences first, then grammar sentences."""
    fixed = list(DIALECT_SENTENCES[:n])
    return fixed + [grammar_sentence(rng) for _ in range(n - len(fixed))]
