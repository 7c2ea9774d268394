"""A prediction's files, in formats other tools read:

    <stem>.TextGrid         tier `phones` (or `words`) of the decoding, sil included; `reference` when given
    <stem>.ctm              `<stem> 1 <start> <duration> <unit> <confidence>` per decoded unit (Kaldi CTM)
    <stem>.posteriors.npy   (T, C) float32 class posteriors at 100 frames/s (frame t centred at t / 100 s)
    <stem>.json             what went in and came out: run, files, decoder, classes, units, error rate
    <stem>.png              the figure (`avfusion.inference.figure`)

Each is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from avfusion.corpus.alignments import write_textgrid
from avfusion.corpus.types import Segment
from avfusion.inference.predict import Prediction
from avfusion.inference.store import save_npy
from avfusion.utils.atomic import write_text_atomic


def write_prediction(prediction: Prediction, out_dir: str | Path, stem: str, figure: bool = True,
                     figure_start_s: float = 0.0, figure_seconds: float | None = 20.0) -> dict[str, Path]:
    """Write the prediction's files into `out_dir`; return them by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"{stem}.{suffix}" for kind, suffix in
             (("textgrid", "TextGrid"), ("ctm", "ctm"), ("posteriors", "posteriors.npy"), ("summary", "json"))}
    tiers = {prediction.unit_kind: [Segment(u.label, u.start, u.end) for u in prediction.units]}
    if prediction.reference:
        tiers["reference"] = list(prediction.reference)
    duration = max([prediction.duration] + [s.end for s in prediction.reference or []])
    write_textgrid(paths["textgrid"], tiers, duration)
    write_text_atomic(paths["ctm"], "".join(f"{stem} 1 {u.start:.3f} {u.end - u.start:.3f} {u.label} {u.confidence:.3f}\n"
                                            for u in prediction.units))
    save_npy(prediction.posteriors, paths["posteriors"])
    if prediction.stream_weights is not None:  # a reliability head's λ_t (or gates) per frame, beside the posteriors
        paths["stream_weights"] = out_dir / f"{stem}.stream_weights.npy"
        save_npy(prediction.stream_weights, paths["stream_weights"])
    summary = {**prediction.summary(), "classes": prediction.classes,
               "timed_units": [[u.label, round(u.start, 4), round(u.end, 4), round(u.confidence, 4)]
                               for u in prediction.units]}
    write_text_atomic(paths["summary"], json.dumps(summary, indent=1))
    if figure:
        from avfusion.inference.figure import draw

        paths["figure"] = out_dir / f"{stem}.png"
        draw(prediction, paths["figure"], figure_start_s, figure_seconds)
    return paths

