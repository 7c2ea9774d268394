"""The shipped configs (conf/) composed and instantiated from Python: for scripts, notebooks and tests.

conf/ is the one place a component's values stand: a class that conf/<group>/<name>.yaml instantiates takes
those values as required arguments, with no Python default repeating them. To get one from Python:

    from avfusion.configs import configured
    head = configured("fusion", "fusion=bilinear", "fusion.rank=3")   # conf/fusion/bilinear.yaml, rank 3
    lda = configured("frontend.audio.steps.2", n_components=12)      # a node inside a config
    corpus = configured("data", config="synth", root="/tmp/corpus")  # keyword values: Python objects too
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def compose_config(name: str = "train", overrides=(), return_hydra_config: bool = False) -> DictConfig:
    """conf/<name>.yaml composed with Hydra `overrides`, as its command-line tool would see it."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def configured(path: str, *overrides: str, config: str = "train", **values: Any) -> Any:
    """The object at `path` (dotted, list items by index) of conf/<config>.yaml composed with `overrides`,
    instantiated with `values` replacing or adding arguments (any Python object). A constructor's error is
    raised as itself (a ConfigError names the key), not wrapped by Hydra."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    node = OmegaConf.select(_composed(config, tuple(overrides)), path, throw_on_missing=True)
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise KeyError(f"conf/{config}.yaml has no object at {path!r} (overrides {list(overrides)})")
    try:
        return instantiate(node, _convert_="all", **values)
    except InstantiationException as err:
        if err.__cause__ is None:
            raise
        raise err.__cause__ from None


@functools.lru_cache(maxsize=64)
def _composed(config: str, overrides: tuple[str, ...]) -> DictConfig:
    cfg = compose_config(config, overrides)
    OmegaConf.set_readonly(cfg, True)  # shared between calls: instantiate reads it, nothing writes it
    return cfg
