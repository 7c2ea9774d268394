"""One articulation per phone token, seen on the lips and heard in the formants.

Within a phone class, real tokens differ in how far the jaw opens, how much the lips round or spread,
and these differences are both visible and audible: a vocal tract with rounded, protruded lips is
longer, which lowers F2 and F3; a more open jaw raises F1 and the level. `token_articulation` draws
per-token deviations (in standard units) for the mouth (opening, width, rounding) and, `coupling`
correlated with them, for the sound; `reshape_formants` applies the sound's to the synthesised speech.

The formant change is LPC analysis-resynthesis, 10 ms at a time: the speech is inverse-filtered by
its own all-pole fit (order 18 at 16 kHz, 32 ms Hann window), and the residual refiltered by the same
fit with its formant poles' frequencies scaled (F1 band and F2-F3 band; radii, hence bandwidths,
kept). With every scale at 1 it gives back the input. A global formant warp (e.g. librosa's
`effects.pitch_shift` or a resampling) would move pitch and every formant alike; this moves only the
bands the articulation moves, and only within each token's span.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment

# per standard unit of deviation: opening raises F1 (and the level), rounding lowers F2/F3, spreading
# raises them; roughly the size of token-to-token variation within a vowel class in read speech
F1_PER_OPEN = 0.06
F23_PER_ROUND = -0.05
F23_PER_SPREAD = 0.03
DB_PER_OPEN = 1.5

ORDER = 18
WINDOW_S = 0.032
HOP_S = 0.010
F1_BAND = (200.0, 1000.0)
F23_BAND = (1000.0, 3600.0)
MIN_RADIUS = 0.8  # poles this close to the unit circle are formants; broader ones shape the tilt


def token_articulation(n_tokens: int, rng: np.random.Generator, coupling) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) deviations (open, width, round) for the mouth and (n, 3) for the sound, each standard normal;
    the sound's correlate with the mouth's by `coupling` (0: independent streams, 1: one articulation, -1: one
    articulation mirrored), one value or one per token."""
    c = np.asarray(coupling, np.float64)
    if np.any(np.abs(c) > 1.0) or (c.ndim == 0 and c < 0):
        raise ValueError(f"coupling must be in [0, 1] (per token: [-1, 1]), got {coupling}")
    seen = rng.standard_normal((n_tokens, 3))
    own = rng.standard_normal((n_tokens, 3))
    c = c[:, None] if c.ndim else c
    return seen, c * seen + np.sqrt(1.0 - c**2) * own


def reshape_formants(audio: np.ndarray, sample_rate: int, segments: Sequence[Segment], deviations: np.ndarray,
                     strength: float = 1.0) -> np.ndarray:
    """`audio` with each non-silence segment's formants and level moved by its (open, width, round)
    deviation x `strength` (F1 by F1_PER_OPEN per unit of opening, F2-F3 by F23_PER_ROUND per unit of
    rounding and F23_PER_SPREAD per unit of width, level by DB_PER_OPEN)."""
    x = np.asarray(audio, np.float64)
    hop = int(round(HOP_S * sample_rate))
    n_hops = int(np.ceil(len(x) / hop))
    centres = (np.arange(n_hops) + 0.5) * hop / sample_rate
    f1, f23, gain_db = np.ones(n_hops), np.ones(n_hops), np.zeros(n_hops)
    for seg, (d_open, d_width, d_round) in zip(segments, strength * np.asarray(deviations, np.float64)):
        if seg.label == SIL:
            continue
        inside = (centres >= seg.start) & (centres < seg.end)
        f1[inside] = 1.0 + F1_PER_OPEN * d_open
        f23[inside] = 1.0 + F23_PER_ROUND * d_round + F23_PER_SPREAD * d_width
        gain_db[inside] = DB_PER_OPEN * d_open
    smooth = np.ones(3) / 3  # no step at a token boundary
    f1, f23, gain_db = (np.convolve(np.pad(v, 1, mode="edge"), smooth, "valid") for v in (f1, f23, gain_db))
    analysis, synthesis = _filters(x, sample_rate, hop, f1, f23)
    y = _refilter(x, analysis, synthesis, hop)
    # moving poles changes the filter's gain: give each hop back its own energy, then the opening's level
    energy = lambda z: np.convolve(np.pad(z**2, (0, n_hops * hop - len(z))).reshape(n_hops, hop).sum(axis=1),
                                   np.ones(5), "same")  # noqa: E731
    restore = np.sqrt((energy(x) + 1e-12) / (energy(y) + 1e-12))
    gain = np.interp(np.arange(len(x)), (np.arange(n_hops) + 0.5) * hop, restore * 10 ** (gain_db / 20))
    return (y * gain).astype(np.float32)


def _filters(x: np.ndarray, sample_rate: int, hop: int, f1: np.ndarray, f23: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per hop: the LPC fit around it (analysis) and the fit with its formants moved (synthesis)."""
    import librosa

    n_hops, half = len(f1), int(WINDOW_S * sample_rate) // 2
    window = np.hanning(2 * half)
    padded = np.pad(x, (half, half + hop))
    analysis = np.zeros((n_hops, ORDER + 1))
    analysis[:, 0] = 1.0
    synthesis = analysis.copy()
    for h in range(n_hops):
        centre = h * hop + hop // 2 + half
        frame = padded[centre - half:centre + half] * window
        if np.sum(frame**2) < 1e-10:
            continue  # silence: nothing to fit
        a = librosa.lpc(frame, order=ORDER)
        if not np.all(np.isfinite(a)):
            continue
        analysis[h] = synthesis[h] = a
        if f1[h] == 1.0 and f23[h] == 1.0:
            continue
        roots = np.roots(a)
        freq = np.angle(roots) * sample_rate / (2 * np.pi)
        formant = (np.abs(roots) >= MIN_RADIUS) & (np.abs(roots.imag) > 1e-9)
        scale = np.ones(len(roots))
        scale[formant & (np.abs(freq) >= F1_BAND[0]) & (np.abs(freq) < F1_BAND[1])] = f1[h]
        scale[formant & (np.abs(freq) >= F23_BAND[0]) & (np.abs(freq) < F23_BAND[1])] = f23[h]
        angle = np.clip(np.angle(roots) * scale, -np.pi + 1e-3, np.pi - 1e-3)  # conjugates stay conjugate
        synthesis[h] = np.real(np.poly(np.abs(roots) * np.exp(1j * angle)))
    return analysis, synthesis


@njit(cache=True)
def _refilter(x, analysis, synthesis, hop):  # pragma: no cover - compiled
    """Inverse-filter x by each hop's analysis polynomial and filter the residual by its synthesis one
    (direct form, the past samples carried across hops): y == x where the two are equal."""
    n, order = len(x), analysis.shape[1] - 1
    y = np.zeros(n)
    for i in range(n):
        h = min(i // hop, analysis.shape[0] - 1)
        residual = x[i]
        for k in range(1, min(order, i) + 1):
            residual += analysis[h, k] * x[i - k]
        value = residual
        for k in range(1, min(order, i) + 1):
            value -= synthesis[h, k] * y[i - k]
        y[i] = value
    return y
