"""Reliability measures: per frame, how far each stream can be trusted right now, computed from the stream
itself without any reference (no clean signal, no SNR label), so prediction on a new recording has them too.

They are front-end steps over a modality's raw features (`frontend.measures` in conf/frontend/reliability.yaml):
the audio measures read the MFCCs, the video measures the mouth DCT at 100 frames/s, so a noisy or degraded
condition recomputes them with the features it changes. Each declares its `frame_context` (its sliding
windows), so a long recording run in pieces gives the frames of one pass. What the posteriors say about
their own reliability (entropy, dispersion) is the fusion head's to compute (`avfusion.models.fusion.reliability`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import idct
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from avfusion.frontends.step import FrontEndStep
from avfusion.utils.rules import check_fields, integer, number

NEPER_DB = 10.0 / np.log(10.0)  # dB per unit of natural-log power
TINY = 1e-8


def odd(value) -> str | None:
    """A rule: a window of frames centred on its frame."""
    wanted = integer(1)(value)
    return "an odd whole number >= 1 (a window centred on its frame)" if wanted or value % 2 == 0 else None


class Measures(FrontEndStep):
    """A measure step: nothing fitted (a global CMVN after it scales the measures on train), frame windows only."""

    learns = False
    names: tuple[str, ...] = ()  # what each output column is

    def transform(self, utterances):
        return [u.replace(self.measure(np.asarray(u.x, dtype=np.float32))) for u in utterances]

    def measure(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass
class AudioReliability(Measures):
    """From MFCCs (natural-log mel energies, orthonormal DCT-II, as `MfccExtractor`): the log-mel spectrum,
    cepstrally smoothed, by the inverse DCT; each band's noise floor by minimum statistics (Martin 2001: the
    minimum of the time-smoothed band energy over a window longer than a run of speech, so it rests on the
    pauses); and per frame, in dB:

    - `snr`: the a-posteriori SNR, the mean over bands of the energy above the floor (clipped to [0, snr_cap_db]);
    - `presence`: the share of bands more than `presence_db` above their floor (a voice-activity measure);
    - `floor`: the noise floor, the mean over bands;
    - `local_snr`: `snr` averaged over the window, an utterance-level estimate (WADA-like) spread over frames.
    """

    n_mels: int
    window: int  # frames of minimum statistics and of the local SNR
    smooth: int  # frames each band's energy is averaged over before its minimum is taken
    presence_db: float
    snr_cap_db: float
    names = ("snr", "presence", "floor", "local_snr")

    def __post_init__(self) -> None:
        check_fields(self, "frontend.measures.audio", {"n_mels": integer(1), "window": odd, "smooth": odd,
                                                       "presence_db": number(0), "snr_cap_db": number(0)})

    @property
    def frame_context(self) -> int:
        # the local SNR averages per-frame SNRs whose floors already looked half a window (and a smoothing) away
        return self.window // 2 + self.window // 2 + self.smooth // 2

    def measure(self, mfcc: np.ndarray) -> np.ndarray:
        if mfcc.shape[1] > self.n_mels:
            raise ValueError(f"audio reliability: {mfcc.shape[1]} MFCCs but n_mels={self.n_mels}: give the "
                             "extractor's n_mels")
        log_mel = idct(mfcc.astype(np.float64), type=2, n=self.n_mels, axis=1, norm="ortho")
        energy = uniform_filter1d(log_mel, self.smooth, axis=0, mode="nearest")
        floor = minimum_filter1d(energy, self.window, axis=0, mode="nearest")
        above = (log_mel - floor) * NEPER_DB
        snr = np.clip(above, 0.0, self.snr_cap_db).mean(axis=1)
        presence = (above > self.presence_db).mean(axis=1)
        local = uniform_filter1d(snr, self.window, mode="nearest")
        return np.stack([snr, presence, floor.mean(axis=1) * NEPER_DB, local], axis=1).astype(np.float32)


@dataclass
class VideoReliability(Measures):
    """From the mouth ROI's zig-zag 2-D DCT (orthonormal, grey levels in [0, 1], at 100 frames/s) and, in its last
    column, whether the mouth box was interpolated (a missed detection; the front-end appends it):

    - `brightness`: the DC coefficient (the mean grey level times the ROI side): low light;
    - `contrast`: the log energy of the AC coefficients;
    - `sharpness`: the log share of the AC energy beyond the first `low` coefficients (falls with blur, rises
      with pixel noise);
    - `motion`: the log energy of the frame-to-frame change of the AC coefficients, averaged over `smooth`
      frames (near its floor for a frozen picture, high for noise or a jump to another face);
    - `interpolated`: the share of the frame's video frames whose mouth box was interpolated (the detector lost
      the face: the crop is a guess).
    """

    low: int  # zig-zag coefficients counted as the picture's coarse shape (the DC included)
    smooth: int  # frames the motion energy is averaged over
    names = ("brightness", "contrast", "sharpness", "motion", "interpolated")

    def __post_init__(self) -> None:
        check_fields(self, "frontend.measures.video", {"low": integer(2), "smooth": odd})

    @property
    def frame_context(self) -> int:
        return self.smooth // 2 + 1

    def measure(self, dct_and_missed: np.ndarray) -> np.ndarray:
        x, missed = dct_and_missed[:, :-1].astype(np.float64), dct_and_missed[:, -1]
        if x.shape[1] <= self.low:
            raise ValueError(f"video reliability: low={self.low} leaves none of the {x.shape[1]} DCT coefficients")
        ac = (x[:, 1:] ** 2).sum(axis=1)
        high = (x[:, self.low:] ** 2).sum(axis=1)
        change = np.diff(x[:, 1:], axis=0, prepend=x[:1, 1:]) if len(x) else x[:, 1:]
        moved = (change ** 2).sum(axis=1)
        if len(moved) > 1:
            moved[0] = moved[1]  # the first frame has no predecessor: take its successor's change
        motion = uniform_filter1d(np.log(moved + TINY), self.smooth, mode="nearest")
        return np.stack([x[:, 0], np.log(ac + TINY), np.log(high + TINY) - np.log(ac + TINY), motion, missed],
                        axis=1).astype(np.float32)
