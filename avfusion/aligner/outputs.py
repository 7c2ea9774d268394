"""What `avfusion-align` leaves in its folder: a TextGrid per aligned utterance (tiers `words` and `phones`,
the Montreal Forced Aligner's layout), a manifest naming them beside the recordings (what `avfusion-train
data=manifest` reads), and `alignment.json`: the passes, the utterances left out with why, and the words
espeak-ng had to pronounce."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from avfusion.aligner.passes import PassResult
from avfusion.aligner.transcripts import Planned
from avfusion.corpus.alignments import write_textgrid
from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.manifest import write_manifest
from avfusion.corpus.types import Corpus
from avfusion.frames.clock import FRAME_RATE
from avfusion.utils.atomic import write_text_atomic

MANIFEST, SUMMARY = "manifest.jsonl", "alignment.json"


def write_aligned_corpus(corpus: Corpus, planned: dict[str, Planned], result: PassResult, n_frames: dict[str, int],
                         scheme: LabelScheme, out_dir: Path) -> Path:
    """The TextGrids of `result`'s utterances and the manifest of the corpus they make; its path."""
    utterances = []
    for utt in corpus:
        if utt.id not in result.segments:
            continue
        path = out_dir / "alignments" / utt.speaker / f"{utt.id}.TextGrid"
        n = n_frames[utt.id]
        write_textgrid(path, planned[utt.id].tiers(scheme, result.segments[utt.id], n), n / FRAME_RATE)
        utterances.append(replace(utt, alignment=path.resolve(), labels="phones", alignment_key=None,
                                  alignment_tier=None, alignment_format=None))
    manifest = out_dir / MANIFEST
    write_manifest(replace(corpus, utterances=utterances), manifest)
    return manifest


def write_summary(out_dir: Path, corpus: Corpus, results: list[PassResult], guessed: dict[str, tuple[str, ...]]
                  ) -> dict:
    final = results[-1]
    summary = {"corpus": corpus.name, "utterances": len(corpus), "aligned": len(final.segments),
               "manifest": MANIFEST, "unaligned": final.unaligned, "passes": [r.stats for r in results],
               "guessed_pronunciations": {w: " ".join(p) for w, p in sorted(guessed.items())}}
    write_text_atomic(out_dir / SUMMARY, json.dumps(summary, indent=1))
    return summary
