"""Training throughput of the bimodal model: batched index gathering vs a per-item Dataset.

    python benchmarks/training_speed.py [--frames 200000] [--batches 300]

Both loaders read the same memory-mapped frame matrices (360-dim audio, 540-dim video). The
baseline is the textbook PyTorch pattern: a Dataset returning one frame per `__getitem__` and a
DataLoader with default collation. Reported: loading alone, and full training steps of the paper's
bimodal model (two [500, 500, 200] encoders + concatenation softmax, Adam), in frames/s.

Then the arithmetic rate of one training step (batch in memory, loading excluded): the matrix products of
every linear layer, forward and backward (input gradients where autograd needs them, weight gradients
always), counted as 2 m n k flops each, over the measured step time, against the same products done as
plain torch.mm calls on tensors of the same shapes in the same run (what the BLAS gives these shapes:
the ceiling for this model); with the peak RSS of the process.
"""

from __future__ import annotations

from pinning import add_threads_argument, pinned  # first: it pins the thread pools

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class PerFrameDataset(Dataset):
    """The baseline: one Python-level item (and one small tensor per modality) per frame."""

    def __init__(self, features: dict[str, np.ndarray], labels: np.ndarray) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return {m: torch.from_numpy(np.array(x[i])) for m, x in self.features.items()}, int(self.labels[i])


def make_data(directory: Path, frames: int, seed: int = 0):
    from avfusion.frames.data import FrameData

    rng = np.random.default_rng(seed)
    data = FrameData({"audio": rng.normal(size=(frames, 360)).astype(np.float32),
                      "video": rng.normal(size=(frames, 540)).astype(np.float32)},
                     rng.integers(0, 39, frames), np.array([0, frames]), ["synthetic"], ["s"])
    data.save(directory)
    return FrameData.load(directory)  # memory-mapped, as training reads it


def model_and_optimizer():
    from avfusion.corpus.labels import get_scheme
    from avfusion.configs import configured
    from avfusion.training.module import FusionModule

    spec = configured("encoder")  # the paper's 3 x 500 DNNs
    encoders = {m: spec.build(m, {"audio": 360, "video": 540}) for m in ("audio", "video")}
    head = configured("fusion", "fusion=concat", freeze_encoders=False).build({m: e.output_dim for m, e in encoders.items()}, get_scheme("phone"))
    model = FusionModule(encoders, head)
    return model, model.configure_optimizers()  # what training uses: Adam, fused


def throughput(loader, n_batches: int, train: bool) -> float:
    model, optimizer = model_and_optimizer() if train else (None, None)
    frames, start, it = 0, None, iter(loader)
    for b in range(n_batches + 5):
        if b == 5:  # warm-up batches are not timed
            start, frames = time.perf_counter(), 0
        features, labels = next(it)
        if train:
            loss = torch.nn.functional.cross_entropy(model(features), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        frames += len(labels)
    return frames / (time.perf_counter() - start)


def gemms(model: torch.nn.Module, batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of each matrix product of one training step of `model`'s linear layers."""
    shapes = []
    for name, layer in model.named_modules():
        if isinstance(layer, torch.nn.Linear):
            i, o = layer.in_features, layer.out_features
            shapes.append((batch, i, o))  # forward: x W^T
            shapes.append((o, batch, i))  # weight gradient: g^T x
            if not name.endswith("net.0"):  # an encoder's first layer reads the data: no input gradient
                shapes.append((batch, o, i))  # input gradient: g W
    return shapes


def step_rate(batch: int, steps: int) -> tuple[float, float, float]:
    """Achieved GFLOP/s of full training steps, of the same products as plain matmuls, and the flops per step."""
    model, optimizer = model_and_optimizer()
    features = {"audio": torch.randn(batch, 360), "video": torch.randn(batch, 540)}
    labels = torch.randint(0, 39, (batch,))
    shapes = gemms(model, batch)
    flops = sum(2 * m * k * n for m, k, n in shapes)

    def train_step():
        loss = torch.nn.functional.cross_entropy(model(features), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    operands = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes]

    def products():
        for a, b in operands:
            torch.mm(a, b)

    rates = []
    for work in (train_step, products):
        for _ in range(10):
            work()
        start = time.perf_counter()
        for _ in range(steps):
            work()
        rates.append(flops * steps / (time.perf_counter() - start) / 1e9)
    return rates[0], rates[1], flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    add_threads_argument(parser)
    args = parser.parse_args()
    print(pinned())
    torch.manual_seed(0)
    from avfusion.training.datamodule import FrameDataModule

    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "frames", args.frames)
        ours = FrameDataModule({"train": data}, ["audio", "video"], batch_size=args.batch_size).train_dataloader()
        baseline = DataLoader(PerFrameDataset(data.features, data.labels), batch_size=args.batch_size, shuffle=True)
        print(f"{args.frames} frames (audio 360 + video 540, memory-mapped), batch {args.batch_size}, "
              f"{torch.get_num_threads()} torch threads")
        for what, train in (("loading only", False), ("training steps", True)):
            base = throughput(baseline, args.batches, train)
            fast = throughput(ours, args.batches, train)
            print(f"  {what:<15} per-item Dataset {base:>10,.0f} frames/s   batched gather {fast:>10,.0f} frames/s"
                  f"   ratio {fast / base:6.1f}x")
    import resource

    print("training step arithmetic (batch in memory):")
    for batch in sorted({args.batch_size, 1024}):
        achieved, plain, flops = step_rate(batch, max(20, args.batches // 5))
        print(f"  batch {batch:>5}: {flops / 1e6:7.1f} MFLOP a step, {achieved:6.1f} GFLOP/s achieved, "
              f"plain matmuls of the same shapes {plain:6.1f} GFLOP/s, ratio {achieved / plain:5.0%}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
