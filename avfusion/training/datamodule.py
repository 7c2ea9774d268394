"""Batches of frames gathered by index from contiguous frame matrices.

The dataset fetches a whole batch at once (`__getitems__`, which PyTorch's DataLoader calls with
the batch sampler's index list): one fancy-indexing gather per modality, no Python object per frame.
The sampler is a BatchSampler over a RandomSampler, so Lightning's distributed training splits it
across processes as it does any sampler.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from avfusion.frontends.pipeline import FrameData


class FrameBatches(Dataset):
    def __init__(self, data: FrameData, modalities: list[str]) -> None:
        self.features = {m: data.features[m] for m in modalities}
        self.labels = data.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]):
        idx = np.sort(np.asarray(indices))  # sorted reads are kinder to memory-mapped arrays
        features = {m: torch.from_numpy(np.ascontiguousarray(x[idx])) for m, x in self.features.items()}
        return features, torch.from_numpy(np.asarray(self.labels[idx], dtype=np.int64))

    def __getitem__(self, index: int):
        return self.__getitems__([index])


class FrameBatchSampler(BatchSampler):
    """A BatchSampler of its own type: Lightning then rebuilds it around a DistributedSampler in
    distributed runs (for the plain BatchSampler class it falls back to fetching frame by frame)."""


def _as_batch(batch):
    return batch  # __getitems__ already built the batch


class FrameDataModule(pl.LightningDataModule):
    def __init__(self, splits: dict[str, FrameData], modalities: list[str], batch_size: int = 256,
                 eval_batch_size: int = 4096, seed: int = 0) -> None:
        super().__init__()
        self.splits = splits
        self.modalities = modalities
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed

    def _loader(self, split: str, train: bool) -> DataLoader:
        dataset = FrameBatches(self.splits[split], self.modalities)
        if train:
            generator = torch.Generator().manual_seed(self.seed)
            sampler = FrameBatchSampler(RandomSampler(dataset, generator=generator), self.batch_size, drop_last=True)
        else:
            sampler = FrameBatchSampler(SequentialSampler(dataset), self.eval_batch_size, drop_last=False)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=_as_batch, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", train=False)
