"""The contracts other code builds on: package layering, the fusion-head contract, sequence batches,
runs saved as data (config + weights + arrays) and heads added without touching the package."""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from avfusion.cli import CONFIG_DIR
from avfusion.corpus.labels import get_scheme
from avfusion.frames.data import FrameData
from avfusion.models.fusion.base import FusionHead
from avfusion.training.datamodule import IGNORE, FrameDataModule, SequenceBatches

from conftest import tiny_overrides, train_with_plugin
from test_configs import compose_train

PACKAGE = Path(__file__).resolve().parents[1] / "avfusion"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def imports_of(package: str) -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): imported_modules(p) for p in (PACKAGE / package).rglob("*.py")}


def test_layering_has_no_package_loops():
    # media below corpus below frames below frontends; training and evaluation read frames, not the pipeline
    for rule_package, forbidden in [("media.py", ("avfusion.corpus", "avfusion.frontends", "avfusion.frames")),
                                    ("corpus", ("avfusion.frontends", "avfusion.frames", "avfusion.training")),
                                    ("frames", ("avfusion.frontends", "avfusion.training", "avfusion.evaluation")),
                                    ("decoding", ("avfusion.frontends", "avfusion.models", "avfusion.training",
                                                  "avfusion.evaluation")),
                                    ("noise", ("avfusion.frontends", "avfusion.frames", "avfusion.models",
                                               "avfusion.training", "avfusion.evaluation")),
                                    ("training", ("avfusion.frontends.pipeline",)),
                                    ("evaluation", ("avfusion.frontends.pipeline",)),
                                    ("inference", ("avfusion.api", "avfusion.cli", "avfusion.training.stages"))]:
        files = {rule_package: imported_modules(PACKAGE / rule_package)} if rule_package.endswith(".py") \
            else imports_of(rule_package)
        for file, modules in files.items():
            bad = sorted(m for m in modules if m.startswith(forbidden))
            assert not bad, f"{rule_package}/{file} imports {bad}"


def test_no_unsafe_loading_anywhere():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "weights_only=False" not in text and "import pickle" not in text, path


@pytest.mark.parametrize("name", [p.stem for p in sorted((Path(CONFIG_DIR) / "fusion").glob("*.yaml"))])
def test_every_fusion_config_is_a_fusion_head(name):
    head = instantiate(compose_train(f"fusion={name}").fusion, _convert_="all")
    assert isinstance(head, FusionHead) and not head.built
    scheme = get_scheme("phone")
    hidden_dims = {"audio": 40, "video": 30, "audio_video": 20, "audio_reliability": 4, "video_reliability": 4}
    head.build(hidden_dims, scheme)
    assert head.built
    if not head.sequence_input:
        inputs = {e: torch.randn(4, hidden_dims[e]) for e in head.encoders + head.side_inputs}
        assert head(inputs).shape == (4, scheme.num_classes)
        return
    hidden = {e: torch.randn(2, 9, hidden_dims[e]) for e in head.encoders}
    mask = torch.arange(9)[None, :] < torch.tensor([[9], [6]])
    extra = {"labels": torch.randint(0, scheme.num_classes, (2, 9))} if head.needs_segments else {}
    assert head(hidden, mask, **extra).shape == (2, 9, scheme.num_classes)


def test_a_head_missing_its_encoder_says_so():
    head = instantiate(compose_train("fusion=concat").fusion, _convert_="all")
    with pytest.raises(ValueError, match=r"consumes encoders \['video'\], which were not built"):
        head.build({"audio": 4}, get_scheme("phone"))


