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

TUNING_POLICIES = ("clean",)  # on the clean dev split, per model


class Decoder(Protocol):
    name: str

    def decode(self, posteriors: np.ndarray) -> list[DecodedUnit]: ...

    def stream(self, spill: str | Path | None = None): ...

    def save(self, directory: str | Path) -> None: ...

    def describe(self) -> dict: ...

    def summary(self) -> str: ...


class Decoding(ABC):
    """How a run's decoder is made: fitted on train (`fit`), then tuned on dev for each model (`tuned`)."""

    NOT_SHAPING: ClassVar[tuple[str, ...]] = ("*",)  # decoding comes after training

    def check(self, n_units: int) -> None:
        """Refuse, before training, settings this label scheme cannot afford."""

    @abstractmethod
    def fit(self, scheme: LabelScheme, train_utterances: list[Utterance], train: FrameData) -> Decoder:
        """What the decoder learns from the training split only."""

    @abstractmethod
    def tuned(self, fitted: Decoder, dev_posteriors: Callable[[], np.ndarray], dev: FrameData,
              dev_utterances: list[Utterance]) -> Decoder:
        """`fitted` tuned for the model whose dev posteriors `dev_posteriors()` gives (computed only if needed)."""

    @abstractmethod
    def reuses(self, decoder: Decoder | None) -> bool:
        """Whether a saved decoder was made with these settings (a finished run's decoder is kept)."""

    def beside(self, scheme: LabelScheme) -> dict[str, Decoder]:
        """Decoders whose error rate is reported beside this one's, by name (e.g. `per_framewise`)."""
        return {}

    def describe(self) -> dict:
        """What a report records of these settings, besides the tuned decoder's own description."""
        return {}
