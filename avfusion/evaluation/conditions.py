"""An evaluated split's frames, clean and in each condition, kept beside the prepared frames.

Each condition's features (noisy audio, degraded video) are computed once per sweep and kept in
`<frames>/conditions/` under a key of the condition and the utterances, so the runs of a sweep score the same
arrays. With `frontend.fit_batch_utterances` set (a corpus too large for memory) they are built that many
utterances at a time and written a batch after another into their file, and the evaluated split's clean frames
too (`<frames>/evaluated/<key>/`, float32 as in memory): evaluation then reads every split memory-mapped and its
memory no longer grows with the split's features. The arrays are the same either way (each utterance is
transformed on its own)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.errors import ConfigError
from avfusion.frames.data import FrameData, frames_of, with_audio, with_video
from avfusion.frames.labelling import FrameLabeller
from avfusion.frames.writer import save_in_batches
from avfusion.noise import NoiseCondition, NoiseMixer
from avfusion.noise.video import DegradedVideo
from avfusion.utils.atomic import STALE_AFTER_S, atomic_path, write_text_atomic

log = logging.getLogger(__name__)

# part(rows): the arrays by name of utterances[rows], rows of every utterance one after another
Part = Callable[[slice], dict[str, np.ndarray]]


def key_of(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def batch_utterances(frontend) -> int | None:
    """How many utterances a front-end builds at a time (`frontend.fit_batch_utterances`; None: all at once)."""
    return getattr(frontend, "fit_batch_utterances", None)


def kept_arrays(paths: dict[str, Path], offsets: dict[str, np.ndarray], part: Part, batch: int | None = None
                ) -> dict[str, np.ndarray]:
    """Arrays by name, read (memory-mapped) from their files `paths` when every one is there with its rows (utterance
    u's are offsets[name][u]:offsets[name][u + 1]), else computed by `part` and written, each atomically: whole in
    memory (`batch` None), or `batch` utterances at a time appended to the file and then read memory-mapped."""
    rows = {name: int(o[-1]) for name, o in offsets.items()}
    if all(path.is_file() for path in paths.values()):
        try:
            arrays = {name: np.load(path, mmap_mode="r") for name, path in paths.items()}
            for name, a in arrays.items():
                if a.shape[0] != rows[name]:
                    raise ValueError(f"{paths[name]}: {a.shape[0]} rows for {rows[name]}")
            return arrays
        except (ValueError, OSError) as e:  # written atomically, so only a foreign or damaged file lands here
            log.warning("unreadable condition features (%s); computing the condition again", e)
    n = len(next(iter(offsets.values()))) - 1
    if not batch:
        arrays = part(slice(0, n))
        for name, path in paths.items():
            with atomic_path(path) as tmp:
                np.save(tmp, arrays[name])
        return arrays
    with contextlib.ExitStack() as files:  # each file closed, then renamed into place, only when all are written
        out, dtypes = {}, {}
        for first in range(0, n, batch):
            utterances = slice(first, min(first + batch, n))
            for name, a in part(utterances).items():
                if name not in out:  # np.save's header, for the whole array's shape
                    tmp = files.enter_context(atomic_path(paths[name]))
                    out[name] = files.enter_context(open(tmp, "wb"))
                    np.lib.format.write_array_header_1_0(out[name], {
                        "descr": np.lib.format.dtype_to_descr(a.dtype), "fortran_order": False,
                        "shape": (rows[name], *a.shape[1:])})
                expected = int(offsets[name][utterances.stop] - offsets[name][utterances.start])
                if len(a) != expected or a.dtype != dtypes.setdefault(name, a.dtype):
                    raise ValueError(f"{paths[name].name}: {len(a)} rows of {a.dtype} for utterances {first}-"
                                     f"{utterances.stop} where the header says {expected} of {dtypes[name]}")
                np.ascontiguousarray(a).tofile(out[name])
            log.debug("%s: utterances %d-%d of %d written", next(iter(paths.values())).stem, first, utterances.stop, n)
    return {name: np.load(path, mmap_mode="r") for name, path in paths.items()}


def on_disk(array: np.ndarray, folder: Path) -> np.ndarray:
    """`array` copied into an unnamed file in `folder` and read memory-mapped (its pages the kernel's to drop;
    the file goes when the last map of it does)."""
    if array.size == 0:  # nothing to map
        return array
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder) as f:  # the map holds its own descriptor
        out = np.memmap(f, dtype=array.dtype, mode="w+", shape=array.shape)
    out[:] = array
    return out


def evaluated_frames(frontend, utterances: list[Utterance], labeller: FrameLabeller, cache_dir: Path | None
                     ) -> FrameData:
    """The clean frames of an evaluated split: built in memory, or with `frontend.fit_batch_utterances` and a
    `cache_dir` (the prepared frames' folder) built that many utterances at a time into
    `cache_dir/evaluated/<key>/` once and read memory-mapped, the same values (float32, whatever
    `frontend.store_dtype`)."""
    batch = batch_utterances(frontend)
    if cache_dir is None or not batch or not utterances:
        return frames_of(frontend, utterances, labeller)
    directory = Path(cache_dir) / "evaluated" / key_of({"utterances": [u.id for u in utterances],
                                                       "labels": labeller.scheme.name})
    if not (directory / "complete").is_file():
        # built in a folder of this process's own, then renamed into place: a killed build leaves no half folder
        # under the key, and runs evaluating at once do not write into each other's
        log.info("building the frames of %d evaluated utterances, %d at a time, in %s", len(utterances), batch,
                 directory)
        for stale in directory.parent.glob(f".{directory.name}.*.tmp*"):  # builds killed long ago
            if time.time() - stale.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(stale, ignore_errors=True)
        building = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
        save_in_batches(frontend, utterances, labeller, building, None, batch)
        write_text_atomic(building / "complete", "")
        if directory.is_dir() and not (directory / "complete").is_file():  # unfinished, from an older layout
            shutil.rmtree(directory)
        try:
            os.replace(building, directory)
        except OSError:  # another run put the same frames there first
            shutil.rmtree(building, ignore_errors=True)
    return FrameData.load(directory)


def noisy_frames(frontend, clean: FrameData, utterances: list[Utterance], condition: NoiseCondition,
                 noise: NoiseMixer, cache_dir: Path | None) -> FrameData:
    """`clean` with the audio features of `condition`. Kept in `cache_dir/conditions/` (the prepared frames'
    folder, whose name keys the fitted front-end and the corpus's files) under a key of the condition, the
    noise settings and the utterances, so the runs and combinations of a sweep mix and extract each
    condition once: the features are the same arrays, so the numbers do not move. `clean` may carry
    degraded video (a paired condition): only the audio is replaced."""
    names = [m for m in frontend.computed_from("audio") if m in clean.features]  # the audio and its measures

    def part(rows: slice) -> dict[str, np.ndarray]:
        noisy = with_audio(frontend, clean.utterances_between(rows.start, rows.stop), utterances[rows],
                           lambda u, w: noise(u, w, condition))
        return {m: noisy.features[m] for m in names}

    offsets = {m: clean.offsets for m in names}
    if cache_dir is None:
        arrays = part(slice(0, len(utterances)))
    else:
        draw = {"draw": condition.draw} if condition.draw else {}  # draw 0 keeps the key it always had
        key = key_of({"condition": [condition.kind, condition.snr_db], "noise": noise.identity(condition.kind),
                      "utterances": list(clean.ids), **draw})
        stem = f"{condition.kind}-{condition.snr_db:g}dB{f'-d{condition.draw}' if draw else ''}-{key}"
        paths = {m: cache_dir / "conditions" / (f"{stem}.npy" if m == "audio" else f"{stem}-{m}.npy") for m in names}
        arrays = kept_arrays(paths, offsets, part, batch_utterances(frontend))
    return dataclasses.replace(clean, features={**clean.features, **arrays})


def degraded_frames(frontend, clean: FrameData, utterances: list[Utterance], video: DegradedVideo,
                    cache_dir: Path | None) -> FrameData:
    """`clean` with what the front-end cuts from the video (the video features, the mouth-pixel streams)
    recomputed from frames degraded by `video`; kept in `cache_dir/conditions/` as `noisy_frames` keeps audio."""
    features = [m for m in (frontend.computed_from("video") if frontend.video is not None else []) if m in clean.features]
    if not features and not clean.streams:
        raise ConfigError(f"evaluation.video_degradations: {video.name!r} degrades the video, but the front-end "
                          "reads none (frontend=audio_only?)")

    def part(rows: slice) -> dict[str, np.ndarray]:
        data = with_video(frontend, clean.utterances_between(rows.start, rows.stop), utterances[rows], video)
        return {m: data.features[m] if m in features else data.streams[m].frames for m in offsets}

    offsets = {**{m: clean.offsets for m in features}, **{m: s.offsets for m, s in clean.streams.items()}}
    if cache_dir is None:
        arrays = part(slice(0, len(utterances)))
    else:
        key = key_of({"video": video.identity(), "utterances": list(clean.ids)})
        paths = {m: cache_dir / "conditions" / f"{video.name}-{video.severity:g}-{m}-{key}.npy" for m in offsets}
        arrays = kept_arrays(paths, offsets, part, batch_utterances(frontend))
    streams = {m: dataclasses.replace(s, frames=arrays[m]) for m, s in clean.streams.items()}
    return dataclasses.replace(clean, features={**clean.features, **{m: arrays[m] for m in features}}, streams=streams)
