"""Training stages: uni-modal pre-training of each encoder with its own softmax, then the fusion head.

Each stage is a Lightning fit with the best checkpoint and early stopping on the dev frame error,
CSV and TensorBoard logs, and `last.ckpt` for resuming. A finished stage leaves `best.pt` (the best
weights); with `resume`, a finished stage is loaded instead of retrained and an unfinished one
continues from its last checkpoint, so a killed run picks up where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from avfusion.corpus.labels import LabelScheme
from avfusion.frontends.pipeline import FrameData
from avfusion.models.encoders import EncoderSpec
from avfusion.models.fusion.single import SingleEncoderSoftmax
from avfusion.training.datamodule import FrameDataModule
from avfusion.training.module import FusionModule
from avfusion.utils.atomic import atomic_path

log = logging.getLogger(__name__)

MONITOR = "val/frame_error"


@dataclass
class TrainSettings:
    run_dir: Path
    trainer: Callable[..., pl.Trainer]  # a partial Trainer from conf/trainer/
    seed: int = 0
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 3
    resume: bool = False
    progress: bool = True


def run_stage(name: str, module: FusionModule, data: dict[str, FrameData], settings: TrainSettings) -> FusionModule:
    """Fit `module` on train with early stopping on dev; leave it holding the best dev weights."""
    stage_dir = settings.run_dir / "stages" / name
    best_weights = stage_dir / "best.pt"
    if settings.resume and best_weights.is_file():
        log.info("stage %s already finished: loading %s", name, best_weights)
        module.load_state_dict(torch.load(best_weights, map_location="cpu"))
        return module
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    modalities = sorted({m for enc in module.encoders.values() for m in enc.inputs})
    datamodule = FrameDataModule(data, modalities, settings.batch_size, seed=settings.seed)
    checkpoint = ModelCheckpoint(dirpath=stage_dir / "checkpoints", filename="best-{epoch}", monitor=MONITOR,
                                 mode="min", save_top_k=1, save_last=True)
    trainer = settings.trainer(
        callbacks=[checkpoint, EarlyStopping(monitor=MONITOR, mode="min", patience=settings.patience)],
        logger=[CSVLogger(settings.run_dir, name="logs", version=name),
                TensorBoardLogger(settings.run_dir, name="tensorboard", version=name)],
        default_root_dir=stage_dir, enable_progress_bar=settings.progress,
    )
    last = stage_dir / "checkpoints" / "last.ckpt"
    resume_from = str(last) if settings.resume and last.is_file() else None
    if resume_from:
        log.info("stage %s: resuming from %s", name, last)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
    best = checkpoint.best_model_path or str(last)
    state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
    module.load_state_dict(state)
    with atomic_path(best_weights) as tmp:
        torch.save(module.state_dict(), tmp)
    log.info("stage %s: best %s %.4f (%s)", name, MONITOR, float(checkpoint.best_model_score or float("nan")), best)
    return module


def train_model(head, encoder_spec: EncoderSpec, data: dict[str, FrameData], scheme: LabelScheme,
                settings: TrainSettings) -> FusionModule:
    """Build the encoders the head needs, pre-train them alone if the head asks for it, train the head."""
    input_dims = {m: x.shape[1] for m, x in data["train"].features.items()}
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    encoders = {name: encoder_spec.build(name, input_dims) for name in head.encoders}
    optim = dict(lr=settings.lr, weight_decay=settings.weight_decay)
    if head.pretrain_encoders:
        for name, encoder in encoders.items():
            solo_head = SingleEncoderSoftmax(name).build({name: encoder.output_dim}, scheme)
            run_stage(f"pretrain_{name}", FusionModule({name: encoder}, solo_head, **optim), data, settings)
    head.build({name: enc.output_dim for name, enc in encoders.items()}, scheme)
    return run_stage("fusion", FusionModule(encoders, head, **optim), data, settings)
