"""Batches for training: random frames gathered by index, or chunks of utterances with a mask.

Frame batches (the default for frame heads and MLP encoders): the dataset fetches a whole batch at
once (`__getitems__`, which PyTorch's DataLoader calls with the batch sampler's index list), one
fancy-indexing gather per modality, no Python object per frame.

Sequence batches (for heads and encoders that need temporal context): each item is a stretch of one
utterance, either the whole utterance or a chunk of at most `chunk_frames` frames; a batch pads its
items to the longest and carries a mask (True on real frames) and labels (-100 on padding, which
cross-entropy ignores). Chunks never cross an utterance boundary. A modality kept at its own rate (a
`VideoStream` of mouth ROIs) comes as a `VideoBatch`: the video frames each item's label frames need,
padded, their count, and each label frame's position in them.

Samplers are BatchSamplers over a RandomSampler, so Lightning's distributed training splits them across
processes as it does any sampler.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from avfusion.frames.data import FrameData, VideoBatch

IGNORE = -100  # label of padded frames (torch's cross-entropy default ignore_index)
BATCHING = ("frames", "utterances", "chunks")


class FrameBatches(Dataset):
    def __init__(self, data: FrameData, modalities: list[str]) -> None:
        self.features = {m: data.features[m] for m in modalities}
        self.labels = data.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]):
        idx = np.sort(np.asarray(indices))  # sorted reads are kinder to memory-mapped arrays
        features = {m: torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)) for m, x in self.features.items()}
        return features, torch.from_numpy(np.asarray(self.labels[idx], dtype=np.int64))

    def __getitem__(self, index: int):
        return self.__getitems__([index])


def sequence_spans(data: FrameData, chunk_frames: int | None) -> np.ndarray:
    """(S, 2) first and end row of every item: whole utterances (None) or chunks of `chunk_frames`."""
    spans = []
    for u in range(len(data.ids)):
        start, stop = int(data.offsets[u]), int(data.offsets[u + 1])
        step = chunk_frames or max(stop - start, 1)
        spans += [(s, min(s + step, stop)) for s in range(start, stop, step)]
    return np.array(spans, dtype=np.int64).reshape(-1, 2)


class SequenceBatches(Dataset):
    """Items are stretches of one utterance; a batch is ({modality: (B, T, D) or a VideoBatch}, labels (B, T),
    mask (B, T)). With `chunk_frames` None, item u is utterance u."""

    def __init__(self, data: FrameData, modalities: list[str], chunk_frames: int | None = None) -> None:
        unknown = [m for m in modalities if m not in data.features and m not in data.streams]
        if unknown:
            raise ValueError(f"no features or stream {unknown} in the data (it has "
                             f"{sorted(data.features) + sorted(data.streams)})")
        self.features = {m: data.features[m] for m in modalities if m in data.features}
        self.streams = {m: data.streams[m] for m in modalities if m in data.streams}
        self.labels = data.labels
        self.offsets = data.offsets
        self.spans = sequence_spans(data, chunk_frames)
        self.utterances = np.searchsorted(data.offsets, self.spans[:, 0], side="right") - 1  # each item's

    def __len__(self) -> int:
        return len(self.spans)

    def __getitems__(self, indices: list[int]):
        spans = self.spans[np.asarray(indices)]
        lengths = spans[:, 1] - spans[:, 0]
        length = int(lengths.max())
        mask = torch.arange(length)[None, :] < torch.from_numpy(lengths)[:, None]
        labels = torch.full((len(spans), length), IGNORE, dtype=torch.int64)
        features = {m: torch.zeros(len(spans), length, x.shape[1]) for m, x in self.features.items()}
        for i, (start, stop) in enumerate(spans):
            labels[i, :stop - start] = torch.from_numpy(np.array(self.labels[start:stop], dtype=np.int64))
            for m, x in self.features.items():
                features[m][i, :stop - start] = torch.from_numpy(np.ascontiguousarray(x[start:stop]))
        for m, stream in self.streams.items():
            features[m] = self._video(stream, np.asarray(indices), spans, length)
        return features, labels, mask

    def _video(self, stream, items: np.ndarray, spans: np.ndarray, length: int) -> VideoBatch:
        windows = [stream.window(int(u), int(a - self.offsets[u]), int(b - self.offsets[u]))
                   for u, (a, b) in zip(self.utterances[items], spans)]
        counts = [len(frames) for frames, _ in windows]
        frames = torch.zeros(len(spans), max(counts), *stream.frames.shape[1:],
                             dtype=torch.from_numpy(np.zeros(0, stream.frames.dtype)).dtype)
        positions = torch.zeros(len(spans), length)
        for i, (x, p) in enumerate(windows):
            frames[i, :len(x)] = torch.from_numpy(np.array(x))
            positions[i, :len(p)] = torch.from_numpy(p)
        return VideoBatch(frames, positions, torch.tensor(counts))

    def __getitem__(self, index: int):
        return self.__getitems__([index])


# frames read together from one place: a few MB of contiguous rows, which the kernel reads ahead in one go
PIECE_FRAMES = 4096


class BlockRandomSampler(Sampler):
    """Every index once an epoch, in random order within windows of about `block` indices, each window made of
    pieces of `PIECE_FRAMES` consecutive indices drawn from anywhere in the split: frame batches that read one
    window's pages at a time, a few MB of contiguous rows per piece, so a split larger than the page cache is read
    window by window instead of a page per frame (random frames over it thrash), while a window's frames still come
    from all over the split (its speakers, not one speaker's stretch). Drawn whole from `generator` when iterated,
    as RandomSampler draws, so a checkpointed generator resumes the order."""

    def __init__(self, n: int, block: int, generator: torch.Generator) -> None:
        self.n, self.block, self.generator = n, block, generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        piece = min(PIECE_FRAMES, self.block)
        starts = torch.arange(0, self.n, piece)
        starts = starts[torch.randperm(len(starts), generator=self.generator)].tolist()
        per_window = max(self.block // piece, 1)
        windows = []
        for first in range(0, len(starts), per_window):
            rows = torch.cat([torch.arange(s, min(s + piece, self.n)) for s in starts[first:first + per_window]])
            windows.append(rows[torch.randperm(len(rows), generator=self.generator)])
        yield from torch.cat(windows or [torch.zeros(0, dtype=torch.int64)]).tolist()


class FrameBatchSampler(BatchSampler):
    """A BatchSampler of its own type: Lightning then rebuilds it around a DistributedSampler in
    distributed runs (for the plain BatchSampler class it falls back to fetching frame by frame)."""


def _as_batch(batch):
    return batch  # __getitems__ already built the batch


class FrameDataModule(pl.LightningDataModule):
    """Train batches drawn in a seeded random order; dev in order.

    `batching`: frames (random frames, `batch_size` a batch), utterances (whole utterances,
    `sequences_per_batch` a batch) or chunks (stretches of at most `chunk_frames` frames). `shuffle_block_frames`:
    frames drawn at random within windows of that many (`BlockRandomSampler`), not over the whole split."""

    def __init__(self, splits: dict[str, FrameData], modalities: list[str], batch_size: int = 256,
                 eval_batch_size: int = 4096, seed: int = 0, batching: str = "frames", chunk_frames: int = 200,
                 sequences_per_batch: int = 8, shuffle_block_frames: int | None = None) -> None:
        super().__init__()
        if batching not in BATCHING:
            raise ValueError(f"batching must be one of {BATCHING}, not {batching!r}")
        self.splits = splits
        self.modalities = modalities
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.batching = batching
        self.chunk_frames = chunk_frames
        self.sequences_per_batch = sequences_per_batch
        self.shuffle_block_frames = shuffle_block_frames
        self._generator: torch.Generator | None = None  # the train order's; its state is checkpointed
        self._resumed_state: torch.Tensor | None = None

    def state_dict(self) -> dict:
        """Saved in every checkpoint: where the train order's generator is (a resumed fit then draws the next
        epoch's order, not epoch 0's again)."""
        return {} if self._generator is None else {"train_generator": self._generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._resumed_state = state_dict.get("train_generator")

    def _loader(self, split: str, train: bool) -> DataLoader:
        data = self.splits[split]
        if self.batching == "frames":
            dataset = FrameBatches(data, self.modalities)
            size = self.batch_size if train else self.eval_batch_size
        else:  # dev is scored on whole utterances, as evaluation sees them
            chunk = self.chunk_frames if self.batching == "chunks" and train else None
            dataset = SequenceBatches(data, self.modalities, chunk)
            size = self.sequences_per_batch
        if train:
            generator = torch.Generator().manual_seed(self.seed)
            if self._resumed_state is not None:
                generator.set_state(self._resumed_state)
            self._generator = generator
            order = (BlockRandomSampler(len(dataset), self.shuffle_block_frames, generator)
                     if self.shuffle_block_frames and self.batching == "frames" else RandomSampler(dataset, generator=generator))
            sampler = FrameBatchSampler(order, size, drop_last=self.batching == "frames")
        else:
            sampler = FrameBatchSampler(SequentialSampler(dataset), size, drop_last=False)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=_as_batch, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", train=False)
