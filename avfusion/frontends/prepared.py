"""Fitted front-end and train/dev frame matrices, shared by every run with the same settings.

Keyed by the front-end config, the label scheme and the corpus's utterances, under
`<cache_dir>/frames-<key>/`: a sweep over fusion heads or seeds fits the front-end once. The test
split is not prepared here: it is touched only by the final evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Corpus
from avfusion.frontends.pipeline import FrameData, FrontEnd
from avfusion.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)

FIT_SPLITS = ("train", "dev")


# settings that do not change the features: where the cache lives, how many processes extract
NOT_IN_KEY = ("cache_dir", "n_jobs")


def frames_key(frontend_config: dict, scheme: LabelScheme, corpus: Corpus) -> str:
    # the utterances themselves (not a manifest's bytes): a corpus with utterances left out is another corpus
    corpus_id = hashlib.sha1("\n".join(f"{u.id}|{u.speaker}|{u.split}|{u.audio}|{u.video}|{u.alignment}|"
                                       f"{u.alignment_key}|{u.labels}" for u in corpus).encode()).hexdigest()
    settings = {k: v for k, v in frontend_config.items() if k not in NOT_IN_KEY}
    labels = [scheme.name, *scheme.classes]  # a word scheme's classes are the corpus's vocabulary
    blob = json.dumps({"frontend": settings, "labels": labels, "corpus": corpus_id}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def prepared_frames(frontend: FrontEnd, frontend_config: dict, corpus: Corpus, scheme: LabelScheme,
                    progress: bool = True) -> tuple[FrontEnd, dict[str, FrameData]]:
    """The front-end fitted on train, and train/dev FrameData (memory-mapped), built once."""
    directory = Path(frontend.cache_dir) / f"frames-{frames_key(frontend_config, scheme, corpus)}"
    done = directory / "complete"
    if done.is_file():
        log.info("using prepared frames in %s", directory)
        return FrontEnd.load(directory / "frontend.pkl"), {s: FrameData.load(directory / s) for s in FIT_SPLITS}
    frontend.prepare(list(corpus), progress=progress)
    frontend.fit(corpus)
    frontend.save(directory / "frontend.pkl")
    for split in FIT_SPLITS:
        frontend.transform(corpus.split(split), scheme).save(directory / split)
    write_text_atomic(directory / "config.json", json.dumps({"frontend": frontend_config, "labels": scheme.name},
                                                            indent=2))
    write_text_atomic(done, "")
    return frontend, {s: FrameData.load(directory / s) for s in FIT_SPLITS}
