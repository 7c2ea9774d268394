"""`avfusion-train`: features -> per-modality encoders -> fusion head -> test report, clean and noisy.

    avfusion-train                                    # concat fusion on the default synthetic corpus
    avfusion-train fusion=audio_only seed=2
    avfusion-train -m fusion=audio_only,video_only,concat seed=1,2,3
    avfusion-train experiment=default_study           # the study `make run` reports
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avfusion.cli import CONFIG_DIR
from avfusion.cli.loading import load_corpus
from avfusion.corpus.labels import corpus_scheme
from avfusion.evaluation.run import report_run
from avfusion.frontends.prepared import prepared_frames
from avfusion.training.stages import TrainSettings, train_model

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    name = cfg.name or hydra_cfg.runtime.choices.get("fusion", "model")
    corpus, validation = load_corpus(cfg)
    scheme = corpus_scheme(cfg.label_scheme, corpus)
    evaluator = instantiate(cfg.evaluation, _convert_="all")
    evaluator.check(corpus.split("test"))
    frontend, frames = prepared_frames(instantiate(cfg.frontend, _convert_="all"),
                                       OmegaConf.to_container(cfg.frontend, resolve=True), corpus, scheme)
    frontend.save(run_dir / "frontend.pkl")

    settings = TrainSettings(run_dir=run_dir, trainer=instantiate(cfg.trainer), seed=cfg.seed,
                             batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                             patience=cfg.patience, resume=cfg.resume, progress=sys.stderr.isatty())
    model = train_model(instantiate(cfg.fusion, _convert_="all"), instantiate(cfg.encoder, _convert_="all"),
                        frames, scheme, settings)
    torch.save(model, run_dir / "model.pt")

    print(report_run(run_dir, name, cfg.seed, scheme, evaluator, {name: model}, frontend, corpus,
                     skipped=validation.bad_utterances))
    log.info("run folder: %s", run_dir)


if __name__ == "__main__":
    main()
