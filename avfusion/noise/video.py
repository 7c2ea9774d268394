"""Video degradations for evaluation conditions: what happens to real mouths on camera. A degradation (one
class, one `conf/video_degradation/<name>.yaml`) acts on an utterance's decoded frames at a `severity` in
(0, 1], the video counterpart of an SNR, at one or more of three points of the mouth front-end:

- `pixels`: every decoded frame before the detector (blur, sensor noise, low light, frozen frames);
- `lost`: frames whose detection is dropped (the face lost by the detector): their boxes are
  interpolated from the neighbours, as for a real miss;
- `occlude`: the frames once the mouth boxes are known (a patch over part of the mouth).

Each utterance is degraded reproducibly on its own: the generator is seeded per (seed, degradation name,
severity, utterance id), whatever order utterances come in. Bursts (occlusion, frozen frames, face loss)
last `burst_frames` video frames each and cover about `severity` of the frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from avfusion.errors import ConfigError


def burst_mask(n: int, share: float, burst_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) bool: bursts of `burst_frames` frames at random starts until about `share` of the frames is covered."""
    mask = np.zeros(n, bool)
    target = int(round(share * n))
    while mask.sum() < target:
        start = int(rng.integers(-burst_frames + 1, n))  # a burst may run in from the start or out at the end
        mask[max(0, start):start + burst_frames] = True
    return mask


@dataclass(frozen=True)
class VideoDegradation:
    """No change at any point; subclasses override the points they act at."""

    def validate(self, key: str) -> None:
        """Settings checked before any work (`key`: where they are configured)."""
        bad = {k: v for k, v in asdict(self).items() if not isinstance(v, (int, float)) or v < 0}
        if bad:
            raise ConfigError(f"{key}: {bad} must be numbers >= 0")

    def identity(self) -> dict:
        """What the degraded frames depend on besides the utterance and severity (cache keys)."""
        return {"class": type(self).__name__, **asdict(self)}

    def pixels(self, frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
        return frames

    def lost(self, n: int, severity: float, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(n, bool)

    def occlude(self, frames: np.ndarray, boxes: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
        return frames


@dataclass(frozen=True)
class Occlusion(VideoDegradation):
    """A flat patch (the frame's mean grey) over the lower `cover` of the mouth box, in bursts covering about
    `severity` of the frames: a hand, a microphone, a cup."""

    burst_frames: int
    cover: float

    def occlude(self, frames, boxes, severity, rng):
        out = frames.copy()
        for i in np.flatnonzero(burst_mask(len(frames), severity, self.burst_frames, rng)):
            cx, cy, side, angle = boxes[i]
            corners = cv2.boxPoints(((float(cx), float(cy + side * (1 - self.cover) / 2)),
                                     (float(side), float(side * self.cover)), -float(angle)))
            cv2.fillConvexPoly(out[i], corners.round().astype(np.int32), frames[i].mean(axis=(0, 1)).tolist())
        return out


@dataclass(frozen=True)
class Blur(VideoDegradation):
    """Gaussian blur (defocus, motion) of every frame, sigma = severity x `max_sigma` x the frame's shorter side."""

    max_sigma: float

    def pixels(self, frames, severity, rng):
        sigma = severity * self.max_sigma * min(frames.shape[1:3])
        return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames]) if sigma > 0 else frames


@dataclass(frozen=True)
class PixelNoise(VideoDegradation):
    """Gaussian sensor noise of standard deviation severity x `max_std` grey levels on every pixel."""

    max_std: float

    def pixels(self, frames, severity, rng):
        noisy = frames + rng.normal(0.0, severity * self.max_std, frames.shape)
        return np.clip(noisy.round(), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class LowLight(VideoDegradation):
    """A dark, flat picture: intensities scaled by 1 - severity x `max_darkening` (the detail left is what the
    8-bit quantisation keeps)."""

    max_darkening: float

    def validate(self, key: str) -> None:
        super().validate(key)
        if self.max_darkening > 1:
            raise ConfigError(f"{key}.max_darkening={self.max_darkening}: at most 1 (black)")

    def pixels(self, frames, severity, rng):
        return np.clip((frames * (1.0 - severity * self.max_darkening)).round(), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class FrozenFrames(VideoDegradation):
    """Dropped frames: in bursts covering about `severity` of the frames, the last good frame is repeated (what
    a player shows when frames are lost)."""

    burst_frames: int

    def pixels(self, frames, severity, rng):
        frozen = burst_mask(len(frames), severity, self.burst_frames, rng)
        frozen[0] = False  # nothing before the first frame to hold
        shown = np.maximum.accumulate(np.where(frozen, 0, np.arange(len(frames))))
        return frames[shown]


@dataclass(frozen=True)
class FaceLoss(VideoDegradation):
    """The detector loses the face in bursts covering about `severity` of the frames: their boxes are
    interpolated from the frames around them (at severity 1, from the one detection kept). A mouth-cropped
    corpus (`detector=precropped`) has the same box in every frame, so this changes nothing there."""

    burst_frames: int

    def lost(self, n, severity, rng):
        lost = burst_mask(n, severity, self.burst_frames, rng)
        lost[n // 2] = lost[n // 2] and not lost.all()  # one detection is kept: a face never found is no video
        return lost


@dataclass(frozen=True)
class DegradedVideo:
    """One degradation at one severity, seeded: what the mouth front-end applies to an utterance's frames."""

    name: str
    degradation: VideoDegradation
    severity: float
    seed: int

    def rng(self, utterance_id: str, point: str) -> np.random.Generator:
        """A generator per (seed, name, severity, utterance, point): each point draws the same on every call."""
        digest = hashlib.sha1(f"{self.seed}|{self.name}|{self.severity:g}|{utterance_id}|{point}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def identity(self) -> dict:
        return {"name": self.name, "severity": self.severity, "seed": self.seed, **self.degradation.identity()}

    def pixels(self, utterance_id: str, frames: np.ndarray) -> np.ndarray:
        return self.degradation.pixels(frames, self.severity, self.rng(utterance_id, "pixels"))

    def lost(self, utterance_id: str, n: int) -> np.ndarray:
        return self.degradation.lost(n, self.severity, self.rng(utterance_id, "lost"))

    def occlude(self, utterance_id: str, frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return self.degradation.occlude(frames, boxes, self.severity, self.rng(utterance_id, "occlude"))


@dataclass(frozen=True)
class DrawnVideo:
    """A degradation drawn per utterance (multi-condition training copies): each listed utterance's own
    `DegradedVideo`, the others' frames unchanged."""

    by_utterance: dict[str, DegradedVideo]

    def pixels(self, utterance_id: str, frames: np.ndarray) -> np.ndarray:
        drawn = self.by_utterance.get(utterance_id)
        return frames if drawn is None else drawn.pixels(utterance_id, frames)

    def lost(self, utterance_id: str, n: int) -> np.ndarray:
        drawn = self.by_utterance.get(utterance_id)
        return np.zeros(n, bool) if drawn is None else drawn.lost(utterance_id, n)

    def occlude(self, utterance_id: str, frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        drawn = self.by_utterance.get(utterance_id)
        return frames if drawn is None else drawn.occlude(utterance_id, frames, boxes)
