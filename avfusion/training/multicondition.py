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
from avfusion.frames.data import FrameData, concatenated, with_audio, with_video
from avfusion.frames.writer import save_built
from avfusion.noise import NoiseCondition, NoiseMixer, NoiseSource, check_sources
from avfusion.noise.video import DegradedVideo, DrawnVideo, VideoDegradation
from avfusion.utils.atomic import write_text_atomic
from avfusion.utils.rules import check_fields, each, integer, number, text

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
    # degradations (conf/video_degradation/) a copy's video may get instead of audio noise: on `video_share` of the
    # copies, one drawn from the list at a severity drawn uniformly from `video_severity`, the audio then clean
    # (a head learns that either stream can fail); null: audio noise only, as before they existed
    video_degradations: list[str] | None = None
    video_share: float | None = None
    video_severity: list[float] | None = None

    NOT_SHAPING_WHEN_NULL = ("head_only", "video_degradations", "video_share", "video_severity")

    def __post_init__(self) -> None:
        check_fields(self, "train_noise", {"noises": each(text, example="[white,babble]"), "copies": integer(0)})
        if self.video_degradations:
            check_fields(self, "train_noise", {"video_degradations": each(text, example="[occlusion,blur]"),
                                               "video_share": number(above=0, high=1)})
            severity = list(self.video_severity or [])
            if len(severity) != 2 or not 0 < severity[0] <= severity[1] <= 1:
                raise ConfigError(f"train_noise.video_severity={self.video_severity}: give [low, high] with "
                                  "0 < low <= high <= 1")
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
        """The noise kind and SNR of one copy of an utterance, or its video degradation and severity (seeded: the
        same in every run)."""
        digest = hashlib.sha1(f"{self.seed}|{utt.id}|{copy}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        kind = self.noises[int(rng.integers(len(self.noises)))]
        noisy = NoiseCondition(kind, round(float(rng.uniform(*self.snr_db)), 2))
        if not self.video_degradations or rng.uniform() >= self.video_share:  # drawn after: the audio draws as before
            return noisy
        video = self.video_degradations[int(rng.integers(len(self.video_degradations)))]
        return NoiseCondition(video=video, severity=round(float(rng.uniform(*self.video_severity)), 3))

    def key(self, sources: dict[str, NoiseSource], degradations: dict[str, VideoDegradation]) -> str:
        """The copies' folder name: these settings and what each source (and degradation) draws from."""
        identity = {**{k: v for k, v in dataclasses.asdict(self).items()
                       if not (k in self.NOT_SHAPING_WHEN_NULL and v is None)},  # the key they had before
                    "sources": {n: s.identity() for n, s in sources.items()}}
        if self.video_degradations:
            identity["degradations"] = {n: degradations[n].identity() for n in self.video_degradations}
        return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    def check_degradations(self, degradations: dict[str, VideoDegradation]) -> None:
        unknown = [n for n in self.video_degradations or [] if n not in degradations]
        if unknown:
            raise ConfigError(f"train_noise.video_degradations: unknown {unknown}; the degradations are "
                              f"{sorted(degradations)} (conf/video_degradation/<name>.yaml)")

    def apply(self, frontend, frames: dict[str, FrameData], corpus: Corpus, frames_dir: Path,
              sources: dict[str, NoiseSource], degradations: dict[str, VideoDegradation] | None = None
              ) -> dict[str, FrameData]:
        """`frames` with each listed split's noisy copies added (or in place of the clean ones); `sources`:
        the noise sources by name (conf/noise/); `degradations`: the video degradations by name."""
        if not self.active:
            return frames
        used = self.check(sources, corpus)
        degradations = degradations or {}
        self.check_degradations(degradations)
        out = dict(frames)
        for split in self.splits:
            copies = [self._copy(frontend, frames[split], corpus, split, c, frames_dir, used, degradations)
                      for c in range(self.copies)]
            out[split] = concatenated(([frames[split]] if self.keep_clean else []) + copies)
            log.info("multi-condition %s: %d utterances (%d noisy copies each%s)", split, len(out[split].ids),
                     self.copies, ", and the clean ones" if self.keep_clean else "")
        return out

    def _copy(self, frontend, clean: FrameData, corpus: Corpus, split: str, copy: int, frames_dir: Path,
              sources: dict[str, NoiseSource], degradations: dict[str, VideoDegradation]) -> FrameData:
        directory = frames_dir / f"noisy-{self.key(sources, degradations)}" / f"{split}-{copy}"
        if (directory / "complete").is_file():
            return FrameData.load(directory)
        by_id = {u.id: u for u in corpus.split(split)}
        utterances = [by_id[i] for i in clean.ids]  # the prepared frames' order
        seed = self.seed * 1000 + copy  # another draw per copy, none shared with the test's
        noise = NoiseMixer(sources, frontend.audio.extractor.sample_rate, seed=seed)
        log.info("multi-condition training: noisy copy %d of %d %s utterances", copy + 1, len(utterances), split)
        plan = {u.id: self.draw(u, copy) for u in utterances}
        drawn = {i: DegradedVideo(c.video, degradations[c.video], c.severity, seed) for i, c in plan.items() if c.video}

        def built(rows: slice) -> FrameData:  # the copy of utterances[rows]; each utterance on its own
            part, batch = clean.utterances_between(rows.start, rows.stop), utterances[rows]
            noisy = with_audio(frontend, part, batch, lambda u, w: noise(u, w, plan[u.id]))
            if drawn.keys() & set(part.ids):
                noisy = with_video(frontend, noisy, batch, DrawnVideo(drawn), only=set(drawn))
            return dataclasses.replace(noisy, ids=[f"{i}#noisy{copy}" for i in part.ids])

        # fit_batch_utterances: built a batch at a time (memory that does not grow with the split)
        save_built(built, len(utterances), directory, frontend.store_dtype, getattr(frontend, "fit_batch_utterances", None))
        write_text_atomic(directory / "conditions.json",
                          json.dumps({i: dataclasses.asdict(c) for i, c in plan.items()}, indent=1))
        write_text_atomic(directory / "complete", "")
        return FrameData.load(directory)
