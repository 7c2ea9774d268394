"""A softmax on one encoder: uni-modal models and the feature-fusion baseline."""

from __future__ import annotations

import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme
from avfusion.models.fusion.base import FusionHead


class SingleEncoderSoftmax(FusionHead):
    """logits = W h + b on one encoder's last hidden layer, trained with its encoder. With encoder
    "audio_video" this is feature fusion: one DNN over the concatenated 360 + 540 inputs."""

    def __init__(self, encoder: str) -> None:
        super().__init__([encoder], pretrain_encoders=False, freeze_encoders=False)

    def build_layers(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> None:
        self.out = nn.Linear(hidden_dims[self.encoders[0]], scheme.num_classes)

    def forward(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(hidden[self.encoders[0]])
