"""What the command-line tools do, as functions: for notebooks, scripts and other tools.

    from avfusion import api
    from avfusion.configs import compose_config

    cfg = compose_config("train", ["fusion=bilinear", "seed=1"])
    report = api.train(cfg, run_dir="outputs/notebook/bilinear")   # the report.json content
    run = api.load_run("outputs/notebook/bilinear")                   # model + fitted front-end

Each takes a composed config (conf/train.yaml, evaluate.yaml, prepare.yaml) as the CLIs do, except
`predict`, which takes a run and a recording:

    prediction = api.predict("outputs/default_study/concat", video="clip.mp4")
    prediction.units, prediction.posteriors                 # timed phones, (T, C) posteriors at 100 Hz
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
from pathlib import Path

import numpy as np
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from avfusion.corpus.alignments import read_transcript
from avfusion.corpus.lexicon import Lexicon
from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Corpus
from avfusion.config_check import check_config
from avfusion.configs import CONFIG_DIR, compose_config
from avfusion.corpus.validation import ValidationReport, checked_corpus
from avfusion.decoding.base import CLEAN
from avfusion.errors import ConfigError, UserError
from avfusion.evaluation.conditions import evaluated_frames
from avfusion.evaluation.evaluate import Evaluator, posteriors as model_posteriors
from avfusion.evaluation.run import report_run
from avfusion.frames.cache import frames_directory, frontend_settings, prepared_frames
from avfusion.frames.data import FrameData
from avfusion.frontends.shards import merged_statistics, require_finished, shard_parts, shard_statistics
from avfusion.frames.labelling import FrameLabeller
from avfusion.frames.tying import scheme_of
from avfusion.inference.outputs import write_prediction
from avfusion.inference.agreement import agreement_statistics
from avfusion.inference.checks import posterior_statistics
from avfusion.inference.clips import ClipResult, clip_list, write_summary
from avfusion.inference.predict import Prediction, predict, reads_video
from avfusion.models.ensemble import ConditionWeights, PosteriorAverage
from avfusion.noise import NoiseSource
from avfusion.runs import Run, RunFolderError, load_run, pretrained_streams, save_run
from avfusion.training.multicondition import MultiCondition
from avfusion.training.stage_cache import StageCache
from avfusion.training.settings import TrainingSettings
from avfusion.training.stages import TrainSettings, train_model
from avfusion.utils.atomic import ensure_writable, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["load_corpus", "prepare", "align", "train", "evaluate", "predict", "predict_files", "predict_clips", "load_run",
           "Run", "RunFolderError"]


def _progress() -> bool:
    return sys.stderr.isatty()


def load_corpus(cfg: DictConfig) -> tuple[Corpus, ValidationReport]:
    """Load `cfg.data` and validate it: refuse it, or leave out bad utterances (`cfg.on_error`). Sharded
    (avfusion-prepare `shards`): a shard's job checks its own utterances' files, the finishing step every
    shard's, each shard's findings cached on their own (so the jobs' checks are not made again)."""
    check_config(cfg)  # validation's jobs and tolerance among them, before any file is read
    corpus = instantiate(cfg.data, _convert_="all").load()
    shards, shard = cfg.get("shards"), cfg.get("shard")
    parts = None if shards is None else shard_parts(list(corpus), shards)
    if parts is not None and shard is not None:
        parts = [parts[shard]]
    return checked_corpus(corpus, on_error=cfg.on_error, tolerance_s=cfg.max_duration_mismatch_s,
                          n_jobs=cfg.validation_jobs, progress=_progress(), cache_dir=cfg.frontend.cache_dir,
                          parts=parts)


def prepare(cfg: DictConfig, corpus: Corpus | None = None) -> tuple[object, dict[str, FrameData], LabelScheme]:
    """The front-end fitted on train, train/dev FrameData and the label scheme (built once, cached)."""
    check_config(cfg)
    if corpus is None:
        corpus, _ = load_corpus(cfg)
    scheme = scheme_of(cfg.label_scheme, corpus, cfg.get("cd_min_frames", 50))
    frontend = instantiate(cfg.frontend, _convert_="all")
    config = OmegaConf.to_container(cfg.frontend, resolve=True)
    # sharded: fitted from the statistics each shard's job gathered
    gathered = None if cfg.get("shards") is None else (
        lambda alignments: merged_statistics(frontend, config, corpus, kept_shards(cfg, corpus), alignments))
    frontend, frames = prepared_frames(frontend, config, corpus, scheme, progress=_progress(), gathered=gathered)
    return frontend, frames, scheme


def extract_shard(cfg: DictConfig, corpus: Corpus) -> tuple[list, dict, dict]:
    """Extract and cache the features of shard `cfg.shard` of `cfg.shards` (avfusion.frontends.shards), and gather
    its training utterances' statistics: its utterances, the extraction report of each modality and stream, and
    the statistics by modality ({}: a front-end fitted at once gathers none)."""
    utterances = kept_shards(cfg, corpus)[cfg.shard]
    frontend = instantiate(cfg.frontend, _convert_="all")
    reports = frontend.prepare(utterances, progress=_progress())
    config = OmegaConf.to_container(cfg.frontend, resolve=True)
    return utterances, reports, shard_statistics(frontend, config, corpus, utterances)


def require_extracted(cfg: DictConfig, corpus: Corpus) -> None:
    """Before finishing a sharded preparation (`cfg.shards`): every shard's utterances have their features."""
    require_finished(instantiate(cfg.frontend, _convert_="all"), kept_shards(cfg, corpus))


def kept_shards(cfg: DictConfig, corpus: Corpus) -> list[list]:
    """Each shard's utterances of the validated `corpus`: cut on every utterance `cfg.data` loads, as validation
    cut them, so that leaving out invalid ones (on_error=skip: each job knows only its own) moves no boundary."""
    kept = {u.id for u in corpus}
    loaded = instantiate(cfg.data, _convert_="all").load()
    return [[u for u in part if u.id in kept] for part in shard_parts(list(loaded), cfg.shards)]


def align(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Align a corpus from its text (conf/align.yaml, `avfusion.aligner`): TextGrids and a manifest naming them
    in `out_dir`; returns the summary written beside them (alignment.json)."""
    from avfusion.aligner.outputs import write_aligned_corpus, write_summary
    from avfusion.aligner.passes import Aligner
    from avfusion.aligner.transcripts import transcripts_of
    from avfusion.corpus.labels import get_scheme

    check_config(cfg)
    out_dir = Path(out_dir)
    settings = instantiate(cfg.aligner, _convert_="all")
    # a pass's training resumes with the folder: its stages are checked against the pass's alignment
    training = dataclasses.replace(instantiate(cfg.training, _convert_="all"), resume=cfg.resume)
    viterbi = dataclasses.replace(instantiate(cfg.decoding, _convert_="all").settings, lm="none")
    check_aligned_with(cfg, out_dir)
    corpus = instantiate(cfg.data, _convert_="all").load()
    corpus, _ = checked_corpus(corpus, on_error=cfg.on_error, tolerance_s=cfg.max_duration_mismatch_s,
                               n_jobs=cfg.validation_jobs, progress=_progress(), cache_dir=cfg.frontend.cache_dir,
                               alignments=False)
    scheme = get_scheme("phone_state")
    lexicon = Lexicon(settings.lexicon, settings.letter_to_sound, settings.spell_letters)
    planned, unaligned = transcripts_of(list(corpus), scheme, lexicon)
    if lexicon.guessed:
        log.info("espeak-ng pronounced %d word(s) no lexicon has: %s", len(lexicon.guessed),
                 ", ".join(sorted(lexicon.guessed)[:20]))
    frontend = instantiate(cfg.frontend, _convert_="all")
    utterances = [u for u in corpus if u.id in planned]
    frontend.prepare(utterances, progress=_progress())
    store = frontend.store(frontend.audio)
    n_frames = {u.id: len(store.read(u)[0]) for u in utterances}

    def train_settings(run_dir: Path, shaping: dict) -> TrainSettings:
        return TrainSettings(run_dir=run_dir, training=training, trainer=instantiate(cfg.trainer),
                             callbacks=dict(instantiate(cfg.callbacks)), seed=cfg.seed, progress=_progress(),
                             optimizer=instantiate(cfg.optimizer) if cfg.get("optimizer") else None,
                             shaping={**shaping, **stage_shaping(cfg, None)})

    aligner = Aligner(settings, corpus, planned, n_frames, scheme, viterbi,
                      build_frontend=lambda: instantiate(cfg.frontend, _convert_="all"),
                      build_model=lambda: (instantiate(cfg.fusion, _convert_="all"),
                                           instantiate(cfg.encoder, _convert_="all")),
                      train=train_model, train_settings=train_settings, posteriors=model_posteriors,
                      n_jobs=cfg.frontend.n_jobs, progress=_progress())
    results = aligner.run(out_dir, resume=cfg.resume)
    results[-1].unaligned.update(unaligned)
    manifest = write_aligned_corpus(corpus, planned, results[-1], n_frames, scheme, out_dir)
    summary = write_summary(out_dir, corpus, results, lexicon.guessed)
    log.info("aligned %d of %d utterances: %s", summary["aligned"], len(corpus), manifest)
    return summary


def check_aligned_with(cfg: DictConfig, out_dir: Path) -> None:
    """A folder is resumed only by the settings that aligned it (more passes aside); its settings are saved for
    the next run."""
    saved = out_dir / "align_config.yaml"
    # more passes continue the same ones: pass k depends only on the passes before it
    now, then = ({k: v for k, v in _compared(_dotted(OmegaConf.to_container(c, resolve=True))).items()
                  if k not in ("resume", "aligner.passes")}
                 for c in (cfg, OmegaConf.load(saved) if saved.is_file() else cfg))
    if cfg.resume and saved.is_file():
        differing = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
        if differing:
            raise UserError(f"{saved}: this folder was aligned with other settings ({', '.join(differing[:3])} "
                            "differ): align into another folder, or drop resume=true to start it again")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(saved, OmegaConf.to_yaml(cfg, resolve=True))


def train(cfg: DictConfig, run_dir: str | Path, name: str | None = None) -> dict:
    """Train the configured model into `run_dir`, evaluate it on the test split, return the report."""
    check_config(cfg)
    run_dir = Path(run_dir)
    training = instantiate(cfg.training, _convert_="all")  # its checks, before any work
    if training.resume and (report := finished_report(cfg, run_dir)) is not None:
        return report
    head, encoder_spec = instantiate(cfg.fusion, _convert_="all"), instantiate(cfg.encoder, _convert_="all")
    warn_joint_training_never_starts(head, cfg)
    for encoder in head.encoders:  # before any work: the front-end gives what each encoder (and the head) reads
        encoder_spec.inputs_of(encoder, frontend_outputs(cfg.frontend))
    head.check_side_inputs(frontend_outputs(cfg.frontend))
    name = name or cfg.name or run_name(cfg)
    evaluator, decoding = evaluator_of(cfg), instantiate(cfg.decoding, _convert_="all")
    node = cfg.get("train_noise") or compose_config("train", ["train_noise=clean"]).train_noise
    train_noise = instantiate(node, _convert_="all")
    if train_noise.active and train_noise.head_only and not head.pretrain_encoders:
        raise ConfigError(f"train_noise.head_only=true: fusion={type(head).__name__} pre-trains no encoders (they train "
                          "with its softmax), so there is no clean pre-training to keep; drop head_only")
    sources = noise_sources(cfg)
    evaluator.check(sources)
    train_noise.check(sources)
    train_noise.check_degradations(evaluator.degradations)
    corpus, validation = load_corpus(cfg)
    evaluator.check(sources, corpus)
    train_noise.check(sources, corpus)
    frontend, frames, scheme = prepare(cfg, corpus)
    decoding.check(len(scheme.units))
    evaluator.check_contrasts(scheme)
    frames_dir = frames_directory(OmegaConf.to_container(cfg.frontend, resolve=True), scheme, corpus)
    shaping = stage_shaping(cfg, train_noise)
    settings = TrainSettings(run_dir=run_dir, training=training, trainer=instantiate(cfg.trainer),
                             callbacks=dict(instantiate(cfg.callbacks)), loggers=dict(instantiate(cfg.logger or {})),
                             seed=cfg.seed, optimizer=instantiate(cfg.optimizer) if cfg.get("optimizer") else None,
                             progress=_progress(), shaping=shaping,
                             stage_cache=stage_cache(cfg, training, shaping, frames_dir, train_noise))
    noisy = train_noise.apply(frontend, frames, corpus, frames_dir, sources, evaluator.degradations)
    model = train_model(head, encoder_spec, frames if train_noise.head_only else noisy, scheme, settings, head_data=noisy)
    input_dims = frames["train"].input_dims
    # fitted on train, tuned on dev for this model (in the conditions its policy names); test is decoded once
    fitted = decoding.fit(scheme, corpus.split("train"), frames["train"])
    dev_utterances = corpus.split("dev")
    dev = evaluator.dev_posteriors({name: model}, frontend, frames["dev"], dev_utterances,
                                   evaluator.mixer(sources, corpus, frontend.audio.extractor.sample_rate), frames_dir)
    decoders = {name: decoding.tuned_for(fitted, lambda c: dev(c)[name], frames["dev"], dev_utterances,
                                         evaluator.condition_names())}
    statistics = posterior_statistics(dev(CLEAN)[name], frames["dev"].offsets)  # what predict judges a clip against
    statistics["av_agreement"] = agreement_statistics(pretrained_streams(run_dir, cfg, input_dims, scheme), frames["dev"],
                                                      scheme)
    save_run(run_dir, cfg, name, model, frontend, scheme, input_dims, decoders[name], statistics)
    print(report_run(run_dir, name, cfg.seed, scheme, evaluator, {name: model}, frontend, corpus, sources, decoding,
                     decoders, skipped=validation.bad_utterances, frames_dir=frames_dir, dev_posteriors=dev))
    log.info("run folder: %s", run_dir)
    return json.loads((run_dir / "report.json").read_text())


def run_name(cfg: DictConfig) -> str:
    """The name a run is reported by when none is given, as avfusion-train names it: the conf/fusion/ file
    whose settings its head has (+multi for multi-condition training); a head of no shipped config's
    settings is named by its class."""
    head = json.dumps(OmegaConf.to_container(cfg.fusion, resolve=True), sort_keys=True)
    base = next((path.stem for path in sorted((Path(CONFIG_DIR) / "fusion").glob("*.yaml"))
                 if _shipped_head(path.stem) == head), cfg.fusion._target_.rsplit(".", 1)[-1])
    return base + ("+multi" if (cfg.get("train_noise") or {}).get("copies") else "")


@functools.lru_cache(maxsize=None)
def _shipped_head(name: str) -> str:
    """conf/fusion/<name>.yaml as composed into a train config, resolved (JSON): the same all process long."""
    return json.dumps(OmegaConf.to_container(compose_config("train", [f"fusion={name}"]).fusion, resolve=True),
                      sort_keys=True)


def warn_joint_training_never_starts(head, cfg: DictConfig) -> None:
    """A head fine-tuned jointly after a warm-up that lasts as long as training is trained frozen."""
    max_epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
    if not head.freeze_encoders and head.warmup_epochs and max_epochs is not None and head.warmup_epochs >= max_epochs:
        log.warning("fusion.warmup_epochs=%d >= trainer.max_epochs=%d: the encoders are never trained jointly with "
                    "the head (lower fusion.warmup_epochs or raise trainer.max_epochs)", head.warmup_epochs, max_epochs)


def finished_report(cfg: DictConfig, run_dir: Path) -> dict | None:
    """The report of a run that finished with this very config (training.resume aside), else None: resuming
    a sweep does not decode and evaluate its finished runs again."""
    report, saved = run_dir / "report.json", run_dir / "config.yaml"
    if not (report.is_file() and saved.is_file() and (run_dir / "run.json").is_file()):
        return None
    if report.stat().st_mtime < saved.stat().st_mtime:
        return None  # trained again (config.yaml rewritten) and stopped before its report
    now, then = (_compared(_dotted(OmegaConf.to_container(c, resolve=True))) for c in (cfg, OmegaConf.load(saved)))
    if now != then:
        return None
    log.info("run already finished with this config: %s (delete it to train again)", report)
    return json.loads(report.read_text())


def _compared(settings: dict) -> dict:
    """The settings by which a finished run is the run a config asks for: all but `training.resume`, null or
    empty ones (a setting added since the run was saved leaves it as it was at null or empty), and the video
    degradations' definitions while no condition names one."""
    video = settings.get("evaluation.video_degradations") or settings.get("evaluation.pairs")
    return {k: v for k, v in settings.items() if k != "training.resume" and v not in (None, [], {})
            and (video or not (k.startswith("video_degradation.") or k == "evaluation.video_severities"))}


def evaluator_of(cfg: DictConfig) -> Evaluator:
    """The evaluation a config sets (`evaluation`), with the video degradations it defines (`video_degradation`)."""
    degradations = {name: instantiate(node, _convert_="all") for name, node in (cfg.get("video_degradation") or {}).items()}
    # given after instantiation: Hydra would turn the objects back into dicts
    return dataclasses.replace(instantiate(cfg.evaluation, _convert_="all"), degradations=degradations)


def noise_sources(cfg: DictConfig) -> dict[str, NoiseSource]:
    """The noise sources a config defines (`noise`, composed from conf/noise/), by name."""
    return {name: instantiate(node, _convert_="all") for name, node in (cfg.get("noise") or {}).items()}


def frontend_outputs(frontend: DictConfig) -> list[str]:
    """What a front-end config gives the encoders and heads: its modalities, its measures and its streams."""
    return [m for m in ("audio", "video") if frontend.get(m)] + \
        [s.name for key in ("measures", "streams") for s in frontend.get(key) or []]


# Settings that say how a run is named, checked, run, logged or scored, never what a stage learns. Every
# other setting of a run's config shapes its stages' weights, but for what the class of a group declares
# irrelevant in its NOT_SHAPING ("*": the whole group), so a new setting is safe by default.
NOT_SHAPING = ("name", "on_error", "max_duration_mismatch_s", "validation_jobs", "trainer", "callbacks", "logger",
               "noise", "video_degradation", "hydra")


def stage_shaping(cfg: DictConfig, train_noise: MultiCondition | None) -> dict:
    """The settings that shape a training stage's weights (resume reuses a stage only when they match), by
    dotted key: the resolved config less `NOT_SHAPING` and what each group's class declares, plus the noise
    sources multi-condition training draws from."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    shaping = {}
    for group, node in resolved.items():
        if group in NOT_SHAPING:
            continue
        irrelevant = _declared_not_shaping(node)
        if "*" in irrelevant:
            continue
        unset = _declared_not_shaping(node, "NOT_SHAPING_WHEN_NULL")
        shaping[group] = {k: v for k, v in node.items() if k not in irrelevant and not (k in unset and v is None)} \
            if isinstance(node, dict) else node
    if train_noise is not None and train_noise.active:
        for name in train_noise.noises:
            shaping[f"noise.{name}"] = resolved["noise"][name]
        for name in train_noise.video_degradations or []:
            shaping[f"video_degradation.{name}"] = resolved["video_degradation"][name]
    elif "train_noise" in shaping:  # clean training: what the noisy copies would be shapes nothing
        shaping["train_noise"] = {k: shaping["train_noise"][k] for k in ("_target_", "copies")}
    return _dotted(shaping)


def _declared_not_shaping(node, declaration: str = "NOT_SHAPING") -> tuple[str, ...]:
    """The keys a config group's class (its `_target_`) declares irrelevant to the weights (`declaration`)."""
    if not (isinstance(node, dict) and isinstance(node.get("_target_"), str)):
        return ()
    return getattr(get_class(node["_target_"]), declaration, ())


def stage_cache(cfg: DictConfig, training: TrainingSettings, shaping: dict, frames_dir: Path,
                train_noise: MultiCondition) -> StageCache | None:
    """Where finished single-encoder stages are shared (`training.encoder_cache_dir`; null: nowhere), keyed by
    what shapes them: the stage settings but the head's, the trainer and callbacks, and the prepared frames
    (`frames_dir`, named by their content key); with `train_noise.head_only`, as clean training keys them."""
    if not training.encoder_cache_dir:
        return None
    # the cache holds single-encoder stages: neither the head's settings, its seed, its modality dropout nor how
    # its encoders' outputs are held shape them
    settings = {k: v for k, v in shaping.items() if not k.startswith("fusion.")
                and k not in ("training.head_seed", "training.modality_dropout", "training.hidden_in_memory_gib")}
    if train_noise.active and train_noise.head_only:  # the encoders never saw the copies
        settings = {k: v for k, v in settings.items() if not k.startswith(("train_noise.", "noise.", "video_degradation."))}
        settings.update({"train_noise._target_": shaping["train_noise._target_"], "train_noise.copies": 0})
    settings.update(_dotted({group: OmegaConf.to_container(cfg[group], resolve=True) for group in ("trainer", "callbacks")}),
                    frames=frames_dir.name)
    return StageCache(training.encoder_cache_dir, settings)


def _dotted(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}: a changed setting is then named by its own key."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _setup_difference(a: Run, b: Run) -> str | None:
    """What keeps two runs' posteriors from being averaged (None: nothing): another test set, label scheme
    or front-end, judged by the config and by what each front-end actually fitted (the same config on an
    edited corpus fits other LDA and CMVN arrays)."""
    for key in ("data", "label_scheme"):
        if OmegaConf.select(a.config, key) != OmegaConf.select(b.config, key):
            return f"its {key} config differs"
    if frontend_settings(OmegaConf.to_container(a.config.frontend, resolve=True)) != \
            frontend_settings(OmegaConf.to_container(b.config.frontend, resolve=True)):
        return "its frontend config differs"
    fitted_a, fitted_b = a.frontend.state_dict(), b.frontend.state_dict()
    differ = sorted(k for k in fitted_a.keys() | fitted_b.keys()
                    if k not in fitted_a or k not in fitted_b or not np.array_equal(fitted_a[k], fitted_b[k]))
    return f"its fitted front-end differs ({', '.join(differ[:3])} in frontend.npz)" if differ else None


def combination(weights, names: list[str], dev_posteriors, dev_labels, rule: str = "mean",
                dev_in=None) -> PosteriorAverage | ConditionWeights:
    """`equal`, `dev` (tuned on the dev split, never on test), `per_condition` (tuned on dev in each evaluated
    condition), `oracle` (per condition on the frames scored: an upper bound) or a list; `rule`: mean or product
    of the posteriors. `dev_posteriors()` gives each run's clean dev posteriors by name, `dev_in(condition)`
    them in a condition with the dev labels (computed on first use)."""
    if isinstance(weights, str) and weights not in ("equal", "dev", "per_condition", "oracle"):
        raise ConfigError(f"weights={weights}: choose equal, dev, per_condition, oracle or a list (one weight per run)")
    if weights in ("per_condition", "oracle"):
        return ConditionWeights(names, rule, dev_in if weights == "per_condition" else None)
    if weights == "equal":
        return PosteriorAverage.equal(names, rule)
    if weights == "dev":
        average = PosteriorAverage.tuned(dev_posteriors(), dev_labels(), rule=rule)
        log.info("dev-tuned posterior weights (%s): %s", rule, average.weights)
        return average
    return PosteriorAverage(dict(zip(names, weights)), rule)


def combination_name(kind: str, weights: dict[str, float]) -> str:
    """`average(a+b)`, naming only the runs that carry weight: a dev-tuned average that gave one run all of
    it is that run, and is named so (with a warning), not reported as an average."""
    used = [n for n, w in weights.items() if w > 0]
    if len(used) < len(weights):
        log.warning("the %s gives no weight to %s: it is %s", kind, [n for n in weights if n not in used],
                    "+".join(used) if len(used) > 1 else f"{used[0]} alone")
    return f"{kind}(" + "+".join(used) + ")"


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate finished runs (`cfg.run_dirs`) again, alone or by posterior averaging; return the report."""
    check_config(cfg)
    run_dirs = [Path(d) for d in cfg.run_dirs]
    if not run_dirs:
        raise ConfigError("run_dirs is empty: give the runs to evaluate, run_dirs=[outputs/train/<run>, ...]")
    loaded = [load_run(d) for d in run_dirs]
    first = loaded[0]
    for run in loaded[1:]:
        if (difference := _setup_difference(first, run)) is not None:
            raise UserError(f"{run.directory} cannot be averaged with {first.directory}: {difference}; average "
                            "runs trained on one prepared corpus")
    runs = {run.name: run for run in loaded}
    if len(runs) < len(loaded):
        runs = {f"{run.name}#{i}": run for i, run in enumerate(loaded)}
    evaluator, decoding = evaluator_of(cfg), instantiate(cfg.decoding, _convert_="all")
    evaluator.check_contrasts(first.scheme)
    sources = noise_sources(cfg)
    evaluator.check(sources)
    corpus, validation = load_corpus(first.config)  # the run's own data and on_error policy
    evaluator.check(sources, corpus)
    # one run: its own folder unless output_dir (e.g. the same run decoded under another tuning policy)
    frames_dir = frames_directory(OmegaConf.to_container(first.config.frontend, resolve=True), first.scheme, corpus)
    dev = functools.cache(lambda: evaluated_frames(first.frontend, corpus.split("dev"), FrameLabeller(first.scheme),
                                                   evaluator.kept_in(frames_dir)))
    models = {n: r.model for n, r in runs.items()}

    def dev_in(combine=None, known=None):  # condition -> the dev posteriors there (and combined), each computed once
        return evaluator.dev_posteriors(models, first.frontend, dev(), corpus.split("dev"),
                                        evaluator.mixer(sources, corpus, first.frontend.audio.extractor.sample_rate),
                                        frames_dir, combine, known)

    plain = functools.cache(dev_in)  # each model's dev posteriors per condition, computed once for every use below
    dev_posteriors = functools.cache(lambda: plain()(CLEAN))  # clean: what weights=dev are tuned on
    combine, out_dir, name = None, Path(cfg.output_dir or first.directory), cfg.get("name") or next(iter(runs))
    if len(loaded) > 1:
        rule = cfg.get("rule", "mean")
        combine = combination(cfg.weights, list(runs), dev_posteriors, lambda: dev().labels, rule,
                              lambda c: (plain()(c), dev().labels))
        kind = getattr(combine, "kind", None) or {"mean": "average", "product": "product"}[rule]
        name = cfg.get("name") or (f"{kind}({'+'.join(runs)})" if isinstance(combine, ConditionWeights)
                                   else combination_name(kind, combine.weights))
        out_dir = Path(cfg.output_dir) if cfg.output_dir else first.directory.parent / (f"{kind}_" + "_".join(runs))
    fitted = functools.cache(lambda: first.decoder if decoding.fitted_as(first.decoder) else decoding.fit(
        first.scheme, corpus.split("train"), prepare(first.config, corpus)[1]["train"]))
    in_condition = functools.cache(lambda: dev_in(combine, plain()))

    def tuned(n: str):
        return decoding.tuned_for(fitted(), lambda c: in_condition()(c)[n], dev(), corpus.split("dev"),
                                  evaluator.condition_names())

    conditions = evaluator.condition_names()  # its own, when made with these settings and tuned in these conditions
    decoders = {n: decoding.restored(run.decoder, conditions) or tuned(n) for n, run in runs.items()}
    if combine is not None:
        decoders["combined"] = tuned("combined")
    print(report_run(out_dir, name, first.seed, first.scheme, evaluator, models,
                     first.frontend, corpus, sources, decoding, decoders, combine=combine,
                     skipped=validation.bad_utterances, frames_dir=frames_dir, dev_posteriors=in_condition()))
    return json.loads((out_dir / "report.json").read_text())


def predict_files(cfg: DictConfig) -> tuple[Prediction, dict[str, Path]]:
    """`avfusion-predict`: predict on `cfg.video` / `cfg.audio` with `cfg.run_dir` and write the files
    (conf/predict.yaml); return the prediction and the files by kind."""
    check_config(cfg)
    clip = cfg.video or cfg.audio  # none: predict says what is missing
    stem = Path(clip).stem if clip else None
    out_dir = Path(cfg.output_dir) if cfg.output_dir else Path("outputs/predict") / str(stem)
    if clip:  # checked first: the work is not thrown away for want of a place to put it
        ensure_writable(out_dir, "output_dir")
    return _predicted_files(cfg, cfg.run_dir, _detector(cfg), out_dir, stem, cfg.video, cfg.audio)


def predict_clips(cfg: DictConfig) -> tuple[list[ClipResult], str]:
    """`avfusion-predict clips=...`: every recording `cfg.clips` names (`avfusion.inference.clips`) with one
    load of the run, each written as a one-clip call writes it into <output_dir>/<stem>/, and
    <output_dir>/summary.tsv. A clip that fails is named and the others are predicted; the call then ends
    with an error naming the failed ones. Return the results and the printed table."""
    check_config(cfg)
    if cfg.video or cfg.audio:
        raise ConfigError("clips= with video= or audio=: give the recordings as clips=[...] only, or one clip as "
                          "video=/audio=")
    clips = clip_list(OmegaConf.to_container(cfg.clips) if OmegaConf.is_config(cfg.clips) else cfg.clips)
    out_root = ensure_writable(cfg.output_dir or "outputs/predict", "output_dir")
    run, detector = load_run(cfg.run_dir), _detector(cfg)
    as_video = reads_video(run)  # else each clip's audio (a container's audio track too)
    results = []
    for i, clip in enumerate(clips, 1):
        log.info("predicting clip %d of %d: %s", i, len(clips), clip)
        result = ClipResult(clip, out_root / clip.stem)
        try:
            prediction, _ = _predicted_files(cfg, run, detector, result.folder, clip.stem,
                                             clip if as_video else None, None if as_video else clip)
        except UserError as error:  # this clip's problem: the next clips are predicted all the same
            log.error("%s: %s", clip, error)
            result.error = str(error)
        else:
            result.seconds, result.units = prediction.duration, sum(u.label != "sil" for u in prediction.units)
            result.error_rate = prediction.edits.rate if prediction.edits is not None else None
            del prediction  # its per-frame arrays are files in a scratch folder, removed with it
        results.append(result)
    table = write_summary(results, out_root / "summary.tsv")
    failed = [str(r.clip) for r in results if r.error is not None]
    if failed:
        raise UserError(f"{len(failed)} of {len(clips)} clips failed ({', '.join(failed)}); the others' files are "
                        f"written, each failure's reason is in {out_root / 'summary.tsv'}")
    return results, table


def _detector(cfg: DictConfig):
    return instantiate(cfg.detector) if cfg.get("detector") else None


def _predicted_files(cfg: DictConfig, run, detector, out_dir: Path, stem: str | None, video, audio):
    """One recording predicted with `run` (a Run or its folder) as conf/predict.yaml says, its files written."""
    lexicon = Lexicon(cfg.lexicon) if cfg.get("lexicon") else None
    text = cfg.get("text")
    if cfg.get("transcript"):
        if text is not None:
            raise UserError("text= and transcript= both given: the transcript is the text, give one of them")
        text = read_transcript(cfg.transcript)
    prediction = predict(run, video, audio, cfg.alignment, alignment_key=cfg.alignment_key,
                         reference_format=cfg.get("alignment_format"), text=text, lexicon=lexicon,
                         detector=detector, chunk_seconds=cfg.chunk_seconds, rois=cfg.rois, progress=_progress(),
                         scratch_dir=cfg.get("scratch_dir"))
    paths = write_prediction(prediction, out_dir, stem, figure=cfg.figure, figure_start_s=cfg.figure_start_s,
                             figure_seconds=cfg.figure_seconds or None)
    return prediction, paths
