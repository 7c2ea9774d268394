"""Evaluation on held-out utterances, clean and in noise, through the train-fitted front-end.

Per condition: `frame_error` (classes of the label scheme), `frame_error_phone` (classes mapped to
the 39 phones), and `per`: frames decoded to phones by each model's decoder (`avfusion.decoding`) and
scored against the reference phone sequence as aligned, silence left out of both: (S + D + I) / N,
with each kind of error as a count and a rate; the decoders its decoding reports beside it add their
own (`per_framewise` beside viterbi). Word schemes (GRID, LRS3) give the same with words:
`frame_error_word`, `wer`. `segment_error`: each non-silence segment of the reference alignment
classified as a whole (mean log posterior of its units over its frames), the phone (word)
classification error given the boundaries. With `evaluation.contrasts` (pairs of units [P, Q]):
`contrast_error`, the share of the pairs' frames whose unit posterior is not higher for the frame's own unit
than for its partner (the two-way decision alone, e.g. the interaction-carried pairs of the positive control),
and `contrast_error_P_Q` per pair.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np
import torch

from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Utterance
from avfusion.decoding.base import CLEAN, Decoder, PerCondition
from avfusion.decoding.hybrid import scored
from avfusion.errors import ConfigError
from avfusion.evaluation.conditions import batch_utterances, degraded_frames, evaluated_frames, noisy_frames, on_disk
from avfusion.frames.data import FrameData, concatenated
from avfusion.frames.labelling import FrameLabeller, Reference
from avfusion.metrics.per import EditCounts, edit_counts, segment_predictions
from avfusion.noise import NoiseCondition, NoiseMixer, NoiseSource, check_sources, conditions
from avfusion.noise.video import DegradedVideo, VideoDegradation
from avfusion.models.encoders import EncoderOutputs
from avfusion.utils.rules import check_fields, distinct_pair, each, integer, number, optional, text

log = logging.getLogger(__name__)


def posteriors(model, data: FrameData, batch_size: int = 8192, kept: EncoderOutputs | None = None) -> np.ndarray:
    """(N, C) class posteriors of a trained model (a FusionModule) on every frame of `data` (`kept`: see
    FusionModule.posteriors)."""
    return model.posteriors(data, batch_size, kept)


def same_inputs(model, data: FrameData, clean: FrameData) -> bool:
    """Whether `model` reads in `data` exactly the arrays it reads in `clean` (a video-only model in an audio
    noise condition): its posteriors there are the clean ones, not worth a forward pass."""
    reads = getattr(model, "modalities", None)  # None: a model that does not say what it reads
    return reads is not None and data.ids == clean.ids and all(
        data.features.get(m) is clean.features.get(m) and data.streams.get(m) is clean.streams.get(m) for m in reads)


def utterance_edits(posteriors: np.ndarray, data: FrameData, references: list[Reference], scheme: LabelScheme,
                    decoder) -> list[EditCounts]:
    """Edit counts of each utterance's decoding against its scored reference, in the order of `data`."""
    return [edit_counts(ref.units, scored(scheme, decoder.decode(posteriors[data.utterance(u)])))
            for u, ref in enumerate(references)]


def sequence_errors(posteriors: np.ndarray, data: FrameData, references: list[Reference], scheme: LabelScheme,
                    decoder) -> EditCounts:
    """Edit counts of each utterance's decoding against its scored reference, summed over `data`."""
    return sum(utterance_edits(posteriors, data, references, scheme, decoder), EditCounts())


def edit_columns(edits: EditCounts, metric: str, unit: str) -> dict:
    n = edits.reference_length
    return {metric: edits.rate, "substitutions": edits.substitutions, "deletions": edits.deletions,
            "insertions": edits.insertions, "substitution_rate": edits.substitutions / n,
            "deletion_rate": edits.deletions / n, "insertion_rate": edits.insertions / n, f"reference_{unit}s": n}


