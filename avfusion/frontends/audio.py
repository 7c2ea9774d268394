"""Audio front-end: MFCCs at 100 frames/s (Kaldi-style log mel energies, librosa filterbank)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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

    n_mfcc: int
    sample_rate: int
    win_ms: float
    hop_ms: float
    n_mels: int
    fmin: float = 20.0
    fmax: float | None = None
    name: str = "mfcc"
    dtype = np.float32  # what the feature store keeps (a class attribute, not part of the config)

    def config(self) -> dict:
        return asdict(self)

    def source(self, utt: Utterance) -> Path:
        if utt.audio is None:
            raise AudioError(f"utterance {utt.id} has no audio")
        return Path(utt.audio)

    def extract(self, utt: Utterance) -> tuple[np.ndarray, dict]:
        return self.from_waveform(load_audio(self.source(utt), self.sample_rate)), {}

    def _framing(self) -> tuple[int, int, int]:
        win = int(round(self.win_ms * self.sample_rate / 1000))
        hop = int(round(self.hop_ms * self.sample_rate / 1000))
        return 1 << (win - 1).bit_length(), win, hop

    def from_waveform(self, audio: np.ndarray, block_frames: int = 6000) -> np.ndarray:
        """(T, n_mfcc) float32 for a waveform already at `sample_rate`, T = 1 + n // hop. A waveform longer
        than `block_frames` frames is done a block at a time (`stream`)."""
        n_fft, win, hop = self._framing()
        if 1 + len(audio) // hop <= block_frames:
            return self._mfcc(audio, n_fft, win, hop, center=True)
        return np.concatenate(list(self.stream([audio], block_frames)))

    def stream(self, blocks: Iterable[np.ndarray], block_frames: int = 6000) -> Iterator[np.ndarray]:
        """The MFCCs of the waveform that `blocks` (at `sample_rate`) make up, `block_frames` frames at a
        time: the frames of one pass to float precision (each sees only its own window; the signal is
        zero-padded by n_fft / 2 at both ends, as centring pads), so an hour of audio never holds its whole
        waveform or spectrogram."""
        n_fft, win, hop = self._framing()
        pending, held = [np.zeros(n_fft // 2, np.float32)], n_fft // 2  # samples from the next frame's start
        n_samples = emitted = 0
        need = (block_frames - 1) * hop + n_fft

        def frames(count: int) -> np.ndarray:
            nonlocal pending, held
            buffer = np.concatenate(pending)
            out = self._mfcc(buffer[:(count - 1) * hop + n_fft], n_fft, win, hop, center=False)
            pending, held = [buffer[count * hop:]], len(buffer) - count * hop
            return out

        for x in blocks:
            pending.append(np.asarray(x, np.float32))
            held += len(x)
            n_samples += len(x)
            while held >= need:
                yield frames(block_frames)
                emitted += block_frames
        pending.append(np.zeros(n_fft // 2, np.float32))
        held += n_fft // 2
        total = 1 + n_samples // hop
        while emitted < total:
            count = min(block_frames, total - emitted)
            yield frames(count)
            emitted += count

    def _mfcc(self, audio: np.ndarray, n_fft: int, win: int, hop: int, center: bool) -> np.ndarray:
        import librosa

        mel = librosa.feature.melspectrogram(
            y=audio, sr=self.sample_rate, n_fft=n_fft, win_length=win, hop_length=hop, window="hamming",
            center=center, power=2.0, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax,
        )
        log_mel = np.log(np.maximum(mel, 1e-10))
        return librosa.feature.mfcc(S=log_mel, n_mfcc=self.n_mfcc).T.astype(np.float32)
