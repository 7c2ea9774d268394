"""The aligner's passes: a flat start, then rounds of training a frame DNN on the current alignment and
realigning every utterance with it.

Pass 0 is the flat start (`avfusion.decoding.align.flat_start`: each utterance's frames shared evenly among
its phones, with silence at both ends). Pass k >= 1 fits the front-end (CMVN, LDA on states) and trains the
configured model (audio-only by default) on the training split's pass k - 1 alignment, as `avfusion-train`
trains (dev for early stopping), then forced-aligns every utterance of every split with Viterbi through the
linear HMM of its own transcript: the decoder's 3-state phones, priors and durations from the same training
alignment, optional silence at the ends and where words meet. Dev and test utterances are aligned by the
model, never trained on.

A pass is kept in `<work>/passes/<k>/alignment.json` (written atomically, last): a rerun with `resume` skips the
passes that are there, and the training inside an unfinished pass resumes from its checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from avfusion.aligner.transcripts import Planned
from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Corpus, Segment, Utterance
from avfusion.decoding.align import align_positions, flat_start
from avfusion.decoding.framewise import DecodedUnit
from avfusion.decoding.hybrid import HybridDecoder, ViterbiSettings
from avfusion.frames.cache import fit_on_train
from avfusion.frames.data import FrameData, concatenated, frames_of
from avfusion.frames.labelling import Alignments, FrameLabeller
from avfusion.training.stages import TrainSettings
from avfusion.errors import UserError
from avfusion.utils.atomic import write_text_atomic
from avfusion.utils.progress import parallel_map
from avfusion.utils.rules import check_fields, integer, number, optional

log = logging.getLogger(__name__)

Positions = list[DecodedUnit]  # an utterance's alignment: (position of its transcript, first frame, end frame)


@dataclass
class AlignerSettings:
    """conf/aligner/default.yaml: how many passes, and how the lexicon reads the transcripts."""

    passes: int  # rounds of training and realigning after the flat start
    folds: int  # training speakers in this many groups, each aligned by a model trained on the others
    acoustic_scale: float  # scaled log-likelihoods against the HMM's transitions when realigning
    lexicon: str | None  # a user lexicon file (WORD PH1 PH2 ...) over CMUdict and espeak-ng
    letter_to_sound: bool  # espeak-ng pronounces the words no lexicon has (listed in alignment.json)
    spell_letters: bool  # a one-letter word is the letter's name (GRID's fourth word)
    edge_silence: bool  # the flat start gives the ends of each recording to silence

    def __post_init__(self) -> None:
        boolean = lambda v: None if isinstance(v, bool) else "true or false"  # noqa: E731
        check_fields(self, "aligner", {
            "passes": integer(1), "folds": integer(1), "acoustic_scale": number(above=0),
            "lexicon": optional(lambda v: None if isinstance(v, str) and Path(v).is_file()
                                else "an existing lexicon file (WORD PH1 PH2 ... per line)"),
            "letter_to_sound": boolean, "spell_letters": boolean, "edge_silence": boolean})


@dataclass
class PassResult:
    """One pass's alignment of every utterance it could align, and why the others could not be."""

    segments: dict[str, Positions]
    unaligned: dict[str, str]
    stats: dict

    def save(self, path: Path) -> None:
        blob = {"segments": {u: [[s.unit, s.start, s.end] for s in segs] for u, segs in self.segments.items()},
                "unaligned": self.unaligned, "stats": self.stats}
        write_text_atomic(path, json.dumps(blob, separators=(",", ":")))

    @classmethod
    def load(cls, path: Path) -> "PassResult":
        blob = json.loads(path.read_text())
        return cls({u: [DecodedUnit(*s) for s in segs] for u, segs in blob["segments"].items()}, blob["unaligned"],
                   blob["stats"])


@dataclass
class Realigner:
    """Forced alignment of one utterance's log-likelihoods through its transcript (a picklable callable,
    run in parallel over utterances)."""

    log_stay: np.ndarray
    log_move: np.ndarray

    def __call__(self, item: tuple[np.ndarray, Planned]) -> Positions | str:
        loglik, planned = item
        try:
            return align_positions(loglik, planned.transcript, self.log_stay, self.log_move)[0]
        except ValueError as err:  # too few frames for its phones, or no path: listed, the others kept
            return str(err)


