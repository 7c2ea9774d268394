"""Mouth region detectors, one small class per backend, chosen by config (`conf/detector/`).

A detector opens a session per video (trackers keep state across frames) and returns, per BGR frame,
a `MouthBox` (a square around the lips, optionally rotated so the lip corners are level) or None when
it finds no mouth. Missed frames are interpolated by the video front-end, which counts them.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from avfusion.utils.native_stderr import quiet_until_first_call

Detect = Callable[[np.ndarray], "MouthBox | None"]


@dataclass(frozen=True)
class MouthBox:
    cx: float
    cy: float
    size: float  # side of the square ROI, pixels
    angle: float = 0.0  # degrees; rotating the frame by this levels the lip corners


class _Detector:
    name = "detector"

    def config(self) -> dict:
        return {"name": self.name, **asdict(self)}

    def session(self) -> contextlib.AbstractContextManager[Detect]:
        raise NotImplementedError


@dataclass(frozen=True)
class PrecroppedDetector(_Detector):
    """The video already is the mouth region: the ROI is the central square of the frame."""

    name = "precropped"

    @contextlib.contextmanager
    def session(self) -> Iterator[Detect]:
        def detect(frame: np.ndarray) -> MouthBox:
            h, w = frame.shape[:2]
            return MouthBox(w / 2, h / 2, float(min(w, h)))

        yield detect


# MediaPipe face mesh indices of the outer lip corners
_LEFT_CORNER, _RIGHT_CORNER = 61, 291


@dataclass(frozen=True)
class MediapipeMouthDetector(_Detector):
    """MediaPipe face-mesh lip landmarks (the `mp.solutions` models shipped with mediapipe 0.10.21).

    With `model_path` (a FaceLandmarker `.task` bundle), the MediaPipe Tasks API is used instead,
    as newer mediapipe releases require.
    """

    margin: float  # ROI side = margin x lip-corner distance
    align: bool
    min_confidence: float
    model_path: str | None = None
    name = "mediapipe"

    def _box(self, pts: np.ndarray, corners: tuple[np.ndarray, np.ndarray]) -> MouthBox:
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        left, right = corners
        width = float(np.hypot(*(right - left)))
        angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0])) if self.align else 0.0
        return MouthBox((x0 + x1) / 2, (y0 + y1) / 2, self.margin * max(width, x1 - x0), angle)

    @contextlib.contextmanager
    def session(self) -> Iterator[Detect]:
        import mediapipe as mp

        lips = sorted({i for edge in mp.solutions.face_mesh.FACEMESH_LIPS for i in edge})

        def to_box(landmarks, frame) -> MouthBox:
            h, w = frame.shape[:2]
            pts = np.array([[landmarks[i].x * w, landmarks[i].y * h] for i in lips])
            corners = tuple(np.array([landmarks[i].x * w, landmarks[i].y * h]) for i in (_LEFT_CORNER, _RIGHT_CORNER))
            return self._box(pts, corners)

        if self.model_path is not None:
            yield from self._tasks_session(to_box)
            return
        with quiet_until_first_call(lambda: mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False, max_num_faces=1, min_detection_confidence=self.min_confidence)) as (mesh, wrap), \
                mesh:
            process = wrap(mesh.process)  # TensorFlow Lite's start-up lines come by the end of the first frame

            def detect(frame: np.ndarray) -> MouthBox | None:
                result = process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if not result.multi_face_landmarks:
                    return None
                return to_box(result.multi_face_landmarks[0].landmark, frame)

            yield detect

    def _tasks_session(self, to_box) -> Iterator[Detect]:
        import mediapipe as mp

        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"MediaPipe FaceLandmarker model {self.model_path} does not exist")
        vision = mp.tasks.vision
        options = vision.FaceLandmarkerOptions(
            base_options=mp.tasks.BaseOptions(model_asset_path=self.model_path),
            running_mode=vision.RunningMode.VIDEO, num_faces=1, min_face_detection_confidence=self.min_confidence,
        )
        with quiet_until_first_call(lambda: vision.FaceLandmarker.create_from_options(options)) as (landmarker, wrap), \
                landmarker:
            frame_index = [0]
            detect_for_video = wrap(landmarker.detect_for_video)

            def detect(frame: np.ndarray) -> MouthBox | None:
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                frame_index[0] += 1
                result = detect_for_video(image, frame_index[0] * 33)  # monotonic timestamps, ms
                if not result.face_landmarks:
                    return None
                return to_box(result.face_landmarks[0], frame)

            yield detect


@dataclass(frozen=True)
class HaarMouthDetector(_Detector):
    """Viola-Jones, as in the paper: frontal-face cascade, then OpenCV's smile cascade on the lower
    half of the face as the mouth detector (the wheels ship no mouth cascade)."""

    margin: float
    scale_factor: float
    face_neighbors: int
    mouth_neighbors: int
    min_lower_face_width: int  # pixels the lower half-face is enlarged to before the mouth search
    name = "haar"

    @contextlib.contextmanager
    def session(self) -> Iterator[Detect]:
        face = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
        smile = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_smile.xml"))
        if face.empty() or smile.empty():
            raise FileNotFoundError(f"OpenCV Haar cascades not found in {cv2.data.haarcascades}")

        def detect(frame: np.ndarray) -> MouthBox | None:
            grey = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
            faces = face.detectMultiScale(grey, self.scale_factor, self.face_neighbors, minSize=(40, 40))
            if len(faces) == 0:
                return None
            x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
            # the smile cascade's window is 36 x 18: enlarge a small lower face so a mouth fits it
            zoom = max(1.0, self.min_lower_face_width / w)
            lower = cv2.resize(grey[y + h // 2:y + h, x:x + w], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
            mouths = smile.detectMultiScale(lower, self.scale_factor, self.mouth_neighbors,
                                            minSize=(int(zoom * w / 5), int(zoom * h / 10)))
            if len(mouths) == 0:
                return None
            # the candidate nearest the face's vertical axis, lowest first among ties
            mx, my, mw, mh = np.array(min(mouths, key=lambda m: (abs(m[0] + m[2] / 2 - zoom * w / 2), -m[1]))) / zoom
            return MouthBox(x + mx + mw / 2, y + h // 2 + my + mh / 2, self.margin * mw)

        yield detect


DETECTORS = {d.name: d for d in (PrecroppedDetector, MediapipeMouthDetector, HaarMouthDetector)}