def small_frames(lengths, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    return FrameData({"audio": rng.normal(size=(n, dim)).astype(np.float32)}, rng.integers(0, 39, n),
                     np.concatenate([[0], np.cumsum(lengths)]), [f"u{i}" for i in range(len(lengths))],
                     ["s"] * len(lengths))


def test_sequence_batches_cover_every_frame_once_and_never_cross_utterances():
    data = small_frames([7, 3, 12])
    chunks = SequenceBatches(data, ["audio"], chunk_frames=5)
    assert [tuple(s) for s in chunks.spans] == [(0, 5), (5, 7), (7, 10), (10, 15), (15, 20), (20, 22)]
    features, labels, mask = chunks.__getitems__([1, 3])
    assert features["audio"].shape == (2, 5, 3) and mask.tolist() == [[True] * 2 + [False] * 3, [True] * 5]
    np.testing.assert_array_equal(features["audio"][0, :2].numpy(), data.features["audio"][5:7])
    assert (labels[0, 2:] == IGNORE).all() and (features["audio"][0, 2:] == 0).all()
    whole = SequenceBatches(data, ["audio"])
    assert [tuple(s) for s in whole.spans] == [(0, 7), (7, 10), (10, 22)]
    loader = FrameDataModule({"train": data, "dev": data}, ["audio"], batching="chunks", chunk_frames=5,
                             sequences_per_batch=4).train_dataloader()
    seen = np.concatenate([lab[m].numpy() for _, lab, m in loader])
    assert sorted(seen) == sorted(data.labels)  # every frame exactly once per epoch


def test_old_pickled_run_folder_gets_a_clear_error(tmp_path):
    from avfusion.runs import RunFolderError, load_run

    (tmp_path / "frontend.pkl").write_bytes(b"\x80\x04")
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(RunFolderError, match="earlier avfusion that pickled its model; re-create it"):
        load_run(tmp_path)
    with pytest.raises(RunFolderError, match="not a finished avfusion-train run"):
        load_run(tmp_path / "elsewhere")


def run_cli(module, args, cwd, env=None):
    out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow  # ~45 s; the default run keeps test_evaluate_cli_reproduces_the_report (a fresh process too)
def test_a_finished_run_is_rebuilt_from_its_folder_in_a_fresh_process(tiny_root):
    run = tiny_root / "run_api_reload"
    run_cli("avfusion.cli.train", [*tiny_overrides(tiny_root), "fusion=concat", "trainer.max_epochs=1",
                                   f"hydra.run.dir={run}"], tiny_root)
    assert not list(run.rglob("*.pkl")) and not list((tiny_root / "features").rglob("*.pkl"))
    for weights in [*run.rglob("*.pt"), *run.rglob("*.ckpt")]:
        torch.load(weights, map_location="cpu", weights_only=True)  # tensors and plain data only
    script = textwrap.dedent(f"""
        import json
        from avfusion.api import load_corpus, load_run, noise_sources
        from hydra.utils import instantiate
        run = load_run({str(run)!r})
        corpus, _ = load_corpus(run.config)
        evaluator = instantiate(run.config.evaluation, _convert_="all")
        beside = instantiate(run.config.decoding, _convert_="all").beside(run.scheme)  # per_framewise
        scores = evaluator.evaluate({{run.name: run.model}}, run.frontend, corpus.split("test"), run.scheme,
                                    decoders={{run.name: run.decoder}},  # the dev-tuned decoder saved with it
                                    beside=beside,
                                    noise=evaluator.mixer(noise_sources(run.config), corpus, 16000))
        print(json.dumps(scores[run.name]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tiny_root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1]) == json.loads((run / "report.json").read_text())["test"]


PLUGIN_HEAD = '''
"""A head that lives outside avfusion: a temporal convolution over the concatenated hidden sequences."""
import torch
from torch import nn

from avfusion.models.fusion.base import FusionHead


class TemporalConvHead(FusionHead):
    sequence_input = True

    def __init__(self, encoders=("audio", "video"), width: int = 5):
        super().__init__(encoders, pretrain_encoders=True, freeze_encoders=True)
        self.width = width

    def build_layers(self, hidden_dims, scheme):
        self.conv = nn.Conv1d(sum(hidden_dims.values()), scheme.num_classes, self.width, padding=self.width // 2)

    def forward(self, hidden, mask=None):
        x = torch.cat([hidden[e] for e in self.encoders], dim=-1) * mask[..., None]
        return self.conv(x.transpose(1, 2)).transpose(1, 2)
'''


def test_a_new_head_trains_from_its_own_module_and_yaml(tiny_root, tmp_path):
    run = tmp_path / "run"
    train_with_plugin(tiny_root, tmp_path, "my_heads", PLUGIN_HEAD, "fusion",
                      {"temporal_conv": "_target_: my_heads.TemporalConvHead\nwidth: 5\n"},
                      "fusion=temporal_conv", "trainer.max_epochs=3", "training.batching=chunks", "training.chunk_frames=50",
                      "training.sequences_per_batch=4", f"hydra.run.dir={run}")
    report = json.loads((run / "report.json").read_text())
    assert report["name"] == "temporal_conv" and report["test"][0]["frames"] > 1000
    assert 0 <= report["test"][0]["frame_error"] < 0.8  # it learned (untrained: ~0.97)
    state = torch.load(run / "model.pt", weights_only=True)
    assert "head.conv.weight" in state


@pytest.mark.parametrize("group", ["callbacks", "logger"])
def test_callback_and_logger_configs_instantiate_per_stage(group, tmp_path):
    import importlib.util

    from avfusion.training.stages import complete

    for path in sorted((Path(CONFIG_DIR) / group).glob("*.yaml")):
        node = compose_train(f"{group}={path.stem}")[group]
        for key, factory_cfg in node.items():
            module = factory_cfg._target_.split(".")[0]
            needs = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}.get(factory_cfg._target_.rsplit(".", 1)[-1])
            if needs and importlib.util.find_spec(needs) is None:
                continue  # optional loggers: their config composes; they instantiate where installed
            made = complete(instantiate(factory_cfg), dirpath=tmp_path, save_dir=tmp_path, version="stage",
                            name="stage", run_name="stage")
            assert type(made).__module__.startswith(module), (path, key)
    default = compose_train()
    assert set(default.callbacks) == {"model_checkpoint", "early_stopping"}
    assert set(default.logger) == {"csv", "tensorboard"}
    assert default.callbacks.early_stopping.patience == default.training.patience


@pytest.mark.parametrize("name", [p.stem for p in sorted((Path(CONFIG_DIR) / "data").glob("*.yaml"))])
def test_every_data_config_is_a_corpus_adapter(name):
    from hydra.utils import get_class

    from avfusion.corpus.adapters.base import CorpusAdapter

    assert issubclass(get_class(compose_train(f"data={name}").data._target_), CorpusAdapter)


def test_every_configured_step_is_a_front_end_step_and_a_stranger_is_named():
    from avfusion.errors import ConfigError
    from avfusion.frontends.pipeline import ModalityFrontEnd
    from avfusion.frontends.step import FrontEndStep

    for path in sorted((Path(CONFIG_DIR) / "frontend").glob("*.yaml")):
        frontend = instantiate(compose_train(f"frontend={path.stem}").frontend, _convert_="all")
        for modality in frontend.modalities.values():
            assert all(isinstance(step, FrontEndStep) for step in getattr(modality, "steps", []))

    class Doubler:  # has transform, but does not say what it is (frame context, state)
        def transform(self, utterances):
            return utterances

    with pytest.raises(ConfigError, match=r"frontend.audio.steps.0: Doubler is not a front-end step; derive it from "
                                          r"avfusion.frontends.step.FrontEndStep"):
        ModalityFrontEnd("audio", extractor=None, steps=[Doubler()])
    assert FrontEndStep().frame_context is None  # undeclared context: a long recording runs in one piece