def log_units(scheme: LabelScheme, posteriors: np.ndarray) -> np.ndarray:
    """Log posteriors of the scheme's units (states summed into phones), floored; computed an utterance at a time,
    never for a whole split at once (two float64 copies of its posteriors)."""
    return np.log(np.maximum(scheme.unit_posteriors(posteriors), 1e-12))


def contrast_columns(posteriors: np.ndarray, data: FrameData, scheme: LabelScheme, contrasts: list[list[str]]) -> dict:
    """The pairs' two-way decisions: per pair [P, Q], of the frames whose unit is P or Q, those whose unit posterior
    is not higher for their own unit than for the other (`contrast_error_P_Q`), and all pairs pooled
    (`contrast_error`); per utterance, each count and its frames (`by_utterance`, for intervals)."""
    units = list(scheme.units)
    truth = scheme.unit_of_class[np.asarray(data.labels)]
    utterance = np.repeat(np.arange(len(data.ids)), data.lengths)
    row, detail = {}, {}
    for p, q in contrasts:
        first, second = units.index(p), units.index(q)
        rows = np.flatnonzero(np.isin(truth, [first, second]))
        unit_post = scheme.unit_posteriors(posteriors[rows])
        own = truth[rows]
        other = np.where(own == first, second, first)
        wrong = unit_post[np.arange(len(rows)), own] <= unit_post[np.arange(len(rows)), other]
        row[f"contrast_error_{p}_{q}"] = float(wrong.mean()) if len(rows) else float("nan")
        detail[f"contrast_errors_{p}_{q}"] = np.bincount(utterance[rows], wrong, len(data.ids)).astype(int).tolist()
        detail[f"contrast_frames_{p}_{q}"] = np.bincount(utterance[rows], minlength=len(data.ids)).tolist()
    errors = np.sum([detail[f"contrast_errors_{p}_{q}"] for p, q in contrasts], axis=0)
    frames = np.sum([detail[f"contrast_frames_{p}_{q}"] for p, q in contrasts], axis=0)
    row["contrast_error"] = float(errors.sum() / frames.sum()) if frames.sum() else float("nan")
    detail.update(contrast_errors=errors.tolist(), contrast_frames=frames.tolist())
    return {**row, "by_utterance": detail}


def score(posteriors: np.ndarray, data: FrameData, references: list[Reference], scheme: LabelScheme,
          decoder: Decoder, beside: dict[str, Decoder] | None = None, contrasts: list[list[str]] = ()) -> dict:
    """Metrics of (N, C) class posteriors against the utterances' references; each decoder of `beside`
    adds its error rate beside the decoder's (`per_<name>`); `contrasts` adds the pairs' two-way decisions."""
    predicted = posteriors.argmax(axis=1)
    to_unit = scheme.unit_of_class
    guessed = np.concatenate([segment_predictions(log_units(scheme, posteriors[data.utterance(u)]), ref.spans)
                              for u, ref in enumerate(references)] or [np.zeros(0, np.int64)])
    truth = np.concatenate([ref.span_units for ref in references] or [np.zeros(0, np.int64)])
    unit, metric = scheme.unit, sequence_metric(scheme)
    edits = utterance_edits(posteriors, data, references, scheme, decoder)
    wrong = predicted != np.asarray(data.labels)
    row = {
        "utterances": len(data.ids),
        "frames": int(len(data)),
        "frame_error": float(np.mean(wrong)),
        f"frame_error_{unit}": float(np.mean(to_unit[predicted] != to_unit[np.asarray(data.labels)])),
        **edit_columns(sum(edits, EditCounts()), metric, unit),
        "segment_error": float(np.mean(guessed != truth)) if len(truth) else float("nan"),
        "segments": int(len(truth)),
        # per utterance, for confidence intervals by resampling speakers and utterances (avfusion.reporting)
        "by_utterance": {"id": list(data.ids), "speaker": list(data.speakers),
                         "errors": [e.errors for e in edits], "reference": [e.reference_length for e in edits],
                         "frame_errors": [int(wrong[data.utterance(u)].sum()) for u in range(len(data.ids))],
                         "frames": [int(n) for n in data.lengths]},
    }
    if contrasts:
        columns = contrast_columns(posteriors, data, scheme, contrasts)
        row["by_utterance"].update(columns.pop("by_utterance"))
        row.update(columns)
    for other, other_decoder in (beside or {}).items():
        row[f"{metric}_{other}"] = sequence_errors(posteriors, data, references, scheme, other_decoder).rate
    if "viseme" in scheme.groups:
        row["viseme_confusion"] = group_confusion(scheme, "viseme", np.asarray(data.labels), predicted)
    return row


