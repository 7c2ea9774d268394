"""Decoding recordings: audio samples and video frames, below both the corpus and the front-ends.

Audio files go through libsndfile (wav, flac, NIST SPHERE, ...); the audio track of a video container
(GRID .mpg, LRS3 .mp4) through FFmpeg's libraries (PyAV). Video frames through OpenCV. Every error
names the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# FFmpeg inside OpenCV prints its own lines ("moov atom not found") before our error names the file: quiet it
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from avfusion.errors import UserError


class AudioError(UserError):
    pass


class VideoError(UserError):
    pass


CONTAINER_SUFFIXES = {".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".webm", ".m4a", ".aac"}


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform at `sample_rate` (other rates resampled with soxr, channels averaged)."""
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
    bad = int(np.count_nonzero(~np.isfinite(audio)))
    if bad:
        raise AudioError(f"{path}: {bad} of {audio.size} audio samples are not finite (NaN or inf)")
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
class VideoProbe:
    """What a video container says and what decodes from it."""

    decoded: int  # frames that decode
    fps: float
    announced: int  # the container's frame count (MPEG program streams only estimate it)


@contextlib.contextmanager
def _opened_video(path: str | os.PathLike) -> Iterator[tuple[cv2.VideoCapture, float]]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoError(f"{path}: cannot open video (unreadable or truncated container)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps or fps <= 0 or not np.isfinite(fps):
            raise VideoError(f"{path}: the container gives no frame rate")
        yield cap, float(fps)
    finally:
        cap.release()


def video_rate(path: str | os.PathLike) -> float:
    with _opened_video(path) as (_, fps):
        return fps


def iter_video(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames (H, W, 3) BGR uint8 one at a time, so a long video never sits in memory whole."""
    with _opened_video(path) as (cap, _):
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            yield frame
    if n == 0:
        raise VideoError(f"{path}: no frame could be decoded")


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """All frames (T, H, W, 3) BGR uint8 and the frame rate."""
    return np.stack(list(iter_video(path))), video_rate(path)


def probe_video(path: str | os.PathLike) -> VideoProbe:
    """Frame count (by decoding, without converting frames), frame rate and the announced count."""
    with _opened_video(path) as (cap, fps):
        announced = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        decoded = 0
        while cap.grab():
            decoded += 1
    if decoded == 0:
        raise VideoError(f"{path}: no frame could be decoded")
    return VideoProbe(decoded, fps, announced)
