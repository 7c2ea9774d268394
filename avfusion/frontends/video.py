"""Video front-end: decode, mouth ROI per frame, 2-D DCT, and conversion to the audio frame rate.

Frames where the detector finds no mouth get a box interpolated from their neighbours (held at the
ends); how many is returned with the features and reported, never silently absorbed. A video with
no detection at all is an error naming the file.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avfusion.frames.clock import FRAME_RATE, video_positions
from avfusion.corpus.types import Utterance
from avfusion.frontends.detectors import MouthBox
from avfusion.media import VideoError, iter_video, video_rate

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


@functools.lru_cache(maxsize=8)
def zigzag_indices(n: int) -> np.ndarray:
    """Flat indices of an n x n block in JPEG zig-zag order (low spatial frequencies first)."""
    order = sorted(((i, j) for i in range(n) for j in range(n)), key=lambda ij: (ij[0] + ij[1], ij[0] if (ij[0] + ij[1]) % 2 else ij[1]))
    indices = np.array([i * n + j for i, j in order])
    indices.flags.writeable = False  # shared by every call (cached)
    return indices


def dct_features(rois: np.ndarray, n_coefficients: int) -> np.ndarray:
    """(T, S, S) uint8 ROIs -> (T, n_coefficients) low-frequency 2-D DCT coefficients."""
    size = rois.shape[1]
    keep = zigzag_indices(size)[:n_coefficients]
    return np.stack([cv2.dct(r.astype(np.float32) / 255.0).ravel()[keep] for r in rois])


def missed_detections(meta: dict, source: object) -> np.ndarray:
    """(Tv, 1) float32: 1 on the video frames whose mouth box was interpolated (no detection), from a video's
    metadata; a feature cache made before the frames were kept, with misses, cannot say which."""
    mask = np.zeros((int(meta["n_frames"]), 1), np.float32)
    if "missed_frames" in meta:
        mask[np.asarray(meta["missed_frames"], np.int64)] = 1.0
    elif meta.get("n_missed"):
        raise VideoError(f"{source}: its cached mouth features keep how many detections were missed "
                         f"({meta['n_missed']}), not which: extract them again (delete the feature cache's "
                         "mouth_dct folder) for the reliability measures")
    return mask


def to_frame_rate(x, fps: float, n_frames: int, rate: float = FRAME_RATE, lo: int = 0, hi: int | None = None
                  ) -> np.ndarray:
    """Linear interpolation of per-video-frame features (frame k at k / fps) to n_frames at `rate`
    (frame i at i / rate); times past the last video frame hold it. Rows lo:hi only, read from `x`
    (an array, or anything that gives `len` and contiguous rows `x[a:b]`) where they need it."""
    hi = n_frames if hi is None else hi
    first, pos = video_positions(fps, len(x), lo, hi, rate)
    k0 = np.floor(pos).astype(np.int64)
    k1 = np.minimum(k0 + 1, len(x) - 1 - first)
    w = (pos - k0)[:, None].astype(np.float32)
    rows = x[first:first + int(k1[-1]) + 1] if len(pos) else x[0:0]
    return (1 - w) * rows[k0] + w * rows[k1]


@dataclass(frozen=True)
class AtFrameRate:
    """`to_frame_rate(x, fps, n_frames)` computed for the rows asked for (`len`, `view[lo:hi]`)."""

    x: object
    fps: float
    n_frames: int

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, rows: slice) -> np.ndarray:
        lo, hi, _ = rows.indices(self.n_frames)
        return to_frame_rate(self.x, self.fps, self.n_frames, lo=lo, hi=max(lo, hi))


@dataclass(frozen=True)
class MouthCropper:
    """Per video frame: the mouth box (a pluggable detector, misses interpolated) and its grey ROI."""

    detector: object
    roi_size: int
    dtype = np.float32  # what the feature store keeps (a class attribute, not part of the config)

    def source(self, utt: Utterance) -> Path:
        if utt.video is None:
            raise VideoError(f"utterance {utt.id} has no video")
        return Path(utt.video)

    def boxes(self, frames: Iterable[np.ndarray], source: object = "video", lost: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """The box used per frame (T, 4), missed detections interpolated, and the frames missed (indices). `lost`:
        frames whose detection is dropped as if missed (a degradation: the face lost)."""
        with self.detector.session() as detect:
            boxes = [None if lost is not None and lost[i] else detect(frame) for i, frame in enumerate(frames)]
        try:
            filled, missed = interpolate_boxes(boxes)
        except ValueError:
            raise VideoError(f"{source}: {self.detector.name} found no mouth in any of {len(boxes)} frames") from None
        if missed:
            log.info("%s: %s found no mouth in %d of %d frames (interpolated)", source, self.detector.name,
                     missed, len(boxes))
        return filled, np.flatnonzero([b is None for b in boxes])

    def crops(self, frames: Iterable[np.ndarray], boxes: np.ndarray) -> Iterator[np.ndarray]:
        """Each frame's grey ROI (S, S) uint8, cut with its box."""
        for frame, box in zip(frames, boxes):
            yield crop_roi(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), box, self.roi_size)

    def extract_degraded(self, utt: Utterance, video) -> tuple[np.ndarray, dict]:
        """What `extract` gives, from the utterance's frames degraded by `video` (a `DegradedVideo`: pixels before
        the detector, detections lost, the mouth occluded once its boxes are known). For evaluation conditions:
        the utterance's frames are held in memory whole."""
        path = self.source(utt)
        frames = video.pixels(utt.id, np.stack(list(iter_video(path))))
        boxes, missed = self.boxes(frames, path, lost=video.lost(utt.id, len(frames)))
        rois = np.stack(list(self.crops(video.occlude(utt.id, frames, boxes), boxes)))
        return self.from_rois(rois), self.meta(path, boxes, missed)

    def from_rois(self, rois: np.ndarray) -> np.ndarray:
        """The extractor's per-frame output from (T, S, S) uint8 ROIs."""
        raise NotImplementedError

    @staticmethod
    def meta(path: str | Path, boxes: np.ndarray, missed: np.ndarray) -> dict:
        """What the feature store keeps beside a video's per-frame array: its rate, the frames whose mouth box was
        interpolated (no detection), and the median side of its mouth boxes (which prediction checks: a face
        frame taken whole as the mouth)."""
        return {"fps": video_rate(path), "n_frames": len(boxes), "n_missed": len(missed),
                "missed_frames": [int(i) for i in missed],
                "mouth_box_px": float(np.median(boxes[:, 2]))}

    def rois(self, frames: np.ndarray, source: object = "video") -> tuple[np.ndarray, np.ndarray, int]:
        """ROIs (T, S, S), the boxes used (T, 4) and the number of frames without a detection."""
        filled, missed = self.boxes(frames, source)
        return np.stack(list(self.crops(frames, filled))), filled, len(missed)


