"""Label schemes: the classes a model predicts, the units they are scored in, and their groups.

Frame labels of a scheme (which class each 10 ms frame takes) are computed in `avfusion.frames`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from avfusion.errors import ConfigError, UserError
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
    # state (0 begin, 1 middle, 2 end third) of each class; -1: the class covers its whole unit
    position_of_class: np.ndarray | None = None
    # context-dependent schemes: "l-p+r_s" / "l-p_s" / "p+r_s" / "p_s" -> class (see `segment_classes`)
    context_classes: dict[str, int] | None = None

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

    @property
    def is_state_scheme(self) -> bool:
        return bool(np.any(self.positions >= 0))

    def sharing_level(self, requested: str | None) -> str | None:
        """The group level class sharing uses: `auto` is the unit for state schemes (states of a phone
        share), else `viseme` where the scheme has it, else none; a level the scheme lacks is an error."""
        if requested in (None, "none"):
            return None
        if requested == "auto":
            if self.is_state_scheme and self.unit in self.groups:
                return self.unit
            return "viseme" if "viseme" in self.groups else None
        if requested not in self.groups:
            raise ConfigError(f"fusion.sharing={requested!r}: label scheme {self.name!r} has no such group level; "
                             f"choose from {['auto', 'none', *sorted(self.groups)]}")
        return requested

    @property
    def positions(self) -> np.ndarray:
        if self.position_of_class is None:
            return np.full(self.num_classes, -1, dtype=np.int64)
        return self.position_of_class

    @functools.cached_property
    def state_table(self) -> np.ndarray:
        """(units, 3) the class of each state third of each unit in context-free schemes (-1: none)."""
        table = np.full((len(self.units), len(STATES)), -1, dtype=np.int64)
        for c, (u, k) in enumerate(zip(self.unit_of_class, self.positions)):
            if k < 0:
                table[u, :] = c
            else:
                table[u, k] = c
        return table

    def segment_classes(self, labels: list[str]) -> np.ndarray:
        """(S, 3) the class of each state third of each segment of an utterance's label sequence.
        Context-dependent schemes look up (left, unit, right) and back off: begin and middle states to the
        left biphone, the end state to the right biphone, then to the context-free state."""
        ids = np.array([self.unit_id(label) for label in labels], dtype=np.int64).reshape(-1)
        if self.context_classes is None:
            return self.state_table[ids]
        names = [self.units[i] for i in ids]
        out = np.empty((len(names), len(STATES)), dtype=np.int64)
        for i, unit in enumerate(names):
            left = names[i - 1] if i > 0 else SIL
            right = names[i + 1] if i + 1 < len(names) else SIL
            for k, state in enumerate(STATES):
                out[i, k] = self.context_class(left, unit, right, state)
        return out

    def context_class(self, left: str, unit: str, right: str, state: str) -> int:
        table = self.context_classes
        if unit == SIL:
            return table[SIL]
        near = f"{left}-{unit}" if state != STATES[-1] else f"{unit}+{right}"
        for key in (f"{left}-{unit}+{right}_{state}", f"{near}_{state}", f"{unit}_{state}"):
            if key in table:
                return table[key]
        raise KeyError(f"label scheme {self.name!r} has no class for {unit}_{state}")

    @functools.cached_property
    def unit_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.units)}

    def unit_posteriors(self, posteriors: np.ndarray) -> np.ndarray:
        """(T, C) class posteriors -> (T, U): the classes of each unit summed (states, contexts into phones)."""
        from scipy import sparse

        to_unit = self.unit_of_class
        class_to_unit = sparse.csr_matrix((np.ones(len(to_unit)), (np.arange(len(to_unit)), to_unit)),
                                          shape=(len(to_unit), len(self.units)))
        return np.asarray(posteriors @ class_to_unit)

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
    positions = np.array([k for _ in speech for k in range(len(STATES))] + [-1], dtype=np.int64)
    return LabelScheme(name=name, classes=classes, units=units, unit_of_class=unit_idx,
                       groups={unit_level: unit_idx, **{g: idx[unit_idx] for g, (idx, _) in groups.items()}},
                       group_names={unit_level: units, **{g: names for g, (_, names) in groups.items()}},
                       unit_kind=kind, position_of_class=positions)


def cd_state_scheme(classes) -> LabelScheme:
    """Context-dependent phone states from a tied class inventory (`avfusion.frames.tying` fits one on
    train): names `l-p+r_s` (triphone state), `l-p_s` / `p+r_s` (biphone back-off), `p_s` (monophone
    state, always present) and `sil`. Groups: the centre phone (the paper's sharing) and its viseme."""
    classes = tuple(classes)
    unit_of_class, positions, table = [], [], {}
    for c, name in enumerate(classes):
        table[name] = c
        if name == SIL:
            unit_of_class.append(PHONES.index(SIL))
            positions.append(-1)
            continue
        context, state = name.rsplit("_", 1)
        centre = context.split("-")[-1].split("+")[0]
        if centre not in PHONES or state not in STATES:
            raise UserError(f"cd_state class {name!r} is not of the form left-phone+right_state")
        unit_of_class.append(PHONES.index(centre))
        positions.append(STATES.index(state))
    missing = [f"{p}_{s}" for p in PHONES if p != SIL for s in STATES if f"{p}_{s}" not in table]
    if missing or SIL not in table:
        raise UserError(f"a cd_state inventory needs every monophone state and sil to back off to; missing "
                         f"{(missing + ([] if SIL in table else [SIL]))[:5]}")
    unit_idx = np.array(unit_of_class, dtype=np.int64)
    viseme, viseme_names = _viseme_groups()["viseme"]
    return LabelScheme(name="cd_state", classes=classes, units=PHONES, unit_of_class=unit_idx,
                       groups={"phone": unit_idx, "viseme": viseme[unit_idx]},
                       group_names={"phone": PHONES, "viseme": viseme_names}, unit_kind="phones",
                       position_of_class=np.array(positions, dtype=np.int64), context_classes=table)


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


FITTED_SCHEMES = {"cd_state": cd_state_scheme}  # class inventories fitted on a corpus's train split


def get_scheme(name: str, vocabulary=None, classes=None) -> LabelScheme:
    """A label scheme by name; word schemes need the vocabulary (`corpus_vocabulary`), fitted schemes
    (cd_state) their class inventory."""
    if name in FITTED_SCHEMES:
        if classes is None:
            raise ValueError(f"label scheme {name!r} is fitted on a corpus (avfusion.frames.tying): give its classes")
        return FITTED_SCHEMES[name](classes)
    if name not in SCHEMES:
        raise KeyError(f"unknown label scheme {name!r}; known: {sorted(SCHEMES) + sorted(FITTED_SCHEMES)}")
    return SCHEMES[name](vocabulary)


AUTO_SCHEMES = {"auto": "{unit}", "states": "{unit}_state"}
# every name `label_scheme` takes, in the order a user reads them
SCHEME_NAMES = (*AUTO_SCHEMES, "phone", "phone_state", "cd_state", "word", "word_state")


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