@dataclass
class Aligner:
    """The passes over a corpus (the module's note). `build_frontend()` gives an unfitted front-end,
    `build_model()` (head, encoder spec) for a fresh model, `train(head, spec, frames, scheme, settings)` trains
    it (`avfusion.training.stages.train_model`), `train_settings(run_dir, shaping)` the settings of a pass."""

    settings: AlignerSettings
    corpus: Corpus
    planned: dict[str, Planned]
    n_frames: dict[str, int]
    scheme: LabelScheme
    viterbi: ViterbiSettings
    build_frontend: Callable[[], object]
    build_model: Callable[[], tuple[object, object]]
    train: Callable
    train_settings: Callable[[Path, dict], TrainSettings]
    posteriors: Callable[[object, FrameData], np.ndarray]
    n_jobs: int = 1
    progress: bool = False

    def run(self, work_dir: Path, resume: bool = False) -> list[PassResult]:
        """Every pass's result, the flat start first; finished passes are loaded when `resume`."""
        self.folds_of(self.corpus.split("train"))  # enough training speakers for the folds, before any work
        results = [self.flat()]
        if not resume and (work_dir / "passes").exists():
            shutil.rmtree(work_dir / "passes")
        for k in range(1, self.settings.passes + 1):
            path = work_dir / "passes" / str(k) / "alignment.json"
            if path.is_file():
                results.append(PassResult.load(path))
                log.info("pass %d/%d: finished earlier (%s)", k, self.settings.passes, path)
                continue
            started = time.perf_counter()
            result = self.realigned(results[-1], path.parent, k)
            result.stats["seconds"] = round(time.perf_counter() - started, 1)
            result.save(path)
            results.append(result)
            log.info("pass %d/%d: %s", k, self.settings.passes, describe(result))
        return results

    def flat(self) -> PassResult:
        segments, unaligned = {}, {}
        for utt_id, planned in self.planned.items():
            try:
                segments[utt_id] = flat_start(self.n_frames[utt_id], planned.transcript, self.viterbi.states_per_unit,
                                              self.settings.edge_silence)
            except ValueError as err:
                unaligned[utt_id] = str(err)
        return PassResult(segments, unaligned, {"pass": 0, "aligned": len(segments), "unaligned": len(unaligned)})

    def phone_segments(self, utt: Utterance, positions: Positions) -> list[Segment]:
        """An alignment as the phone segments frame labelling reads (seconds on the frame clock)."""
        return self.planned[utt.id].tiers(self.scheme, positions, self.n_frames[utt.id])["phones"]

    def labelled(self, previous: PassResult) -> tuple[Corpus, object, FrameLabeller]:
        """The utterances `previous` aligned, a front-end fitted on their training split and a labeller of their
        frames, from that alignment."""
        aligned = [u for u in self.corpus if u.id in previous.segments]
        corpus = replace(self.corpus, utterances=aligned)
        alignments = Alignments({u.id: self.phone_segments(u, previous.segments[u.id]) for u in aligned})
        return corpus, fit_on_train(self.build_frontend(), corpus, alignments), FrameLabeller(self.scheme, alignments)

    def realigned(self, previous: PassResult, pass_dir: Path, k: int) -> PassResult:
        """Train on the training split's `previous` alignment, realign every utterance with the model(s)."""
        corpus, frontend, labeller = self.labelled(previous)
        folds = self.folds_of(corpus.split("train"))
        held_out = [frames_of(frontend, fold, labeller) for fold in folds]
        others = {split: frames_of(frontend, corpus.split(split), labeller) for split in ("dev", "test")}
        digest = hashlib.sha1(json.dumps({u: [[s.unit, s.start, s.end] for s in segs]
                                          for u, segs in sorted(previous.segments.items())}).encode()).hexdigest()
        posteriors: dict[str, list[np.ndarray]] = {}
        for f in range(len(folds)):  # each training utterance aligned by a model that never saw its speaker
            train = concatenated([d for g, d in enumerate(held_out) if g != f]) if len(folds) > 1 else held_out[0]
            head, spec = self.build_model()
            settings = self.train_settings(pass_dir / f"model{f}" if len(folds) > 1 else pass_dir / "model",
                                           {"aligner_pass": k, "aligner_fold": f, "alignment": digest})
            model = self.train(head, spec, {"train": train, "dev": others["dev"]}, self.scheme, settings)
            for data in (held_out[f], others["dev"], others["test"]):
                post = self.posteriors(model, data)
                for u, utt_id in enumerate(data.ids):
                    posteriors.setdefault(utt_id, []).append(post[data.utterance(u)])
        train = concatenated(held_out)
        decoder = HybridDecoder.fit(self.viterbi, self.scheme, train.labels, train.offsets, [])
        # dev and test: the folds' models' posteriors averaged
        return self.forced({i: decoder.state_loglik(np.mean(p, axis=0)) for i, p in posteriors.items()}, decoder,
                           previous, k)

    def forced(self, logliks: dict[str, np.ndarray], decoder: HybridDecoder, previous: PassResult, k: int
               ) -> PassResult:
        """Pass k: every utterance of `logliks` ((T, U, S) state log-likelihoods at acoustic scale 1) aligned
        through its transcript with `decoder`'s transitions."""
        ids = list(logliks)
        items = [(self.settings.acoustic_scale * logliks[i], self.planned[i]) for i in ids]
        found = parallel_map(Realigner(decoder.log_stay, decoder.log_move), items, n_jobs=self.n_jobs,
                             desc=f"aligning (pass {k})", progress=self.progress)
        segments = {i: f for i, f in zip(ids, found) if not isinstance(f, str)}
        unaligned = {**previous.unaligned, **{i: f for i, f in zip(ids, found) if isinstance(f, str)}}
        stats = {"pass": k, "aligned": len(segments), "unaligned": len(unaligned),
                 **boundary_shift(previous.segments, segments)}
        return PassResult(segments, unaligned, stats)

    def folds_of(self, train: list[Utterance]) -> list[list[Utterance]]:
        """The training utterances in `settings.folds` groups of whole speakers (by sorted speaker, in turn)."""
        speakers = sorted({u.speaker for u in train})
        if len(speakers) < self.settings.folds:
            raise UserError(f"aligner.folds={self.settings.folds}: the training split has {len(speakers)} speaker(s); "
                            "folds need one speaker each at least (aligner.folds=1 trains one model on all)")
        fold = {s: i % self.settings.folds for i, s in enumerate(speakers)}
        return [[u for u in train if fold[u.speaker] == f] for f in range(self.settings.folds)]

def boundary_shift(before: dict[str, Positions], after: dict[str, Positions]) -> dict:
    """How far a pass moved the phone boundaries of the utterances aligned in both (the same positions kept):
    mean absolute shift in ms and the share moved more than 20 ms, the aligner's sign of convergence."""
    shifts = []
    for utt_id, segs in after.items():
        old = {s.unit: s.start for s in before.get(utt_id, [])}
        shifts += [abs(s.start - old[s.unit]) for s in segs[1:] if s.unit in old]
    if not shifts:
        return {"boundaries_compared": 0}
    shifts_ms = 10.0 * np.asarray(shifts, float)
    return {"boundaries_compared": len(shifts), "mean_shift_ms": round(float(shifts_ms.mean()), 2),
            "moved_over_20ms": round(float((shifts_ms > 20).mean()), 4)}


def describe(result: PassResult) -> str:
    s = result.stats
    moved = (f"; boundaries moved {s['mean_shift_ms']:.1f} ms on average, {100 * s['moved_over_20ms']:.1f}% by more "
             f"than 20 ms" if s.get("boundaries_compared") else "")
    return f"{s['aligned']} utterances aligned, {s['unaligned']} not{moved} ({s.get('seconds', 0):.0f} s)"

