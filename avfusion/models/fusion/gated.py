"""Gated concatenation (feature-level reliability fusion): the encoders' last hidden layers, each scaled per
frame by a gate in (0, 1) computed from the reliability inputs (`avfusion.models.fusion.reliability`), then a
softmax on their concatenation. Where `stream_weighted` mixes the streams' decisions, this lets the softmax
learn what to take from each stream's features as its reliability changes. Encoders frozen; the softmax starts
from the uni-modal ones (their logits summed) and the gates near open."""

from __future__ import annotations

import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme
from avfusion.models.encoders import check_widths
from avfusion.models.fusion.base import FusionHead
from avfusion.models.fusion.reliability import ReliabilityInputs, weighting_network

OPEN = 3.0  # the gates' starting logit: sigmoid(3) = 0.95, so training starts near the warm concat


class GatedConcatFusion(FusionHead):
    def __init__(self, encoders: list[str], measures: list[str], widths: list[int]) -> None:
        super().__init__(encoders, pretrain_encoders=True, freeze_encoders=True, side_inputs=measures)
        check_widths("fusion.widths", widths)
        self.widths = list(widths)

    def build_layers(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> None:
        self.inputs = ReliabilityInputs(self.encoders, self.side_inputs, hidden_dims, scheme.num_classes)
        self.gater = weighting_network(self.inputs.width, self.widths, len(self.encoders), bias=OPEN)
        self.out = nn.Linear(sum(hidden_dims[e] for e in self.encoders), scheme.num_classes)
        self.weight_labels = [f"{e} gate" for e in self.encoders]

    @torch.no_grad()
    def warm_start(self, unimodal: dict[str, nn.Module]) -> None:
        self.inputs.warm_start(unimodal)
        layers = [unimodal[e].out for e in self.encoders]
        self.out.weight.copy_(torch.cat([layer.weight for layer in layers], dim=1))
        self.out.bias.copy_(sum(layer.bias for layer in layers))

    def stream_weights(self, hidden: dict[str, torch.Tensor]) -> torch.Tensor:
        """(N, 2) each stream's gate."""
        return torch.sigmoid(self.gater(self.inputs(hidden)[1]))

    def forward(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        gates = self.stream_weights(hidden)
        return self.out(torch.cat([gates[:, i:i + 1] * hidden[e] for i, e in enumerate(self.encoders)], dim=-1))
