"""Measure, from the generated files, what the corpus's realism knobs should have put there.

    python experiments/corpus_realism/measure.py data/synthetic/default data/synthetic/in_step

The first corpus is the default; the second the same speakers with the lips in step with the sound and
no shared articulation (`data.realism.av_lead_ms=[0,0] data.realism.av_jitter_ms=0 data.realism.onset_lead_ms=[0,0]
data.realism.coupling=0`), the control. Prints:

- per speaker, the audio-visual lead measured by cross-correlating the rendered inner-mouth opening (dark
  cavity pixels of each frame, interpolated to 100 Hz) with the audio envelope (RMS, 100 Hz) over the
  first `--utterances` of the speaker's utterances, from 250 ms after the speech onset (the onset's own
  lead left out) to its end; the peak is refined by a parabola. The control's peak is the measure's own
  bias (an opening and an envelope do not peak together even in step); the lead is the difference.
- within each frequent phone class, the correlation over tokens of the inner mouth width (spread of the
  dark cavity's columns, mean over the frames that show the token: its acoustic span moved by the
  speaker's measured lead) with the spectral centroid of its audio (librosa), both standardised within
  (speaker, class) so that voices and mouth sizes do not count; pooled over the classes with a 95%
  interval (Fisher z).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, ".")

from avfusion.corpus.alignments import utterance_labels  # noqa: E402
from avfusion.corpus.manifest import read_manifest  # noqa: E402
from avfusion.corpus.phones import SIL  # noqa: E402
from avfusion.media import load_audio, read_video  # noqa: E402

RATE = 100  # Hz: both signals
CLASSES = ("iy", "ih", "eh", "ae", "ah", "n", "s", "r", "l", "t")
DARK = 60  # grey level: the oral cavity is darker than lips, skin, teeth and tongue


def mouth_measures(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: dark-cavity area (pixels) and its width: 4 x the standard deviation of the dark pixels'
    columns (sub-pixel; the full width of a uniform spread), NaN when the mouth shows too little cavity."""
    dark = frames.mean(axis=3) < DARK
    area = dark.sum(axis=(1, 2)).astype(float)
    columns = np.arange(frames.shape[2], dtype=float)
    per_column = dark.sum(axis=1).astype(float)  # (T, W)
    mean = (per_column * columns).sum(axis=1) / np.maximum(area, 1)
    var = (per_column * (columns[None, :] - mean[:, None]) ** 2).sum(axis=1) / np.maximum(area, 1)
    width = np.where(area >= 20, np.sqrt(12 * var), np.nan)
    return area, width


