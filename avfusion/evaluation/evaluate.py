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

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.labels import FRAME_RATE, LabelScheme
from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Utterance
from avfusion.evaluation.noise import NoiseCondition, NoiseMaker, conditions
from avfusion.frontends.pipeline import FrameData, FrontEnd
from avfusion.metrics.per import collapse, frames_to_phones, per, segment_predictions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """What an utterance is scored against: its unit sequence and its speech segments' frame spans."""

    units: list[str]  # the reference phone (or word) sequence, repeats merged (<unk> for new words)
    spans: np.ndarray  # (S, 2) first and end frame of each non-silence segment
    span_units: np.ndarray  # (S,) the unit index of each


def reference(utt: Utterance, scheme: LabelScheme, n_frames: int) -> Reference:
    segments = utterance_labels(utt)
    ids = [scheme.unit_id(s.label) for s in segments]
    speech = [(s, i) for s, i in zip(segments, ids) if scheme.units[i] != SIL]
    spans = np.array([frame_span(s.start, s.end, n_frames) for s, _ in speech], dtype=np.int64).reshape(-1, 2)
    return Reference(collapse([scheme.units[i] for i in ids]), spans, np.array([i for _, i in speech], dtype=np.int64))


def frame_span(start: float, end: float, n_frames: int) -> tuple[int, int]:
    """Frames whose centres lie in [start, end) (as frame labels assign them); the nearest one for a
    segment shorter than a frame step."""
    first = int(np.ceil(start * FRAME_RATE - 1e-6))
    stop = min(int(np.ceil(end * FRAME_RATE - 1e-6)), n_frames)
    if stop > first:
        return first, stop
    nearest = min(int(round((start + end) / 2 * FRAME_RATE)), n_frames - 1)
    return nearest, nearest + 1


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

    def evaluate(self, models: dict[str, torch.nn.Module], frontend: FrontEnd, utterances: list[Utterance],
                 scheme: LabelScheme, combine=None) -> dict[str, list[dict]]:
        """Scores of each model (and of `combine(posteriors by model)` if given) per condition."""
        noise = NoiseMaker(utterances, frontend.audio.extractor.sample_rate, self.babble_talkers, self.seed)
        results: dict[str, list[dict]] = {name: [] for name in models}
        if combine is not None:
            results["combined"] = []
        clean = frontend.transform(utterances, scheme)
        lengths = np.diff(clean.offsets)
        references = [reference(utt, scheme, int(n)) for utt, n in zip(utterances, lengths)]
        for condition in self.conditions():
            log.info("evaluating %d utterances: %s", len(utterances), condition.name)
            data = clean if condition.kind == "clean" else \
                frontend.with_audio(clean, utterances, lambda u, w, c=condition: noise(u, w, c))
            post = {name: posteriors(m, data, self.batch_size) for name, m in models.items()}
            if combine is not None:
                post["combined"] = combine(post)
            for name, p in post.items():
                row = {"condition": condition.name, "noise": condition.kind, "snr_db": condition.snr_db}
                row.update(score(p, data, references, scheme, self.min_frames))
                results[name].append(row)
        return results
