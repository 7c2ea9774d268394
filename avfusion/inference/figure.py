"""The picture of a prediction: what the model heard and saw, and what it made of it.

Rows, on one time axis: mouth-ROI thumbnails side by side (each the kept crop nearest its place), the log-mel spectrogram, the per-frame
unit posteriors (units x time; the units decoded or reaching 0.2 in the window), a reliability head's stream weights, the decoded units (shaded by confidence) and, when an alignment was
given, the reference. A long recording is drawn over a window (`start_s`, `seconds`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avfusion.frames.clock import FRAME_RATE
from avfusion.inference.predict import Prediction
from avfusion.inference.recording import ClipMedia
from avfusion.utils.atomic import atomic_path


def _span(prediction: Prediction, start_s: float, seconds: float | None) -> tuple[float, float]:
    start = min(max(0.0, start_s), prediction.duration)
    end = prediction.duration if not seconds else min(prediction.duration, start + seconds)
    return start, max(end, start + 1.0 / FRAME_RATE)


def _track(ax, segments, t0: float, t1: float, title: str, shade=None) -> None:
    """Labelled intervals; `shade(i)` in [0, 1] fills interval i (confidence)."""
    for i, (label, start, end) in enumerate(segments):
        if end <= t0 or start >= t1:
            continue
        if shade is not None:
            ax.axvspan(start, end, color="tab:blue", alpha=0.15 + 0.6 * shade(i), lw=0)
        ax.axvline(start, color="k", lw=0.5)
        ax.text((max(start, t0) + min(end, t1)) / 2, 0.5, label, ha="center", va="center", fontsize=7, clip_on=True)
    ax.set_yticks([])
    ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)


def draw(prediction: Prediction, path: str | Path, start_s: float = 0.0, seconds: float | None = 20.0) -> None:
    """Write the figure of `prediction` as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0, t1 = _span(prediction, start_s, seconds)
    rows = ["mouth", "spectrogram", "posteriors"] + (["weights"] if prediction.stream_weights is not None else []) + \
        ["decoded"] + (["reference"] if prediction.reference else [])
    heights = {"mouth": 1.0, "spectrogram": 1.6, "posteriors": 3.2, "weights": 0.9, "decoded": 0.45, "reference": 0.45}
    width = float(np.clip(4 + 1.2 * (t1 - t0), 10, 28))
    fig, axes = plt.subplots(len(rows), 1, sharex=True, figsize=(width, sum(heights[r] for r in rows) + 1.0),
                             gridspec_kw={"height_ratios": [heights[r] for r in rows]}, squeeze=False)
    ax = dict(zip(rows, axes[:, 0]))
    fig.subplots_adjust(left=0.08, right=0.99, top=0.93, bottom=0.06, hspace=0.08)

    _mouths(ax["mouth"], prediction.media, t0, t1, fig)
    _spectrogram(ax["spectrogram"], prediction.media, t0, t1)
    frames = slice(int(np.floor(t0 * FRAME_RATE)), int(np.ceil(t1 * FRAME_RATE)) + 1)
    unit_post = prediction.scheme.unit_posteriors(prediction.posteriors[frames])  # the window only
    shown = shown_units(unit_post, prediction.unit_names, [u.label for u in prediction.units if t0 < u.end and u.start < t1])
    ax["posteriors"].imshow(unit_post[:, shown].T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1,
                            extent=[frames.start / FRAME_RATE - 0.005, (frames.start + len(unit_post)) / FRAME_RATE - 0.005,
                                    -0.5, len(shown) - 0.5], interpolation="nearest")
    ax["posteriors"].set_yticks(range(len(shown)))
    ax["posteriors"].set_yticklabels([prediction.unit_names[u] for u in shown], fontsize=7)
    ax["posteriors"].set_ylabel(f"posteriors\n({len(shown)} of {len(prediction.unit_names)}\n{prediction.unit_kind})",
                                fontsize=8)
    if prediction.stream_weights is not None:
        _weights(ax["weights"], prediction, frames)
    units = prediction.units
    _track(ax["decoded"], [(u.label, u.start, u.end) for u in units], t0, t1, prediction.decoder,
           shade=lambda i: units[i].confidence)
    if prediction.reference:
        _track(ax["reference"], [(s.label, s.start, s.end) for s in prediction.reference], t0, t1, "reference")
    ax[rows[-1]].set_xlim(t0, t1)
    ax[rows[-1]].set_xlabel("time (s)")
    clip = prediction.video or prediction.audio
    title = f"{Path(clip).name}: run {prediction.run.name} ({prediction.name}), {'+'.join(prediction.modalities)}"
    if prediction.edits is not None:
        e = prediction.edits
        title += (f"; error rate {e.rate:.3f} against the reference (S {e.substitutions}, D {e.deletions}, "
                  f"I {e.insertions} of {e.reference_length})")
    if t1 - t0 < prediction.duration - 1e-6:
        title += f"; {t0:.1f}-{t1:.1f} s of {prediction.duration:.1f} s"
    fig.suptitle(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def shown_units(unit_post: np.ndarray, names: list[str], decoded: list[str], reach: float = 0.2,
                most: int = 24) -> list[int]:
    """The units worth a row of the posterior image: those decoded in the window and those whose posterior
    reaches `reach` in it (at most `most`, the highest first), in the scheme's order: 39 rows of labels do not
    read at print size, and most of them are white."""
    peak = unit_post.max(axis=0) if len(unit_post) else np.zeros(len(names))
    wanted = {i for i, name in enumerate(names) if name in set(decoded)}
    wanted |= {int(i) for i in np.argsort(-peak) if peak[i] >= reach}
    keep = sorted(wanted, key=lambda i: -peak[i])[:most] if len(wanted) > most else wanted
    return sorted(keep) or [int(np.argmax(peak))]


def _weights(ax, prediction: Prediction, frames: slice) -> None:
    """The head's per-frame stream weights (the audio weight λ_t, or each stream's gate), in [0, 1]."""
    w = prediction.stream_weights[frames]
    t = (frames.start + np.arange(len(w))) / FRAME_RATE
    for k in range(w.shape[1]):
        ax.plot(t, w[:, k], lw=1.0, label=prediction.weight_labels[k] if k < len(prediction.weight_labels) else None)
    ax.set_ylim(-0.02, 1.02)
    ax.set_yticks([0, 0.5, 1])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel("stream\nweights", rotation=0, ha="right", va="center", fontsize=8)
    if w.shape[1] <= 4:
        ax.legend(fontsize=6, loc="upper right", frameon=False, ncol=w.shape[1])


def _mouths(ax, media: ClipMedia, t0: float, t1: float, fig) -> None:
    """The kept ROI crops as square thumbnails centred at their times (as many as fit side by side)."""
    ax.set_yticks([])
    ax.set_ylabel("mouth", rotation=0, ha="right", va="center", fontsize=8)
    ax.set_ylim(0, 1)
    if media.rois is None or not len(media.rois):
        ax.text((t0 + t1) / 2, 0.5, "no video", ha="center", va="center", fontsize=8)
        return
    box = ax.get_position()
    w_in, h_in = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    slots = max(1, round(w_in / h_in))  # thumbnails about square, filling the row
    side = (t1 - t0) / slots  # seconds that span one thumbnail
    times = media.roi_times
    for centre in t0 + side * (np.arange(slots) + 0.5):  # side by side, the nearest crop in each
        nearest = int(np.argmin(np.abs(times - centre)))
        if abs(times[nearest] - centre) <= side / 2:
            ax.imshow(media.rois[nearest], cmap="gray", vmin=0, vmax=255, aspect="auto",
                      extent=[centre - side / 2, centre + side / 2, 0, 1])


def _spectrogram(ax, media: ClipMedia, t0: float, t1: float) -> None:
    ax.set_ylabel("log-mel", rotation=0, ha="right", va="center", fontsize=8)
    if media.waveform is None:
        ax.set_yticks([])
        ax.text((t0 + t1) / 2, 0.5, "no audio", ha="center", va="center", fontsize=8, transform=ax.get_xaxis_transform())
        return
    import librosa

    sr = media.sample_rate
    samples = media.waveform[int(t0 * sr):int(t1 * sr) + 1]
    mel = librosa.feature.melspectrogram(y=samples, sr=sr, n_fft=512, hop_length=sr // FRAME_RATE, n_mels=64)
    ax.imshow(np.log(mel + 1e-10), aspect="auto", origin="lower", cmap="magma",
              extent=[t0, t0 + mel.shape[1] / FRAME_RATE, 0, mel.shape[0]], interpolation="nearest")
    ax.set_yticks([])
