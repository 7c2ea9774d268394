"""A softmax on one encoder: uni-modal models and the feature-fusion baseline."""

from __future__ import annotations

import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme


class SingleEncoderSoftmax(nn.Module):
    """logits = W h + b on one encoder's last hidden layer. With encoder "audio_video" this is
    feature fusion: one DNN over the concatenated 360 + 540 inputs."""

    pretrain_encoders = False
    freeze_encoders = False

    def __init__(self, encoder: str = "audio") -> None:
        super().__init__()
        self.encoders = [encoder]
        self.out: nn.Linear | None = None

    def build(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> "SingleEncoderSoftmax":
        self.out = nn.Linear(hidden_dims[self.encoders[0]], scheme.num_classes)
        return self

    def forward(self, hidden: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.out(hidden[self.encoders[0]])
