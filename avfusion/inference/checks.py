"""Warnings on a prediction that is probably wrong, from the clip alone (no reference needed): speech the
decoding left out, units decoded where the audio has no speech, and a whole face frame taken as the mouth.

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
