"""`avfusion-synth`: generate the embedded synthetic corpus (if absent) and print its statistics.

    avfusion-synth                                  # the default corpus under data/synthetic/default
    avfusion-synth data.n_speakers=24 data.root=data/synthetic/big
    avfusion-synth data/renderer=face data.root=data/synthetic/face
"""

from __future__ import annotations

import logging
import time

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from avfusion.cli import CONFIG_DIR
from avfusion.cli.boundary import user_errors
from avfusion.config_check import check_config
from avfusion.corpus.labels import corpus_scheme
from avfusion.frames.stats import corpus_stats, format_stats

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="synth")
@user_errors("synth")
def main(cfg: DictConfig) -> None:
    check_config(cfg)
    builder = instantiate(cfg.data, _convert_="all")
    start = time.perf_counter()
    corpus = builder.load()
    log.info("corpus ready in %.1f s: %s", time.perf_counter() - start, builder.manifest_path)
    scheme = corpus_scheme("auto", corpus)  # one class per phone (or word)
    print(format_stats(corpus_stats(corpus, scheme), scheme))


if __name__ == "__main__":
    main()
