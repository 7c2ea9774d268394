"""Evaluation on held-out utterances, clean and in noise, through the train-fitted front-end.

Per condition: `frame_error` (classes of the label scheme), `frame_error_phone` (classes mapped to
the 39 phones), and `per`: frames decoded to phones (argmax, runs shorter than `min_frames` dropped,
repeats merged) scored against the reference phone sequence of the alignment, (S + D + I) / N.
Word schemes (GRID, LRS3) give the same with words: `frame_error_word` and `wer`. `segment_error`:
each non-silence segment of the reference alignment classified as a whole (mean log posterior of
its units over its frames), the phone (word) classification error given the boundaries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import sparse

from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Utterance
from avfusion.evaluation.noise import NoiseCondition, NoiseMaker, conditions
from avfusion.frames.data import FrameData, frames_of, with_audio
from avfusion.frames.labelling import FrameLabeller, Reference
from avfusion.metrics.per import frames_to_phones, per, segment_predictions

log = logging.getLogger(__name__)


def posteriors(model, data: FrameData, batch_size: int = 8192) -> np.ndarray:
    """(N, C) class posteriors of a trained model (a FusionModule) on every frame of `data`."""
    return model.posteriors(data, batch_size)


def score(posteriors: np.ndarray, data: FrameData, references: list[Reference], scheme: LabelScheme,
          min_frames: int) -> dict:
    """Metrics of (N, C) class posteriors against the utterances' references."""
    predicted = posteriors.argmax(axis=1)
    to_unit = scheme.unit_of_class
    pairs = [(ref.units, frames_to_phones(predicted[data.utterance(u)], to_unit, scheme.units, min_frames))
             for u, ref in enumerate(references)]
    edits = per(pairs)
    class_to_unit = sparse.csr_matrix((np.ones(len(to_unit)), (np.arange(len(to_unit)), to_unit)),
                                      shape=(len(to_unit), len(scheme.units)))  # states summed into units
    log_units = np.log(np.maximum(np.asarray(posteriors @ class_to_unit), 1e-12))
    guessed = np.concatenate([segment_predictions(log_units[data.utterance(u)], ref.spans)
                              for u, ref in enumerate(references)] or [np.zeros(0, np.int64)])
    truth = np.concatenate([ref.span_units for ref in references] or [np.zeros(0, np.int64)])
    unit = scheme.unit
    return {
        "utterances": len(data.ids),
        "frames": int(len(data)),
        "frame_error": float(np.mean(predicted != data.labels)),
        f"frame_error_{unit}": float(np.mean(to_unit[predicted] != to_unit[np.asarray(data.labels)])),
        sequence_metric(scheme): edits.rate,
        "substitutions": edits.substitutions, "deletions": edits.deletions, "insertions": edits.insertions,
        f"reference_{unit}s": edits.reference_length,
        "segment_error": float(np.mean(guessed != truth)) if len(truth) else float("nan"),
        "segments": int(len(truth)),
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

    def evaluate(self, models: dict[str, torch.nn.Module], frontend, utterances: list[Utterance],
                 scheme: LabelScheme, combine=None) -> dict[str, list[dict]]:
        """Scores of each model (and of `combine(posteriors by model)` if given) per condition, through
        the fitted `frontend`."""
        noise = NoiseMaker(utterances, frontend.audio.extractor.sample_rate, self.babble_talkers, self.seed)
        results: dict[str, list[dict]] = {name: [] for name in models}
        if combine is not None:
            results["combined"] = []
        labeller = FrameLabeller(scheme)  # one read of each alignment: frame labels and references
        clean = frames_of(frontend, utterances, labeller)
        references = [labeller.reference(utt, int(n)) for utt, n in zip(utterances, clean.lengths)]
        for condition in self.conditions():
            log.info("evaluating %d utterances: %s", len(utterances), condition.name)
            data = clean if condition.kind == "clean" else \
                with_audio(frontend, clean, utterances, lambda u, w, c=condition: noise(u, w, c))
            post = {name: posteriors(m, data, self.batch_size) for name, m in models.items()}
            if combine is not None:
                post["combined"] = combine(post)
            for name, p in post.items():
                row = {"condition": condition.name, "noise": condition.kind, "snr_db": condition.snr_db}
                row.update(score(p, data, references, scheme, self.min_frames))
                results[name].append(row)
        return results
