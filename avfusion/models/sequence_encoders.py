"""Encoders over stretches of feature frames, as the hybrid acoustic models users compare against build them:
a TDNN (dilated 1-D convolutions over time, the Kaldi layer pattern; a bounded context, so prediction runs a
long recording in pieces) and a BLSTM (bidirectional LSTM layers; the whole sequence, so one piece).

Input (B, T, D) features of one or several modalities and the real-frame mask (B, T); output (B, T, H), the
last hidden layer the fusion heads consume, zero on padded frames. Padding never reaches a real frame: every
layer's output is zeroed past an item's end, as a convolution's own zero padding at the edge of a single
utterance, so an item's outputs do not depend on what it is batched with. Batch normalisation sees real
frames only.
"""

from __future__ import annotations

import torch
from torch import nn

from avfusion.errors import ConfigError
from avfusion.models.encoders import ACTIVATIONS, check_widths


def check_sequences(name: str, x: torch.Tensor, mask: torch.Tensor | None) -> None:
    """A sequence encoder fed single frames (training.batching=frames) is a configuration mistake."""
    if mask is None or x.dim() != 3:
        raise ConfigError(f"the {name} encoder reads whole stretches of frames: training.batching must be auto, "
                          "utterances or chunks, not frames")


def on_real_frames(layer: nn.Module, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`layer` applied to the real frames of (B, T, C) only; zero on padded frames."""
    real = layer(h[mask])
    return real.new_zeros(*mask.shape, real.shape[-1]).index_put((mask,), real)


def recurrent_over(rnn: nn.Module, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A batch-first recurrent layer over (B, T, C) items of `lengths` real frames (packed, so the backward
    direction starts at each item's own last frame); (B, T, C') zero past each item's end."""
    packed = nn.utils.rnn.pack_padded_sequence(h, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
    return out


class TdnnEncoder(nn.Module):
    """Layer i: a 1-D convolution of `kernel_sizes[i]` taps `dilations[i]` frames apart (Kaldi's splice
    {-d, 0, d} is kernel 3, dilation d), then batch norm, the activation and dropout; the last layer's width
    is the hidden size the heads consume (a kernel of 1 there is Kaldi's final affine layer). An output
    frame depends on `frame_context` frames each side: the receptive field."""

    sequence_input = True

    def __init__(self, input_dim: int, widths: list[int], kernel_sizes: list[int], dilations: list[int],
                 dropout: float, activation: str = "relu", batch_norm: bool = True,
                 inputs: list[str] | None = None) -> None:
        super().__init__()
        widths, kernel_sizes, dilations = list(widths), list(kernel_sizes), list(dilations)
        check_widths("encoder: widths", widths)
        if not len(widths) == len(kernel_sizes) == len(dilations):
            raise ConfigError(f"encoder: widths {widths}, kernel_sizes {kernel_sizes} and dilations {dilations} "
                              "must have one entry per TDNN layer")
        if any(not isinstance(k, int) or k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ConfigError(f"encoder: kernel_sizes={kernel_sizes}: each must be an odd whole number >= 1 "
                              "(taps centred on the frame)")
        if any(not isinstance(d, int) or d < 1 for d in dilations):
            raise ConfigError(f"encoder: dilations={dilations}: each must be a whole number >= 1")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"encoder: activation={activation!r}: choose from {sorted(ACTIVATIONS)}")
        self.inputs = list(inputs or [])
        self.input_dim, self.output_dim = input_dim, widths[-1]
        self.frame_context = sum((k - 1) // 2 * d for k, d in zip(kernel_sizes, dilations))
        self.convs = nn.ModuleList()
        self.post = nn.ModuleList()  # per frame: norm, activation, dropout
        previous = input_dim
        for width, k, d in zip(widths, kernel_sizes, dilations):
            self.convs.append(nn.Conv1d(previous, width, k, dilation=d, padding=(k - 1) // 2 * d))
            self.post.append(nn.Sequential(*([nn.BatchNorm1d(width)] if batch_norm else []), ACTIVATIONS[activation](),
                                           *([nn.Dropout(dropout)] if dropout > 0 else [])))
            previous = width

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        check_sequences("TDNN", x, mask)
        h = x * mask[..., None]
        for conv, post in zip(self.convs, self.post):
            h = on_real_frames(post, conv(h.transpose(1, 2)).transpose(1, 2), mask)
        return h


class BlstmEncoder(nn.Module):
    """Bidirectional LSTM layers (`hidden_size` each way), then a projection with the activation to
    `output_dim`, the hidden size the heads consume. It sees the whole sequence (`frame_context` None):
    prediction runs a recording as one piece."""

    sequence_input = True
    frame_context = None

    def __init__(self, input_dim: int, hidden_size: int, layers: int, output_dim: int, dropout: float,
                 activation: str = "relu", inputs: list[str] | None = None) -> None:
        super().__init__()
        check_widths("encoder: hidden_size, layers and output_dim", [hidden_size, layers, output_dim])
        if activation not in ACTIVATIONS:
            raise ConfigError(f"encoder: activation={activation!r}: choose from {sorted(ACTIVATIONS)}")
        self.inputs = list(inputs or [])
        self.input_dim, self.output_dim = input_dim, output_dim
        self.lstm = nn.LSTM(input_dim, hidden_size, layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.projection = nn.Sequential(*([nn.Dropout(dropout)] if dropout > 0 else []),
                                        nn.Linear(2 * hidden_size, output_dim), ACTIVATIONS[activation]())

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        check_sequences("BLSTM", x, mask)
        return on_real_frames(self.projection, recurrent_over(self.lstm, x, mask.sum(dim=1)), mask)
