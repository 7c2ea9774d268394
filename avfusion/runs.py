"""A finished run's folder, as data: its resolved config, its weights and its fitted front-end.

    <run>/config.yaml    the resolved config the run was trained with (rebuilds every object)
    <run>/run.json       format version, report name, seed, label scheme (classes, vocabulary), input dims
    <run>/model.pt       the model's state_dict (tensors only: loaded with torch.load(weights_only=True))
    <run>/frontend.npz   what the front-end learned on train (LDA scalings, CMVN statistics, ...)
    <run>/decoder.json   the run's decoder (conf/decoding/): its kind and settings; for viterbi the acoustic
                         scale, LM weight and penalty tuned on dev, and decoder.npz: its priors, unit LM and
                         durations (train)

Nothing is pickled: renaming or moving a class does not orphan a run, and loading someone else's run
executes no code from it. Loading rebuilds the front-end, the encoders and the head from the config and
loads the arrays into them.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avfusion.errors import UserError
from avfusion.corpus.labels import LabelScheme, get_scheme
from avfusion.decoding.base import Decoder
from avfusion.decoding.saved import load_decoder
from avfusion.frames.cache import load_frontend, save_frontend
from avfusion.training.module import FusionModule
from avfusion.models.fusion.single import SingleEncoderSoftmax
from avfusion.training.stages import build_model
from avfusion.utils.atomic import atomic_path, write_text_atomic

FORMAT = 2  # 1: pickled model and front-end (model.pt, frontend.pkl)


class RunFolderError(UserError):
    """A folder that is not a finished run of this version of avfusion."""


@dataclass
class Run:
    directory: Path
    config: DictConfig
    name: str
    seed: int
    scheme: LabelScheme
    model: FusionModule
    frontend: object
    decoder: Decoder | None = None  # None: a folder from before every run saved its decoder
    # what its posteriors looked like on clean dev (`checks.posterior_statistics`); None in older folders
    dev_statistics: dict | None = None


def save_run(directory: str | Path, config: DictConfig, name: str, model: FusionModule, frontend,
             scheme: LabelScheme, input_dims: dict[str, int], decoder: Decoder, dev_statistics: dict | None = None) -> None:
    directory = Path(directory)
    save_frontend(frontend, directory / "frontend.npz")
    decoder.save(directory)
    with atomic_path(directory / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    write_text_atomic(directory / "config.yaml", OmegaConf.to_yaml(config, resolve=True))
    meta = {"format": FORMAT, "name": name, "seed": int(config.seed), "label_scheme": scheme.name,
            "vocabulary": list(scheme.units) if scheme.unit == "word" else None,
            "classes": list(scheme.classes), "input_dims": input_dims, "dev_statistics": dev_statistics}
    write_text_atomic(directory / "run.json", json.dumps(meta, indent=2))  # last: its presence = complete


def load_run(directory: str | Path) -> Run:
    """Rebuild a finished run's model and fitted front-end from its folder."""
    directory = Path(directory)
    meta_path = directory / "run.json"
    if not meta_path.is_file():
        if (directory / "frontend.pkl").is_file():
            raise RunFolderError(f"{directory}: made by an earlier avfusion that pickled its model; re-create it "
                                 f"with avfusion-train and the overrides in {directory / '.hydra' / 'overrides.yaml'}")
        raise RunFolderError(f"{directory}: no run.json: not a finished avfusion-train run")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise RunFolderError(f"{meta_path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    if meta.get("format") != FORMAT:
        raise RunFolderError(f"{meta_path}: run format {meta.get('format')}, this avfusion reads format {FORMAT}")
    config = OmegaConf.load(directory / "config.yaml")
    scheme = get_scheme(meta["label_scheme"], meta["vocabulary"], classes=meta["classes"])
    if list(scheme.classes) != meta["classes"]:
        raise RunFolderError(f"{meta_path}: its classes differ from label scheme {scheme.name!r} of this avfusion")
    model = build_model(instantiate(config.fusion, _convert_="all"), instantiate(config.encoder, _convert_="all"),
                        meta["input_dims"], scheme, **_optimiser_settings(config))
    weights = directory / "model.pt"
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunFolderError(f"{weights}: missing; the run did not finish (re-create it with avfusion-train)") from None
    except Exception as err:  # truncated, or not a torch file (pickle, zip and EOF errors alike)
        raise RunFolderError(f"{weights}: cannot be read as saved weights ({type(err).__name__}: {err})") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise RunFolderError(f"{weights}: does not hold the weights of the model its config.yaml describes "
                             f"({str(err).splitlines()[0]})") from None
    model.eval()
    arrays = directory / "frontend.npz"
    try:
        frontend = load_frontend(instantiate(config.frontend, _convert_="all"), arrays)
    except FileNotFoundError:
        raise RunFolderError(f"{arrays}: missing; the run did not finish (re-create it with avfusion-train)") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # truncated, foreign or partial
        raise RunFolderError(f"{arrays}: cannot be read as the run's fitted front-end ({type(err).__name__}: "
                             f"{err}); re-create the run with avfusion-train") from None
    return Run(directory, config, meta["name"], meta["seed"], scheme, model, frontend, load_decoder(directory, scheme),
               meta.get("dev_statistics"))


def _optimiser_settings(config: DictConfig) -> dict:
    """lr and weight decay of a run's config (under `training`; at the top in folders made before it)."""
    node = config.training if "training" in config else config
    return {"lr": node.lr, "weight_decay": node.weight_decay}


STREAMS = ("audio", "video")


def pretrained_streams(directory: str | Path, config, input_dims: dict[str, int], scheme: LabelScheme) -> dict | None:
    """{stream: the model its pre-training stage trained (encoder + its own softmax)} of a run folder whose
    model had an audio and a video encoder pre-trained alone (`stages/pretrain_<stream>/best.pt`); None for
    any other run, or a label scheme without visemes (what the two streams are compared on)."""
    stages = Path(directory) / "stages"
    if "viseme" not in scheme.groups or not all((stages / f"pretrain_{s}" / "best.pt").is_file() for s in STREAMS):
        return None
    encoder_spec = instantiate(config.encoder, _convert_="all")
    models = {}
    for stream in STREAMS:
        model = build_model(SingleEncoderSoftmax(stream), encoder_spec, input_dims, scheme)
        model.load_state_dict(torch.load(stages / f"pretrain_{stream}" / "best.pt", map_location="cpu",
                                         weights_only=True))
        models[stream] = model.eval()
    return models
