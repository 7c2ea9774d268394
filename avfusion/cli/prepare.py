"""`avfusion-prepare`: cache raw features, fit the front-end on train, write frame matrices per split.

    avfusion-prepare                                   # default synthetic corpus, pre-cropped mouth video
    avfusion-prepare data=... detector=mediapipe      # a corpus of face videos
    avfusion-prepare frontend.audio.steps.0.scope=speaker frontend.n_jobs=4
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from avfusion.cli import CONFIG_DIR
from avfusion.corpus.labels import get_scheme
from avfusion.corpus.types import SPLITS
from avfusion.frontends.probe import linear_probe

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="prepare")
def main(cfg: DictConfig) -> None:
    out = Path(HydraConfig.get().runtime.output_dir)
    corpus = instantiate(cfg.data, _convert_="all").load()
    corpus.check_speaker_independent()
    frontend = instantiate(cfg.frontend, _convert_="all")

    start = time.perf_counter()
    frontend.prepare(list(corpus))
    log.info("features cached in %.1f s under %s", time.perf_counter() - start, frontend.cache_dir)
    if frontend.video is not None:
        missed, total = frontend.detection_summary(list(corpus))
        log.info("mouth detector %s: no detection on %d of %d video frames (%.2f%%, interpolated)",
                 frontend.video.extractor.detector.name, missed, total, 100 * missed / max(total, 1))

    frontend.fit(corpus)
    frontend.save(out / "frontend.pkl")
    data = {}
    for split in SPLITS:
        data[split] = frontend.transform(corpus.split(split), cfg.label_scheme)
        data[split].save(out / "frames" / split)
        dims = ", ".join(f"{m} {x.shape[1]}" for m, x in data[split].features.items())
        print(f"{split:<6} {len(data[split].ids):>5} utterances {len(data[split]):>8} frames  dims: {dims}")
    print(f"front-end and frame matrices written to {out}")

    if cfg.probe:
        print_probe(data["train"], data["dev"], get_scheme(cfg.label_scheme), cfg.probe_max_frames)


def print_probe(train, dev, scheme, max_frames: int) -> None:
    """Frame accuracy of a linear classifier per modality, for the classes and for their visemes."""
    viseme = scheme.group_index("viseme")
    print("linear probe, train -> dev frames (chance: always the most frequent training class):")
    for name, x in train.features.items():
        for level, to_label in ((scheme.name, lambda y: y), ("viseme", lambda y: viseme[y])):
            r = linear_probe(x, to_label(train.labels), dev.features[name], to_label(dev.labels), max_frames=max_frames)
            print(f"  {name:<6} {level:<12} accuracy {r.accuracy:.3f}   chance {r.chance:.3f}")


if __name__ == "__main__":
    main()
