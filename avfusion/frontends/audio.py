"""Audio front-end: MFCCs at 100 frames/s (Kaldi-style log mel energies, librosa filterbank)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.media import AudioError, load_audio


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
