"""Training throughput of the encoders on the default corpus, each against the paper's MLP on the same stream,
in label frames (10 ms) per second: the audio TDNN and BLSTM (`encoder=tdnn`, `encoder=blstm`) against the
audio MLP, and the CNN on the mouth pixels with a bidirectional GRU or LSTM against the video MLP on DCT+LDA.
Each is trained alone with its own softmax (audio_only / video_only).

    python benchmarks/encoder_training.py [--batches 30] [--streams audio video] [--threads=N] [overrides ...]

Each model is fed as its training stage feeds it: the MLPs random frames, 256 a batch; the sequence encoders
whole utterances, 8 a batch (the CNN with its augmentation). Timed: full training steps (loading, forward,
backward, fused Adam), after 3 untimed warm-up batches, in one process. The corpus and the prepared frames
are built on first use. `overrides` apply to every model (e.g. data=...).
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


# stream -> (name, avfusion-train overrides, batching); the first of each stream is its baseline
MODELS = {
    "audio": [("audio MLP (paper_500)", ["fusion=audio_only"], "frames"),
              ("audio TDNN (encoder=tdnn)", ["fusion=audio_only", "encoder=tdnn"], "utterances"),
              ("audio BLSTM (encoder=blstm)", ["fusion=audio_only", "encoder=blstm"], "utterances")],
    "video": [("video MLP on DCT+LDA", ["fusion=video_only"], "frames"),
              ("video CNN + BiGRU", ["experiment=video_cnn", "fusion=video_only"], "utterances"),
              ("video CNN + BiLSTM", ["experiment=video_cnn", "fusion=video_only",
                                      "encoder.modules.video.temporal=lstm"], "utterances")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30, help="timed batches per model")
    parser.add_argument("--streams", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument("overrides", nargs="*", help="avfusion-train overrides applied to every model")
    add_threads_argument(parser)
    args = parser.parse_args()
    print(pinned())
    prepared = {}  # the frames of a front-end (the CNN's adds the mouth-pixel stream), prepared once
    for stream in args.streams:
        baseline = None
        for name, overrides, batching in MODELS[stream]:
            cfg = compose_config("train", [*overrides, *args.overrides])
            needs_pixels = "experiment=video_cnn" in overrides
            if needs_pixels not in prepared:
                try:
                    prepared[needs_pixels] = api.prepare(cfg)[1:]
                except UserError as e:  # e.g. a corpus given with data=... that does not validate
                    raise SystemExit(f"error: {e}")
            frames, scheme = prepared[needs_pixels]
            train_frames = len(frames["train"])
            rate, params = throughput(cfg, frames, scheme, batching, args.batches)
            baseline = baseline or rate
            print(f"{name}: {rate:,.0f} label frames/s = {rate / baseline:.3f} x the {stream} MLP ({params:,} "
                  f"parameters; one epoch of {train_frames:,} train frames: {train_frames / rate:.0f} s)", flush=True)
    print(f"{torch.get_num_threads()} threads; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
