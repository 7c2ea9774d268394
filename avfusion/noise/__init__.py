"""Additive noise for evaluation conditions and multi-condition training, below both.

A noise kind is a `NoiseSource` (one class, one `conf/noise/<name>.yaml`): it draws n samples of noise
for an utterance from a random generator it is handed. `NoiseMixer` owns the rest, the same for every
kind: the generator seeded per (seed, kind name, utterance id), the active-speech level and the scaling
to an SNR. A source's identity (its class and settings, and the files it reads by their stamps) keys the
cached noisy features, so a changed source can never be served stale audio.
"""

from avfusion.noise.babble import Babble, babble_pool
from avfusion.noise.conditions import NoiseCondition, conditions
from avfusion.noise.level import active_samples, mix_at_snr, p56_active
from avfusion.noise.mixer import NoiseMixer, check_sources
from avfusion.noise.music import Music
from avfusion.noise.recordings import Recordings
from avfusion.noise.source import NoiseSource
from avfusion.noise.stationary import PinkNoise, WhiteNoise, pink_noise

__all__ = ["Babble", "Music", "NoiseCondition", "NoiseMixer", "NoiseSource", "PinkNoise", "Recordings", "WhiteNoise",
           "active_samples", "babble_pool", "check_sources", "conditions", "mix_at_snr", "p56_active", "pink_noise"]
