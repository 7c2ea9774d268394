"""Corpus validation: every problem of every utterance, found before any feature is extracted.

Per utterance: the files exist and decode, the audio holds only finite samples and is not silent
(mean power above SILENT_DBFS), the audio, video and alignment durations agree, the labels are known
(phones after folding). Across the corpus: no speaker in two splits, every split populated.
Training refuses a corpus with problems (`on_error=raise`) or leaves out the utterances that have them
(`on_error=skip`) and says so in its report; a corpus-level problem is never skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from avfusion.corpus.alignments import AlignmentError, utterance_labels
from avfusion.corpus.phones import SIL
from avfusion.corpus.types import SPLITS, Corpus, CorpusError, Utterance
from avfusion.media import AudioError, VideoError, decode_audio, probe_video
from avfusion.utils.atomic import write_text_atomic
from avfusion.utils.progress import parallel_map

log = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")
# a recording whose mean power is below this is silent (16-bit dither alone is about -101 dBFS; quiet speech
# with long pauses stays above -50 dBFS): a bad export, a muted channel, a wrong track
SILENT_DBFS = -60.0
# what validation checks (2: non-finite and silent audio; 3: alignments with nothing to score): a remembered
# validation of other checks is redone
CHECKS = 3


@dataclass(frozen=True)
class Problem:
    file: str  # the file at fault (the corpus name for corpus-level problems)
    what: str
    utterance: str | None = None  # None: a problem of the corpus, not of one utterance


@dataclass
class ValidationReport:
    corpus: str
    n_utterances: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_utterances(self) -> list[str]:
        return sorted({p.utterance for p in self.problems if p.utterance is not None})

    @property
    def corpus_problems(self) -> list[Problem]:
        return [p for p in self.problems if p.utterance is None]

    def summary(self) -> str:
        if self.ok:
            return f"{self.corpus}: {self.n_utterances} utterances, no problems"
        lines = [f"{self.corpus}: {len(self.problems)} problem(s) in {len(self.bad_utterances)} of "
                 f"{self.n_utterances} utterances" + (" and in the corpus" if self.corpus_problems else "")]
        lines += [f"  {p.utterance or '(corpus)'}: {'' if p.file == p.utterance else f'{p.file}: '}{p.what}"
                  for p in self.problems]  # an utterance-level problem names the utterance once
        return "\n".join(lines)


class InvalidCorpusError(CorpusError):
    pass


@dataclass(frozen=True)
class UtteranceCheck:
    """Checks of one utterance (a picklable callable, run in parallel)."""

    tolerance_s: float = 0.12
    vocabulary: tuple[str, ...] | None = None  # a closed word vocabulary (GRID): other words are errors
    alignments: bool = True  # False: the recordings only (a corpus to align from its text, avfusion-align)

    def __call__(self, utt: Utterance) -> list[Problem]:
        problems: list[Problem] = []

        def problem(file, what):
            problems.append(Problem(str(file), what, utt.id))

        durations: dict[str, float] = {}
        if utt.audio is None and utt.video is None:
            problem(utt.id, "neither audio nor video")
        for kind, path in (("audio", utt.audio), ("video", utt.video)):
            if path is None:
                continue
            if not Path(path).is_file():
                problem(path, f"{kind} file does not exist")
                continue
            try:
                durations[kind] = self._duration(kind, Path(path))
            except (AudioError, VideoError) as err:
                problem(path, _without_source(err, path))
        if self.alignments and utt.alignment is None:
            problem(utt.id, "no alignment" + (" but a transcript: align the corpus from its text with avfusion-align "
                                              "(docs/alignment.md), then train on the manifest it writes"
                                              if utt.text.strip() else ""))
        elif self.alignments:
            try:
                segments = utterance_labels(utt)
                durations["alignment"] = segments[-1].end
                if all(s.label == SIL for s in segments):  # its error rate would divide by zero
                    problem(utt.alignment, "alignment holds only silence: nothing to score")
                if self.vocabulary is not None and utt.labels == "words":
                    unknown = sorted({s.label for s in segments} - set(self.vocabulary) - {SIL})
                    if unknown:
                        problem(utt.alignment, f"{len(unknown)} word(s) outside the corpus's vocabulary: {unknown}")
            except AlignmentError as err:
                problem(utt.alignment, _without_source(err, utt.alignment))
        if "audio" in durations and "video" in durations and \
                abs(durations["audio"] - durations["video"]) > self.tolerance_s:
            problem(utt.video, f"video lasts {durations['video']:.3f} s but the audio {durations['audio']:.3f} s "
                               f"(tolerance {self.tolerance_s} s)")
        # the alignment belongs to the audio (to the video when there is no audio)
        recording = durations.get("audio") if utt.audio is not None else durations.get("video")
        if recording is not None and "alignment" in durations and durations["alignment"] > recording + self.tolerance_s:
            problem(utt.alignment, f"alignment ends at {durations['alignment']:.3f} s, after the recording "
                                   f"({recording:.3f} s; tolerance {self.tolerance_s} s)")
        return problems

    def _duration(self, kind: str, path: Path) -> float:
        if kind == "audio":
            samples, rate = decode_audio(path)
            level = 10 * np.log10(max(float(np.mean(np.square(samples, dtype=np.float64))), 1e-30))
            if level < SILENT_DBFS:
                raise AudioError(f"audio is silent or nearly so (level {level:.0f} dBFS over the whole file, "
                                 f"below {SILENT_DBFS} dBFS)")
            return len(samples) / rate
        probe = probe_video(path)
        # MPEG program streams only estimate their frame count: a shortfall within tolerance is not an error
        if probe.announced > 0 and (probe.announced - probe.decoded) / probe.fps > self.tolerance_s:
            raise VideoError(f"truncated video: the container announces {probe.announced} frames, "
                             f"{probe.decoded} decode")
        return probe.decoded / probe.fps


def _without_source(err: Exception, path) -> str:
    """The error's message without the file it starts with (the problem names the file already)."""
    message = str(err)
    return message.split(": ", 1)[-1] if message.startswith(str(path)) else message