@dataclass(frozen=True)
class MouthRoiExtractor(MouthCropper):
    """Per video frame: the grey mouth ROI itself, (T, roi_size, roi_size) uint8 at the video rate, for
    front-ends that learn from pixels (`VideoCnnEncoder`). The same boxes and crops as `MouthDctExtractor`."""

    name: str = "mouth_roi"
    dtype = np.uint8  # what the feature store keeps (4x smaller than float32, and the pixels are bytes)

    def config(self) -> dict:
        return {"name": self.name, "roi_size": self.roi_size, "detector": self.detector.config()}

    def extract(self, utt: Utterance) -> tuple[np.ndarray, dict]:
        path = self.source(utt)
        boxes, missed = self.boxes(iter_video(path), path)  # decoded twice, as for the DCT: never held whole
        rois = np.stack(list(self.crops(iter_video(path), boxes)))
        return rois, self.meta(path, boxes, missed)

    def from_rois(self, rois: np.ndarray) -> np.ndarray:
        return rois


@dataclass(frozen=True)
class MouthDctExtractor(MouthCropper):
    """Per video frame: mouth ROI (grey, roi_size^2) -> top `n_coefficients` zig-zag DCT coefficients."""

    n_coefficients: int
    name: str = "mouth_dct"

    def config(self) -> dict:
        return {"name": self.name, "roi_size": self.roi_size, "n_coefficients": self.n_coefficients,
                "detector": self.detector.config()}

    def read(self, path: str | Path, keep_rois: int = 0, progress: bool = False, sink=None
             ) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
        """Features (T, n_coefficients), metadata, and `keep_rois` ROIs evenly spread over the video (their
        frame indices and (K, S, S) crops). The video is decoded twice (boxes first: a missed detection
        is interpolated from later frames), never held whole, so any length fits in memory. `sink`: an
        object the features are appended to a batch of rows at a time (e.g. a file), returned in their place."""
        frames = iter_video(path)
        if progress:
            from tqdm.auto import tqdm

            frames = tqdm(frames, desc=f"finding the mouth ({self.detector.name})", unit="frame")
        boxes, missed = self.boxes(frames, path)
        keep = np.unique(np.linspace(0, len(boxes) - 1, keep_rois).round().astype(np.int64)) if keep_rois else \
            np.zeros(0, np.int64)
        batches = [] if sink is None else sink
        batch, kept = [], []
        wanted = set(keep.tolist())
        for i, roi in enumerate(self.crops(iter_video(path), boxes)):
            batch.append(roi)
            if i in wanted:
                kept.append(roi)
            if len(batch) == 256 or i == len(boxes) - 1:
                batches.append(dct_features(np.stack(batch), self.n_coefficients))
                batch = []
        meta = self.meta(path, boxes, missed)
        rois = np.stack(kept) if kept else np.zeros((0, self.roi_size, self.roi_size), np.uint8)
        return (np.concatenate(batches) if sink is None else sink), meta, keep, rois

    def extract(self, utt: Utterance) -> tuple[np.ndarray, dict]:
        features, meta, _, _ = self.read(self.source(utt))
        return features, meta

    def from_rois(self, rois: np.ndarray) -> np.ndarray:
        return dct_features(rois, self.n_coefficients)
