"""Fitted front-end and train/dev frame matrices, shared by every run with the same settings.

Keyed by the front-end config, the label scheme and the manifest's content, under
`<cache_dir>/frames-<key>/`: a sweep over fusion heads or seeds fits the front-end once. The test
split is not prepared here: it is touched only by the final evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from avfusion.corpus.types import Corpus
from avfusion.frontends.pipeline import FrameData, FrontEnd
from avfusion.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)

FIT_SPLITS = ("train", "dev")


# settings that do not change the features: where the cache lives, how many processes extract
NOT_IN_KEY = ("cache_dir", "n_jobs")


def frames_key(frontend_config: dict, label_scheme: str, corpus: Corpus) -> str:
    manifest = Path(corpus.root) / "manifest.jsonl"
    corpus_id = hashlib.sha1(manifest.read_bytes()).hexdigest() if manifest.is_file() else \
        hashlib.sha1("\n".join(f"{u.id}|{u.split}|{u.audio}|{u.video}" for u in corpus).encode()).hexdigest()
    settings = {k: v for k, v in frontend_config.items() if k not in NOT_IN_KEY}
    blob = json.dumps({"frontend": settings, "labels": label_scheme, "corpus": corpus_id}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def prepared_frames(frontend: FrontEnd, frontend_config: dict, corpus: Corpus, label_scheme: str,
                    progress: bool = True) -> tuple[FrontEnd, dict[str, FrameData]]:
    """The front-end fitted on train, and train/dev FrameData (memory-mapped), built once."""
    directory = Path(frontend.cache_dir) / f"frames-{frames_key(frontend_config, label_scheme, corpus)}"
    done = directory / "complete"
    if done.is_file():
        log.info("using prepared frames in %s", directory)
        return FrontEnd.load(directory / "frontend.pkl"), {s: FrameData.load(directory / s) for s in FIT_SPLITS}
    frontend.prepare(list(corpus), progress=progress)
    frontend.fit(corpus)
    frontend.save(directory / "frontend.pkl")
    for split in FIT_SPLITS:
        frontend.transform(corpus.split(split), label_scheme).save(directory / split)
    write_text_atomic(directory / "config.json", json.dumps({"frontend": frontend_config, "labels": label_scheme},
                                                            indent=2))
    write_text_atomic(done, "")
    return frontend, {s: FrameData.load(directory / s) for s in FIT_SPLITS}
