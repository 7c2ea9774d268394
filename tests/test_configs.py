"""Every config file composes, and every `_target_` config instantiates its class."""

from pathlib import Path

import pytest
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from avfusion.configs import CONFIG_DIR, compose_config

GROUPS = ["data", "detector", "encoder", "fusion", "optimizer", "trainer", "evaluation", "frontend"]


def compose_train(*overrides, hydra_cfg=False):
    return compose_config("train", overrides, return_hydra_config=hydra_cfg)


@pytest.mark.parametrize("group, name", [(g, p.stem) for g in GROUPS for p in sorted((Path(CONFIG_DIR) / g).glob("*.yaml"))])
def test_group_config_instantiates_its_class(group, name):
    cfg = compose_train(f"{group}={name}")
    node = cfg[group]
    for key in node:  # a real corpus's location is the user's to give (`data.root=...`)
        if OmegaConf.is_missing(node, key):
            node[key] = "/corpora/somewhere"
    cls = get_class(node._target_)
    if node.get("_partial_"):  # a partial Trainer or optimiser, completed per stage (callbacks, parameters)
        assert instantiate(node, _convert_="all").func is cls
    else:
        assert isinstance(instantiate(node, _convert_="all"), cls)


@pytest.mark.parametrize("experiment", [p.stem for p in sorted((Path(CONFIG_DIR) / "experiment").glob("*.yaml"))])
def test_experiments_compose(experiment):
    cfg = compose_train(f"experiment={experiment}")
    instantiate(cfg.fusion, _convert_="all")
    instantiate(cfg.encoder, _convert_="all")


def test_paper_architectures():
    """Mroueh et al. 2015, section 4: [360,500,500,200 | 540,500,500,200] F=200, [360,600,600,400,100 | ...]
    F=100, [360,500,500,500,500,500,200 | ...] F=200."""
    arch = {e: compose_train(f"experiment={e}") for e in ("paper_500_f200", "paper_600_f100", "paper_500x5_f200")}
    assert arch["paper_500_f200"].encoder.widths.audio == [500, 500, 200]
    assert arch["paper_500_f200"].fusion.rank == 200
    assert arch["paper_600_f100"].encoder.widths.video == [600, 600, 400, 100]
    assert arch["paper_600_f100"].fusion.rank == 100
    assert arch["paper_500x5_f200"].encoder.widths.audio == [500] * 5 + [200]
    assert arch["paper_500x5_f200"].fusion.rank == 200
    recipe = compose_train("experiment=[paper_600_f100,paper_recipe]")
    assert recipe.encoder.activation == "sigmoid" and not recipe.encoder.batch_norm
    assert recipe.optimizer._target_ == "torch.optim.SGD" and recipe.encoder.widths.audio == [600, 600, 400, 100]


def test_the_joint_concat_control_is_trained_as_bilinear_is():
    """concat_joint isolates the head: same warm start, warm-up and encoder learning rate as bilinear."""
    concat, bilinear = compose_train("fusion=concat_joint").fusion, compose_train("fusion=bilinear").fusion
    for key in ("init", "freeze_encoders", "warmup_epochs", "encoder_lr_scale"):
        assert concat[key] == bilinear[key], key
    assert compose_train("fusion=bilinear_frozen").fusion.freeze_encoders


def test_slurm_launcher_config():
    cfg = compose_train("hydra/launcher=slurm", hydra_cfg=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.gpus_per_node == 1


@pytest.mark.parametrize("group, name", [(g, p.stem) for g in GROUPS + ["experiment"]
                                         for p in sorted((Path(CONFIG_DIR) / g).glob("*.yaml"))])
def test_every_shipped_config_passes_the_value_checks(group, name):
    from avfusion.config_check import check_config

    check_config(compose_train(f"{group}={name}"))  # a shipped default the checks refuse would block every run


def _targets(node, file):
    """(file, target, keys it sets) for every `_target_` node in a raw YAML tree."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield file, node["_target_"], [k for k in node if not k.startswith("_")]
        for value in node.values():
            yield from _targets(value, file)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value, file)


def _parameters(cls) -> dict:
    """A class's constructor parameters, with those its `**kwargs` pass on to the parent class's."""
    import inspect

    parameters = dict(inspect.signature(cls).parameters)
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        parent = next(base for base in cls.__mro__[1:] if "__init__" in vars(base))
        parameters = {**_parameters(parent), **parameters}
    return parameters


def test_no_python_default_repeats_a_value_the_yaml_sets():
    """conf/ is the one place a value stands: an avfusion class a config instantiates has no Python default
    for a key that config sets (else the two drift apart unseen). None ("not given") is not a value."""
    import inspect

    import yaml
    from hydra.utils import get_object

    repeated = []
    for path in sorted(Path(CONFIG_DIR).rglob("*.yaml")):
        for file, target, keys in _targets(yaml.safe_load(path.read_text()), path.relative_to(CONFIG_DIR)):
            if not target.startswith("avfusion."):
                continue
            parameters = _parameters(get_object(target))
            repeated += [f"{file}: {target}.{k} = {parameters[k].default!r}" for k in keys
                         if k in parameters and parameters[k].default not in (inspect.Parameter.empty, None)]
    assert not repeated, "\n".join(repeated)


def test_a_run_trained_from_python_is_named_as_the_cli_names_it():
    """api.train without a name: the fusion config its head's settings are (audio_only and video_only were
    both reported as SingleEncoderSoftmax), +multi for multi-condition training, else the head's class."""
    from avfusion.api import run_name

    assert [run_name(compose_train(f"fusion={f}")) for f in ("audio_only", "video_only", "bilinear_frozen")] == \
        ["audio_only", "video_only", "bilinear_frozen"]
    assert run_name(compose_train("fusion=concat", "train_noise=multi", "seed=3")) == "concat+multi"
    assert run_name(compose_train("fusion=bilinear", "fusion.rank=7")) == "FactoredBilinearSoftmax"
