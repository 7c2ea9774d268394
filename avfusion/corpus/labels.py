"""Label schemes: the classes a model predicts, the units they are scored in, and their groups.

Frame labels of a scheme (which class each 10 ms frame takes) are computed in `avfusion.frames`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from avfusion.corpus.phones import PHONE_TO_VISEME, PHONES, SIL, VISEME_CLASSES

STATES = ("b", "m", "e")  # begin / middle / end thirds of a phone


UNK = "<unk>"  # words outside a training vocabulary


@dataclass(frozen=True)
class LabelScheme:
    """Classes to predict, the units their sequences are scored in (phones or words, `sil` among them),
    and the groups used for class sharing (e.g. state -> phone -> viseme)."""

    name: str
    classes: tuple[str, ...]
    units: tuple[str, ...]
    unit_of_class: np.ndarray  # index into `units` of each class (states map to their unit)
    groups: dict[str, np.ndarray]  # group level -> group index of each class
    group_names: dict[str, tuple[str, ...]]
    unit_kind: str = "phones"  # phones | words: which alignment labels the scheme reads

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def unit(self) -> str:
        """`phone` or `word`: names the metrics (frame_error_phone, per | frame_error_word, wer)."""
        return self.unit_kind[:-1]

    def group_index(self, level: str) -> np.ndarray:
        if level not in self.groups:
            raise KeyError(f"label scheme {self.name!r} has no group level {level!r}; it has {sorted(self.groups)}")
        return self.groups[level]

    @functools.cached_property
    def unit_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.units)}

    def unit_id(self, label: str) -> int:
        index = self.unit_index
        if label in index:
            return index[label]
        if UNK in index:
            return index[UNK]
        raise KeyError(f"{label!r} is not a unit of label scheme {self.name!r}")


def unit_scheme(name: str, units: tuple[str, ...], kind: str, groups: dict[str, tuple[np.ndarray, tuple]]
                ) -> LabelScheme:
    """One class per unit."""
    return LabelScheme(name=name, classes=units, units=units, unit_of_class=np.arange(len(units)),
                       groups={g: idx for g, (idx, _) in groups.items()},
                       group_names={g: names for g, (_, names) in groups.items()}, unit_kind=kind)


def state_scheme(name: str, units: tuple[str, ...], kind: str, groups: dict[str, tuple[np.ndarray, tuple]]
                 ) -> LabelScheme:
    """3 states per unit (begin/middle/end thirds) and a single sil class; states share by unit."""
    speech = [i for i, u in enumerate(units) if u != SIL]
    classes = tuple(f"{units[i]}_{s}" for i in speech for s in STATES) + (SIL,)
    unit_idx = np.array([i for i in speech for _ in STATES] + [units.index(SIL)], dtype=np.int64)
    unit_level = kind[:-1]
    return LabelScheme(name=name, classes=classes, units=units, unit_of_class=unit_idx,
                       groups={unit_level: unit_idx, **{g: idx[unit_idx] for g, (idx, _) in groups.items()}},
                       group_names={unit_level: units, **{g: names for g, (_, names) in groups.items()}},
                       unit_kind=kind)


def _viseme_groups() -> dict[str, tuple[np.ndarray, tuple]]:
    return {"viseme": (np.array([VISEME_CLASSES.index(PHONE_TO_VISEME[p]) for p in PHONES], dtype=np.int64),
                       VISEME_CLASSES)}


def phone_scheme(vocabulary=None) -> LabelScheme:
    return unit_scheme("phone", PHONES, "phones", _viseme_groups())


def phone_state_scheme(vocabulary=None) -> LabelScheme:
    """3 states per phone and a single sil class: 3 x 38 + 1 = 115."""
    return state_scheme("phone_state", PHONES, "phones", _viseme_groups())


def _word_units(vocabulary) -> tuple[str, ...]:
    if not vocabulary:
        raise ValueError("word label schemes need the corpus's vocabulary")
    return tuple(sorted(set(vocabulary) - {SIL})) + (SIL,)


def word_scheme(vocabulary) -> LabelScheme:
    """One class per word of `vocabulary` (plus sil; <unk> takes other words if it is in the vocabulary)."""
    return unit_scheme("word", _word_units(vocabulary), "words", {})


def word_state_scheme(vocabulary) -> LabelScheme:
    """3 states per word plus sil: enough classes for LDAs wider than the vocabulary (GRID: 51 words)."""
    return state_scheme("word_state", _word_units(vocabulary), "words", {})


SCHEMES = {"phone": phone_scheme, "phone_state": phone_state_scheme, "word": word_scheme,
           "word_state": word_state_scheme}


def get_scheme(name: str, vocabulary=None) -> LabelScheme:
    """A label scheme by name; word schemes need the vocabulary (`corpus_vocabulary`)."""
    if name not in SCHEMES:
        raise KeyError(f"unknown label scheme {name!r}; known: {sorted(SCHEMES)}")
    return SCHEMES[name](vocabulary)


AUTO_SCHEMES = {"auto": "{unit}", "states": "{unit}_state"}


def corpus_scheme(name: str, corpus) -> LabelScheme:
    """The scheme `name` for `corpus`: its alignments must hold the scheme's units; word schemes use the
    corpus's closed vocabulary (GRID) or the training split's words plus <unk>. `auto` is the corpus's
    unit scheme (phone or word), `states` its state scheme (phone_state or word_state)."""
    from avfusion.corpus.alignments import utterance_labels

    kinds = sorted({u.labels for u in corpus})
    if name in AUTO_SCHEMES:
        if len(kinds) != 1:
            raise ValueError(f"{corpus.name}: alignments hold {' and '.join(kinds)}; label_scheme {name!r} "
                             "needs one kind")
        name = AUTO_SCHEMES[name].format(unit=kinds[0][:-1])
    kind = "words" if name.startswith("word") else "phones"
    if kinds != [kind]:
        hint = "word / word_state" if kinds == ["words"] else "phone / phone_state"
        raise ValueError(f"{corpus.name}: label scheme {name!r} reads {kind} but the corpus's alignments hold "
                         f"{' and '.join(kinds)}; use label_scheme (and frontend.fit_labels) {hint}")
    vocabulary = None
    if kind == "words":
        vocabulary = corpus.vocabulary or sorted(
            {s.label for u in corpus.split("train") for s in utterance_labels(u)} | {UNK})
    return get_scheme(name, vocabulary)