# a decoding that drops (or adds) more than half of the reference's units is not a noisy transcript but a
# degenerate one: a decoder setting or a model that fails in that condition
DEGENERATE_EDIT_RATE = 0.5


def degenerate_decodings(name: str, split: str, rows: list[dict], unit_kind: str) -> list[str]:
    """One warning per kind of degenerate decoding of `name` on `split`, naming its conditions."""
    found = []
    for kind in ("deletion", "insertion"):
        bad = [f"{r['condition']} ({r[f'{kind}_rate']:.0%})" for r in rows
               if r.get(f"{kind}_rate", 0.0) > DEGENERATE_EDIT_RATE]
        if bad:
            found.append(f"{name}{f' on {split}' if split else ''}: {kind}s exceed half of the reference {unit_kind} in "
                         f"{', '.join(bad)}: a degenerate decoding rather than a noisy one (the decoder's setting there: "
                         "decoding.tune=per_condition shows what a setting tuned in each condition gives; or the model "
                         "fails there)")
    return found


def pooled_by_utterance(detail: dict) -> dict:
    """Per-utterance counts of several noise draws (the same ids repeated, draw after draw) summed per id."""
    ids = list(dict.fromkeys(detail["id"]))
    index = {u: i for i, u in enumerate(ids)}
    rows = np.array([index[u] for u in detail["id"]])
    summed = {k: np.bincount(rows, weights=v, minlength=len(ids)).astype(int).tolist()
              for k, v in detail.items() if k not in ("id", "speaker")}
    speakers = dict(zip(detail["id"], detail["speaker"]))
    return {"id": ids, "speaker": [speakers[u] for u in ids], **summed}


