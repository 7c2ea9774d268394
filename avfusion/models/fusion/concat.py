"""Concatenation of the encoders' last hidden layers, then a softmax ("shallow") or a DNN ("deep")."""

from __future__ import annotations

import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme
from avfusion.errors import ConfigError
from avfusion.models.encoders import MlpEncoder, check_widths
from avfusion.models.fusion.base import FusionHead, check_init


class ConcatFusion(FusionHead):
    """Encoders pre-trained alone; frozen (paper) or fine-tuned jointly with the head. `init: warm` (shallow
    only) starts the softmax from the uni-modal ones, [W_1 W_2] and b_1 + b_2: the sum of their logits, as
    the bilinear head's warm start does, so the two can be compared from the same starting point."""

    def __init__(self, encoders: list[str], widths: list[int], dropout: float, freeze_encoders: bool, init: str,
                 warmup_epochs: int, encoder_lr_scale: float) -> None:
        super().__init__(encoders, pretrain_encoders=True, freeze_encoders=freeze_encoders,
                         warmup_epochs=warmup_epochs, encoder_lr_scale=encoder_lr_scale)
        check_init(init)
        if init == "warm" and widths:
            raise ConfigError(f"fusion.init=warm: only the shallow concat (fusion.widths=[]) starts from the "
                              f"uni-modal softmaxes, not widths={list(widths)}")
        check_widths("fusion.widths", widths)
        self.widths = list(widths)
        self.dropout = dropout
        self.init = init

    def build_layers(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> None:
        num_classes = scheme.num_classes
        width = sum(hidden_dims[e] for e in self.encoders)
        if self.widths:  # deep: hidden layers on the concatenation
            hidden = MlpEncoder(width, self.widths, dropout=self.dropout)
            self.net = nn.Sequential(hidden, nn.Linear(hidden.output_dim, num_classes))
        else:  # shallow: a softmax on the concatenation
            self.net = nn.Linear(width, num_classes)

    @torch.no_grad()
    def warm_start(self, unimodal: dict[str, nn.Module]) -> None:
        if self.init != "warm":
            return
        layers = [unimodal[e].out for e in self.encoders]
        self.net.weight.copy_(torch.cat([layer.weight for layer in layers], dim=1))
        self.net.bias.copy_(sum(layer.bias for layer in layers))

    def forward(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(torch.cat([hidden[e] for e in self.encoders], dim=-1))
