"""`avfusion-evaluate`: evaluate finished runs again, alone or by posterior averaging.

    avfusion-evaluate run_dirs=[outputs/train/<run>]
    avfusion-evaluate run_dirs=[<run>] evaluation.noises=[babble,pink] evaluation.snrs_db=[0,-5]
    avfusion-evaluate run_dirs=[<concat run>,<bilinear run>] weights=dev     # posterior averaging
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from avfusion import api
from avfusion.cli import CONFIG_DIR
from avfusion.cli.boundary import user_errors


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@user_errors("evaluate")
def main(cfg: DictConfig) -> None:
    api.evaluate(cfg)


if __name__ == "__main__":
    main()
