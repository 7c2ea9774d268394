"""Multi-condition training: noisy copies of the training (and dev) audio beside the clean utterances.

The front-end is fitted on the clean training split as before (its CMVN statistics and LDA do not move);
each copy of an utterance gets one noise kind drawn from `noises` and an SNR drawn uniformly from
`snr_db` (active-speech SNR, as in evaluation), seeded per (utterance, copy), and only its audio features
are recomputed through the fitted front-end; labels and video are the clean ones. Babble is mixed from
the corpus's babble pool (talkers in no split, as for the test conditions, with other draws), never from
the utterance's own speaker. The copies are kept beside the prepared frames (`noisy-<key>/<split>/`),
so the runs of a sweep build them once. The test split is never touched here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avfusion.corpus.types import Corpus, Utterance
from avfusion.errors import ConfigError
from avfusion.frames.data import FrameData, concatenated, with_audio
from avfusion.noise import NoiseCondition, NoiseMixer, NoiseSource, check_sources
from avfusion.utils.atomic import write_text_atomic
from avfusion.utils.rules import check_fields, each, integer, text

log = logging.getLogger(__name__)

SPLITS = ("train", "dev")


@dataclass
class MultiCondition:
    """`conf/train_noise/`: `clean` (copies: 0) or `multi`."""

    copies: int  # noisy copies per utterance; 0: clean training
    noises: list[str]  # noise sources (conf/noise/)
    snr_db: list[float]  # [low, high], drawn uniformly
    splits: list[str]  # dev too: early stopping in the same conditions
    keep_clean: bool  # the clean utterances stay beside their copies
    seed: int
    # true: the copies train the fusion head only, the encoders pre-train on the clean split (a reliability-
    # weighted head learns where clean-trained streams fail); null (runs saved before it existed): both
    head_only: bool | None = None

    NOT_SHAPING_WHEN_NULL = ("head_only",)

    def __post_init__(self) -> None:
        check_fields(self, "train_noise", {"noises": each(text, example="[white,babble]"), "copies": integer(0)})
        if self.copies and not self.noises:
            raise ConfigError("train_noise.noises is empty: list the noises to train in, e.g. [white,babble]")
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ConfigError(f"train_noise.snr_db={list(self.snr_db)}: give [low, high] in dB, low <= high")
        bad = [s for s in self.splits if s not in SPLITS]
        if bad:
            raise ConfigError(f"train_noise.splits: {bad} cannot be trained on; choose from {list(SPLITS)}")
        self.copies = int(self.copies)

    @property
    def active(self) -> bool:
        return self.copies > 0

    def check(self, sources: dict[str, NoiseSource], corpus: Corpus | None = None) -> dict[str, NoiseSource]:
        """The noise sources the copies are drawn from, validated (and with the corpus, checked against it
        and prepared)."""
        return check_sources(self.noises if self.active else [], sources, "train_noise.noises", corpus)

    def draw(self, utt: Utterance, copy: int) -> NoiseCondition:
        """The noise kind and SNR of one copy of an utterance (seeded: the same in every run)."""
        digest = hashlib.sha1(f"{self.seed}|{utt.id}|{copy}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        kind = self.noises[int(rng.integers(len(self.noises)))]
        return NoiseCondition(kind, round(float(rng.uniform(*self.snr_db)), 2))

    def key(self, sources: dict[str, NoiseSource]) -> str:
        """The copies' folder name: these settings and what each source draws from."""
        identity = {**dataclasses.asdict(self), "sources": {n: s.identity() for n, s in sources.items()}}
        return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    def apply(self, frontend, frames: dict[str, FrameData], corpus: Corpus, frames_dir: Path,
              sources: dict[str, NoiseSource]) -> dict[str, FrameData]:
        """`frames` with each listed split's noisy copies added (or in place of the clean ones); `sources`:
        the noise sources by name (conf/noise/)."""
        if not self.active:
            return frames
        used = self.check(sources, corpus)
        out = dict(frames)
        for split in self.splits:
            copies = [self._copy(frontend, frames[split], corpus, split, c, frames_dir, used) for c in range(self.copies)]
            out[split] = concatenated(([frames[split]] if self.keep_clean else []) + copies)
            log.info("multi-condition %s: %d utterances (%d noisy copies each%s)", split, len(out[split].ids),
                     self.copies, ", and the clean ones" if self.keep_clean else "")
        return out

    def _copy(self, frontend, clean: FrameData, corpus: Corpus, split: str, copy: int, frames_dir: Path,
              sources: dict[str, NoiseSource]) -> FrameData:
        directory = frames_dir / f"noisy-{self.key(sources)}" / f"{split}-{copy}"
        if (directory / "complete").is_file():
            return FrameData.load(directory)
        by_id = {u.id: u for u in corpus.split(split)}
        utterances = [by_id[i] for i in clean.ids]  # the prepared frames' order
        noise = NoiseMixer(sources, frontend.audio.extractor.sample_rate,
                           seed=self.seed * 1000 + copy)  # another draw per copy, none shared with the test's
        log.info("multi-condition training: noisy copy %d of %d %s utterances", copy + 1, len(utterances), split)
        noisy = with_audio(frontend, clean, utterances, lambda u, w: noise(u, w, self.draw(u, copy)))
        noisy = dataclasses.replace(noisy, ids=[f"{i}#noisy{copy}" for i in clean.ids])
        noisy.save(directory)
        plan = {u.id: dataclasses.asdict(self.draw(u, copy)) for u in utterances}
        write_text_atomic(directory / "conditions.json", json.dumps(plan, indent=1))
        write_text_atomic(directory / "complete", "")
        return FrameData.load(directory)
