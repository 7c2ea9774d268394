"""Per-modality encoders: MLPs whose last hidden layer is what the fusion heads consume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from avfusion.errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU}


def check_widths(key: str, widths) -> None:
    """Layer widths are whole numbers >= 1: refused when configured, not when torch meets them."""
    bad = [w for w in widths if isinstance(w, bool) or not isinstance(w, int) or w < 1]
    if bad:
        raise ConfigError(f"{key}={list(widths)}: every width must be a whole number >= 1 (not {bad[0]!r})")


class MlpEncoder(nn.Module):
    """input -> [Linear -> (BatchNorm) -> activation -> (Dropout)] per width; output = last hidden layer.
    Frame by frame: (N, D) -> (N, H)."""

    sequence_input = False  # encoders over stretches of frames set True and take (B, T, D) and a mask
    frame_context = 0  # frames each side an output depends on (None: the whole sequence)

    def __init__(self, input_dim: int, widths: list[int], activation: str = "relu", dropout: float = 0.0,
                 batch_norm: bool = True, inputs: list[str] | None = None) -> None:
        super().__init__()
        self.inputs = list(inputs or [])  # the modalities it reads, concatenated in this order
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        if not widths:
            raise ValueError("an encoder needs at least one hidden layer")
        layers: list[nn.Module] = []
        previous = input_dim
        for width in widths:
            layers.append(nn.Linear(previous, width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = width
        self.net = nn.Sequential(*layers)
        self.input_dim = input_dim
        self.output_dim = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class EncoderSpec:
    """Architecture of the encoders (`conf/encoder/`): MLP widths per encoder name, or for an encoder
    named in `modules`, a partial of another encoder class (`VideoCnnEncoder`) called with the input size
    and the modalities it reads.

    An encoder reads the modality of its name ("audio", "video") unless `inputs` lists others for it:
    `audio_video: [audio, video]` is one encoder over the concatenated inputs (feature fusion), and
    `video: [video_roi]` a CNN over the mouth pixels of a front-end stream.
    """

    widths: dict[str, list[int]]
    inputs: dict[str, list[str]]
    activation: str
    dropout: float
    batch_norm: bool
    modules: dict[str, Callable[..., nn.Module]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, widths in self.widths.items():
            check_widths(f"encoder.widths.{name}", widths)

    def inputs_of(self, name: str, available) -> list[str]:
        """The modalities encoder `name` reads; a ConfigError when `available` (the front-end's) lacks one."""
        modalities = list(self.inputs.get(name, [name]))
        missing = [m for m in modalities if m not in available]
        if missing:
            hint = " (the mouth pixels come with frontend=mouth_roi, or experiment=video_cnn)" \
                if "video_roi" in missing else ""
            raise ConfigError(f"encoder {name!r} needs features {missing}; the front-end gives {sorted(available)}{hint}")
        return modalities

    def build(self, name: str, input_dims: dict[str, int]) -> nn.Module:
        modalities = self.inputs_of(name, input_dims)
        input_dim = sum(input_dims[m] for m in modalities)
        if name in self.modules:
            return self.modules[name](input_dim=input_dim, inputs=modalities)
        if name not in self.widths:
            raise ConfigError(f"no widths for encoder {name!r} in the encoder config (has "
                              f"{sorted(self.widths) + sorted(self.modules)})")
        return MlpEncoder(input_dim, list(self.widths[name]), self.activation, self.dropout, self.batch_norm,
                          inputs=modalities)


class PassThrough(nn.Module):
    """An encoder whose output is its input: features a head reads as they are (`side_inputs`), or a frozen
    encoder's outputs computed once standing in for it."""

    sequence_input = False
    frame_context = 0

    def __init__(self, name: str, output_dim: int) -> None:
        super().__init__()
        self.inputs, self.output_dim = [name], output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def encoder_inputs(encoder: MlpEncoder, features: dict[str, torch.Tensor]) -> torch.Tensor:
    """The input of an encoder: one modality's features, or several concatenated."""
    parts = [features[m] for m in encoder.inputs]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


class EncoderOutputs:
    """Encoders' outputs kept across forward passes over the same frames: an encoder whose input arrays are
    the very arrays it read last time (video in every audio-noise condition) is not run again. Kept only while
    the outputs of a pass fit in `in_memory_gib` (None: 4 GiB); past it each pass runs the encoders block by
    block and keeps nothing (the same numbers, memory that does not grow with the split)."""

    DEFAULT_GIB = 4.0

    def __init__(self, in_memory_gib: float | None = None) -> None:
        self.limit_bytes = (self.DEFAULT_GIB if in_memory_gib is None else in_memory_gib) * 2**30
        self._last: dict[int, tuple[tuple, torch.Tensor]] = {}

    def holds(self, n_frames: int, output_dims: int) -> bool:
        """Whether outputs of `output_dims` float32 values a frame over `n_frames` frames are kept."""
        return n_frames * output_dims * 4 <= self.limit_bytes

    def of(self, encoder: nn.Module, inputs: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        last = self._last.get(id(encoder))
        if last is not None and len(last[0]) == len(inputs) and all(a is b for a, b in zip(last[0], inputs)):
            return last[1]
        self._last[id(encoder)] = (inputs, compute())  # the last only: conditions come one after another
        return self._last[id(encoder)][1]
