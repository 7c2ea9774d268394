"""The LightningModule: encoders + one fusion head, trained with cross-entropy on frame labels."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from avfusion.models.encoders import encoder_inputs


class FusionModule(pl.LightningModule):
    """Per-frame class logits from the features of one batch: {modality: (B, D)} -> (B, C).

    Frozen encoders (`head.freeze_encoders`) are kept in eval mode, so their batch-norm statistics and
    dropout stay as pre-training left them; only the head learns.
    """

    def __init__(self, encoders: dict[str, nn.Module], head: nn.Module, lr: float = 1e-3,
                 weight_decay: float = 1e-5) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.head = head
        self.lr = lr
        self.weight_decay = weight_decay
        self.frozen = bool(getattr(head, "freeze_encoders", False))
        if self.frozen:
            self.encoders.requires_grad_(False)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # Lightning switches every submodule to train mode around validation; frozen encoders stay in eval
        if self.frozen:
            self.encoders.eval()

    def hidden(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: enc(encoder_inputs(enc, features)) for name, enc in self.encoders.items()}

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.hidden(features))

    def _step(self, batch, stage: str) -> torch.Tensor:
        features, labels = batch
        logits = self(features)
        loss = nn.functional.cross_entropy(logits, labels)
        error = (logits.argmax(dim=-1) != labels).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(labels),
                 sync_dist=not on_step)
        self.log(f"{stage}/frame_error", error, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(labels), sync_dist=not on_step)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
