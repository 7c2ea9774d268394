"""`avfusion-train`: features -> per-modality encoders -> fusion head -> test report, clean and noisy.

    avfusion-train                                    # concat fusion on the default synthetic corpus
    avfusion-train fusion=audio_only seed=2
    avfusion-train -m fusion=audio_only,video_only,concat seed=1,2,3
    avfusion-train experiment=default_study           # the study `make run` reports
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from avfusion import api
from avfusion.cli import CONFIG_DIR
from avfusion.cli.boundary import user_errors


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors("train")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    choices = hydra_cfg.runtime.choices
    noise = choices.get("train_noise", "clean")  # a noise-trained model is named apart from its clean twin
    default = choices.get("fusion") + ("" if noise in (None, "clean") else f"+{noise}")
    api.train(cfg, Path(hydra_cfg.runtime.output_dir), name=cfg.name or default)


if __name__ == "__main__":
    main()
