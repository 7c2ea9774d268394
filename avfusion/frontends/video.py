"""Video front-end: decode, mouth ROI per frame, 2-D DCT, and conversion to the audio frame rate.

Frames where the detector finds no mouth get a box interpolated from their neighbours (held at the
ends); how many is returned with the features and reported, never silently absorbed. A video with
no detection at all is an error naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avfusion.frames.clock import FRAME_RATE
from avfusion.corpus.types import Utterance
from avfusion.frontends.detectors import MouthBox, PrecroppedDetector
from avfusion.media import VideoError, read_video

log = logging.getLogger(__name__)


def interpolate_boxes(boxes: list[MouthBox | None]) -> tuple[np.ndarray, int]:
    """(T, 4) array of cx, cy, size, angle with missing boxes filled linearly; also the count missed."""
    found = np.array([b is not None for b in boxes])
    if not found.any():
        raise ValueError("no mouth found in any frame")
    idx = np.arange(len(boxes))
    known = np.array([[b.cx, b.cy, b.size, b.angle] for b in boxes if b is not None])
    filled = np.stack([np.interp(idx, idx[found], known[:, d]) for d in range(4)], axis=1)
    return filled, int((~found).sum())


def crop_roi(grey: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The box's square (rotated to level the lips) resampled to size x size; the border repeats."""
    cx, cy, side, angle = box
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), size / float(side))
    m[:, 2] += (size / 2 - cx, size / 2 - cy)
    return cv2.warpAffine(grey, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def zigzag_indices(n: int) -> np.ndarray:
    """Flat indices of an n x n block in JPEG zig-zag order (low spatial frequencies first)."""
    order = sorted(((i, j) for i in range(n) for j in range(n)), key=lambda ij: (ij[0] + ij[1], ij[0] if (ij[0] + ij[1]) % 2 else ij[1]))
    return np.array([i * n + j for i, j in order])


def dct_features(rois: np.ndarray, n_coefficients: int) -> np.ndarray:
    """(T, S, S) uint8 ROIs -> (T, n_coefficients) low-frequency 2-D DCT coefficients."""
    size = rois.shape[1]
    keep = zigzag_indices(size)[:n_coefficients]
    return np.stack([cv2.dct(r.astype(np.float32) / 255.0).ravel()[keep] for r in rois])


def to_frame_rate(x: np.ndarray, fps: float, n_frames: int, rate: float = FRAME_RATE) -> np.ndarray:
    """Linear interpolation of per-video-frame features (frame k at k / fps) to n_frames at `rate`
    (frame i at i / rate); times past the last video frame hold it."""
    pos = np.arange(n_frames) * (fps / rate)
    k0 = np.clip(np.floor(pos).astype(np.int64), 0, len(x) - 1)
    k1 = np.minimum(k0 + 1, len(x) - 1)
    w = np.clip(pos - k0, 0.0, 1.0)[:, None].astype(np.float32)
    return (1 - w) * x[k0] + w * x[k1]


@dataclass(frozen=True)
class MouthDctExtractor:
    """Per video frame: mouth ROI (grey, roi_size^2) -> top `n_coefficients` zig-zag DCT coefficients."""

    detector: object = PrecroppedDetector()
    roi_size: int = 64
    n_coefficients: int = 100
    name: str = "mouth_dct"

    def config(self) -> dict:
        return {"name": self.name, "roi_size": self.roi_size, "n_coefficients": self.n_coefficients,
                "detector": self.detector.config()}

    def source(self, utt: Utterance) -> Path:
        if utt.video is None:
            raise VideoError(f"utterance {utt.id} has no video")
        return Path(utt.video)

    def rois(self, frames: np.ndarray, source: object = "video") -> tuple[np.ndarray, np.ndarray, int]:
        """ROIs (T, S, S), the boxes used (T, 4) and the number of frames without a detection."""
        with self.detector.session() as detect:
            boxes = [detect(frame) for frame in frames]
        try:
            filled, missed = interpolate_boxes(boxes)
        except ValueError:
            raise VideoError(f"{source}: {self.detector.name} found no mouth in any of {len(frames)} frames") from None
        if missed:
            log.info("%s: %s found no mouth in %d of %d frames (interpolated)", source, self.detector.name,
                     missed, len(frames))
        greys = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        rois = np.stack([crop_roi(g, b, self.roi_size) for g, b in zip(greys, filled)])
        return rois, filled, missed

    def extract(self, utt: Utterance) -> tuple[np.ndarray, dict]:
        path = self.source(utt)
        frames, fps = read_video(path)
        rois, _, missed = self.rois(frames, source=path)
        meta = {"fps": fps, "n_frames": len(frames), "n_missed": missed}
        return dct_features(rois, self.n_coefficients).astype(np.float32), meta
