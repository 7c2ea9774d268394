"""The corpus a command works on: the `data` config loaded and validated (shared by the entry points)."""

from __future__ import annotations

import sys

from hydra.utils import instantiate
from omegaconf import DictConfig

from avfusion.corpus.types import Corpus
from avfusion.corpus.validation import ValidationReport, checked_corpus


def load_corpus(cfg: DictConfig) -> tuple[Corpus, ValidationReport]:
    """Load `cfg.data` and validate it: refuse it, or leave out bad utterances (`cfg.on_error`)."""
    corpus = instantiate(cfg.data, _convert_="all").load()
    return checked_corpus(corpus, on_error=cfg.on_error, tolerance_s=cfg.max_duration_mismatch_s,
                          n_jobs=cfg.validation_jobs, progress=sys.stderr.isatty(), cache_dir=cfg.frontend.cache_dir)
