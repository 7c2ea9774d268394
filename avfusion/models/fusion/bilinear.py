"""Factored bilinear softmax with class sharing (Mroueh, Marcheret & Goel, ICASSP 2015).

    score_y = w1_y . h1 + w2_y . h2 + b_y + (U1 h1)^T diag(v_g(y)) (U2 h2)

h1, h2: the two encoders' last hidden layers; U1 (F x d1), U2 (F x d2) project both into an F-dim
fusion space where they interact by an elementwise product; v holds one F-vector per group of
classes (sharing: states of one phone, or phones of one viseme) or per class (no sharing), so the
bilinear weights cost G x F instead of C x F. `rank: null` is the full, unfactored form
h1^T W_g(y) h2 with one d1 x d2 matrix per group (small hidden layers only).

Trained jointly by default: the bilinear term's gradient reaches both encoders, so each network is
trained through the other. `init: warm` starts from the pre-trained uni-modal softmaxes: w1, w2 are
theirs, b the sum of their biases and the bilinear vectors (or matrices) zero, so at step 0 the head
scores exactly the sum of the two uni-modal models' logits (a product of their posteriors) and training
only adds the interaction; `init: random` is the cold start for comparison.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme
from avfusion.errors import ConfigError
from avfusion.models.fusion.base import FusionHead, check_init


class FactoredBilinearSoftmax(FusionHead):
    def __init__(self, encoders: list[str], rank: int | None, sharing: str | None, linear_terms: bool,
                 freeze_encoders: bool, init: str, warmup_epochs: int, encoder_lr_scale: float) -> None:
        if len(encoders) != 2:
            raise ValueError(f"the bilinear softmax fuses exactly two encoders, got {list(encoders)}")
        check_init(init)
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            raise ConfigError(f"fusion.rank={rank!r}: must be a whole number >= 1 (the fusion dimension F), or null "
                              "for the full bilinear form")
        if init == "warm" and not linear_terms:
            raise ConfigError("fusion.init=warm starts the linear terms from the uni-modal softmaxes: it needs "
                              "fusion.linear_terms=true (or use fusion.init=random)")
        super().__init__(encoders, pretrain_encoders=True, freeze_encoders=freeze_encoders,
                         warmup_epochs=warmup_epochs, encoder_lr_scale=encoder_lr_scale)
        self.rank = rank
        self.sharing = sharing
        self.linear_terms = linear_terms
        self.init = init

    def check_scheme(self, scheme: LabelScheme) -> None:
        scheme.sharing_level(self.sharing)

    def build_layers(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> None:
        d1, d2 = (hidden_dims[e] for e in self.encoders)
        n_classes = scheme.num_classes
        level = scheme.sharing_level(self.sharing)  # auto: phone for state schemes, viseme for phones
        if level is None:
            groups = torch.arange(n_classes)
        else:
            groups = torch.as_tensor(scheme.group_index(level), dtype=torch.long)
        self.register_buffer("groups", groups)  # class -> group
        n_groups = int(groups.max()) + 1
        self.bias = nn.Parameter(torch.zeros(n_classes))
        if self.linear_terms:
            self.linear1 = nn.Linear(d1, n_classes, bias=False)
            self.linear2 = nn.Linear(d2, n_classes, bias=False)
        if self.rank is None:
            self.weight = nn.Parameter(torch.randn(n_groups, d1, d2) / math.sqrt(d1 * d2))
        else:
            self.u1 = nn.Linear(d1, self.rank, bias=False)
            self.u2 = nn.Linear(d2, self.rank, bias=False)
            self.v = nn.Parameter(torch.randn(n_groups, self.rank) / math.sqrt(self.rank))

    @torch.no_grad()
    def warm_start(self, unimodal: dict[str, nn.Module]) -> None:
        if self.init != "warm":
            return
        first, second = (unimodal[e].out for e in self.encoders)  # SingleEncoderSoftmax: logits = out(h)
        self.linear1.weight.copy_(first.weight)
        self.linear2.weight.copy_(second.weight)
        self.bias.copy_(first.bias + second.bias)
        (self.weight if self.rank is None else self.v).zero_()

    def bilinear_group_scores(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """(B, G): the bilinear term of each group."""
        if self.rank is None:
            return torch.einsum("bi,gij,bj->bg", h1, self.weight, h2)
        return (self.u1(h1) * self.u2(h2)) @ self.v.t()

    def forward(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        h1, h2 = (hidden[e] for e in self.encoders)
        scores = self.bilinear_group_scores(h1, h2)[:, self.groups] + self.bias
        if self.linear_terms:
            scores = scores + self.linear1(h1) + self.linear2(h2)
        return scores
