"""How a run's stages are trained (`conf/training/default.yaml`): batches, the optimiser's step size and
decay, early stopping's patience, resume and the shared stage cache. The YAML holds the values; the
checks live here and run when the config is instantiated, before any work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from avfusion.training.datamodule import BATCHING
from avfusion.utils.rules import check_fields, choice, integer, number, optional

CHOICES_OF_BATCHING = ("auto",) + BATCHING


@dataclass
class TrainingSettings:
    batch_size: int  # frames per batch (batching=frames)
    lr: float
    weight_decay: float
    patience: int  # epochs without a better dev frame error before a stage stops
    resume: bool  # continue unfinished stages from last.ckpt, load finished ones
    encoder_cache_dir: str | None  # pre-trained encoders shared by the runs of a sweep; None: off
    batching: str  # auto (frames; whole utterances for sequence heads/encoders) | frames | utterances | chunks
    chunk_frames: int  # chunks: at most this many frames of one utterance per item
    sequences_per_batch: int  # utterances / chunks: items per batch
    head_seed: int | None  # the fusion stage's seed on pre-trained encoders; None: the run's seed
    modality_dropout: float | None = None  # the fusion stage: P(one stream's hidden layer zeroed) per item; None: off
    hidden_in_memory_gib: float | None = None  # frozen encoders' outputs kept in memory up to this; None: 4 GiB
    # frame batches: each epoch's random order drawn within windows of this many frames, made of pieces of
    # consecutive frames from anywhere (reads that stay in a few places of the memory-mapped frames); None: all at random
    shuffle_block_frames: int | None = None

    # where, when and how long: a stage trained under other values of these has the same weights so far,
    # so resume and the stage cache may reuse it; every other field shapes the weights (`shaping`)
    NOT_SHAPING: ClassVar[tuple[str, ...]] = ("resume", "encoder_cache_dir", "patience")
    # unset, these change nothing (the run's seed), so runs made before they existed still resume
    NOT_SHAPING_WHEN_NULL: ClassVar[tuple[str, ...]] = ("head_seed", "modality_dropout", "hidden_in_memory_gib",
                                                        "shuffle_block_frames")

    def __post_init__(self) -> None:
        check_fields(self, "training", {
            "batch_size": integer(1), "lr": number(above=0), "weight_decay": number(0), "patience": integer(0),
            "resume": lambda v: None if isinstance(v, bool) else "true or false",
            "encoder_cache_dir": optional(lambda v: None if isinstance(v, str) else "a folder"),
            "batching": choice(CHOICES_OF_BATCHING), "chunk_frames": integer(1), "sequences_per_batch": integer(1),
            "head_seed": optional(integer()), "modality_dropout": optional(number(low=0, high=1)),
            "hidden_in_memory_gib": optional(number(0)), "shuffle_block_frames": optional(integer(1))})

    def fusion_seed(self, run_seed: int) -> int:
        return run_seed if self.head_seed is None else self.head_seed

    def shaping(self) -> dict:
        """The settings a stage's weights depend on."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self.NOT_SHAPING}
