"""Warnings on a prediction that is probably wrong, from the clip alone (no reference needed): speech the
decoding left out, units decoded where the audio has no speech, a whole face frame taken as the mouth, and
posteriors far less certain than the run's were on its own dev utterances (out of its domain).

Voice activity here is the audio's 10-ms frame level against the clip's own loud frames: a frame is active
when its level is within `RANGE_DB` of the 95th percentile and `FLOOR_DB` above the quietest tenth (so a
clip with a steady noise floor does not count the floor as speech). It is computed a block at a time, so a
long recording costs one pass over its samples.
"""

from __future__ import annotations

import numpy as np

from avfusion.corpus.phones import SIL

FRAME_S = 0.01
RANGE_DB = 30.0  # active: within this of the clip's loud frames (95th percentile) ...
FLOOR_DB = 6.0  # ... and this far above its quietest tenth
# far below what speech carries (about 12 phones or 3 words a second): fewer decoded means the model missed it
MIN_RATE = {"phones": 2.0, "words": 0.4}
MIN_SPEECH_S = 1.0  # less speech than this is too little to judge the decoding by
MAX_DECODED_IN_SILENCE = 0.25  # share of the decoded units' time where voice activity finds no speech
# a "mouth" this large is a face or scene frame: mouth crops are about 50-130 px (the default corpus 96, LRW 88-96),
# face videos larger (the synthetic face renderer 176x144, GRID 360x288)
FACE_FRAME_PX = 140


def voice_activity(waveform: np.ndarray, sample_rate: int, block_frames: int = 60000) -> np.ndarray:
    """(T,) bool per 10-ms frame of `waveform`: whether it holds speech (see the module's note)."""
    hop = int(round(FRAME_S * sample_rate))
    n = len(waveform) // hop
    levels = np.empty(n)
    for start in range(0, n, block_frames):  # a memory-mapped recording is read a block at a time
        stop = min(n, start + block_frames)
        x = np.asarray(waveform[start * hop:stop * hop], np.float64).reshape(stop - start, hop)
        levels[start:stop] = 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)
    if n == 0:
        return np.zeros(0, bool)
    loud, quiet = np.percentile(levels, 95), np.percentile(levels, 10)
    return (levels >= loud - RANGE_DB) & (levels >= quiet + FLOOR_DB)


def degenerate_output(prediction, clip: str) -> list[str]:
    """What looks wrong with this prediction, one sentence each naming `clip` and what to check; empty when
    nothing does (or the clip has no audio to judge it by)."""
    media = prediction.media
    found = []
    if media is not None and media.detector == "precropped" and (media.mouth_box_px or 0) >= FACE_FRAME_PX:
        found.append(f"{clip}: the whole frame ({media.mouth_box_px:.0f} px square) is taken as the mouth (the run's "
                     "detector is precropped: it was trained on mouth crops): for a face video give "
                     "detector=mediapipe (or haar)")
    if media is None or media.waveform is None:
        return found
    active = voice_activity(media.waveform, media.sample_rate)
    speech_s = active.sum() * FRAME_S
    spoken = [u for u in prediction.units if u.label != SIL]
    kind = prediction.unit_kind
    if speech_s >= MIN_SPEECH_S and len(spoken) < MIN_RATE.get(kind, 2.0) * speech_s:
        found.append(f"{clip}: {speech_s:.1f} s of speech (voice activity) but {len(spoken)} {kind} decoded: the model "
                     "probably does not fit this recording (its language, channel or speakers); check the audio "
                     "and the posteriors in the figure")
    decoded_s = sum(u.end - u.start for u in spoken)
    if decoded_s >= MIN_SPEECH_S / 2 and len(active):
        frames = np.concatenate([np.arange(int(u.start / FRAME_S), int(u.end / FRAME_S)) for u in spoken])
        silent = float(np.mean(~active[np.clip(frames, 0, len(active) - 1)]))
        if silent > MAX_DECODED_IN_SILENCE:
            found.append(f"{clip}: {silent:.0%} of the decoded {kind}' time is where voice activity finds no speech: "
                         "is the audio this video's, and in sync? (noise, music or silence decoded as speech)")
    return found


def _entropy_and_confidence(posteriors: np.ndarray, offsets, block: int = 20000) -> np.ndarray:
    """(U, 2): per utterance of `posteriors` (rows offsets[u]:offsets[u + 1]), the mean frame entropy (nats)
    and the mean top posterior; read a block of rows at a time (a long clip's are a memory map)."""
    frame = np.empty((len(posteriors), 2))
    for start in range(0, len(posteriors), block):
        p = np.clip(np.asarray(posteriors[start:start + block], np.float64), 1e-12, 1.0)
        frame[start:start + len(p)] = np.stack([-(p * np.log(p)).sum(axis=1), p.max(axis=1)], axis=1)
    return np.array([frame[a:b].mean(axis=0) for a, b in zip(offsets[:-1], offsets[1:]) if b > a])


def posterior_statistics(posteriors: np.ndarray, offsets: np.ndarray) -> dict:
    """What a run's posteriors looked like on its clean dev utterances, saved with the run (run.json): the
    1st, 50th and 99th percentiles over utterances of their mean frame entropy and mean top posterior."""
    per_utterance = _entropy_and_confidence(posteriors, offsets)
    quantiles = np.percentile(per_utterance, [1, 50, 99], axis=0)
    return {"utterances": len(per_utterance), "entropy": [round(float(v), 4) for v in quantiles[:, 0]],
            "confidence": [round(float(v), 4) for v in quantiles[:, 1]]}


def out_of_domain(prediction, statistics: dict | None, clip: str) -> list[str]:
    """A warning when the clip's posteriors are less certain than all but 1% of the run's dev utterances' (mean
    entropy above their 99th percentile, or mean top posterior below their 1st); none without the statistics."""
    if not statistics or "entropy" not in statistics or not len(prediction.posteriors):
        return []
    entropy, confidence = _entropy_and_confidence(prediction.posteriors, [0, len(prediction.posteriors)])[0]
    (_, e_mid, e_high), (c_low, c_mid, _) = statistics["entropy"], statistics["confidence"]
    if entropy > e_high or confidence < c_low:
        return [f"{clip}: its posteriors are far less certain than on the run's dev utterances (mean entropy "
                f"{entropy:.2f} nats, top posterior {confidence:.2f}; dev median {e_mid:.2f} / {c_mid:.2f}, 99th/1st "
                f"percentile {e_high:.2f} / {c_low:.2f} over {statistics['utterances']} utterances): the clip is "
                "probably outside what the model was trained on (speakers, channel, language, lighting); read its "
                "decoding with care"]
    return []
