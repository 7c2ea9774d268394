"""`avfusion-prepare`: cache raw features, fit the front-end on train, build train/dev frame matrices.

Everything lands in the feature cache (`frontend.cache_dir`), where `avfusion-train` finds it.

    avfusion-prepare                                   # default synthetic corpus, pre-cropped mouth video
    avfusion-prepare data=... detector=mediapipe      # a corpus of face videos
    avfusion-prepare frontend.audio.steps.0.scope=speaker frontend.n_jobs=4
    avfusion-prepare -m shards=8 'shard=range(8)' hydra/launcher=slurm   # extraction as 8 array jobs, then:
    avfusion-prepare shards=8                          # fit and write the frames once every shard is done
"""

from __future__ import annotations

import logging
import time

import hydra
from omegaconf import DictConfig

from avfusion import api
from avfusion.cli import CONFIG_DIR
from avfusion.cli.boundary import user_errors
from avfusion.config_check import check_config
from avfusion.frontends.shards import check_shard_settings
from avfusion.frontends.probe import linear_probe
from avfusion.utils.machine import peak_memory_mb

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="prepare")
@user_errors("prepare")
def main(cfg: DictConfig) -> None:
    check_config(cfg)
    check_shard_settings(cfg.shards, cfg.shard)
    corpus, _ = api.load_corpus(cfg)
    if cfg.shard is not None:
        extract_shard(cfg, corpus)
        return
    if cfg.shards is not None:  # the finishing step extracts nothing: every shard must be done
        api.require_extracted(cfg, corpus)
    start = time.perf_counter()
    frontend, data, scheme = api.prepare(cfg, corpus)
    log.info("front-end ready in %.1f s%s (cache: %s)", time.perf_counter() - start, peak_memory(), frontend.cache_dir)
    if frontend.video is not None:
        missed, total = frontend.detection_summary(list(corpus))
        log.info("mouth detector %s: no detection on %d of %d video frames (%.2f%%, interpolated)",
                 frontend.video.extractor.detector.name, missed, total, 100 * missed / max(total, 1))
    for split, frames in data.items():
        dims = ", ".join(f"{m} {x.shape[1]}" for m, x in frames.features.items())
        print(f"{split:<6} {len(frames.ids):>5} utterances {len(frames):>8} frames  dims: {dims}")
    if cfg.probe:
        print_probe(data["train"], data["dev"], scheme, cfg.probe_max_frames)


def extract_shard(cfg: DictConfig, corpus) -> None:
    start = time.perf_counter()
    utterances, reports, statistics = api.extract_shard(cfg, corpus)
    counts = "; ".join(f"{name}: {len(r.extracted)} extracted, {len(r.cached)} already cached" for name, r in reports.items())
    if statistics:
        counts += (f"; statistics of {sum(u.split == 'train' for u in utterances)} training utterances for "
                   f"{', '.join(statistics)}")
    print(f"shard {cfg.shard} of {cfg.shards} ({len(utterances)} utterances, {time.perf_counter() - start:.1f} s"
          f"{peak_memory()}): {counts}")
    print(f"when every shard is done: avfusion-prepare shards={cfg.shards} (fits the front-end on train, writes the "
          "frame matrices)")


def peak_memory() -> str:
    """", peak memory N MB": what a job of this size asks a cluster for (nothing where it cannot be read)."""
    peak = peak_memory_mb()
    return "" if peak is None else f", peak memory {peak:.0f} MB"


def print_probe(train, dev, scheme, max_frames: int) -> None:
    """Frame accuracy of a linear classifier per modality, for the classes and for their groups (visemes)."""
    levels = {scheme.name: lambda y: y, **{g: (lambda y, idx=idx: idx[y]) for g, idx in scheme.groups.items()}}
    print("linear probe, train -> dev frames (chance: always the most frequent training class):")
    for name, x in train.features.items():
        for level, to_label in levels.items():
            r = linear_probe(x, to_label(train.labels), dev.features[name], to_label(dev.labels), max_frames=max_frames)
            print(f"  {name:<6} {level:<12} accuracy {r.accuracy:.3f}   chance {r.chance:.3f}")


if __name__ == "__main__":
    main()