def envelope(audio: np.ndarray, sr: int) -> np.ndarray:
    hop = sr // RATE
    n = len(audio) // hop
    return np.sqrt((audio[:n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1))


def lead_ms(pairs, max_lag: int = 25) -> float:
    """The lag (ms; positive: the mouth ahead of the sound) of the peak of the summed normalised
    cross-correlations of (opening, envelope) pairs."""
    lags = np.arange(-max_lag, max_lag + 1)
    total = np.zeros(len(lags))
    for opening, env in pairs:
        o, e = (opening - opening.mean()) / (opening.std() + 1e-9), (env - env.mean()) / (env.std() + 1e-9)
        for i, k in enumerate(lags):  # corr(o[t], e[t + k]): k > 0 when the mouth moves first
            a, b = (o[:len(o) - k], e[k:]) if k >= 0 else (o[-k:], e[:len(e) + k])
            total[i] += np.dot(a, b) / len(a)
    j = int(total.argmax())
    if 0 < j < len(lags) - 1:  # parabolic refinement
        y0, y1, y2 = total[j - 1:j + 2]
        j = j + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return float(np.interp(j, np.arange(len(lags)), lags)) * 1000 / RATE


def measure(root: str, n_utts: int, shift_ms: dict | None = None):
    import librosa

    corpus = read_manifest(f"{root}/manifest.jsonl")
    by_speaker = defaultdict(list)
    for u in corpus.utterances:
        by_speaker[u.speaker].append(u)
    leads, tokens = {}, defaultdict(list)
    everything = n_utts if shift_ms is None else None  # tokens: every utterance once the leads are known
    for speaker, utts in sorted(by_speaker.items()):
        pairs = []
        for i, u in enumerate(utts[:everything]):
            frames, fps = read_video(u.video)
            audio = load_audio(u.audio, 16000)
            segments = utterance_labels(u)
            area, width = mouth_measures(frames)
            env = envelope(audio, 16000)
            t = np.arange(len(env)) / RATE
            opening = np.interp(t, np.arange(len(area)) / fps, area)
            onset = next(s.start for s in segments if s.label != SIL)
            end = max(s.end for s in segments if s.label != SIL)
            keep = (t >= onset + 0.25) & (t <= end)
            if i < n_utts:
                pairs.append((opening[keep], env[keep]))
            centroid = librosa.feature.spectral_centroid(y=audio, sr=16000, n_fft=512, hop_length=160)[0]
            lead = (shift_ms or {}).get(speaker, 0.0) / 1000
            for s in segments:
                if s.label in CLASSES:
                    f = np.arange(int(np.ceil((s.start - lead) * fps)), int(np.floor((s.end - lead) * fps)) + 1)
                    f = f[(f >= 0) & (f < len(width))]
                    c = centroid[int(s.start * RATE):max(int(s.end * RATE), int(s.start * RATE) + 1)]
                    if len(f) and len(c) and np.isfinite(width[f]).any():
                        tokens[s.label].append((speaker, np.nanmean(width[f]), c.mean()))
        leads[speaker] = lead_ms(pairs)
    correlations, pooled = {}, ([], [])
    for label, rows in tokens.items():
        v, a = [], []
        for speaker in {r[0] for r in rows}:
            mine = np.array([r[1:] for r in rows if r[0] == speaker])
            if len(mine) >= 4 and mine.std(axis=0).min() > 0:
                z = (mine - mine.mean(axis=0)) / mine.std(axis=0)
                v += list(z[:, 0])
                a += list(z[:, 1])
        correlations[label] = (float(np.corrcoef(v, a)[0, 1]) if len(v) > 10 else float("nan"), len(v))
        pooled[0].extend(v)
        pooled[1].extend(a)
    r, n = float(np.corrcoef(*pooled)[0, 1]), len(pooled[0])
    half = 1.96 / np.sqrt(n - 3)
    correlations["pooled"] = (r, n, float(np.tanh(np.arctanh(r) - half)), float(np.tanh(np.arctanh(r) + half)))
    return corpus, leads, correlations


def main() -> None:
    import json
    from pathlib import Path

    from avfusion.synth.generator import SyntheticCorpus

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("control")
    parser.add_argument("--utterances", type=int, default=8)
    args = parser.parse_args()
    settings = json.loads(Path(args.corpus, "synth_config.json").read_text())
    builder = SyntheticCorpus.from_settings(args.corpus, settings, n_jobs=1)
    speakers = {spec.speaker.id: spec.speaker for spec in builder.specs()}
    corpus, leads, _ = measure(args.corpus, args.utterances)
    _, control_leads, _ = measure(args.control, args.utterances)
    shift = {s: leads[s] - control_leads[s] for s in leads}  # where the lips show each speaker's tokens
    _, _, corr = measure(args.corpus, args.utterances, shift)
    _, _, control_corr = measure(args.control, args.utterances, dict.fromkeys(shift, 0.0))
    low, high = settings["av_lead_ms"]
    print(f"audio-visual lead per speaker (configured range [{low:g}, {high:g}] ms, jitter "
          f"{settings['av_jitter_ms']:g} ms; first {args.utterances} utterances each)\n")
    print("| speaker | configured | measured | control (in step) | measured - control |")
    print("|---|---:|---:|---:|---:|")
    configured, found = [], []
    for speaker in sorted(leads):
        configured.append(1000 * builder.av_lead_s(speakers[speaker]))
        found.append(leads[speaker] - control_leads[speaker])
        print(f"| {speaker} | {configured[-1]:.0f} ms | {leads[speaker]:.0f} ms | {control_leads[speaker]:.0f} ms | "
              f"{found[-1]:.0f} ms |")
    configured, found = np.array(configured), np.array(found)
    inside = int(np.sum((found >= low - 10) & (found <= high + 10)))
    print(f"\n{inside} of {len(found)} speakers within the configured range (+-10 ms: a 25 fps video measured at "
          f"100 Hz); measured - control - configured: mean {np.mean(found - configured):.1f} ms, s.d. "
          f"{np.std(found - configured, ddof=1):.1f} ms; correlation of measured with configured "
          f"{np.corrcoef(configured, found)[0, 1]:.2f}\n")
    print(f"within-class correlation of inner mouth width with the spectral centroid (coupling "
          f"{settings['coupling']:g}; the control's 0)\n")
    print("| class | tokens | r, coupled | r, control |")
    print("|---|---:|---:|---:|")
    for label in CLASSES:
        if label in corr:
            print(f"| {label} | {corr[label][1]} | {corr[label][0]:.2f} | {control_corr.get(label, (np.nan,))[0]:.2f} |")
    (r, n, lo, hi), (rc, _, loc, hic) = corr["pooled"], control_corr["pooled"]
    print(f"| pooled | {n} | {r:.3f} [{lo:.3f}, {hi:.3f}] | {rc:.3f} [{loc:.3f}, {hic:.3f}] |")


if __name__ == "__main__":
    main()