def corpus_problems(corpus: Corpus) -> list[Problem]:
    """Speakers in more than one split; splits without utterances."""
    problems = []
    counts = Counter((u.speaker, u.split) for u in corpus)
    for speaker, splits in corpus.shared_speakers().items():
        listing = ", ".join(f"{s} ({counts[speaker, s]} utterances)" for s in splits)
        problems.append(Problem(corpus.name, f"speaker {speaker} is in more than one split: {listing}"))
    for split in SPLITS:
        if not corpus.split(split):
            problems.append(Problem(corpus.name, f"the {split} split has no utterances"))
    return problems


def validate_corpus(corpus: Corpus, tolerance_s: float = 0.12, n_jobs: int = 1, progress: bool = True,
                    alignments: bool = True, utterances: list[Utterance] | None = None) -> ValidationReport:
    """The files of `utterances` (default: every utterance) checked, and the corpus's own problems (splits,
    speakers) on all of it."""
    check = UtteranceCheck(tolerance_s, vocabulary=corpus.vocabulary, alignments=alignments)
    found = parallel_map(check, list(corpus) if utterances is None else utterances, n_jobs=n_jobs, desc="validating",
                         progress=progress)
    return ValidationReport(corpus.name, len(corpus),
                            [p for ps in found for p in ps] + corpus_problems(corpus))


def fingerprint(corpus: Corpus, tolerance_s: float, alignments: bool = True,
                utterances: list[Utterance] | None = None) -> str:
    """Changes when an utterance, a file's size or modification time, or the settings change. With
    `utterances` (a part whose files are checked): their files, and the corpus's utterances without files."""
    def stat(path):
        try:
            st = Path(path).stat()
            return f"{st.st_size}:{st.st_mtime_ns}"
        except (OSError, TypeError):
            return "-"

    h = hashlib.sha1(json.dumps([CHECKS, tolerance_s, corpus.vocabulary] + ([] if alignments else ["recordings"])
                                ).encode())
    for u in corpus if utterances is None else utterances:
        h.update(f"{u}|{stat(u.audio)}|{stat(u.video)}|{stat(u.alignment)}\n".encode())
    if utterances is not None:
        h.update(("part of\n" + "".join(f"{u}\n" for u in corpus)).encode())
    return h.hexdigest()[:16]


def cached_validation(corpus: Corpus, tolerance_s: float, n_jobs: int, progress: bool,
                      cache_dir: str | Path | None, alignments: bool = True,
                      utterances: list[Utterance] | None = None) -> ValidationReport:
    """`validate_corpus`, remembered under `cache_dir` for an unchanged corpus (every run of a sweep
    would otherwise decode every file again)."""
    if cache_dir is None:
        return validate_corpus(corpus, tolerance_s, n_jobs, progress, alignments, utterances)
    path = Path(cache_dir) / "validation" / f"{fingerprint(corpus, tolerance_s, alignments, utterances)}.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        return ValidationReport(stored["corpus"], stored["n_utterances"], [Problem(**p) for p in stored["problems"]])
    report = validate_corpus(corpus, tolerance_s, n_jobs, progress, alignments, utterances)
    write_text_atomic(path, json.dumps(asdict(report)))
    return report


def checked_corpus(corpus: Corpus, on_error: str = "raise", tolerance_s: float = 0.12, n_jobs: int = 1,
                   progress: bool = True, cache_dir: str | Path | None = None, alignments: bool = True,
                   parts: list[list[Utterance]] | None = None) -> tuple[Corpus, ValidationReport]:
    """The corpus to train on: unchanged if valid; without its bad utterances if `on_error=skip`. Without
    `alignments`, its recordings only are checked (a corpus the aligner reads). `parts` (shards of the
    corpus, `avfusion.frontends.shards`): only their utterances' files are checked, each part validated and
    cached on its own, so a shard's job checks its own files and the finishing step reads what the jobs
    found."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, not {on_error!r}")
    if parts is None:
        report = cached_validation(corpus, tolerance_s, n_jobs, progress, cache_dir, alignments)
    else:
        found = [cached_validation(corpus, tolerance_s, n_jobs, progress, cache_dir, alignments, part) for part in parts]
        report = ValidationReport(corpus.name, len(corpus), [p for r in found for p in r.problems if p.utterance]
                                  + corpus_problems(corpus))
    if report.ok:
        return corpus, report
    if on_error == "raise" or report.corpus_problems:
        why = "" if on_error == "raise" else " (problems of the corpus itself cannot be skipped)"
        raise InvalidCorpusError(f"invalid corpus{why}; fix it, or run with on_error=skip to leave out "
                                 f"the bad utterances:\n{report.summary()}")
    bad = set(report.bad_utterances)
    log.warning("leaving out %d invalid utterance(s) (on_error=skip):\n%s", len(bad), report.summary())
    kept = replace(corpus, utterances=[u for u in corpus if u.id not in bad])
    emptied = [p.what for p in corpus_problems(kept) if p.what.endswith("has no utterances")]
    if emptied:  # a run that trains and then has nothing to score loses its work
        raise InvalidCorpusError(f"on_error=skip leaves nothing usable ({'; '.join(emptied)}):\n{report.summary()}")
    return kept, report
