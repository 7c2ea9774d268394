"""Whether a clip's audio belongs to its video: how well the run's two pre-trained streams agree on it.

A fusion run pre-trains its audio and its video encoder alone, each with a softmax of its own
(`stages/pretrain_audio`, `stages/pretrain_video`). Folded to visemes (what lips can show), the two
streams' posteriors agree frame by frame on a clip whose audio is its own; on a clip with another
recording's audio they agree only as much as their averages do. The score of a clip is

    mean over frames t of  log sum_v a_t(v) w_t(v)  -  log sum_v a_t(v) w(v)

with a_t and w_t the audio's and the video's viseme posteriors of frame t and w the clip's mean video
posterior: the log-ratio of the streams' agreement to what the video's average alone gives (0: no
better than chance). On the run's clean dev utterances, scored as they are (matched) and each with the
audio of another dev utterance (mismatched), the threshold is where the two error rates are equal; it is
saved with the run (run.json `dev_statistics["av_agreement"]`) and `avfusion-predict` warns below it.
The default study's concat: dev matched median 0.32, mismatched -0.76, threshold -0.17 (1.25% of the 80
dev utterances on the wrong side, either way); 10 test clips: none warned with their own audio, 9 with
another speaker's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from avfusion.corpus.labels import LabelScheme
from avfusion.frames.data import FrameData
from avfusion.inference.posteriors import posterior_blocks
from avfusion.runs import STREAMS, pretrained_streams

FLOOR = 1e-6  # keeps the log finite where a stream is certain of a viseme the other rules out
MISMATCH_SHIFT = 7  # dev utterance u is paired with the audio of utterance u + 7 (another, usually another speaker)
_LOADED: dict[tuple, dict | None] = {}  # the last run's stream models: a list of clips loads them once


def run_streams(run) -> dict | None:
    """The audio and video pre-training stages' models of a loaded run (`avfusion.runs.pretrained_streams`)."""
    meta_path = Path(run.directory) / "run.json"
    key = (str(run.directory), meta_path.stat().st_mtime_ns)
    if key not in _LOADED:
        _LOADED.clear()
        input_dims = json.loads(meta_path.read_text())["input_dims"]
        _LOADED[key] = pretrained_streams(run.directory, run.config, input_dims, run.scheme)
    return _LOADED[key]


def agreement(audio: np.ndarray, video: np.ndarray, scheme: LabelScheme) -> float:
    """The score of the module's note from the two streams' (T, C) class posteriors of one clip."""
    fold = np.eye(int(scheme.groups["viseme"].max()) + 1)[scheme.groups["viseme"]]  # (C, V): classes to visemes
    a, w = np.asarray(audio, np.float64) @ fold, np.asarray(video, np.float64) @ fold
    return float(np.mean(np.log((a * w).sum(axis=1) + FLOOR) - np.log(a @ w.mean(axis=0) + FLOOR)))


def agreement_statistics(models: dict | None, dev: FrameData, scheme: LabelScheme) -> dict | None:
    """The dev utterances' scores, matched and mismatched, and the threshold between them (module's note)."""
    if models is None or len(dev.ids) < 2:
        return None
    post = {s: models[s].posteriors(dev) for s in STREAMS}
    spans = [(int(a), int(b)) for a, b in zip(dev.offsets[:-1], dev.offsets[1:])]
    matched = np.array([agreement(post["audio"][a:b], post["video"][a:b], scheme) for a, b in spans])
    mismatched = []
    for u, (a, b) in enumerate(spans):
        c, d = spans[(u + MISMATCH_SHIFT) % len(spans) if len(spans) > MISMATCH_SHIFT else (u + 1) % len(spans)]
        n = min(b - a, d - c)
        mismatched.append(agreement(post["audio"][c:c + n], post["video"][a:a + n], scheme))
    mismatched = np.array(mismatched)
    candidates = np.sort(np.concatenate([matched, mismatched]))
    # equal error rate: matched scored below the threshold (false alarms) = mismatched at or above it (misses)
    gaps = [abs(np.mean(matched < t) - np.mean(mismatched >= t)) for t in candidates]
    threshold = float(candidates[int(np.argmin(gaps))])
    return {"utterances": len(spans), "threshold": round(threshold, 4),
            "matched_median": round(float(np.median(matched)), 4),
            "mismatched_median": round(float(np.median(mismatched)), 4),
            "false_alarms": round(float(np.mean(matched < threshold)), 4),
            "misses": round(float(np.mean(mismatched >= threshold)), 4)}


def clip_agreement(run, raw: dict, streams: dict, n_frames: int, chunk_seconds: float | None) -> float | None:
    """The score of one recording (its raw features at 100 frames/s, as `posterior_blocks` reads them), or
    None for a run without the two pre-trained streams or whose video stream is read at its own rate."""
    models = run_streams(run)
    if models is None or any(m not in raw for model in models.values() for m in model.modalities):
        return None
    post = {stream: np.concatenate(list(posterior_blocks(dataclasses.replace(run, model=model),
                                                         {m: raw[m] for m in model.modalities}, chunk_seconds,
                                                         streams=streams, n_frames=n_frames)))
            for stream, model in models.items()}
    return agreement(post["audio"], post["video"], run.scheme)


def av_mismatch(score: float | None, statistics: dict | None, clip: str) -> list[str]:
    """A warning when the clip's audio and video agree less than the run's threshold; none without both."""
    dev = (statistics or {}).get("av_agreement")
    if score is None or not dev or score >= dev["threshold"]:
        return []
    return [f"{clip}: its audio and video agree less than the run's own dev utterances do (viseme agreement "
            f"{score:.2f}; dev median {dev['matched_median']:.2f}, with another utterance's audio "
            f"{dev['mismatched_median']:.2f}, threshold {dev['threshold']:.2f}): is the audio this video's, and in "
            "sync? (a dubbed, swapped or shifted track)"]
