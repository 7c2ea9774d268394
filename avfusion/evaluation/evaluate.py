"""Evaluation on held-out utterances, clean and in noise, through the train-fitted front-end.

Per condition: `frame_error` (classes of the label scheme), `frame_error_phone` (classes mapped to
the 39 phones), and `per`: frames decoded to phones (argmax, runs shorter than `min_frames` dropped,
repeats merged) scored against the reference phone sequence of the alignment, (S + D + I) / N.
Word schemes (GRID, LRS3) give the same with words: `frame_error_word` and `wer`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Utterance
from avfusion.evaluation.noise import NoiseCondition, NoiseMaker, conditions
from avfusion.frontends.pipeline import FrameData, FrontEnd
from avfusion.metrics.per import collapse, frames_to_phones, per

log = logging.getLogger(__name__)


def reference_units(utt: Utterance, scheme: LabelScheme) -> list[str]:
    """The reference phone (or word) sequence, spelled as the scheme spells it (<unk> for new words)."""
    return collapse([scheme.units[scheme.unit_id(s.label)] for s in utterance_labels(utt)])


@torch.no_grad()
def posteriors(model: torch.nn.Module, data: FrameData, batch_size: int = 8192) -> np.ndarray:
    """(N, C) class posteriors of a FusionModule (or anything mapping feature dicts to logits)."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        batch = {m: torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size]))
                 for m, x in data.features.items()}
        out.append(torch.softmax(model(batch), dim=-1).numpy())
    return np.concatenate(out)


def score(predicted: np.ndarray, data: FrameData, references: list[list[str]], scheme: LabelScheme,
          min_frames: int) -> dict:
    to_unit = scheme.unit_of_class
    pairs = [(ref, frames_to_phones(predicted[data.utterance(u)], to_unit, scheme.units, min_frames))
             for u, ref in enumerate(references)]
    edits = per(pairs)
    unit = scheme.unit
    return {
        "utterances": len(data.ids),
        "frames": int(len(data)),
        "frame_error": float(np.mean(predicted != data.labels)),
        f"frame_error_{unit}": float(np.mean(to_unit[predicted] != to_unit[np.asarray(data.labels)])),
        sequence_metric(scheme): edits.rate,
        "substitutions": edits.substitutions, "deletions": edits.deletions, "insertions": edits.insertions,
        f"reference_{unit}s": edits.reference_length,
    }


def sequence_metric(scheme: LabelScheme) -> str:
    """`per` for phone schemes, `wer` for word schemes."""
    return {"phone": "per", "word": "wer"}[scheme.unit]


@dataclass
class Evaluator:
    """Conditions and decoding settings (`conf/evaluation/`)."""

    noises: list[str] = field(default_factory=lambda: ["white", "babble"])
    snrs_db: list[float] = field(default_factory=lambda: [20, 10, 5, 0, -5])
    babble_talkers: int = 4
    seed: int = 1234
    min_frames: int = 2
    batch_size: int = 8192

    def conditions(self) -> list[NoiseCondition]:
        return conditions(self.noises, self.snrs_db)

    def check(self, utterances: list[Utterance]) -> None:
        """Fail before training, not after, when the test set cannot give every condition."""
        self.conditions()  # validates noise names
        if "babble" in self.noises and len({u.speaker for u in utterances}) < 2:
            raise ValueError("babble noise is built from other test speakers: the test split needs at least two "
                             "speakers (or drop babble from evaluation.noises)")

    def evaluate(self, models: dict[str, torch.nn.Module], frontend: FrontEnd, utterances: list[Utterance],
                 scheme: LabelScheme, combine=None) -> dict[str, list[dict]]:
        """Scores of each model (and of `combine(posteriors by model)` if given) per condition."""
        noise = NoiseMaker(utterances, frontend.audio.extractor.sample_rate, self.babble_talkers, self.seed)
        references = [reference_units(u, scheme) for u in utterances]
        results: dict[str, list[dict]] = {name: [] for name in models}
        if combine is not None:
            results["combined"] = []
        clean = frontend.transform(utterances, scheme)
        for condition in self.conditions():
            log.info("evaluating %d utterances: %s", len(utterances), condition.name)
            data = clean if condition.kind == "clean" else \
                frontend.with_audio(clean, utterances, lambda u, w, c=condition: noise(u, w, c))
            post = {name: posteriors(m, data, self.batch_size) for name, m in models.items()}
            if combine is not None:
                post["combined"] = combine(post)
            for name, p in post.items():
                row = {"condition": condition.name, "noise": condition.kind, "snr_db": condition.snr_db}
                row.update(score(p.argmax(axis=1), data, references, scheme, self.min_frames))
                results[name].append(row)
        return results
