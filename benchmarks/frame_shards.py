"""What reading a split's frames from shards costs (`frontend.frame_shard_utterances`): random training batches
(`FrameBatches`, as an epoch draws them) gathered from the prepared training frames kept as one set of matrices,
against the same rows cut into shards of N utterances, each its own memory-mapped files (`RowParts`). The shards
are written once from the prepared frames (the same rows, asserted); the page cache is warmed before timing.

    python benchmarks/frame_shards.py <frames dir>/train [--shards 1,8,64,256] [--batches 2000] [--threads=N]
"""

from __future__ import annotations

from pinning import add_threads_argument, pinned  # first: it pins the thread pools

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def epoch_seconds(dataset, batches: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for batch in batches:
        dataset.__getitems__(batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", help="a prepared split's folder (e.g. data/features/frames-<key>/train)")
    parser.add_argument("--shards", default="8,64,256", help="shard counts to compare with one set of matrices")
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    add_threads_argument(parser)
    args = parser.parse_args()
    print(pinned())

    from avfusion.frames.data import FrameData
    from avfusion.frames.writer import index_shards
    from avfusion.training.datamodule import FrameBatches

    whole = FrameData.load(args.train)
    modalities = list(whole.features)
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(whole), args.batch_size, replace=False) for _ in range(args.batches)]
    n_utt = len(whole.ids)
    print(f"{args.train}: {n_utt} utterances, {len(whole)} frames, {', '.join(f'{m} {x.shape[1]} {x.dtype}' for m, x in whole.features.items())}; "
          f"{args.batches} batches of {args.batch_size} random frames, min of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        readers = {"one set": FrameBatches(whole, modalities)}
        for count in [int(c) for c in args.shards.split(",")]:
            cut = np.linspace(0, n_utt, count + 1).astype(int)
            folder = Path(tmp) / f"shards-{count}"
            for k in range(count):
                rows = slice(int(whole.offsets[cut[k]]), int(whole.offsets[cut[k + 1]]))
                FrameData({m: np.asarray(x[rows]) for m, x in whole.features.items()}, np.asarray(whole.labels[rows]),
                          whole.offsets[cut[k]:cut[k + 1] + 1] - whole.offsets[cut[k]], whole.ids[cut[k]:cut[k + 1]],
                          whole.speakers[cut[k]:cut[k + 1]]).save(folder / f"shard-{k:05d}")
            index_shards(folder, [f"shard-{k:05d}" for k in range(count)])
            sharded = FrameData.load(folder)
            for m in modalities:
                assert np.array_equal(np.asarray(sharded.features[m]), np.asarray(whole.features[m]))
            readers[f"{count} shards"] = FrameBatches(sharded, modalities)
        for reader in readers.values():
            epoch_seconds(reader, batches)  # warm: every page read once
        runs = {name: [] for name in readers}
        for _ in range(args.repeats):  # interleaved: a slow spell of the machine falls on every reader alike
            for name, reader in readers.items():
                runs[name].append(epoch_seconds(reader, batches))
        times = {name: min(r) for name, r in runs.items()}
    base = times["one set"]
    for name, seconds in times.items():
        print(f"{name:>12}: {args.batches / seconds:8.0f} batches/s  ({seconds / base:.2f}x the time of one set)")


if __name__ == "__main__":
    main()
