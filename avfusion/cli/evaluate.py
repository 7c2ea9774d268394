"""`avfusion-evaluate`: evaluate a trained run again (other noise conditions, other decoding).

    avfusion-evaluate run_dir=outputs/train/2026-11-23_20-00-00
    avfusion-evaluate run_dir=... evaluation.noises=[babble,pink] evaluation.snrs_db=[0,-5]
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avfusion.cli import CONFIG_DIR
from avfusion.evaluation.run import report_run
from avfusion.frontends.pipeline import FrontEnd


def load_run(run_dir: Path):
    """The run's own config, model and fitted front-end."""
    config = run_dir / ".hydra" / "config.yaml"
    for needed in (config, run_dir / "model.pt", run_dir / "frontend.pkl"):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed} is missing: is {run_dir} a finished avfusion-train run?")
    run_cfg = OmegaConf.load(config)
    model = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)
    return run_cfg, model, FrontEnd.load(run_dir / "frontend.pkl")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_dir = Path(cfg.run_dir)
    run_cfg, model, frontend = load_run(run_dir)
    corpus = instantiate(run_cfg.data, _convert_="all").load()
    name = run_cfg.name or OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices.fusion
    evaluator = instantiate(cfg.evaluation, _convert_="all")
    print(report_run(run_dir, name, run_cfg.seed, run_cfg.label_scheme, evaluator, {name: model}, frontend, corpus))


if __name__ == "__main__":
    main()
