"""Fusion by pooling the concatenated audio-visual hidden sequence, then a classifier.

    [h_audio; h_video] (per frame) -> PCA (whitened; fitted on train) -> pooling -> classifier -> logits

The pooling layer (a GMM Fisher vector or VLAD, `avfusion.models.pooling`) is fitted to the training
frames' hidden vectors before the head trains (`initialise`: PCA, then EM or k-means on a seeded
subsample of train frames only). `pooling` picks what a vector summarises:

- `window`: the +-`half_width` frames around each frame, within its utterance: one vector per frame,
  so frame error and PER compare with the other heads;
- `segment`: each reference segment (a phone or word of the alignment) as a whole, every frame of it
  sharing the segment's vector: classification given the boundaries, scored by `segment_error`. The
  boundaries come from the frame labels (where the unit changes); the labels' identities are not used.
- `utterance`: the whole utterance, for utterance-level labels (sequence classification;
  `utterance_vectors` gives the vectors themselves).

Frame-level heads see only their frame; these see a stretch of frames, so they are sequence heads:
trained on whole utterances (or chunks) and evaluated on whole utterances.
"""

from __future__ import annotations

import abc
import logging
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from avfusion.corpus.labels import LabelScheme
from avfusion.models.encoders import MlpEncoder
from avfusion.models.fusion.base import FusionHead
from avfusion.models.pooling import SequencePooling

log = logging.getLogger(__name__)

POOLINGS = ("window", "segment", "utterance")


class PooledFusion(FusionHead):
    sequence_input = True
    needs_initialisation = True
    NOT_SHAPING: ClassVar[tuple[str, ...]] = ("window_algorithm",)  # how sums are formed, not what they are

    def __init__(self, encoders: list[str], pooling: str, half_width: int, pca_dim: int | None, whiten: bool,
                 classifier_widths: list[int], dropout: float, freeze_encoders: bool, fit_max_frames: int,
                 posterior_floor: float, window_algorithm: str, seed: int) -> None:
        super().__init__(encoders, pretrain_encoders=True, freeze_encoders=freeze_encoders)
        if pooling not in POOLINGS:
            raise ValueError(f"fusion.pooling must be one of {POOLINGS}, not {pooling!r}")
        if half_width < 0:
            raise ValueError(f"fusion.half_width must be >= 0, not {half_width}")
        self.pooling_mode, self.half_width = pooling, half_width
        self.pca_dim, self.whiten = pca_dim, whiten
        self.classifier_widths, self.dropout = list(classifier_widths), dropout
        self.fit_max_frames, self.posterior_floor, self.seed = fit_max_frames, posterior_floor, seed
        self.window_algorithm = window_algorithm
        self.needs_segments = pooling == "segment"
        self._vectors: np.ndarray | None = None  # reused output memory of window pooling (not state)

    @abc.abstractmethod
    def make_pooling(self, dim: int) -> SequencePooling:
        """The pooling layer over `dim`-dimensional frames (parameters filled in by `fit_pooling`)."""

    @abc.abstractmethod
    def fit_pooling(self, x: np.ndarray) -> None:
        """Fit the pooling layer's model (GMM, codebook) to training frames `x` (N, dim)."""

    @property
    def frame_context(self) -> int | None:
        return self.half_width if self.pooling_mode == "window" else None

    def build_layers(self, hidden_dims: dict[str, int], scheme: LabelScheme) -> None:
        width = sum(hidden_dims.values())
        dim = self.pca_dim or width
        if dim > width:
            raise ValueError(f"fusion.pca_dim={dim} exceeds the concatenated hidden size {width}")
        self.register_buffer("pca_mean", torch.zeros(width))
        self.register_buffer("pca_matrix", torch.eye(width)[:, :dim].clone())
        self.register_buffer("unit_of_class", torch.as_tensor(scheme.unit_of_class, dtype=torch.long))
        self.pool = self.make_pooling(dim)
        # pooled vectors have unit L2 norm over thousands of dims: batch norm standardises each dim, so
        # the classifier's gradient steps move its logits at a useful rate
        layers = [nn.BatchNorm1d(self.pool.output_dim), nn.Dropout(self.dropout)]
        if self.classifier_widths:
            hidden = MlpEncoder(self.pool.output_dim, self.classifier_widths, dropout=self.dropout, batch_norm=False)
            layers += [hidden, nn.Linear(hidden.output_dim, scheme.num_classes)]
        else:
            layers.append(nn.Linear(self.pool.output_dim, scheme.num_classes))
        self.classifier = nn.Sequential(*layers)

    def initialise(self, hidden: dict[str, np.ndarray]) -> None:
        """PCA and the pooling model, fitted on (a seeded subsample of) the training frames' hidden vectors."""
        from sklearn.decomposition import PCA

        x = np.concatenate([np.asarray(hidden[e], dtype=np.float32) for e in self.encoders], axis=1)
        if len(x) > self.fit_max_frames:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(x), self.fit_max_frames, replace=False))
            x = x[keep]
        if self.pca_dim:
            pca = PCA(n_components=self.pca_dim, whiten=self.whiten, random_state=self.seed).fit(x)
            matrix = pca.components_.T / (np.sqrt(pca.explained_variance_)[None, :] if self.whiten else 1.0)
            with torch.no_grad():
                self.pca_mean.copy_(torch.as_tensor(pca.mean_))
                self.pca_matrix.copy_(torch.as_tensor(matrix))
        x = self.project(torch.as_tensor(x)).numpy()
        log.info("fitting %s on %d training frames of %d dims", type(self.pool).__name__, len(x), x.shape[1])
        self.fit_pooling(x.astype(np.float64))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.pca_mean) @ self.pca_matrix

    def frames(self, hidden: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.project(torch.cat([hidden[e] for e in self.encoders], dim=-1))

    def _buffer(self, n_frames: int) -> np.ndarray:
        """Memory the window vectors are written into, kept across batches (they are consumed at once)."""
        size = n_frames * self.pool.output_dim
        if self._vectors is None or self._vectors.size < size:
            self._vectors = np.empty(int(size * 1.25), np.float32)  # room for somewhat longer batches
        return self._vectors

    def utterance_vectors(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """(B, F): one pooled vector per sequence, for utterance-level tasks."""
        return self.pool.pool(self.frames(hidden), mask)

    def segment_ids(self, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) index of each frame's reference segment: a new segment wherever the unit changes."""
        units = self.unit_of_class[labels.clamp_min(0)]
        change = torch.ones_like(mask)
        change[:, 1:] = units[:, 1:] != units[:, :-1]
        return (change & mask).long().cumsum(dim=1) - 1

    def forward(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.frames(hidden)
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        if self.pooling_mode == "window":
            pooled = self.pool.window(x, mask, self.half_width, self._buffer(x.shape[0] * x.shape[1]))
        elif self.pooling_mode == "utterance":
            pooled = self.pool.pool(x, mask)[:, None, :].expand(-1, x.shape[1], -1)
        else:
            if labels is None:
                raise ValueError("segment pooling needs the reference segmentation (the frame labels)")
            pooled = self.pool.segments(x, mask, self.segment_ids(labels, mask))
        logits = self.classifier(pooled[mask])  # real frames only (batch norm statistics)
        return logits.new_zeros(*mask.shape, logits.shape[-1]).index_put((mask,), logits)
