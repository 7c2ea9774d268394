"""Rendering of the mouth region from articulator parameters.

A frame is drawn on a square canvas: skin, the outer lip contour, and inside the aperture the dark
oral cavity with upper and lower teeth and the tongue, each shown to the degree the parameters say.
Sub-pixel, anti-aliased polygons keep small movements visible. Lighting drift, head motion and
sensor noise are applied per sequence in `render_sequence`.
"""

from __future__ import annotations

import cv2
import numpy as np

from avfusion.synth.speakers import MouthAppearance

_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
_N_POINTS = 48
_CAVITY_BGR = (25.0, 22.0, 55.0)
_TONGUE_BGR = (110.0, 105.0, 200.0)


def _arc(half_width: float, height: float, n: int, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """x from -w to w and a super-elliptic profile height * (1 - |x/w|^e)^(1/e)."""
    x = np.linspace(-half_width, half_width, n)
    u = np.clip(np.abs(x) / max(half_width, 1e-6), 0.0, 1.0)
    return x, height * (1.0 - u**exponent) ** (1.0 / exponent)


def _fill(img: np.ndarray, pts: np.ndarray, colour) -> None:
    fixed = np.round(pts * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(img, [fixed], colour, lineType=cv2.LINE_AA, shift=_SHIFT)


def _closed_contour(cx, cy, half_width, up, down, exponent) -> np.ndarray:
    x, top = _arc(half_width, up, _N_POINTS, exponent)
    _, bottom = _arc(half_width, down, _N_POINTS, exponent)
    upper = np.stack([cx + x, cy - top], axis=1)
    lower = np.stack([cx + x[::-1], cy + bottom[::-1]], axis=1)
    return np.concatenate([upper, lower])


def render_mouth(params: np.ndarray, look: MouthAppearance, size: int, centre: tuple[float, float],
                 skin: np.ndarray | None = None) -> np.ndarray:
    """One BGR float32 frame of `size` x `size`; params = (open, width, round, teeth, tongue) in [0, 1]."""
    opening, width, rounding, teeth, tongue = (float(p) for p in np.clip(params, 0.0, 1.0))
    opening *= look.extent
    s = size * look.scale
    cx, cy = centre
    img = np.empty((size, size, 3), np.float32)
    img[:] = look.skin_bgr if skin is None else skin

    half_w = s * 0.34 * (0.82 + 0.35 * (width - 0.5)) * (1.0 - 0.32 * rounding)
    aperture = s * 0.13 * opening  # half-height of the opening
    inner_w = half_w * (0.80 - 0.22 * rounding)
    pout = 1.0 + 0.6 * rounding  # protruded lips look fuller
    upper, lower = s * look.upper_lip * pout, s * look.lower_lip * pout
    exponent = 2.0 + 1.2 * (1.0 - rounding)  # spread lips are flatter, rounded ones elliptic

    # outer lips, with a cupid's bow dip at the centre of the upper lip
    outer = _closed_contour(cx, cy, half_w, aperture + upper, aperture + lower, exponent)
    x_rel = outer[:_N_POINTS, 0] - cx
    outer[:_N_POINTS, 1] += upper * 0.3 * np.exp(-((x_rel / (0.18 * half_w)) ** 2))
    _fill(img, outer, look.lip_bgr)

    # the line where the lips meet (always drawn: it stays visible when the lips are closed)
    lip_line = np.array(look.lip_bgr, np.float32) * 0.75
    line = _closed_contour(cx, cy, inner_w * 1.05, max(aperture, 0.3), max(aperture, 0.3), exponent)
    _fill(img, line, lip_line.tolist())
    if aperture < 0.4:
        return img

    # inside the aperture: cavity, teeth, tongue, clipped to the aperture by a mask
    inside = np.empty_like(img)
    inside[:] = _CAVITY_BGR
    teeth_h = teeth * min(2 * aperture, s * 0.075)
    if teeth_h > 0.2:
        x, _ = _arc(inner_w, 1.0, 8, 2.0)
        band = np.array([[cx - inner_w, cy - aperture - 1], [cx + inner_w, cy - aperture - 1],
                         [cx + inner_w, cy - aperture + teeth_h], [cx - inner_w, cy - aperture + teeth_h]])
        _fill(inside, band, look.teeth_bgr)
        lower_h = 0.45 * teeth_h * max(0.0, 1.0 - opening)
        if lower_h > 0.2:
            band = np.array([[cx - inner_w, cy + aperture + 1], [cx + inner_w, cy + aperture + 1],
                             [cx + inner_w, cy + aperture - lower_h], [cx - inner_w, cy + aperture - lower_h]])
            _fill(inside, band, [c * 0.9 for c in look.teeth_bgr])
    if tongue > 0.05:
        # the tongue rises from the floor of the mouth towards (and, for th, between) the teeth
        t_cy = cy + aperture * (1.0 - 1.1 * tongue)
        t_h = aperture * (0.35 + 0.5 * tongue)
        tongue_poly = _closed_contour(cx, t_cy, inner_w * 0.6, t_h * 0.6, t_h, 2.0)
        _fill(inside, tongue_poly, _TONGUE_BGR)
    mask = np.zeros((size, size), np.uint8)
    _fill(mask, _closed_contour(cx, cy, inner_w, aperture, aperture, exponent), 255)
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    return img * (1.0 - alpha) + inside * alpha


def render_sequence(trajectory: np.ndarray, look: MouthAppearance, size: int, fps: float,
                    rng: np.random.Generator, skin: np.ndarray | None = None, motion: float = 0.02,
                    lighting: float = 0.05, noise_std: float = 3.0) -> np.ndarray:
    """(T, size, size, 3) uint8 BGR mouth-region frames with nuisances a real recording has.

    motion: largest head/ROI displacement as a fraction of the ROI (a random walk);
    lighting: amplitude of the slow gain drift (a left-right illumination gradient drifts too);
    noise_std: sensor noise, grey levels.
    """
    n = len(trajectory)
    t = np.arange(n) / fps
    walk = np.cumsum(rng.normal(0.0, motion / 5, (n, 2)), axis=0)
    walk -= walk.mean(axis=0)
    walk = np.clip(walk, -motion, motion)
    centre = size * (0.5 + np.array(look.offset)[None, :] + walk)
    phase = rng.uniform(0, 2 * np.pi, 2)
    gain = 1.0 + lighting * np.sin(2 * np.pi * t / rng.uniform(2.0, 5.0) + phase[0])
    tilt = 1.25 * lighting * np.sin(2 * np.pi * t / rng.uniform(3.0, 7.0) + phase[1])
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)[None, :, None]
    frames = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = render_mouth(trajectory[i], look, size, (centre[i, 0], centre[i, 1]), skin)
        img = cv2.GaussianBlur(img, (0, 0), 0.6)  # optics
        img = img * (gain[i] + tilt[i] * ramp)
        img += rng.normal(0.0, noise_std, img.shape).astype(np.float32)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


NUISANCES = ("occlusion", "blur", "dropped")


def transient_nuisances(frames: np.ndarray, fps: float, rng: np.random.Generator, kinds: tuple[str, ...] = NUISANCES,
                        skin_bgr=(120.0, 150.0, 200.0)) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """One transient event of a kind drawn from `kinds`, in place on (T, S, S, 3) uint8 frames: what makes a
    real video unreliable for a while, so that a fusion weighing the streams frame by frame has something to
    use. occlusion: a skin-toned blob (a hand, a microphone) over part of the mouth for 0.3-1.0 s; blur: motion
    blur along a random direction for 0.2-0.6 s; dropped: 1-4 frames the camera did not deliver, the last good
    one held. Returns the frames and the events as (kind, first frame, end frame)."""
    n, size = len(frames), frames.shape[1]
    kind = str(rng.choice(list(kinds)))
    span = {"occlusion": (0.3, 1.0), "blur": (0.2, 0.6)}.get(kind)
    length = max(1, int(round(rng.uniform(*span) * fps))) if span else int(rng.integers(1, 5))
    length = min(length, n - 1) if n > 1 else 0
    if length <= 0:
        return frames, []
    first = int(rng.integers(1, n - length + 1))
    end = first + length
    if kind == "dropped":
        frames[first:end] = frames[first - 1]
    elif kind == "blur":
        k = int(rng.integers(5, 12)) | 1
        kernel = np.zeros((k, k), np.float32)
        angle = rng.uniform(0, np.pi)
        for t in np.linspace(-(k // 2), k // 2, 2 * k):
            kernel[int(round(k // 2 + t * np.sin(angle))), int(round(k // 2 + t * np.cos(angle)))] = 1.0
        kernel /= kernel.sum()
        for i in range(first, end):
            frames[i] = cv2.filter2D(frames[i], -1, kernel)
    else:
        centre = np.array([rng.uniform(0.2, 0.8), rng.uniform(0.55, 0.9)]) * size
        axes = (int(size * rng.uniform(0.18, 0.3)), int(size * rng.uniform(0.25, 0.4)))
        drift = rng.normal(0, size * 0.01, (length, 2)).cumsum(axis=0)
        colour = np.clip(np.array(skin_bgr) * rng.uniform(0.85, 1.1), 0, 255).tolist()
        for j, i in enumerate(range(first, end)):
            c = tuple(int(v) for v in centre + drift[j])
            cv2.ellipse(frames[i], c, axes, float(rng.uniform(-20, 20)), 0, 360, colour, -1, cv2.LINE_AA)
    return frames, [(kind, first, end)]


class RoiRenderer:
    """`data/renderer=roi` (the default): the video is the mouth region itself, as a cropped corpus has it."""

    name = "roi"

    def frames(self, trajectory: np.ndarray, speaker, n_frames: int, transient: bool, video,
               rng: np.random.Generator) -> np.ndarray:
        """(n_frames, S, S, 3) BGR frames of `speaker`'s mouth following `trajectory`; `transient`: with one
        transient nuisance (`video`: the VideoSettings)."""
        look = speaker.mouth
        roi = render_sequence(trajectory, look, video.roi_size, video.fps, rng, motion=video.motion,
                              lighting=video.lighting, noise_std=video.noise_std)
        return transient_nuisances(roi, video.fps, rng, skin_bgr=look.skin_bgr)[0] if transient else roi
