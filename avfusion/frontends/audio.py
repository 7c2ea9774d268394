"""Audio front-end: MFCCs at 100 frames/s (Kaldi-style log mel energies, librosa filterbank)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avfusion.corpus.types import Utterance


class AudioError(ValueError):
    pass


CONTAINER_SUFFIXES = {".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".webm", ".m4a", ".aac"}


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform at `sample_rate` (other rates resampled with soxr, channels averaged).

    Audio files go through libsndfile (wav, flac, NIST SPHERE, ...); the audio track of a video
    container (GRID .mpg, LRS3 .mp4) through FFmpeg's libraries (PyAV)."""
    import soxr

    audio, rate = decode_audio(path)
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate).astype(np.float32)
    return audio


def decode_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float32 samples at the file's own rate, and the rate."""
    path = Path(path)
    audio, rate = (_decode_container if path.suffix.lower() in CONTAINER_SUFFIXES else _decode_file)(path)
    if audio.size == 0:
        raise AudioError(f"{path}: audio has no samples")
    return audio, rate


def _decode_file(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile's errors name no file
        raise AudioError(f"{path}: cannot decode audio ({err})") from None
    return audio.mean(axis=1), int(rate)


def _decode_container(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: the container has no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks = [r.to_ndarray().reshape(-1) for frame in container.decode(stream)
                      for r in to_mono.resample(frame)]
            chunks += [r.to_ndarray().reshape(-1) for r in to_mono.resample(None)]
    except AudioError:
        raise
    except Exception as err:  # FFmpeg errors name no file
        raise AudioError(f"{path}: cannot decode the audio track ({err})") from None
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), int(rate)


@dataclass(frozen=True)
class MfccExtractor:
    """24 MFCCs, 25 ms window, 10 ms hop: frame i centred at i x 10 ms, 1 + n // hop frames.

    Log of the mel energies (natural log with a floor, as Kaldi) rather than librosa's dB with an
    utterance-relative `top_db` clip, so the features do not depend on the loudest frame.
    """

    n_mfcc: int = 24
    sample_rate: int = 16000
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float | None = None
    name: str = "mfcc"

    def config(self) -> dict:
        return asdict(self)

    def source(self, utt: Utterance) -> Path:
        if utt.audio is None:
            raise AudioError(f"utterance {utt.id} has no audio")
        return Path(utt.audio)

    def extract(self, utt: Utterance) -> tuple[np.ndarray, dict]:
        return self.from_waveform(load_audio(self.source(utt), self.sample_rate)), {}

    def from_waveform(self, audio: np.ndarray) -> np.ndarray:
        """(T, n_mfcc) float32 for a waveform already at `sample_rate`."""
        import librosa

        win = int(round(self.win_ms * self.sample_rate / 1000))
        hop = int(round(self.hop_ms * self.sample_rate / 1000))
        n_fft = 1 << (win - 1).bit_length()
        mel = librosa.feature.melspectrogram(
            y=audio, sr=self.sample_rate, n_fft=n_fft, win_length=win, hop_length=hop, window="hamming",
            center=True, power=2.0, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax,
        )
        log_mel = np.log(np.maximum(mel, 1e-10))
        return librosa.feature.mfcc(S=log_mel, n_mfcc=self.n_mfcc).T.astype(np.float32)
