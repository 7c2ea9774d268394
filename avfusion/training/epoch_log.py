"""Progress of a training stage as log lines, for when there is no progress bar (a batch job, output
redirected to a file): its start, then an epoch's numbers at a bounded rate."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl

log = logging.getLogger(__name__)
EVERY_S = 10.0  # at most one epoch line per this many seconds (the first epoch's always)


class EpochLog(pl.Callback):
    """`stage X: epoch 3/20, train loss 1.234, dev frame error 0.251 (best 0.248), 42 s, at most 3.1 min more`."""

    def __init__(self, stage: str, every_s: float = EVERY_S) -> None:
        self.stage, self.every_s = stage, every_s
        self.started = self.logged = 0.0
        self.best = float("inf")

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.started = time.monotonic()
        log.info("stage %s: training from epoch %d (at most %s epochs, %d training batches each)", self.stage,
                 trainer.current_epoch + 1, trainer.max_epochs, trainer.num_training_batches)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        error = metrics.get("val/frame_error")
        if error is not None:
            self.best = min(self.best, float(error))
        now, done = time.monotonic(), trainer.current_epoch + 1
        if self.logged and now - self.logged < self.every_s:
            return
        self.logged = now
        elapsed = now - self.started
        loss = metrics.get("train/loss_epoch", metrics.get("train/loss"))
        parts = [f"epoch {done}/{trainer.max_epochs}"]
        if loss is not None:
            parts.append(f"train loss {float(loss):.3f}")
        if error is not None:
            parts.append(f"dev frame error {float(error):.3f} (best {self.best:.3f})")
        parts.append(f"{elapsed:.0f} s")
        if trainer.max_epochs and trainer.max_epochs > done:  # early stopping may end it sooner
            parts.append(f"at most {elapsed / done * (trainer.max_epochs - done) / 60:.1f} min more")
        log.info("stage %s: %s", self.stage, ", ".join(parts))
