from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl

from avfusion.configs import compose_config, configured
from avfusion.synth.generator import SyntheticCorpus


def corpus_adapter(name: str, root, **values):
    """conf/data/<name>.yaml's corpus adapter at `root`, with `values` changed."""
    return configured("data", f"data={name}", root=str(root), **values)


def small_synthetic(root, *overrides: str, **values) -> SyntheticCorpus:
    """conf/data/synthetic.yaml made small: 3 speakers, one per split, a few short utterances. `overrides`
    as on the command line ("data/renderer=face"), `values` as its keys (realism={"coupling": 0.5})."""
    small = dict(n_speakers=3, n_dev_speakers=1, n_test_speakers=1, utterances_per_speaker=3, n_jobs=1, seed=7,
                 n_babble_talkers=4, babble_utterances=1)
    return configured("data", *overrides, config="synth", root=str(root), **{**small, **values})


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    builder = small_synthetic(tmp_path_factory.mktemp("synth_small"))
    return builder, builder.load(progress=False)


@pytest.fixture(scope="session")
def default_corpus(tmp_path_factory):
    """The corpus `make run` builds (conf/data/synthetic.yaml), in a temporary folder."""
    builder = configured("data", config="synth", root=str(tmp_path_factory.mktemp("synth_default")))
    return builder, builder.load(progress=False)


def compose_prepare(overrides):
    return compose_config("prepare", overrides)


def small_frontend(cache_dir, *overrides):
    """The default front-end config with LDA dims small enough for a corpus of a few utterances."""
    from hydra.utils import instantiate

    cfg = compose_prepare([f"frontend.cache_dir={cache_dir}", "frontend.n_jobs=1",
                           "frontend.audio.steps.2.n_components=12", "frontend.video.steps.1.n_components=12",
                           *overrides])
    return instantiate(cfg.frontend, _convert_="all")


def fitted_small_frontend(corpus, cache_dir):
    """`small_frontend` with the corpus's features extracted and fitted on its training split."""
    from avfusion.frames.cache import fit_on_train

    frontend = small_frontend(cache_dir)
    frontend.prepare(list(corpus), progress=False)
    return fit_on_train(frontend, corpus)


@pytest.fixture(scope="session")
def small_test_split(small_corpus, tmp_path_factory):
    """The small corpus's test split through a front-end fitted on its train split: (front-end, utterances,
    their phone-labelled FrameData, the built-in noises' mixer at seed 7)."""
    from avfusion.corpus.labels import get_scheme
    from avfusion.frames.data import frames_of
    from avfusion.frames.labelling import FrameLabeller
    from avfusion.noise import NoiseMixer

    _, corpus = small_corpus
    frontend = fitted_small_frontend(corpus, tmp_path_factory.mktemp("test_split_features"))
    utterances = corpus.split("test")
    noise = NoiseMixer(built_in_noises(corpus), frontend.audio.extractor.sample_rate, seed=7)
    return frontend, utterances, frames_of(frontend, utterances, FrameLabeller(get_scheme("phone"))), noise


@pytest.fixture
def rng():
    return np.random.default_rng(0)


TINY = ["data.n_speakers=5", "data.n_dev_speakers=1", "data.n_test_speakers=2", "data.utterances_per_speaker=4",
        "data.n_jobs=1", "data.seed=3", "frontend.n_jobs=1", "frontend.audio.steps.2.n_components=16",
        "frontend.video.steps.1.n_components=16", "trainer.max_epochs=2", "evaluation.snrs_db=[0]",
        "encoder.widths.audio=[64,32]", "encoder.widths.video=[64,32]", "encoder.widths.audio_video=[64,32]",
        "data.n_babble_talkers=4", "data.babble_utterances=1", "noise.babble.talkers=3",
        "training.encoder_cache_dir=null",  # the stage cache has tests of its own (test_stage_cache.py)
        "evaluation.report_dev=false"]  # dev rows in reports: test_reporting.py


def tiny_overrides(root):
    """avfusion-train overrides for a seconds-long run on a 20-utterance corpus under `root`."""
    return [f"data.root={root}/corpus", f"frontend.cache_dir={root}/features", *TINY]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def layout_source(tmp_path_factory):
    """The synthetic corpus the real-corpus layouts are made from: 5 speakers (2 train, 1 dev, 2 test)."""
    builder = small_synthetic(tmp_path_factory.mktemp("layout_source"), n_speakers=5, n_dev_speakers=1,
                              n_test_speakers=2, utterances_per_speaker=2, seed=11)
    return builder.load(progress=False)


class Killed(Exception):
    """What `KillAt` raises: stands for the process being killed."""


class KillAt(pl.Callback):
    """A training callback (`+callbacks.kill=...`) that stops the run when `epoch` of `stage` starts, as a
    kill would, after the previous epoch's checkpoint."""

    def __init__(self, stage: str, epoch: int) -> None:
        self.stage, self.epoch = stage, epoch

    def on_train_epoch_start(self, trainer, module):
        if Path(trainer.default_root_dir).name == self.stage and trainer.current_epoch == self.epoch:
            raise Killed(f"{self.stage} epoch {self.epoch}")


def built_in_noises(corpus, talkers: int = 2) -> dict:
    """The built-in noise sources, babble prepared from the corpus's pool with `talkers` talkers."""
    from avfusion.noise import Babble, PinkNoise, WhiteNoise, babble_pool

    return {"white": WhiteNoise(), "pink": PinkNoise(), "babble": Babble(talkers, "all").use_pool(babble_pool(corpus))}


def train_with_plugin(root, plugin_dir, module: str, source: str, group: str, config: dict[str, str], *overrides):
    """avfusion-train in a fresh process with a plug-in outside the package: `module`.py holding `source`
    and conf/`group`/<name>.yaml for each (name, YAML) of `config`, found through hydra.searchpath."""
    import os
    import subprocess
    import sys

    (plugin_dir / f"{module}.py").write_text(source)
    (plugin_dir / "conf" / group).mkdir(parents=True, exist_ok=True)
    for name, text in config.items():
        (plugin_dir / "conf" / group / f"{name}.yaml").write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "avfusion.cli.train", *tiny_overrides(root),
                          f"hydra.searchpath=[file://{plugin_dir / 'conf'}]", *overrides],
                         capture_output=True, text=True, cwd=root, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out
