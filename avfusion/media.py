"""Decoding recordings: audio samples and video frames, below both the corpus and the front-ends.

Audio files go through libsndfile (wav, flac, NIST SPHERE, ...); the audio track of a video container
(GRID .mpg, LRS3 .mp4) through FFmpeg's libraries (PyAV). Video frames through OpenCV. Every error
names the file.
"""

from __future__ import annotations

import contextlib
import itertools
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


AUDIO_BLOCK = 1 << 16  # samples decoded at a time


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform at `sample_rate` (other rates resampled with soxr, channels averaged)."""
    return np.concatenate(list(iter_audio(path, sample_rate)))


def decode_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float32 samples at the file's own rate, and the rate."""
    rate, blocks = _decoded(Path(path))
    return np.concatenate(list(_checked(Path(path), blocks))), rate


def iter_audio(path: str | os.PathLike, sample_rate: int, block: int = AUDIO_BLOCK) -> Iterator[np.ndarray]:
    """The waveform of `load_audio` a block of about `block` samples at a time (soxr's streaming resampler
    gives the samples of its one-shot call), so a long recording never sits in memory whole. An error
    (no samples, non-finite ones) comes when the stream ends."""
    import soxr

    path = Path(path)
    rate, blocks = _decoded(path, block)
    blocks = _checked(path, blocks)
    if rate == sample_rate:
        yield from blocks
        return
    resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32")
    for x in blocks:
        yield resampler.resample_chunk(x)
    yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)


def _checked(path: Path, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    n = bad = 0
    for x in blocks:
        n += x.size
        bad += int(np.count_nonzero(~np.isfinite(x)))
        yield x
    if n == 0:
        raise AudioError(f"{path}: audio has no samples")
    if bad:
        raise AudioError(f"{path}: {bad} of {n} audio samples are not finite (NaN or inf)")


def _decoded(path: Path, block: int = AUDIO_BLOCK) -> tuple[int, Iterator[np.ndarray]]:
    """The file's sample rate and its mono float32 samples in blocks."""
    container = path.suffix.lower() in CONTAINER_SUFFIXES
    return (_container_rate if container else _file_rate)(path), \
        (_container_blocks if container else _file_blocks)(path, block)


def _file_rate(path: Path) -> int:
    import soundfile

    try:
        return int(soundfile.info(str(path)).samplerate)
    except Exception as err:  # libsndfile's errors name no file
        raise AudioError(f"{path}: cannot decode audio ({err})") from None


def _file_blocks(path: Path, block: int) -> Iterator[np.ndarray]:
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as f:
            for x in f.blocks(block, dtype="float32", always_2d=True):
                yield x.mean(axis=1)
    except Exception as err:
        raise AudioError(f"{path}: cannot decode audio ({err})") from None


def _container_rate(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: the container has no audio stream")
            return int(container.streams.audio[0].codec_context.sample_rate)
    except AudioError:
        raise
    except Exception as err:  # FFmpeg errors name no file
        raise AudioError(f"{path}: cannot decode the audio track ({err})") from None


def _container_blocks(path: Path, block: int) -> Iterator[np.ndarray]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=stream.codec_context.sample_rate)
            pending, size = [], 0
            for frame in itertools.chain(container.decode(stream), [None]):  # None flushes the resampler
                for r in to_mono.resample(frame):
                    pending.append(r.to_ndarray().reshape(-1))
                    size += pending[-1].size
                if size >= block or (frame is None and pending):
                    yield np.concatenate(pending)
                    pending, size = [], 0
    except Exception as err:
        raise AudioError(f"{path}: cannot decode the audio track ({err})") from None


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


def mux_audio(video: str | os.PathLike, wav: str | os.PathLike, out: str | os.PathLike) -> Path:
    """`video`'s stream copied into `out` with `wav` as its 16-bit PCM audio track: one container holding both,
    as a user's recording does (the synthetic corpus keeps them apart)."""
    import av
    import soundfile as sf

    samples, rate = sf.read(wav, dtype="int16")
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("pcm_s16le", rate=rate, layout="mono")
        for packet in src.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                dst.mux(packet)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*aout.encode(frame), *aout.encode(None)]:
            dst.mux(packet)
    return Path(out)
