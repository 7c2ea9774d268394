"""Concatenation of the encoders' last hidden layers, then a softmax ("shallow") or a DNN ("deep")."""

from __future__ import annotations

import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme
from avfusion.models.encoders import MlpEncoder
from avfusion.models.fusion.base import FusionHead


class ConcatFusion(FusionHead):
    """Encoders pre-trained alone; frozen (paper) or fine-tuned jointly with the head."""

    def __init__(self, encoders: list[str] = ("audio", "video"), widths: list[int] = (), dropout: float = 0.1,
                 freeze_encoders: bool = True) -> None:
        super().__init__(encoders, pretrain_encoders=True, freeze_encoders=freeze_encoders)
        self.widths = list(widths)
        self.dropout = dropout

    def build_layers(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> None:
        num_classes = scheme.num_classes
        width = sum(hidden_dims[e] for e in self.encoders)
        if self.widths:  # deep: hidden layers on the concatenation
            hidden = MlpEncoder(width, self.widths, dropout=self.dropout)
            self.net = nn.Sequential(hidden, nn.Linear(hidden.output_dim, num_classes))
        else:  # shallow: a softmax on the concatenation
            self.net = nn.Linear(width, num_classes)

    def forward(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(torch.cat([hidden[e] for e in self.encoders], dim=-1))
