"""Training throughput of the video encoders on the default corpus: the CNN on the mouth pixels against the
paper's MLP on DCT+LDA features, both video-only with their own softmax, in label frames (10 ms) per second.

    python benchmarks/video_cnn_training.py [--batches 30] [overrides ...]   # e.g. encoder.modules.video.temporal=tcn

Each model is fed as its training stage feeds it (`avfusion-train experiment=video_cnn fusion=video_only`):
the CNN whole utterances, 8 a batch, with its augmentation; the MLP random frames, 256 a batch. Timed: full
training steps (loading, forward, backward, fused Adam), after 3 untimed warm-up batches, in one process
with torch's default threads. The corpus and the prepared frames are built on first use.
"""

from __future__ import annotations

from pinning import add_threads_argument, pinned  # first: it pins the thread pools

import argparse
import resource
import time

import torch
from hydra.utils import instantiate

from avfusion import api
from avfusion.configs import compose_config
from avfusion.errors import UserError
from avfusion.training.datamodule import FrameDataModule
from avfusion.training.stages import build_model


def throughput(cfg, frames, scheme, batching: str, n_batches: int) -> tuple[float, int]:
    """Label frames per second of training steps, and the model's parameter count."""
    torch.manual_seed(0)
    model = build_model(instantiate(cfg.fusion, _convert_="all"), instantiate(cfg.encoder, _convert_="all"),
                        frames["train"].input_dims, scheme)
    optimizer = model.configure_optimizers()
    model.train()
    loader = FrameDataModule(frames, model.modalities, cfg.training.batch_size, seed=0, batching=batching,
                             sequences_per_batch=cfg.training.sequences_per_batch).train_dataloader()
    it, done, start = iter(loader), 0, None
    for b in range(n_batches + 3):
        if b == 3:
            start, done = time.perf_counter(), 0
        features, labels, *rest = next(it)
        mask = rest[0] if rest else None
        logits = model(features, mask, labels)
        if mask is not None:
            logits, labels = logits[mask], labels[mask]
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done += len(labels)
    return done / (time.perf_counter() - start), sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30, help="timed batches per model")
    parser.add_argument("overrides", nargs="*", help="avfusion-train overrides (applied to the CNN run)")
    add_threads_argument(parser)
    args = parser.parse_args()
    print(pinned())
    cnn = compose_config("train", ["experiment=video_cnn", "fusion=video_only", *args.overrides])
    mlp = compose_config("train", ["fusion=video_only"])
    try:
        _, frames, scheme = api.prepare(cnn)  # the DCT+LDA features are in these frames too
    except UserError as e:  # e.g. a corpus given with data=... that does not validate
        raise SystemExit(f"error: {e}")
    train_frames = len(frames["train"])
    rows = []
    for name, cfg, batching in (("MLP on DCT+LDA (540)", mlp, "frames"), ("CNN on 44x44 mouth pixels", cnn, "utterances")):
        rate, params = throughput(cfg, frames, scheme, batching, args.batches)
        rows.append((name, rate, params))
        print(f"{name}: {rate:,.0f} label frames/s ({params:,} parameters; one epoch of {train_frames:,} train "
              f"frames: {train_frames / rate:.0f} s)", flush=True)
    print(f"CNN / MLP throughput: {rows[1][1] / rows[0][1]:.3f} "
          f"({torch.get_num_threads()} threads; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
