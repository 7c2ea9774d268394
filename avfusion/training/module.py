"""The LightningModule: encoders + one fusion head, trained with cross-entropy on frame labels."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from avfusion.frames.data import FrameData
from avfusion.models.encoders import EncoderOutputs, encoder_inputs
from avfusion.training.datamodule import SequenceBatches
from avfusion.utils.machine import release_freed_memory
from avfusion.models.fusion.base import FusionHead


def block(x: np.ndarray, rows) -> torch.Tensor:
    """Rows of a (possibly memory-mapped, read-only) frame matrix as a tensor of its own."""
    return torch.from_numpy(np.array(x[rows], dtype=np.float32))


class FusionModule(pl.LightningModule):
    """Class logits from the features of one batch: {modality: (B, D)} -> (B, C) for frame batches,
    {modality: (B, T, D)} and a mask (B, T) -> (B, T, C) for sequence batches.

    Frozen encoders (`head.freeze_encoders`) are kept in eval mode, so their batch-norm statistics and
    dropout stay as pre-training left them; only the head learns. Jointly trained encoders are frozen
    the same way for the head's first `warmup_epochs` epochs, then learn at `encoder_lr_scale` times the
    learning rate. `optimizer`: a partial optimiser class taking parameter groups (conf/optimizer/;
    default Adam with `weight_decay`, fused). Per-frame encoders (MLPs) see only
    the real frames of a sequence batch; their outputs are put back in place for the head.
    """

    def __init__(self, encoders: dict[str, nn.Module], head: FusionHead, lr: float = 1e-3,
                 weight_decay: float = 1e-5, optimizer: Callable | None = None,
                 modality_dropout: float | None = None) -> None:
        super().__init__()
        # training: per item (a frame, or a sequence), with this probability one stream's hidden layer is zeros
        self.modality_dropout = modality_dropout or 0.0
        self.absent: frozenset[str] = frozenset()  # streams scored as missing (`posteriors(missing=...)`)
        if not isinstance(head, FusionHead):
            raise TypeError(f"{type(head).__name__} is not a FusionHead (avfusion.models.fusion.base)")
        self.encoders = nn.ModuleDict(encoders)
        self.head = head
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer or functools.partial(torch.optim.Adam, weight_decay=weight_decay, fused=True)
        self.frozen = head.freeze_encoders
        if self.frozen:
            self.encoders.requires_grad_(False)

    @property
    def encoders_resting(self) -> bool:
        """Encoders take no step now: frozen, or in the head's warm-up epochs."""
        return self.frozen or self.current_epoch < self.head.warmup_epochs

    @property
    def sequence_input(self) -> bool:
        """True when the head or an encoder needs whole stretches of frames (sequence batches)."""
        return self.head.sequence_input or any(e.sequence_input for e in self.encoders.values())

    @property
    def frame_context(self) -> int | None:
        """Frames each side of a frame its posterior depends on (None: the whole sequence)."""
        encoders = [getattr(e, "frame_context", None) for e in self.encoders.values()]
        if None in encoders or self.head.frame_context is None:
            return None
        return max(encoders) + self.head.frame_context

    @property
    def modalities(self) -> list[str]:
        """The features the encoders read."""
        return list(dict.fromkeys(m for e in self.encoders.values() for m in e.inputs))

    def on_train_epoch_start(self) -> None:
        if not self.frozen:  # warm-up: the head alone; afterwards the encoders learn too
            self.encoders.requires_grad_(not self.encoders_resting)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # Lightning switches every submodule to train mode around validation; frozen encoders stay in eval
        if self.encoders_resting:
            self.encoders.eval()

    def hidden(self, features: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = {}
        for name, enc in self.encoders.items():
            if name in self.absent:  # a missing stream: its hidden layer is zeros, as modality dropout trains it
                items = tuple(mask.shape) if mask is not None else \
                    (len(next(v for v in features.values() if isinstance(v, torch.Tensor))),)
                out[name] = torch.zeros((*items, enc.output_dim), device=self.device)
                continue
            x = encoder_inputs(enc, features)
            if mask is None or enc.sequence_input:
                out[name] = enc(x, mask) if enc.sequence_input else enc(x)
            else:  # a per-frame encoder on the real frames of (B, T, D)
                h = enc(x[mask])
                out[name] = h.new_zeros(*mask.shape, h.shape[-1]).index_put((mask,), h)
        return out

    def forward(self, features: dict[str, torch.Tensor], mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """`labels` reach only heads that take the reference segmentation from them (`needs_segments`)."""
        hidden = self.hidden(features, mask)
        if self.training and self.modality_dropout > 0:
            hidden = self.dropped(hidden, mask)
        if self.head.needs_segments:
            return self.head(hidden, mask, labels=labels)
        if mask is None or self.head.sequence_input:
            return self.head(hidden, mask) if self.head.sequence_input else self.head(hidden)
        logits = self.head({name: h[mask] for name, h in hidden.items()})  # a frame head on the real frames
        return logits.new_zeros(*mask.shape, logits.shape[-1]).index_put((mask,), logits)

    def dropped(self, hidden: dict[str, torch.Tensor], mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Modality dropout: per item (a frame of a frame batch, a sequence of a sequence batch), with
        probability `modality_dropout`, one stream's hidden layer, chosen uniformly, set to zeros (never more
        than one: the head always has a stream to go on)."""
        names = [n for n in hidden if n not in self.head.side_inputs]  # the measures of a stream are not a stream
        if len(names) < 2:
            return hidden
        first = hidden[names[0]]
        items = first.shape[:1]  # frames (N, H) or sequences (B, T, H)
        drop = torch.rand(items, device=first.device) < self.modality_dropout
        which = torch.randint(len(names), items, device=first.device)
        shape = (-1,) + (1,) * (first.dim() - 1)
        return {**hidden, **{n: hidden[n] * (~(drop & (which == i))).to(first.dtype).view(shape)
                             for i, n in enumerate(names)}}

    def _step(self, batch, stage: str) -> torch.Tensor:
        features, labels, *rest = batch
        mask = rest[0] if rest else None
        logits = self(features, mask, labels)
        if mask is not None:
            logits, labels = logits[mask], labels[mask]
        loss = nn.functional.cross_entropy(logits, labels)
        error = (logits.argmax(dim=-1) != labels).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(labels),
                 sync_dist=not on_step)
        self.log(f"{stage}/frame_error", error, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(labels), sync_dist=not on_step)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        groups = [{"params": [p for p in self.head.parameters() if p.requires_grad], "lr": self.lr}]
        if not self.frozen:  # during a warm-up they have no gradient: the optimiser skips them
            groups.append({"params": list(self.encoders.parameters()), "lr": self.lr * self.head.encoder_lr_scale})
        return self.optimizer([g for g in groups if g["params"]])

    @torch.no_grad()
    def posteriors(self, data: FrameData, batch_size: int = 8192, kept: EncoderOutputs | None = None,
                   missing: frozenset[str] = frozenset()) -> np.ndarray:
        """(N, C) class posteriors of every frame of `data`: in blocks of frames, or a whole utterance at a
        time for sequence models. `kept`: frame models take from it each encoder's outputs on input arrays
        it saw last time (and keep theirs there); the blocks are the same, so are the numbers. `missing`:
        encoders whose stream is scored as absent (their hidden layer zeros, as modality dropout trains)."""
        unknown = set(missing) - set(self.encoders)
        if unknown:
            raise ValueError(f"no encoder {sorted(unknown)} to leave out (the model's: {sorted(self.encoders)})")
        self.eval()
        out = []
        if self.sequence_input:
            utterances = SequenceBatches(data, self.modalities)
            self.absent = frozenset(missing)
            try:
                for u in range(len(utterances)):
                    batch, labels, mask = utterances[u]
                    out.append(torch.softmax(self(batch, mask, labels)[0], dim=-1).numpy())
            finally:
                self.absent = frozenset()
            return np.concatenate(out)
        return self._frames_through(data, batch_size, kept, missing, lambda h: torch.softmax(self.head(h), dim=-1))

    def _frames_through(self, data: FrameData, batch_size: int, kept: EncoderOutputs | None, missing: frozenset[str],
                        head: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> np.ndarray:
        """`head` on the hidden layers of every frame of `data` (a frame model), in blocks of frames."""
        starts = range(0, len(data), batch_size)

        def outputs(enc, rows: slice) -> torch.Tensor:
            return enc(encoder_inputs(enc, {m: block(data.features[m], rows) for m in enc.inputs}))

        if kept is None or not kept.holds(len(data), sum(e.output_dim for e in self.encoders.values())):
            # nothing kept: the encoders and the head block by block (the same blocks, so the same numbers), each
            # block's result written into one array made at the first (small results kept between the blocks'
            # large temporaries would pin the freed heap around them: memory that grows with the split)
            out = None
            for s in starts:
                release_freed_memory()  # the block before's temporaries
                y = head({name: torch.zeros(min(batch_size, len(data) - s), enc.output_dim)
                          if name in missing else outputs(enc, slice(s, s + batch_size))
                          for name, enc in self.encoders.items()}).numpy()
                out = np.empty((len(data), *y.shape[1:]), y.dtype) if out is None else out
                out[s:s + len(y)] = y
            return out
        hidden = {}
        for name, enc in self.encoders.items():
            def computed(enc=enc) -> torch.Tensor:
                return torch.cat([outputs(enc, slice(s, s + batch_size)) for s in starts])
            if name in missing:
                hidden[name] = torch.zeros(len(data), enc.output_dim)
            else:
                hidden[name] = kept.of(enc, tuple(data.features[m] for m in enc.inputs), computed)
        return np.concatenate([head({n: h[s:s + batch_size] for n, h in hidden.items()}).numpy() for s in starts])

    @torch.no_grad()
    def stream_weights(self, data: FrameData, batch_size: int = 8192, kept: EncoderOutputs | None = None,
                       missing: frozenset[str] = frozenset()) -> np.ndarray | None:
        """(N, K) the head's per-frame stream weights (`FusionHead.stream_weights`) on every frame of `data`, as
        `posteriors` computes them; None for a head that has none."""
        if type(self.head).stream_weights is FusionHead.stream_weights:
            return None
        self.eval()
        if not self.sequence_input:
            return self._frames_through(data, batch_size, kept, missing, self.head.stream_weights)
        utterances, out = SequenceBatches(data, self.modalities), []
        self.absent = frozenset(missing)
        try:
            for u in range(len(utterances)):
                batch, _, mask = utterances[u]
                out.append(self.head.stream_weights({n: h[mask] for n, h in self.hidden(batch, mask).items()}).numpy())
        finally:
            self.absent = frozenset()
        return np.concatenate(out)
