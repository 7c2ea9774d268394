"""Config values checked before any work: a wrong type, a value out of range or not among the choices
is a `ConfigError` naming the key, what it got and what it takes, before a corpus is read or a model
trained (`seed=abc`, `trainer.max_epochs=0`, `evaluation.noises=[brown]` fail at once).

This table holds the values no class of ours owns: the top-level keys, the trainer's epochs (a
Lightning class), the split sizes every corpus adapter takes and the front-end's jobs (checked before
validation, which inherits them), and that the noise names a config uses exist. A class checks its own
settings when it is built, before any work, with the same rules and wording (`avfusion.utils.rules`:
`TrainingSettings`, `Evaluator`, the decodings, the noise sources, the fusion heads, the synthetic
corpus). Only the keys a composed config has are checked, so every command runs the table over its own.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from avfusion.corpus.labels import SCHEME_NAMES
from avfusion.corpus.validation import ON_ERROR
from avfusion.errors import ConfigError
from avfusion.frontends.pipeline import STORE_DTYPES
from avfusion.models.ensemble import RULES as COMBINATION_RULES
from avfusion.utils.rules import Rule, choice, integer, number, optional, shown


RULES: dict[str, Rule] = {
    "seed": integer(),
    "on_error": choice(ON_ERROR),
    "label_scheme": choice(SCHEME_NAMES),
    "cd_min_frames": integer(1),
    "trainer.max_epochs": integer(1),
    "frontend.n_jobs": integer(1),  # before the keys interpolated from it
    "max_duration_mismatch_s": number(0),
    "validation_jobs": integer(1),
    "shards": optional(integer(1)),  # avfusion-prepare
    "shard": optional(integer(0)),
    "frontend.max_av_mismatch_s": number(0),
    "frontend.store_dtype": optional(choice([d for d in STORE_DTYPES if d])),  # before the corpus is made
    "frontend.fit_batch_utterances": optional(integer(1)),
    "frontend.frame_shard_utterances": optional(integer(1)),
    "data.n_dev_speakers": integer(1),
    "data.n_test_speakers": integer(1),
    "rule": choice(COMBINATION_RULES),  # avfusion-evaluate
    "chunk_seconds": optional(number(above=0)),  # avfusion-predict
    "rois": integer(0),
    "figure_start_s": number(0),
    "figure_seconds": number(0),
}

_ABSENT = object()
NOISE_NAMES = ("evaluation.noises", "train_noise.noises")


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first key of RULES whose value the rule refuses (keys left `???` are
    reported where they are used)."""
    for key, rule in RULES.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if value is _ABSENT or value is None and _is_missing(cfg, key):
            continue
        if isinstance(value, DictConfig):
            raise ConfigError(f"{key}: expected a value, got a group of settings")
        wanted = rule(value)
        if wanted:
            raise ConfigError(f"{key}={shown(value)}: must be {wanted}")
    check_noise_names(cfg)
    check_block_shuffling(cfg)


def check_block_shuffling(cfg: DictConfig) -> None:
    """Frames shuffled within blocks are a single-process order: distributed training replaces the sampler with
    its own over the whole split, which would read every rank's frames sequentially, unshuffled."""
    strategy = str(OmegaConf.select(cfg, "trainer.strategy", default="") or "")
    if OmegaConf.select(cfg, "training.shuffle_block_frames", default=None) and "ddp" in strategy:
        raise ConfigError(f"training.shuffle_block_frames: not with distributed training (trainer.strategy={strategy}); "
                          "leave it null (every frame at random) or train in one process")


def check_noise_names(cfg: DictConfig) -> None:
    """Conditions and multi-condition training name noise sources: each must be an entry of `noise`."""
    library = OmegaConf.select(cfg, "noise", default=None)
    known = list(library) if isinstance(library, DictConfig) else []
    for key in NOISE_NAMES:
        names = OmegaConf.select(cfg, key, default=None)
        unknown = [n for n in names or [] if n not in known]
        if unknown:
            raise ConfigError(f"{key}={shown(names)}: must be a list of noise sources, each one of {known} (not "
                              f"{unknown[0]!r}); add your own with +noise=<name> (conf/noise/<name>.yaml)")


def _is_missing(cfg: DictConfig, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return isinstance(node, DictConfig) and OmegaConf.is_missing(node, leaf)