def group_confusion(scheme: LabelScheme, level: str, truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Frame counts by (reference group, predicted group) at `level` (e.g. visemes), as lists for JSON."""
    group = scheme.group_index(level)
    n = len(scheme.group_names[level])
    counts = np.bincount(group[truth] * n + group[predicted], minlength=n * n).reshape(n, n)
    return {"labels": list(scheme.group_names[level]), "counts": counts.tolist()}


def sequence_metric(scheme: LabelScheme) -> str:
    """`per` for phone schemes, `wer` for word schemes."""
    return {"phone": "per", "word": "wer"}[scheme.unit]


@dataclass
class Evaluator:
    """The conditions a run is scored in (`conf/evaluation/`)."""

    NOT_SHAPING: ClassVar[tuple[str, ...]] = ("*",)  # scoring never changes what a stage learns

    noises: list[str]  # names of noise sources (conf/noise/)
    snrs_db: list[float]
    video_degradations: list[str]  # names of video degradations (conf/video_degradation/)
    video_severities: list[float]  # each in (0, 1]
    pairs: list[list]  # [noise, snr_db, degradation, severity]: an audio noise with a video degradation
    missing_streams: list[str]  # encoders scored as absent, one condition each (models trained with modality dropout)
    contrasts: list[list[str]]  # pairs of units [P, Q] whose two-way decision is scored beside (contrast_error)
    seed: int
    batch_size: int
    report_dev: bool  # also score dev in every condition: the table conclusions are drawn from
    cache_conditions: bool  # keep each noisy condition's audio features beside the prepared frames
    noise_draws: int  # independent noise draws per utterance and noisy condition, pooled in its counts
    hidden_in_memory_gib: float | None = None  # encoders' outputs kept across conditions up to this; None: 4 GiB
    degradations: dict[str, VideoDegradation] = field(default_factory=dict)  # the video_degradation group, by name

    def __post_init__(self) -> None:
        check_fields(self, "evaluation", {"noises": each(text, example="[white,babble]"),
                                          "snrs_db": each(number(), example="[20,10,0]"), "seed": integer(),
                                          "batch_size": integer(1), "noise_draws": integer(1),
                                          "video_degradations": each(text, example="[occlusion,blur]"),
                                          "video_severities": each(number(above=0.0, high=1.0), example="[0.5,1.0]"),
                                          "missing_streams": each(text, example="[audio,video]"),
                                          "contrasts": each(distinct_pair, example="[[ih,eh],[ah,ae]]"),
                                          "hidden_in_memory_gib": optional(number(0))})
        severity, snr = number(above=0.0, high=1.0), number()
        for pair in self.pairs:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 4 and text(pair[0]) is None and snr(pair[1]) is None
                    and text(pair[2]) is None and severity(pair[3]) is None):
                raise ConfigError(f"evaluation.pairs: {list(pair) if isinstance(pair, (list, tuple)) else pair!r} is not "
                                  "[noise, snr_db, degradation, severity in (0, 1]] (e.g. [[babble,0,occlusion,0.5]])")

    @property
    def audio_noises(self) -> list[str]:
        """Every noise source a condition names, alone or paired."""
        return list(dict.fromkeys([*self.noises, *(p[0] for p in self.pairs)]))

    def conditions(self) -> list[NoiseCondition]:
        return conditions(self.noises, self.snrs_db, self.video_degradations, self.video_severities, self.pairs,
                          self.missing_streams)

    def condition_names(self) -> list[str]:
        return [c.name for c in self.conditions()]

    def kept_in(self, cache_dir: str | Path | None) -> Path | None:
        """Where the evaluated frames are kept (`cache_conditions`): the prepared frames' folder, or nowhere."""
        return Path(cache_dir) if cache_dir is not None and self.cache_conditions else None

    def frames_in(self, condition: NoiseCondition, frontend, clean: FrameData, utterances: list[Utterance],
                  noise: NoiseMixer | None, cache_dir: str | Path | None, draws: int = 1) -> FrameData:
        """`clean` (the frames of `utterances`) in `condition`: its first `draws` noise draws one after the
        other, their audio features kept in `cache_dir` (see `noisy_frames`) when `cache_conditions`."""
        if condition.is_clean:
            return clean
        kept_in = self.kept_in(cache_dir)
        if condition.video is not None:  # the video first: a paired condition's noisy audio replaces the clean
            clean = degraded_frames(frontend, clean, utterances, DegradedVideo(
                condition.video, self.degradations[condition.video], condition.severity, self.seed), kept_in)
        if condition.kind == "clean":
            return clean
        parts = [noisy_frames(frontend, clean, utterances, dataclasses.replace(condition, draw=d), noise, kept_in)
                 for d in range(draws)]
        return parts[0] if draws == 1 else concatenated(parts)

    def dev_posteriors(self, models: dict[str, torch.nn.Module], frontend, dev: FrameData, utterances: list[Utterance],
                       noise: NoiseMixer, cache_dir: str | Path | None = None, combine=None, known=None):
        """condition name -> {model: (N, C) posteriors on `dev` (the clean frames of `utterances`) in that
        condition} (and "combined"), each condition computed once when first asked for: what tuning policies
        other than clean tune on. The noisy features are those evaluation uses (and caches); its first draw. With
        `frontend.fit_batch_utterances` the posteriors are kept in unnamed files beside the cache, memory-mapped.
        `known`: an earlier call's result (without `combine`), whose models' posteriors are taken as they are."""
        by_name = {c.name: c for c in self.conditions()}
        kept = EncoderOutputs(self.hidden_in_memory_gib)
        spill = self.kept_in(cache_dir) if batch_utterances(frontend) else None

        @functools.cache
        def in_condition(name: str) -> dict[str, np.ndarray]:
            clean = in_condition(CLEAN) if name != CLEAN else {}
            if known is not None:  # the models' posteriors computed already: only the combination is new
                post = {m: p for m, p in known(name).items() if m != "combined"}
            else:
                data = self.frames_in(by_name[name], frontend, dev, utterances, noise, cache_dir)
                post = self.model_posteriors(models, data, dev, clean, kept, by_name[name].missing)
                if spill is not None:  # kept for the whole tuning: on disk when memory is to stay bounded
                    post = {m: p if p is clean.get(m) else on_disk(p, spill) for m, p in post.items()}
            if combine is not None:  # labels: dev's in every condition (noise and degradations leave them)
                post["combined"] = clean["combined"] if post.keys() == clean.keys() - {"combined"} and all(
                    post[m] is clean[m] for m in post) else combine(post, condition=name, labels=dev.labels, split="dev")
            return post

        return in_condition

    def model_posteriors(self, models: dict[str, torch.nn.Module], data: FrameData, clean: FrameData,
                         clean_post: dict[str, np.ndarray], kept: EncoderOutputs | None = None,
                         missing: str | None = None) -> dict[str, np.ndarray]:
        """Each model's posteriors on `data`; a model that reads there exactly what it reads in `clean` gets its
        clean posteriors (`clean_post`, when computed) without a forward pass: the same numbers. `kept`: the
        encoders' outputs of the condition before, reused by encoders whose inputs did not change. `missing`: an
        encoder scored as absent (its hidden layer zeros); a model without it is scored as it is."""
        out = {}
        for name, m in models.items():
            if missing is not None and missing in getattr(m, "encoders", {}):
                out[name] = m.posteriors(data, self.batch_size, kept, missing=frozenset({missing}))
            elif missing is not None and missing in getattr(m, "modalities", ()):
                raise ConfigError(f"evaluation.missing_streams: {name} reads {missing} through its encoders "
                                  f"{sorted(m.encoders)}, which have no {missing} stream of their own to leave out")
            else:
                out[name] = clean_post[name] if name in clean_post and same_inputs(m, data, clean) \
                    else posteriors(m, data, self.batch_size, kept)
        return out

    def mean_stream_weights(self, model, data: FrameData, kept: EncoderOutputs, missing: str | None) -> dict:
        """A reliability head's per-frame stream weights (λ_t, or each stream's gate) averaged over the frames of
        a condition, by their labels: how far it trusted each stream there ({} for other models)."""
        weigh = getattr(model, "stream_weights", None)
        absent = frozenset({missing}) if missing is not None and missing in getattr(model, "encoders", {}) else frozenset()
        weights = weigh(data, self.batch_size, kept, missing=absent) if weigh is not None else None
        if weights is None:
            return {}
        means = weights.mean(axis=0, dtype=np.float64).round(4).tolist()
        return {"stream_weights": dict(zip(model.head.weight_labels, means))}

    def check_contrasts(self, scheme: LabelScheme) -> None:
        """Fail before any work when a contrast names a unit the label scheme lacks."""
        for pair in self.contrasts:
            unknown = [u for u in pair if u not in scheme.units]
            if unknown:
                raise ConfigError(f"evaluation.contrasts: {unknown[0]!r} is not a unit of the {scheme.name} scheme "
                                  f"(its units: {' '.join(scheme.units)})")

    def check(self, sources: dict[str, NoiseSource], corpus=None) -> None:
        """Fail before any work when a condition's noise or video degradation is unknown or misconfigured, and
        before training when the corpus cannot give it."""
        check_sources(self.audio_noises, sources, "evaluation.noises", corpus)
        for name in dict.fromkeys([*self.video_degradations, *(p[2] for p in self.pairs)]):
            if name not in self.degradations:
                raise ConfigError(f"evaluation: unknown video degradation {name!r}; the degradations are "
                                  f"{sorted(self.degradations)} (conf/video_degradation/<name>.yaml)")
            self.degradations[name].validate(f"video_degradation.{name}")

    def mixer(self, sources: dict[str, NoiseSource], corpus, sample_rate: int) -> NoiseMixer:
        """What mixes this evaluation's noises into the corpus's utterances (sources checked and prepared)."""
        return NoiseMixer(check_sources(self.audio_noises, sources, "evaluation.noises", corpus), sample_rate, self.seed)

    def evaluate(self, models: dict[str, torch.nn.Module], frontend, utterances: list[Utterance],
                 scheme: LabelScheme, decoders: dict[str, Decoder], combine=None, beside: dict[str, Decoder] | None = None,
                 noise: NoiseMixer | None = None, cache_dir: str | Path | None = None,
                 split: str = "", known=None) -> dict[str, list[dict]]:
        """Scores of each model (and of `combine(posteriors by model)` if given, as "combined") per
        condition, through the fitted `frontend`. `decoders` holds each one's tuned decoder by the same
        names, `beside` the decoders reported beside them (`Decoding.beside`); `noise` mixes the noisy
        conditions' audio. `cache_dir`: the prepared frames' folder of this front-end, where each condition's
        noisy audio features are kept (see `noisy_frames`); None computes them here. `split`: named in the
        progress log ("evaluating 80 dev utterances: clean"). `known`: condition name -> the posteriors of every model
        (and "combined") on these very utterances in that condition, already computed (dev tuning's
        `dev_posteriors`): used as they are where the condition has one noise draw."""
        self.check_contrasts(scheme)
        names = list(models) + (["combined"] if combine is not None else [])
        missing = [n for n in names if n not in decoders]
        if missing:
            raise ValueError(f"no decoder for {missing}")
        if noise is None and self.audio_noises:
            raise ValueError("noisy conditions need their noise: pass noise=evaluator.mixer(sources, corpus, rate)")
        results: dict[str, list[dict]] = {name: [] for name in models}
        if combine is not None:
            results["combined"] = []
        labeller = FrameLabeller(scheme)  # one read of each alignment: frame labels and references
        clean = evaluated_frames(frontend, utterances, labeller, self.kept_in(cache_dir))
        references = [labeller.reference(utt, int(n)) for utt, n in zip(utterances, clean.lengths)]
        clean_post: dict[str, np.ndarray] = {}
        kept = EncoderOutputs(self.hidden_in_memory_gib)
        for condition in self.conditions():
            log.info("evaluating %d %sutterances: %s", len(utterances), f"{split} " if split else "", condition.name)
            draws = 1 if condition.kind == "clean" else self.noise_draws
            data = self.frames_in(condition, frontend, clean, utterances, noise, cache_dir, draws)
            post = dict(known(condition.name)) if known is not None and draws == 1 else {}
            if set(post) != set(names):  # not computed before: computed here
                post = self.model_posteriors(models, data, clean, clean_post, kept, condition.missing)
                if combine is not None:
                    post["combined"] = combine(post, condition=condition.name, labels=data.labels, split=split)
            if condition.is_clean:
                clean_post = {n: post[n] for n in models}
            for name, p in post.items():
                row = {"condition": condition.name, "noise": condition.kind, "snr_db": condition.snr_db}
                if condition.video is not None:
                    row.update(video=condition.video, video_severity=condition.severity)
                if condition.missing is not None:
                    row.update(missing=condition.missing)
                decoder = decoders[name]
                if isinstance(decoder, PerCondition):  # tuned on dev in this very condition
                    decoder = decoder.for_condition(condition.name)
                row.update(score(p, data, references * draws, scheme, decoder, beside, self.contrasts))
                row.update(self.mean_stream_weights(models.get(name), data, kept, condition.missing))
                if draws > 1:  # each utterance once, its draws' counts summed: intervals resample utterances
                    row.update(utterances=len(utterances), noise_draws=draws,
                               by_utterance=pooled_by_utterance(row["by_utterance"]))
                results[name].append(row)
        for name, rows in results.items():
            for warning in degenerate_decodings(name, split, rows, scheme.unit_kind):
                log.warning(warning)
        return results
