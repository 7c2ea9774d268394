"""The decoding contract: a `Decoding` (one class, one `conf/decoding/<name>.yaml`) fits a decoder on the
training split and tunes it on dev for one model; the `Decoder` it gives turns an utterance's posteriors
into units, is saved in every run and describes itself for reports, so no code outside this package asks
which decoder it holds."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Utterance
from avfusion.frames.data import FrameData

if TYPE_CHECKING:
    from avfusion.decoding.framewise import DecodedUnit

# Where a model's decoder settings are tuned (`decoding.tune`), always on dev and per model:
#   clean          on the clean dev split
#   pooled         one setting on dev pooled over every evaluated condition (deployable: one decoder a model)
#   per_condition  each condition its own setting, tuned on dev in that condition: it assumes the condition is
#                  known at test time, and every report of it says so
TUNING_POLICIES = ("clean", "pooled", "per_condition")
CLEAN = "clean"  # the condition name of the clean dev split

# a model's (N, C) dev posteriors in an evaluation condition, by the condition's name
DevPosteriors = Callable[[str], np.ndarray]


class Decoder(Protocol):
    name: str

    def decode(self, posteriors: np.ndarray) -> list[DecodedUnit]: ...

    def stream(self, spill: str | Path | None = None): ...

    def save(self, directory: str | Path) -> None: ...

    def describe(self) -> dict: ...

    def summary(self) -> str: ...


class Decoding(ABC):
    """How a run's decoder is made: fitted on train (`fit`), then tuned on dev for each model (`tuned_for`)."""

    NOT_SHAPING: ClassVar[tuple[str, ...]] = ("*",)  # decoding comes after training

    def check(self, n_units: int) -> None:
        """Refuse, before training, settings this label scheme cannot afford."""

    @abstractmethod
    def fit(self, scheme: LabelScheme, train_utterances: list[Utterance], train: FrameData) -> Decoder:
        """What the decoder learns from the training split only."""

    @abstractmethod
    def tuned_for(self, fitted: Decoder, dev_posteriors: DevPosteriors, dev: FrameData, dev_utterances: list[Utterance],
                  conditions: list[str]) -> Decoder | PerCondition:
        """`fitted` tuned for one model under the policy: on the dev posteriors (`dev_posteriors(condition)`,
        one (N, C) array over `dev`'s frames) of the clean condition, of all `conditions` pooled, or of each
        condition alone (a `PerCondition`)."""

    @property
    def policy(self) -> str:
        """The tuning policy (TUNING_POLICIES); a decoding with nothing to tune is tuned on nothing."""
        return CLEAN

    def label(self) -> str:
        """What a report's model name carries so numbers of per-condition tuning are never read as deployable."""
        return " [tuned per condition]" if self.policy == "per_condition" else ""

    @abstractmethod
    def restored(self, decoder: Decoder | None, conditions: list[str]) -> Decoder | PerCondition | None:
        """A finished run's saved decoder under these settings and policy for an evaluation in `conditions`,
        when it was made with them (nothing is tuned again); else None."""

    def fitted_as(self, decoder: Decoder | None) -> bool:
        """Whether a saved decoder was fitted on train as these settings fit (it may be tuned again)."""
        return self.restored(decoder, [CLEAN]) is not None

    def beside(self, scheme: LabelScheme) -> dict[str, Decoder]:
        """Decoders whose error rate is reported beside this one's, by name (e.g. `per_framewise`)."""
        return {}

    def describe(self) -> dict:
        """What a report records of these settings, besides the tuned decoder's own description."""
        return {}


class PerCondition:
    """One tuned decoder per evaluation condition (tuning policy `per_condition`). Evaluation decodes each
    condition with its own; the run folder keeps the clean condition's (a recording's condition is unknown)."""

    def __init__(self, by_condition: dict[str, Decoder]) -> None:
        self.by_condition = by_condition
        self.saved = by_condition.get(CLEAN) or next(iter(by_condition.values()))
        self.name = self.saved.name

    def for_condition(self, condition: str) -> Decoder:
        return self.by_condition[condition]

    def save(self, directory: str | Path) -> None:
        self.saved.save(directory)

    def describe(self) -> dict:
        return {**self.saved.describe(), "tuning": "per_condition",
                "tuned_by_condition": {c: d.describe().get("tuned") for c, d in self.by_condition.items()}}

    def summary(self) -> str:
        return (f"{self.name}, its settings tuned on dev in each condition separately (per_condition: these numbers "
                "assume the test condition is known)")
