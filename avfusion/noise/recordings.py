"""Noise from a user's own recordings: a folder of audio files (MUSAN's `noise/` or `music/`, DEMAND's
environments, a recorded room), searched recursively, at any rate, mono or multichannel (channels are
averaged, rates resampled by `avfusion.media`). Each utterance's noise is a segment of one file, the file
and the start drawn from the mixer's per-utterance generator; a file shorter than the utterance loops."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.errors import ConfigError, UserError
from avfusion.media import AudioError, load_audio
from avfusion.noise.source import NoiseSource, random_segment
from avfusion.utils.stamp import file_stamp

log = logging.getLogger(__name__)

SILENT_DRAWS = 10  # segments of digital silence redrawn before giving up on a folder


@functools.lru_cache(maxsize=16)
def _decoded_stamped(path: Path, stamp: str, sample_rate: int) -> np.ndarray:
    return load_audio(path, sample_rate).astype(np.float64)


def _decoded(path: Path, sample_rate: int) -> np.ndarray:
    """A recording decoded once per process while it is unchanged (MUSAN files last minutes)."""
    return _decoded_stamped(path, file_stamp(path), sample_rate)


@dataclass
class Recordings(NoiseSource):
    folder: str | None  # null until the user names one: required when the source is used
    suffixes: list[str]

    def files(self, key: str = "noise.recordings") -> list[Path]:
        """The folder's audio files by suffix, recursively, in a fixed order (so the draws are reproducible);
        listed once per source."""
        if getattr(self, "_files", None) is None:
            self._files = _listing(self.folder, tuple(s.lower() for s in self.suffixes), key)
        return self._files

    def validate(self, key: str) -> None:
        """The folder holds at least one decodable recording (decoded in order until one is)."""
        files = self.files(key)
        for path in files:
            try:
                _decoded(path, 16000)
                return
            except AudioError as err:
                log.warning("%s: %s", key, err)
        raise ConfigError(f"{key}.folder={self.folder}: none of its {len(files)} audio files can be decoded")

    def data_identity(self) -> dict:
        root = Path(self.folder)
        return {"files": [f"{p.relative_to(root)}|{file_stamp(p)}" for p in self.files()]}

    def draw(self, utt: Utterance, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        files = self.files()
        for _ in range(SILENT_DRAWS):
            path = files[int(rng.integers(len(files)))]
            try:
                segment = random_segment(_decoded(path, sample_rate), n, rng)
            except AudioError as err:
                raise UserError(f"noise recordings: {err}") from None
            if np.any(segment):
                return segment
        raise UserError(f"noise recordings in {self.folder}: {SILENT_DRAWS} segments drawn for {utt.id} were all "
                        "digital silence")


def _listing(folder: str | None, suffixes: tuple[str, ...], key: str) -> list[Path]:
    if not folder:
        raise ConfigError(f"{key}.folder is not set: give the folder of noise recordings, e.g. "
                          f"{key}.folder=/data/musan/noise")
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{key}.folder={folder}: no such folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise ConfigError(f"{key}.folder={folder}: no audio files ({', '.join(suffixes)}) in it")
    return files
