"""A convolutional visual front-end learned from the mouth pixels, as current lip-reading systems build
it (Stafylakis & Tzimiropoulos 2017; Martinez et al. 2020; Ma et al. 2023): a 3-D convolution stem over
(time, height, width), a 2-D ResNet trunk applied frame by frame, a temporal model over the video-rate
sequence, and linear interpolation to the 100 Hz label frames inside the model, so one label frame gets
one output whatever the video rate (25, 29.97, 30 fps).

Input: a `VideoBatch` of grey uint8 ROIs (B, Tv, S, S) at the video rate, `positions` (B, T) (each label
frame's fractional video-frame index counted from the item's first video frame, `avfusion.frames.clock.
video_positions`) and the items' real video frames (B,), as `SequenceBatches` cuts them from a
`VideoStream`; and the label-frame mask (B, T). Output: (B, T, output_dim), the last hidden layer
the fusion heads consume. Widths and depth come from the config; ResNet-18 is `widths=[64,128,256,512]`,
`blocks=[2,2,2,2]`, the CPU default is much smaller. A user's state dict can be loaded (no downloads).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from avfusion.errors import ConfigError
from avfusion.frames.data import VideoBatch
from avfusion.models.sequence_encoders import recurrent_over

TEMPORAL = ("gru", "lstm", "tcn")  # bidirectional recurrent layers, or dilated convolutions


class RoiAugment(nn.Module):
    """Training-time augmentation of (B, Tv, S, S) ROIs, off in eval mode: a random `crop`-sized window
    (the centre one in eval), a horizontal flip per item (mouths are near-symmetric) and up to
    `time_masks` stretches of at most `max_mask_frames` frames replaced by the item's mean frame."""

    def __init__(self, crop: int, flip: bool = True, time_masks: int = 1, max_mask_frames: int = 5) -> None:
        super().__init__()
        self.crop, self.flip, self.time_masks, self.max_mask_frames = crop, flip, time_masks, max_mask_frames

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        if not self.training:
            top = (size - self.crop) // 2
            return x[..., top:top + self.crop, top:top + self.crop]
        b = x.shape[0]
        tops = torch.randint(0, size - self.crop + 1, (b, 2)).tolist()
        x = torch.stack([x[i, :, t:t + self.crop, l:l + self.crop] for i, (t, l) in enumerate(tops)])
        if self.flip:
            flip = torch.rand(b, device=x.device) < 0.5  # on the ROIs' device (a GPU run); the same draws on a CPU
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.time_masks and self.max_mask_frames:
            x = x.clone()
            for i in range(b):
                n = int(lengths[i])
                mean = x[i, :n].mean(dim=0)
                for _ in range(self.time_masks):
                    width = int(torch.randint(0, self.max_mask_frames + 1, ()))
                    if 0 < width < n:
                        start = int(torch.randint(0, n - width + 1, ()))
                        x[i, start:start + width] = mean
        return x


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convolutions with a shortcut (a 1x1 projection when the shape changes)."""

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = nn.Identity() if stride == 1 and inputs == width else nn.Sequential(
            nn.Conv2d(inputs, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def interpolate_at(h: torch.Tensor, positions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, Tv, C) video-rate sequence -> (B, T, C) at fractional frame `positions` (B, T), linearly,
    never reading past an item's `lengths` real frames (the last one is held)."""
    last = (lengths - 1).clamp(min=0)[:, None]
    k0 = positions.floor().long().clamp(min=0)
    k0 = torch.minimum(k0, last)
    k1 = torch.minimum(k0 + 1, last)
    w = (positions - k0).clamp(0.0, 1.0)[..., None].to(h.dtype)
    gather = lambda k: h.gather(1, k[..., None].expand(-1, -1, h.shape[-1]))  # noqa: E731
    return (1 - w) * gather(k0) + w * gather(k1)


