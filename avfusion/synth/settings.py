"""The embedded corpus's settings in three groups (`conf/data/synthetic.yaml`: `audio`, `video`,
`realism`), each checked when it is built; the speech backend and the video renderer are chosen apart
(`data/tts`, `data/renderer`)."""

from __future__ import annotations

from dataclasses import dataclass

from avfusion.corpus.phones import PHONES, SIL
from avfusion.errors import ConfigError
from avfusion.utils.rules import check_fields, integer, number


def _interval(owner: object, key: str) -> tuple[float, float]:
    low, high = getattr(owner, key.rsplit(".", 1)[-1])
    if low > high:
        raise ConfigError(f"{key}=[{low}, {high}]: give [low, high] with low <= high")
    return low, high


@dataclass
class AudioSettings:
    """How the speech is recorded."""

    sample_rate: int
    room_snr_db: float  # microphone/room noise floor of the "clean" recordings
    pad_range_s: tuple[float, float]  # silence before and after the speech

    def __post_init__(self) -> None:
        check_fields(self, "data.audio", {"sample_rate": integer(8000), "room_snr_db": number()})
        self.pad_range_s = _interval(self, "data.audio.pad_range_s")


@dataclass
class VideoSettings:
    """How the mouth is filmed."""

    roi_size: int
    fps: float
    motion: float  # head/ROI motion, fraction of the ROI
    lighting: float  # slow lighting drift amplitude
    noise_std: float  # sensor noise, grey levels

    def __post_init__(self) -> None:
        check_fields(self, "data.video", {"roi_size": integer(16), "fps": number(above=0), "motion": number(0),
                                          "lighting": number(0), "noise_std": number(0)})


@dataclass
class RealismSettings:
    """What ties the lips to the sound, and what spoils the video (measured in experiments/corpus_realism)."""

    av_lead_ms: tuple[float, float]  # per speaker: the lips ahead of the sound (negative: behind)
    av_jitter_ms: float  # per boundary, s.d. of the lips' timing around that lead
    onset_lead_ms: tuple[float, float]  # at an utterance onset the lips part this much before voicing
    coupling: float  # correlation of a token's articulation seen on the lips and heard (0: independent)
    articulation_sd: float  # per token, s.d. of the lips' opening, width and rounding around the target
    formant_sd: float  # per token, s.d. of the matching formant and level change (vocal_tract units; 0: none)
    nuisance_share: float  # utterances whose video has a transient occlusion, motion blur or dropped frames
    # the positive control (`avfusion.synth.interaction`; off: []): phone pairs [P, Q] told apart only by the sign
    # of their tokens' audio-visual coupling, their deviations `interaction_sd` times the usual
    interaction_pairs: list
    interaction_sd: float

    def __post_init__(self) -> None:
        check_fields(self, "data.realism", {"av_jitter_ms": number(0), "coupling": number(0, high=1),
                                            "articulation_sd": number(0), "formant_sd": number(0),
                                            "nuisance_share": number(0, high=1), "interaction_sd": number(0)})
        self.av_lead_ms = _interval(self, "data.realism.av_lead_ms")
        self.onset_lead_ms = _interval(self, "data.realism.onset_lead_ms")
        self.interaction_pairs = _phone_pairs(self.interaction_pairs or [], "data.realism.interaction_pairs")


def _phone_pairs(pairs, key: str) -> list[list[str]]:
    """Pairs of two different phones of the 39-phone set, no phone in two pairs."""
    phones = [p for p in PHONES if p != SIL]
    seen: set[str] = set()
    for pair in pairs:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(p in phones for p in pair) and pair[0] != pair[1]
        if not ok or seen & set(pair):
            raise ConfigError(f"{key}: {list(pair) if isinstance(pair, (list, tuple)) else pair!r} is not a pair of two "
                              f"phones of the 39-phone set, each in one pair only (e.g. [[ih,eh],[ah,ae]]; the phones: "
                              f"{' '.join(phones)})")
        seen |= set(pair)
    return [list(p) for p in pairs]
