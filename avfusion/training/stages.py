"""Training stages: uni-modal pre-training of each encoder with its own softmax, then the fusion head.

Each stage is a Lightning fit with the callbacks and loggers of `conf/callbacks/` and `conf/logger/`
(by default: best checkpoint and early stopping on the dev frame error, CSV and TensorBoard logs) and
`last.ckpt` for resuming. A finished stage leaves `best.pt` (the best weights, a state_dict) and `rng.pt`
(the random state its fit ended with); with `resume`, a finished stage is loaded instead of retrained and
an unfinished one continues from its last checkpoint, so a killed run picks up where it stopped, and with
the random state and data order it had there (`avfusion.training.rng`): the same numbers as an
uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from avfusion.errors import ConfigError, UserError
from avfusion.corpus.labels import LabelScheme
from avfusion.frames.data import FrameData
from avfusion.models.encoders import EncoderSpec, PassThrough, encoder_inputs
from avfusion.models.fusion.base import FusionHead
from avfusion.models.fusion.single import SingleEncoderSoftmax
from avfusion.training.datamodule import FrameDataModule, SequenceBatches
from avfusion.training.module import FusionModule, block
from avfusion.training.epoch_log import EpochLog
from avfusion.training.rng import RngStateCallback, rng_state, seeded, set_rng_state
from avfusion.training.settings import TrainingSettings
from avfusion.training.stage_cache import StageCache
from avfusion.utils.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """What one run's stages are trained with: the `training` settings and the objects built from the
    rest of the config."""

    run_dir: Path
    training: TrainingSettings  # conf/training/: batches, lr, patience, resume, stage cache
    trainer: Callable[..., pl.Trainer]  # a partial Trainer from conf/trainer/
    callbacks: dict[str, Callable] = field(default_factory=dict)  # partials from conf/callbacks/
    loggers: dict[str, Callable] = field(default_factory=dict)  # partials from conf/logger/
    seed: int = 0
    optimizer: Callable | None = None  # a partial from conf/optimizer/ (default: Adam with weight_decay)
    stage_cache: StageCache | None = None  # where finished single-encoder stages are shared (None: not)
    progress: bool = True
    # what shapes a stage's weights (every setting of the run's config that its owner does not declare
    # irrelevant; under "fusion.", the head's): a stage is reused by resume only when these match
    shaping: dict = field(default_factory=dict)


class StageMismatchError(UserError):
    """resume=true on a run folder whose stage was trained with other settings."""


def check_stage_settings(stage_dir: Path, settings: dict) -> None:
    """Record what shapes the stage; refuse to resume one recorded with anything else."""
    path = stage_dir / "settings.json"
    if path.is_file():
        recorded = json.loads(path.read_text())
        changed = sorted(k for k in recorded.keys() | settings.keys() if recorded.get(k) != settings.get(k))
        if changed:
            listing = "; ".join(f"{k}: {recorded.get(k)!r} then, {settings.get(k)!r} now" for k in changed[:4])
            raise StageMismatchError(
                f"{stage_dir}: resume=true, but this stage was trained with other settings ({listing}"
                f"{'; ...' if len(changed) > 4 else ''}); use a new run folder (hydra.run.dir=...) or resume "
                "with the same settings")
        return
    write_text_atomic(path, json.dumps(settings, indent=1, sort_keys=True, default=str))


def complete(factory: Callable, **offers):
    """Call a partial from config with the per-stage settings its class accepts and the config left open
    (ModelCheckpoint's dirpath, a logger's save_dir and version, ...)."""
    target = factory.func if isinstance(factory, functools.partial) else factory
    accepted = inspect.signature(target).parameters
    given = factory.keywords if isinstance(factory, functools.partial) else {}
    return factory(**{k: v for k, v in offers.items() if k in accepted and k not in given})


def batching_of(module: FusionModule, settings: TrainSettings) -> str:
    if settings.training.batching != "auto":
        return settings.training.batching
    return "utterances" if module.sequence_input else "frames"


def load_finished(name: str, module: FusionModule, stage_dir: Path, source: str = "resumed") -> FusionModule:
    """A finished stage's best weights into `module`, and the random state its fit ended with (`source`:
    where the weights came from, for the log)."""
    if source == "resumed":
        log.info("stage %s already finished in this run folder: loading %s", name, stage_dir / "best.pt")
    else:
        log.info("stage %s: weights from the stage cache (%s), not trained again", name, source)
    module.load_state_dict(torch.load(stage_dir / "best.pt", map_location="cpu", weights_only=True))
    rng_after = stage_dir / "rng.pt"
    if rng_after.is_file():  # what comes next draws what it drew in the uninterrupted run
        set_rng_state(torch.load(rng_after, weights_only=True))
    else:
        log.warning("%s: no rng.pt (made by an earlier avfusion): the stages after it start from another "
                    "random state than an uninterrupted run would", stage_dir)
    return module


def run_stage(name: str, module: FusionModule, data: dict[str, FrameData], settings: TrainSettings,
              shared: bool = False, seed: int | None = None) -> FusionModule:
    """Fit `module` on train with the configured callbacks (early stopping on dev); leave it holding the
    best dev weights. `shared`: a single-encoder stage that `settings.stage_cache` may hold already.
    `seed`: the stage's batch order and dropout (default: the run's)."""
    seed = settings.seed if seed is None else seed
    stage_dir = settings.run_dir / "stages" / name
    best_weights = stage_dir / "best.pt"
    shaping = {k: v for k, v in settings.shaping.items() if k != "fusion" or name == "fusion"}
    if settings.training.resume:
        check_stage_settings(stage_dir, shaping)
    else:
        stage_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(stage_dir / "settings.json", json.dumps(shaping, indent=1, sort_keys=True, default=str))
    if settings.training.resume and best_weights.is_file():
        return load_finished(name, module, stage_dir)
    batching = batching_of(module, settings)
    cache_key = settings.stage_cache.key(module, batching) if shared and settings.stage_cache else None
    pl.seed_everything(seed, workers=True, verbose=False)
    modalities = sorted({m for enc in module.encoders.values() for m in enc.inputs})
    training = settings.training
    datamodule = FrameDataModule(data, modalities, training.batch_size, seed=seed, batching=batching,
                                 chunk_frames=training.chunk_frames, sequences_per_batch=training.sequences_per_batch,
                                 shuffle_block_frames=training.shuffle_block_frames)
    callbacks = [complete(make, dirpath=stage_dir / "checkpoints") for make in settings.callbacks.values()]
    callbacks.append(RngStateCallback())  # a resumed fit draws what the uninterrupted one would have
    if not settings.progress:  # no progress bar (a batch job, a log file): an epoch's numbers as log lines
        callbacks.append(EpochLog(name))
    checkpoint = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    if checkpoint is None:
        raise ValueError("the callbacks config has no ModelCheckpoint: a stage needs one to keep its best weights")
    last = Path(checkpoint.dirpath) / "last.ckpt"
    resume_from = str(last) if settings.training.resume and last.is_file() else None
    if cache_key and not resume_from and settings.stage_cache.fetch(cache_key, stage_dir):
        # trained by an earlier run with the same settings
        return load_finished(name, module, stage_dir, (stage_dir / "from_cache.txt").read_text().strip())
    loggers = [complete(make, save_dir=settings.run_dir, version=name, name=name, run_name=name)
               for make in settings.loggers.values()]
    trainer = settings.trainer(callbacks=callbacks, logger=loggers or False, default_root_dir=stage_dir,
                               enable_progress_bar=settings.progress)
    if resume_from:
        log.info("stage %s: resuming from %s", name, last)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    ended = rng_state()
    best = checkpoint.best_model_path or str(last)
    module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    with atomic_path(stage_dir / "rng.pt") as tmp:
        torch.save(ended, tmp)
    with atomic_path(best_weights) as tmp:  # last: its presence marks the stage finished
        torch.save(module.state_dict(), tmp)
    log.info("stage %s: best %s %.4f (%s)", name, checkpoint.monitor,
             float(checkpoint.best_model_score or float("nan")), best)
    if cache_key:
        settings.stage_cache.store(cache_key, stage_dir)
    return module


@torch.no_grad()
def hidden_frames(encoders: dict[str, torch.nn.Module], data: FrameData, batch_size: int = 8192) -> FrameData:
    """The encoders' outputs (last hidden layers, eval mode) on every frame of `data`, as FrameData whose
    features are named after the encoders."""
    features = {}
    for name, enc in encoders.items():
        enc.eval()
        if enc.sequence_input:  # a whole utterance at a time
            utterances = SequenceBatches(data, enc.inputs)
            blocks = []
            for u in range(len(utterances)):
                batch, _, mask = utterances[u]
                blocks.append(enc(encoder_inputs(enc, batch), mask)[0])
        else:
            blocks = [enc(encoder_inputs(enc, {m: block(x, slice(i, i + batch_size)) for m, x in data.features.items()}))
                      for i in range(0, len(data), batch_size)]
        features[name] = torch.cat(blocks).numpy()
    return dataclasses.replace(data, features=features, streams={})


# Largest hidden-output matrix (all splits) a frame head on frozen MLPs trains on from memory, unless
# `training.hidden_in_memory_gib` says otherwise; past it the encoders run on every batch again, reading the
# memory-mapped frames (a corpus larger than RAM still trains).
HIDDEN_IN_MEMORY_BYTES = 4 << 30


def trains_on_hidden_computed_once(head: FusionHead, encoders: dict[str, torch.nn.Module],
                                   data: dict[str, FrameData], limit_gib: float | None = None) -> bool:
    """Frozen encoders (eval mode, no gradient) give the same outputs every epoch: they are computed once and
    the head trains on them (frame heads on random frames), instead of running the encoders on every batch.
    Always for sequence heads and encoders, where running them per batch is costly; for frame heads on
    per-frame encoders while the outputs fit in `limit_gib` (None: `HIDDEN_IN_MEMORY_BYTES`)."""
    if not head.freeze_encoders:
        return False
    if head.sequence_input or any(e.sequence_input for e in encoders.values()):
        return True
    floats = sum(len(split) for split in data.values()) * sum(e.output_dim for e in encoders.values())
    return 4 * floats <= (HIDDEN_IN_MEMORY_BYTES if limit_gib is None else limit_gib * 2**30)


def build_model(head: FusionHead, encoder_spec: EncoderSpec, input_dims: dict[str, int], scheme: LabelScheme,
                lr: float = 1e-3, weight_decay: float = 1e-5) -> FusionModule:
    """The untrained model a head asks for: its encoders from `encoder_spec`, the head built on them."""
    encoders = {name: encoder_spec.build(name, input_dims) for name in head.encoders}
    encoders.update(side_encoders(head, input_dims))
    head.build({name: enc.output_dim for name, enc in encoders.items()}, scheme)
    return FusionModule(encoders, head, lr=lr, weight_decay=weight_decay)


def side_encoders(head: FusionHead, input_dims: dict[str, int]) -> dict[str, PassThrough]:
    """The features the head reads as they are (`side_inputs`), each as an encoder that passes them on."""
    head.check_side_inputs(input_dims)
    return {name: PassThrough(name, input_dims[name]) for name in head.side_inputs}


def pretrain_encoders(encoders: dict[str, torch.nn.Module], data: dict[str, FrameData], scheme: LabelScheme,
                      settings: TrainSettings) -> dict[str, SingleEncoderSoftmax]:
    """Train each encoder alone with its own softmax (a stage each); return those softmax heads."""
    optim = dict(lr=settings.training.lr, weight_decay=settings.training.weight_decay, optimizer=settings.optimizer)
    heads = {}
    for name, encoder in encoders.items():
        heads[name] = build_head(SingleEncoderSoftmax(name), {name: encoder.output_dim}, scheme, settings.seed)
        run_stage(f"pretrain_{name}", FusionModule({name: encoder}, heads[name], **optim), data, settings,
                  shared=True)
    return heads


def build_head(head: FusionHead, hidden_dims: dict[str, int], scheme: LabelScheme, seed: int) -> FusionHead:
    """Build `head` with initial weights of its own: a single-encoder softmax draws the same ones wherever it
    is built (an audio-only run's head = the audio pre-training's softmax)."""
    label = f"softmax:{head.encoders[0]}" if isinstance(head, SingleEncoderSoftmax) else "fusion head"
    with seeded(seed, label):
        return head.build(hidden_dims, scheme)


def train_model(head: FusionHead, encoder_spec: EncoderSpec, data: dict[str, FrameData], scheme: LabelScheme,
                settings: TrainSettings, head_data: dict[str, FrameData] | None = None) -> FusionModule:
    """Build the encoders the head needs, pre-train them alone on `data` if the head asks for it, train the head
    on `head_data` (default: `data`; e.g. noisy copies for a head over clean-trained encoders)."""
    if not isinstance(head, FusionHead):
        raise TypeError(f"{type(head).__name__} is not a FusionHead (avfusion.models.fusion.base)")
    head.check_scheme(scheme)
    input_dims = data["train"].input_dims
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    encoders = {}
    for name in head.encoders:  # initial weights per encoder: the same whichever head it is built for
        with seeded(settings.seed, f"encoder:{name}"):
            encoders[name] = encoder_spec.build(name, input_dims)
    optim = dict(lr=settings.training.lr, weight_decay=settings.training.weight_decay, optimizer=settings.optimizer)
    head.check_side_inputs(input_dims)
    unimodal = pretrain_encoders(encoders, data, scheme, settings) if head.pretrain_encoders else {}
    encoders.update(side_encoders(head, input_dims))  # after pre-training: they have nothing to learn
    dropout = dict(modality_dropout=settings.training.modality_dropout)  # the fusion stage only
    if settings.training.head_seed is not None and not head.pretrain_encoders:
        raise ConfigError(f"training.head_seed={settings.training.head_seed}: it seeds a head trained on pre-trained "
                          f"encoders, and {type(head).__name__} pre-trains none (its encoders train with seed)")
    seed = settings.training.fusion_seed(settings.seed)  # another head on the same pre-trained encoders
    build_head(head, {name: enc.output_dim for name, enc in encoders.items()}, scheme, seed)
    head.warm_start(unimodal)
    data = data if head_data is None else head_data  # the fusion stage's frames
    precompute = trains_on_hidden_computed_once(head, encoders, data, settings.training.hidden_in_memory_gib)
    hidden = {}
    if head.needs_initialisation:  # e.g. a GMM on the training frames' hidden vectors: train split only
        hidden["train"] = hidden_frames(encoders, data["train"])
        head.initialise(hidden["train"].features)
    if not precompute:
        return run_stage("fusion", FusionModule(encoders, head, **optim, **dropout), data, settings,
                         shared=isinstance(head, SingleEncoderSoftmax), seed=seed)
    hidden.update({split: hidden_frames(encoders, frames) for split, frames in data.items() if split not in hidden})
    stand_ins = {name: PassThrough(name, enc.output_dim) for name, enc in encoders.items()}
    trained = run_stage("fusion", FusionModule(stand_ins, head, **optim, **dropout), hidden, settings, seed=seed)
    return FusionModule(encoders, trained.head, **optim)