class VideoCnnEncoder(nn.Module):
    """3-D conv stem -> 2-D ResNet per frame -> temporal model -> interpolation to the label frames ->
    Linear + ReLU (`output_dim`, the hidden layer the heads fuse)."""

    sequence_input = True
    frame_context = None  # the temporal model sees the whole item

    def __init__(self, input_dim: int, crop: int, stem_channels: int, widths: list[int], blocks: list[int],
                 temporal: str, temporal_size: int, temporal_layers: int, output_dim: int, dropout: float,
                 flip: bool, time_masks: int, max_mask_frames: int, inputs: list[str] | None = None,
                 state_dict_path: str | None = None) -> None:
        super().__init__()
        widths, blocks = list(widths), list(blocks)
        if len(blocks) != len(widths):
            raise ConfigError(f"encoder: blocks {blocks} and widths {widths} must have one entry per ResNet stage")
        if temporal not in TEMPORAL:
            raise ConfigError(f"encoder: temporal={temporal!r}: choose from {list(TEMPORAL)}")
        if not 0 < crop <= input_dim:
            raise ConfigError(f"encoder: crop={crop} must be within the {input_dim}x{input_dim} ROIs of the front-end "
                              "(frontend.streams[...].extractor.roi_size)")
        self.inputs = list(inputs or ["video_roi"])
        self.roi_size, self.output_dim = input_dim, output_dim  # input_dim: the ROIs' side
        self.augment = RoiAugment(crop, flip, time_masks, max_mask_frames)
        self.stem = nn.Sequential(  # (time 5, 7x7) as in the lip-reading front-ends; space halved twice
            nn.Conv3d(1, stem_channels, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False), nn.BatchNorm3d(stem_channels),
            nn.ReLU(), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        stages, previous = [], stem_channels
        for i, (width, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stages.append(BasicBlock(previous, width, 2 if i > 0 and j == 0 else 1))
                previous = width
        self.trunk = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.temporal_kind = temporal
        if temporal in ("gru", "lstm"):
            recurrent = nn.GRU if temporal == "gru" else nn.LSTM
            self.temporal = recurrent(previous, temporal_size, temporal_layers, batch_first=True, bidirectional=True,
                                      dropout=dropout if temporal_layers > 1 else 0.0)
            temporal_out = 2 * temporal_size
        else:  # dilated temporal convolutions over the video frames
            layers, channels = [], previous
            for layer in range(temporal_layers):
                layers += [nn.Conv1d(channels, temporal_size, 3, padding=2 ** layer, dilation=2 ** layer),
                           nn.BatchNorm1d(temporal_size), nn.ReLU()]
                channels = temporal_size
            self.temporal = nn.Sequential(*layers)
            temporal_out = temporal_size
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(temporal_out, output_dim)
        if state_dict_path:
            self.load_state_dict(torch.load(state_dict_path, map_location="cpu", weights_only=True))

    def frames(self, rois: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, Tv, S, S) ROIs -> (B, Tv, C) per-video-frame features (padded frames zeroed)."""
        b, tv = rois.shape[:2]
        real = torch.arange(tv, device=rois.device)[None, :] < lengths[:, None]
        # padded frames are zero after centring, as the convolutions' own padding, so that an item's outputs
        # do not depend on what it is batched with
        x = self.augment((rois.float() / 255.0 - 0.5) * real[..., None, None], lengths)
        x = self.stem(x[:, None])  # (B, C, Tv, S', S')
        x = x.transpose(1, 2).flatten(0, 1)  # (B * Tv, C, S', S')
        x = self.trunk(x).view(b, tv, -1)
        return x * real[..., None]

    def forward(self, video: VideoBatch, mask: torch.Tensor) -> torch.Tensor:
        rois, positions, lengths = video
        if rois.shape[-1] != self.roi_size or rois.shape[-2] != self.roi_size:
            raise ValueError(f"the encoder expects {self.roi_size}x{self.roi_size} ROIs, got {tuple(rois.shape[-2:])}")
        h = self.frames(rois, lengths)
        if self.temporal_kind in ("gru", "lstm"):
            h = recurrent_over(self.temporal, h, lengths)
        else:
            h = self.temporal(h.transpose(1, 2)).transpose(1, 2)
        y = F.relu(self.out(self.dropout(interpolate_at(h, positions, lengths))))
        return y * mask[..., None]
