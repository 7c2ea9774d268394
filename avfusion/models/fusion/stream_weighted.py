"""Reliability-weighted decision fusion (dynamic stream weights; Potamianos et al. 2003, Gurban & Thiran 2009,
Yu, Zeiler & Kolossa 2020): per frame, a log-linear mix of the two uni-modal log posteriors,

    log p(c | t) ∝ λ_t log p_audio(c | t) + (1 - λ_t) log p_video(c | t),   λ_t = σ(g(r_t)),

with r_t the reliability inputs (`avfusion.models.fusion.reliability`) and g a small network; with `sharing`, one
λ per class group (e.g. viseme). Encoders and uni-modal softmaxes are frozen as pre-training left them: only g
learns, so λ_t is the one thing this head adds. Trained where the streams fail (`train_noise=multi` with
`head_only: true` keeps the encoders clean-trained)."""

from __future__ import annotations

import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme
from avfusion.models.encoders import check_widths
from avfusion.models.fusion.base import FusionHead
from avfusion.models.fusion.reliability import ReliabilityInputs, weighting_network


class StreamWeightedFusion(FusionHead):
    def __init__(self, encoders: list[str], measures: list[str], widths: list[int], sharing: str) -> None:
        super().__init__(encoders, pretrain_encoders=True, freeze_encoders=True, side_inputs=measures)
        check_widths("fusion.widths", widths)
        self.widths, self.sharing = list(widths), sharing

    def check_scheme(self, scheme: LabelScheme) -> None:
        scheme.sharing_level(self.sharing)

    def build_layers(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> None:
        self.inputs = ReliabilityInputs(self.encoders, self.side_inputs, hidden_dims, scheme.num_classes)
        level = scheme.sharing_level(self.sharing)
        groups = torch.zeros(scheme.num_classes, dtype=torch.long) if level is None else \
            torch.as_tensor(scheme.group_index(level), dtype=torch.long)
        self.register_buffer("groups", groups)  # class -> its weight
        self.weigher = weighting_network(self.inputs.width, self.widths, int(groups.max()) + 1, bias=0.0)
        names = [f"{self.encoders[0]} weight"]
        if level is not None:  # one per group: named by the classes of the group
            names = [f"{self.encoders[0]} weight ({'/'.join(c for c, g in zip(scheme.classes, groups.tolist()) if g == k)})"
                     for k in range(int(groups.max()) + 1)]
        self.weight_labels = names

    def warm_start(self, unimodal: dict[str, nn.Module]) -> None:
        self.inputs.warm_start(unimodal)

    def weights_and_log_posteriors(self, hidden: dict[str, torch.Tensor]):
        log_posteriors, r = self.inputs(hidden)
        return torch.sigmoid(self.weigher(r)), log_posteriors

    def stream_weights(self, hidden: dict[str, torch.Tensor]) -> torch.Tensor:
        """(N, G) the first stream's weight λ_t (per class group with `sharing`)."""
        return self.weights_and_log_posteriors(hidden)[0]

    def forward(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        weights, log_posteriors = self.weights_and_log_posteriors(hidden)
        first, second = (log_posteriors[e] for e in self.encoders)
        lam = weights[:, self.groups]
        return lam * first + (1 - lam) * second
