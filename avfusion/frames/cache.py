"""Fitted front-end and train/dev frame matrices, shared by every run with the same settings.

Keyed by the front-end config, the label scheme and the corpus's utterances, under
`<cache_dir>/frames-<key>/`: a sweep over fusion heads or seeds fits the front-end once. What the
front-end learned is kept as arrays (`frontend.npz`), never as a pickle. The test split is not
prepared here: it is touched only by the final evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avfusion.corpus.labels import LabelScheme, corpus_scheme
from avfusion.corpus.types import Corpus
from avfusion.frames.data import FrameData
from avfusion.frames.labelling import Alignments, FrameLabeller
from avfusion.frames.writer import save_split
from avfusion.utils.atomic import atomic_path, write_text_atomic
from avfusion.utils.stamp import file_stamp

log = logging.getLogger(__name__)

FIT_SPLITS = ("train", "dev")
FORMAT = 2  # 2: the front-end as arrays (frontend.npz); 1 was a pickle

# settings that do not change the features: where the cache lives, how many processes extract, how the frames are
# stored in shards (the same rows whatever the shards: a split is read as one)
NOT_IN_KEY = ("cache_dir", "n_jobs", "frame_shard_utterances")
# settings whose null is what every front-end did before they existed (so older prepared frames keep their key)
NOT_IN_KEY_WHEN_NULL = ("fit_batch_utterances", "store_dtype")


def frontend_settings(frontend_config: dict) -> dict:
    """The settings of a front-end config that change its features."""
    return {k: v for k, v in frontend_config.items()
            if k not in NOT_IN_KEY and not (k in NOT_IN_KEY_WHEN_NULL and v is None)}


def utterances_identity(utterances) -> str:
    """A digest of utterances as they are (not a manifest's bytes): a corpus with utterances left out is another
    corpus, and so is one regenerated in place (each file's size and modification time, as the feature store keys)."""
    def files(u) -> str:
        return "|".join(file_stamp(p) if Path(p).is_file() else "-" for p in (u.audio, u.video, u.alignment)
                        if p is not None)

    return hashlib.sha1("\n".join(f"{u.id}|{u.speaker}|{u.split}|{u.audio}|{u.video}|{u.alignment}|"
                                  f"{u.alignment_key}|{u.labels}|{files(u)}"
                                  + (f"|{u.alignment_tier}" if u.alignment_tier else "")
                                  + (f"|{u.alignment_format}" if u.alignment_format else "")
                                  for u in utterances).encode()).hexdigest()


def settings_key(frontend_config: dict, scheme: LabelScheme, utterances) -> str:
    """A key of what a front-end config, label scheme and utterances give (the prepared frames, a shard's statistics)."""
    labels = [scheme.name, *scheme.classes]  # a word scheme's classes are the corpus's vocabulary
    blob = json.dumps({"frontend": frontend_settings(frontend_config), "labels": labels,
                       "corpus": utterances_identity(utterances), "format": FORMAT}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def save_frontend(frontend, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **frontend.state_dict())


def load_frontend(frontend, path: str | Path):
    """`frontend` (built from its config) with the fitted arrays saved at `path`."""
    with np.load(path, allow_pickle=False) as arrays:
        return frontend.load_state_dict(dict(arrays))


def fit_on_train(frontend, corpus: Corpus, alignments: Alignments | None = None, gathered: dict | None = None):
    """Fit `frontend` on the training split with the frame labels of its `fit_labels` scheme (`gathered`: see
    `FrontEnd.fit`)."""
    train = corpus.split("train")
    if not train:
        raise ValueError(f"{corpus.name}: no training utterances to fit the front-end on")
    return frontend.fit(train, fit_labeller(frontend, corpus, alignments).labels, gathered)


def fit_labeller(frontend, corpus: Corpus, alignments: Alignments | None = None) -> FrameLabeller:
    """The labels `frontend`'s fitted steps (the LDAs) learn from: its `fit_labels` scheme of the corpus."""
    return FrameLabeller(corpus_scheme(frontend.fit_labels, corpus), alignments or Alignments())


def frames_directory(frontend_config: dict, scheme: LabelScheme, corpus: Corpus) -> Path:
    """Where the prepared frames of these settings live."""
    return Path(frontend_config["cache_dir"]) / f"frames-{settings_key(frontend_config, scheme, corpus)}"


def prepared_frames(frontend, frontend_config: dict, corpus: Corpus, scheme: LabelScheme,
                    progress: bool = True, gathered: Callable[[Alignments], dict] | None = None
                    ) -> tuple[object, dict[str, FrameData]]:
    """The front-end fitted on train, and train/dev FrameData (memory-mapped), built once. `gathered(alignments)`:
    the statistics the front-end is fitted from (`FrontEnd.fit`), e.g. merged from shards; asked for only when
    the frames are built."""
    directory = frames_directory(frontend_config, scheme, corpus)
    done = directory / "complete"
    if done.is_file():
        log.info("using prepared frames in %s", directory)
        return load_frontend(frontend, directory / "frontend.npz"), {s: FrameData.load(directory / s)
                                                                     for s in FIT_SPLITS}
    frontend.prepare(list(corpus), progress=progress)
    alignments = Alignments()  # each alignment read once, for the fit labels and the scheme's labels
    fit_on_train(frontend, corpus, alignments, gathered(alignments) if gathered is not None else None)
    save_frontend(frontend, directory / "frontend.npz")
    labeller = FrameLabeller(scheme, alignments)
    for split in FIT_SPLITS:
        save_split(frontend, corpus.split(split), labeller, directory / split)
    write_text_atomic(directory / "config.json", json.dumps({"frontend": frontend_config, "labels": scheme.name},
                                                            indent=2))
    write_text_atomic(done, "")
    return frontend, {s: FrameData.load(directory / s) for s in FIT_SPLITS}
