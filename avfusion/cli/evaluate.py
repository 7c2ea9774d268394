"""`avfusion-evaluate`: evaluate finished runs again, alone or by posterior averaging.

    avfusion-evaluate run_dirs=[outputs/train/<run>]
    avfusion-evaluate run_dirs=[<run>] evaluation.noises=[babble,pink] evaluation.snrs_db=[0,-5]
    avfusion-evaluate run_dirs=[<concat run>,<bilinear run>] weights=dev     # posterior averaging
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avfusion.cli import CONFIG_DIR
from avfusion.cli.loading import load_corpus
from avfusion.corpus.labels import corpus_scheme
from avfusion.evaluation.evaluate import posteriors
from avfusion.evaluation.run import report_run
from avfusion.frontends.pipeline import FrontEnd
from avfusion.frontends.prepared import prepared_frames
from avfusion.models.ensemble import PosteriorAverage

log = logging.getLogger(__name__)


def load_run(run_dir: Path):
    """The run's own config, report name, model and fitted front-end."""
    config = run_dir / ".hydra" / "config.yaml"
    for needed in (config, run_dir / "model.pt", run_dir / "frontend.pkl"):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed} is missing: is {run_dir} a finished avfusion-train run?")
    run_cfg = OmegaConf.load(config)
    name = run_cfg.name or OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices.fusion
    model = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)
    return run_cfg, name, model, FrontEnd.load(run_dir / "frontend.pkl")


def combination(weights, names: list[str], corpus, scheme, frontend_cfg, models: dict) -> PosteriorAverage:
    if weights == "equal":
        return PosteriorAverage.equal(names)
    if weights == "dev":  # tuned on the dev split, never on test
        _, frames = prepared_frames(instantiate(frontend_cfg, _convert_="all"),
                                    OmegaConf.to_container(frontend_cfg, resolve=True), corpus, scheme)
        dev = frames["dev"]
        average = PosteriorAverage.tuned({n: posteriors(m, dev) for n, m in models.items()}, dev.labels)
        log.info("dev-tuned posterior weights: %s", average.weights)
        return average
    return PosteriorAverage(dict(zip(names, weights)))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_dirs = [Path(d) for d in cfg.run_dirs]
    if not run_dirs:
        raise ValueError("give the runs to evaluate: run_dirs=[outputs/train/<run>, ...]")
    runs = [load_run(d) for d in run_dirs]
    run_cfg, _, _, frontend = runs[0]
    for (other_cfg, name, _, _), d in zip(runs[1:], run_dirs[1:]):
        if OmegaConf.to_container(other_cfg.frontend) != OmegaConf.to_container(run_cfg.frontend) or \
                other_cfg.label_scheme != run_cfg.label_scheme or \
                OmegaConf.to_container(other_cfg.data) != OmegaConf.to_container(run_cfg.data):
            raise ValueError(f"{d} uses other data, front-end or labels than {run_dirs[0]}: cannot average posteriors")
    models = {name: model for _, name, model, _ in runs}
    if len(models) < len(runs):
        models = {f"{name}#{i}": model for i, (_, name, model, _) in enumerate(runs)}
    evaluator = instantiate(cfg.evaluation, _convert_="all")
    corpus, validation = load_corpus(run_cfg)  # the run's own data and on_error policy
    scheme = corpus_scheme(run_cfg.label_scheme, corpus)
    combine = None
    out_dir = run_dirs[0]
    name = next(iter(models))
    if len(runs) > 1:
        combine = combination(cfg.weights, list(models), corpus, scheme, run_cfg.frontend, models)
        name = "average(" + "+".join(models) + ")"
        out_dir = Path(cfg.output_dir) if cfg.output_dir else run_dirs[0].parent / ("average_" + "_".join(models))
    print(report_run(out_dir, name, run_cfg.seed, scheme, evaluator, models, frontend, corpus, combine=combine,
                     skipped=validation.bad_utterances))


if __name__ == "__main__":
    main()
