"""What the reliability-driven heads weigh the streams by, per frame: the front-end's measures of each stream
(`frontend=reliability`) and what each stream's own posteriors say about themselves (Misra et al. 2003; Gurban &
Thiran 2009): their entropy, their largest posterior and its margin over the runner-up, from the pre-trained
uni-modal softmaxes, kept frozen so that the uni-modal posteriors stay what pre-training made them."""

from __future__ import annotations

import math

import torch
from torch import nn

from avfusion.errors import ConfigError

MARGIN_CAP = 10.0  # a log-posterior margin beyond this says no more (the input is kept in [0, 1])


class ReliabilityInputs(nn.Module):
    """(N, F) inputs of a weighting network and each stream's (N, C) log posteriors, from {name: (N, H)}: the
    encoders' hidden layers and the measures under their own names."""

    def __init__(self, encoders: list[str], measures: list[str], hidden_dims: dict[str, int], num_classes: int) -> None:
        super().__init__()
        if len(encoders) != 2:
            raise ConfigError(f"fusion.encoders={encoders}: a reliability-weighted head weighs two streams "
                              "(e.g. [audio, video])")
        if not measures:
            raise ConfigError("fusion.measures is empty: name the reliability features the weights are computed from "
                              "(e.g. [audio_reliability, video_reliability], with frontend=reliability)")
        self.encoders, self.measures, self.num_classes = list(encoders), list(measures), num_classes
        self.softmaxes = nn.ModuleDict({e: nn.Linear(hidden_dims[e], num_classes) for e in encoders})
        self.softmaxes.requires_grad_(False)  # from pre-training (`warm_start`), never trained here
        self.width = sum(hidden_dims[m] for m in measures) + 3 * len(encoders)

    @torch.no_grad()
    def warm_start(self, unimodal: dict[str, nn.Module]) -> None:
        for e in self.encoders:
            self.softmaxes[e].load_state_dict(unimodal[e].out.state_dict())

    def forward(self, hidden: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        log_posteriors = {e: torch.log_softmax(self.softmaxes[e](hidden[e]), dim=-1) for e in self.encoders}
        own = [self.confidence(lp) for lp in log_posteriors.values()]
        return log_posteriors, torch.cat([hidden[m] for m in self.measures] + own, dim=-1)

    def confidence(self, log_posteriors: torch.Tensor) -> torch.Tensor:
        """(N, 3): normalised entropy, the largest posterior, the capped margin of the largest log posterior."""
        p = log_posteriors.exp()
        entropy = -(p * log_posteriors).sum(-1) / math.log(self.num_classes)
        top = log_posteriors.topk(2, dim=-1).values
        margin = (top[:, 0] - top[:, 1]).clamp(max=MARGIN_CAP) / MARGIN_CAP
        return torch.stack([entropy, top[:, 0].exp(), margin], dim=-1)


def weighting_network(width: int, widths: list[int], outputs: int, bias: float) -> nn.Sequential:
    """Small MLP from the reliability inputs to `outputs` logits of weights; its last layer starts at zero
    weights and `bias`, so every frame starts with the same weights, sigmoid(bias)."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(width, w), nn.ReLU()]
        width = w
    last = nn.Linear(width, outputs)
    nn.init.zeros_(last.weight)
    nn.init.constant_(last.bias, bias)
    return nn.Sequential(*layers, last)
