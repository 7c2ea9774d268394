"""The fusion-head contract: what the trainer, the evaluator and a saved run rely on.

A fusion head maps the last hidden layers of one or more encoders to class logits. Subclass
`FusionHead`, call `super().__init__(...)` with the three policies below, implement `build_layers` and
`forward`, and add `conf/fusion/<name>.yaml` with `_target_` naming the class: nothing else changes.

- `encoders`: the names of the encoders it consumes. The trainer builds each from `conf/encoder/`
  (`audio`, `video`, or `audio_video` for one encoder over both inputs).
- `pretrain_encoders`: each encoder is first trained alone with its own softmax (a stage of its own).
- `freeze_encoders`: the encoders stay as pre-training left them (no gradient, eval mode) while the head
  trains; otherwise they are trained jointly with it, after `warmup_epochs` epochs of the head alone on
  frozen encoders, at `encoder_lr_scale` times the head's learning rate.
- `warm_start(unimodal)`: called after `build` with each pre-trained encoder's own softmax head
  (`SingleEncoderSoftmax`, by encoder name), for heads that start from them (see `bilinear.py`).
- `sequence_input`: False (frame heads): `forward({name: (N, H)})` -> (N, C), one frame at a time, and
  training draws random frames. True (sequence heads, e.g. pooling over a window): `forward({name:
  (B, T, H)}, mask)` -> (B, T, C) with `mask` (B, T) True on real frames; training draws chunks of
  utterances and evaluation passes whole utterances.
- `build(hidden_dims, scheme)`: called once the encoders' output sizes and the label scheme (its
  classes and their groups, e.g. phone -> viseme) are known; creates the layers, returns the head.
  `check_scheme(scheme)` is called before any training, to refuse a scheme the head cannot use.
  A saved run rebuilds the head the same way from its config before loading its weights.
- `needs_initialisation`: if True, `initialise({encoder: (N, H) array})` is called once after `build`
  with the (pre-trained) encoders' hidden vectors of the training frames, to fit what the head
  estimates from data before training (a GMM, a codebook, a PCA). Train split only; what it fits must
  live in parameters or buffers so that the saved weights hold it.
- `needs_segments`: if True (sequence heads only), `forward` also gets `labels` (B, T), the frame labels,
  from which it may take the reference segmentation (segment classification given boundaries).
- `side_inputs`: front-end features the head reads as they are, beside the encoders' hidden layers (the
  reliability measures): they reach `forward` in the same dict, under their own names, never pre-trained
  or dropped; a front-end without them is refused before any work (`check_side_inputs`).
- `stream_weights(hidden)`: heads that weigh the streams per frame give those weights (N, K) (e.g. the
  audio weight λ_t), named by `weight_labels` once built, which prediction draws; others give None.
"""

from __future__ import annotations

import abc

import numpy as np
import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme
from avfusion.errors import ConfigError
from avfusion.utils.rules import check_values, choice, integer, number


INITS = ("warm", "random")  # heads with a warm start: from the uni-modal softmaxes, or not


def check_init(init: str) -> None:
    check_values("fusion", {"init": init}, {"init": choice(INITS)})


class FusionHead(nn.Module, abc.ABC):
    sequence_input: bool = False
    needs_initialisation: bool = False
    needs_segments: bool = False
    weight_labels: list[str] = []  # what each column of `stream_weights` is (heads that have them)

    @property
    def frame_context(self) -> int | None:
        """Frames each side of a frame its logits depend on: 0 for frame heads, None (the whole
        sequence) unless a sequence head says less. Lets inference cut a long recording into pieces."""
        return None if self.sequence_input else 0

    def __init__(self, encoders, pretrain_encoders: bool, freeze_encoders: bool, warmup_epochs: int = 0,
                 encoder_lr_scale: float = 1.0, side_inputs=()) -> None:
        super().__init__()
        self.encoders = list(encoders)
        self.side_inputs = list(side_inputs)
        if not self.encoders:
            raise ValueError(f"{type(self).__name__}: fusion.encoders must name at least one encoder")
        check_values("fusion", {"warmup_epochs": warmup_epochs, "encoder_lr_scale": encoder_lr_scale},
                     {"warmup_epochs": integer(0), "encoder_lr_scale": number(0)})
        self.pretrain_encoders = bool(pretrain_encoders)
        self.freeze_encoders = bool(freeze_encoders)
        self.warmup_epochs = int(warmup_epochs)  # joint training: epochs of the head alone first
        self.encoder_lr_scale = float(encoder_lr_scale)  # joint training: encoder lr = scale x head lr
        self.built = False

    def build(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> "FusionHead":
        missing = [e for e in self.encoders + self.side_inputs if e not in hidden_dims]
        if missing:
            raise ValueError(f"{type(self).__name__} consumes encoders {missing}, which were not built "
                             f"(built: {sorted(hidden_dims)})")
        self.build_layers({e: hidden_dims[e] for e in self.encoders + self.side_inputs}, scheme)
        self.built = True
        return self

    def check_scheme(self, scheme: LabelScheme) -> None:
        """Raise before any training if the head cannot serve this label scheme (e.g. a sharing level it
        lacks); `build` is only reached after the encoders' pre-training."""

    def warm_start(self, unimodal: dict[str, nn.Module]) -> None:
        """Start from the pre-trained encoders' own softmax heads (by encoder name); default: keep the
        random initialisation."""

    def initialise(self, hidden: dict[str, np.ndarray]) -> None:
        """Fit what the head estimates from the training frames' hidden vectors (see `needs_initialisation`)."""

    def stream_weights(self, hidden: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """(N, K) per-frame stream weights (see the module's contract); None: the head has none."""
        return None

    def check_side_inputs(self, available) -> None:
        """ConfigError before any work when the front-end lacks a feature the head reads as it is."""
        missing = [m for m in self.side_inputs if m not in available]
        if missing:
            raise ConfigError(f"fusion={type(self).__name__} reads the features {missing}, which the front-end does not "
                              f"give (it gives {sorted(available)}): the reliability measures come with "
                              "frontend=reliability")

    @abc.abstractmethod
    def build_layers(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> None:
        """Create the parameters for these encoder output sizes and classes."""

    @abc.abstractmethod
    def forward(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits: (N, C) from {name: (N, H)}, or (B, T, C) from {name: (B, T, H)} for sequence heads."""
