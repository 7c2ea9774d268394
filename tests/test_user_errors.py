"""A user's mistakes (config values, corpora, manifests, run folders, reports) get one line naming the key
or file, exit status 2, and no traceback; a bug keeps its traceback. Each case runs the command's code
in this process through the same error boundary the console scripts use; a few run the real scripts."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avfusion import api
from avfusion.configs import compose_config
from avfusion.cli.boundary import user_errors

from conftest import tiny_overrides

BIN = Path(sys.executable).parent


def compose_cfg(name, overrides):
    return compose_config(name, overrides)


def run_command(command, overrides, tmp_path):
    """Run `command` on the composed config as its CLI does; return (exit status, stderr)."""
    cache = [f"frontend.cache_dir={tmp_path / 'features'}"] if command in ("train", "prepare") else []
    cfg = compose_cfg(command, [*cache, *overrides])
    work = {"train": lambda c: api.train(c, tmp_path / "run"), "prepare": api.prepare, "evaluate": api.evaluate,
            "predict": api.predict_files}
    if command in work:
        target = user_errors(command)(work[command])
    else:
        from importlib import import_module
        target = import_module(f"avfusion.cli.{command}").main  # hydra.main passes a given config through
    with pytest.raises(SystemExit) as exit_info:
        target(cfg)
    return exit_info.value.code


def manifest(tmp_path, lines):
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


UTT = '{{"id": "{id}", "speaker": "{spk}", "split": "{split}", "audio": "a/{id}.wav", "alignment": "t/{id}.TextGrid"}}'
THREE = [UTT.format(id=f"u{i}", spk=f"s{i}", split=s) for i, s in enumerate(("train", "dev", "test"))]

# (command, overrides, what the message must name); status 2 for all
CONFIG_CASES = [
    ("train", ["seed=abc"], "seed='abc': must be a whole number"),
    ("train", ["training.batch_size=0"], "training.batch_size=0: must be a whole number >= 1"),
    ("train", ["training.lr=-0.001"], "training.lr=-0.001: must be a number > 0"),
    ("train", ["training.weight_decay=-1"], "training.weight_decay=-1"),
    ("train", ["on_error=ignore"], "on_error='ignore': must be one of ['raise', 'skip']"),
    ("train", ["label_scheme=phones"], "label_scheme='phones': must be one of ['auto', 'states', 'phone'"),
    ("train", ["evaluation.snrs_db=[loud]"], "evaluation.snrs_db=['loud']"),
    ("train", ["evaluation.snrs_db=loud"], "evaluation.snrs_db='loud': must be a list"),
    ("train", ["evaluation.noises=[brown]"], "each one of ['white', 'pink', 'babble', 'babble_train', 'babble_unseen', 'music', 'recordings'] (not 'brown')"),
    ("train", ["train_noise=multi", "train_noise.noises=[white,brown]"], "train_noise.noises=['white', 'brown']: must be"),
    ("train", ["evaluation.noises=[recordings]"], "noise.recordings.folder is not set"),
    ("train", ["evaluation.noises=[recordings]", "noise.recordings.folder=/nonexistent"], "noise.recordings.folder=/nonexistent: no such folder"),
    ("train", ["frontend.n_jobs=0"], "frontend.n_jobs=0"),
    ("train", ["frontend.store_dtype=int8"], "frontend.store_dtype='int8': must be one of ['float16', 'float32'] or null"),
    ("train", ["frontend.frame_shard_utterances=0"], "frontend.frame_shard_utterances=0: must be a whole number >= 1"),
    ("train", ["evaluation.hidden_in_memory_gib=-1"], "evaluation.hidden_in_memory_gib=-1: must be a number >= 0 or null"),
    ("train", ["training.shuffle_block_frames=0"], "training.shuffle_block_frames=0: must be a whole number >= 1"),
    ("train", ["training.shuffle_block_frames=100000", "trainer=ddp_cpu"], "training.shuffle_block_frames: not with distributed"),
    ("train", ["fusion=stream_weighted"], "reads the features ['audio_reliability', 'video_reliability'], which the front-end"),
    ("train", ["train_noise=multi", "train_noise.head_only=true", "fusion=audio_only"], "train_noise.head_only=true"),
    ("train", ["data.n_speakers=0"], "data.n_speakers=0: must be a whole number >= 3"),
    ("train", ["data.realism.coupling=2"], "data.realism.coupling=2: must be a number >= 0"),
    ("train", ["evaluation.contrasts=[[ih,ih]]"], "evaluation.contrasts=[['ih', 'ih']]: must be a list of items each a pair of two different unit names"),
    ("train", ["data.realism.interaction_pairs=[[ih,ih]]"], "data.realism.interaction_pairs: ['ih', 'ih'] is not a pair of two phones"),
    ("train", ["data.audio.pad_range_s=[0.3,0.1]"], "data.audio.pad_range_s=[0.3, 0.1]: give [low, high] with low <= high"),
    ("train", ["trainer.max_epochs=0"], "trainer.max_epochs=0: must be a whole number >= 1"),
    ("train", ["trainer.max_epochs=-1"], "trainer.max_epochs=-1"),
    ("train", ["training.patience=-1"], "training.patience=-1: must be a whole number >= 0"),
    ("train", ["training.batching=random"], "training.batching='random': must be one of ['auto', 'frames', 'utterances', 'chunks']"),
    ("train", ["cd_min_frames=0"], "cd_min_frames=0"),
    ("train", ["fusion=bilinear", "fusion.rank=-3"], "fusion.rank=-3: must be a whole number >= 1"),
    ("train", ["fusion=concat_deep", "fusion.widths=[500,0]"], "fusion.widths=[500, 0]: every width must be a whole number >= 1"),
    ("train", ["encoder.widths.audio=[500,-2]"], "encoder.widths.audio=[500, -2]: every width"),
    ("train", ["decoding.tune=oracle"], "decoding.tune='oracle': must be one of ['clean', 'pooled', 'per_condition']"),
    ("train", ["decoding.min_frames=0"], "decoding.min_frames=0: must be a whole number >= 1"),
    ("train", ["decoding.lm=trigram"], "decoding.lm='trigram'"),
    ("train", ["decoding.acoustic_scales=[]"], "decoding.acoustic_scales=[]: must be a non-empty list"),
    ("train", ["data=grid"], "data.root has no value: give it on the command line (data.root=...)"),
    ("prepare", ["frontend.n_jobs=0"], "frontend.n_jobs=0"),
    ("synth", ["data.n_speakers=1"], "data.n_speakers=1"),
    ("evaluate", [], "run_dirs has no value"),
    ("evaluate", ["run_dirs=[]"], "run_dirs is empty"),
    ("predict", ["video=clip.mp4"], "run_dir has no value"),
    ("predict", ["run_dir=x", "chunk_seconds=0"], "chunk_seconds=0: must be a number > 0 or null"),
    ("predict", ["run_dir=x", "rois=-1"], "rois=-1: must be a whole number >= 0"),
    ("predict", ["run_dir=x", "video=clip.mp4"], "x: no run.json: not a finished avfusion-train run"),
]


@pytest.mark.parametrize("command, overrides, named", CONFIG_CASES, ids=[" ".join([c, *o]) for c, o, _ in CONFIG_CASES])
def test_a_bad_config_value_is_one_line_naming_the_key(command, overrides, named, tmp_path, capsys):
    status = run_command(command, overrides, tmp_path)
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(f"avfusion-{command}: error: ") and named in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()  # refused before any work


FILE_CASES = {
    "duplicate id": (lambda p: manifest(p, THREE + [THREE[0]]), "utterance ids occur more than once: ['u0']"),
    "a line that is not JSON": (lambda p: manifest(p, THREE[:1] + ["{id: u9"]), "manifest.jsonl:2: not valid JSON"),
    "a missing field": (lambda p: manifest(p, ['{"id": "u0", "split": "train"}']), "manifest.jsonl:1: missing field(s) ['speaker']"),
    "no manifest": (lambda p: p / "nothing.jsonl", "nothing.jsonl does not exist"),
    "a corpus with problems (on_error=raise)": (lambda p: manifest(p, THREE), "a/u0.wav: audio file does not exist"),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_a_bad_corpus_file_is_named(case, tmp_path, capsys):
    make, named = FILE_CASES[case]
    path = make(tmp_path)
    status = run_command("train", ["data=manifest", f"data.manifest={path}", "frontend.n_jobs=1"], tmp_path)
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("avfusion-train: error: ") and named in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("adapter", ["tcd_timit", "grid", "lrs3", "timit"])
def test_a_missing_corpus_root_is_named(adapter, tmp_path, capsys):
    root = tmp_path / "no" / adapter
    assert run_command("validate", [f"data={adapter}", f"data.root={root}"], tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("avfusion-validate: error: ") and str(root) in err and "Traceback" not in err, err


def test_validating_a_synthetic_corpus_that_is_not_there_builds_nothing(tmp_path, capsys):
    root = tmp_path / "nowhere"
    assert run_command("validate", [f"data.root={root}"], tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"avfusion-validate: error: {root} holds no synthetic corpus") and not root.exists(), err


@pytest.fixture(scope="module")
def finished_run(tiny_root):
    run = tiny_root / "run_user_errors"
    if not (run / "run.json").is_file():
        api.train(compose_cfg("train", [*tiny_overrides(tiny_root), "fusion=audio_only", "trainer.max_epochs=1",
                                        "evaluation.noises=[]"]), run)
    return run


def spoil_model(run, how):
    target = run / "model.pt"
    if how == "truncated":
        target.write_bytes(target.read_bytes()[:1000])
    elif how == "not a model":
        import torch

        torch.save({"weight": torch.zeros(3)}, target)
    elif how == "corrupt run.json":
        (run / "run.json").write_text("{ not json")
    elif how == "truncated front-end":
        (run / "frontend.npz").write_bytes((run / "frontend.npz").read_bytes()[:500])


@pytest.mark.parametrize("how, named", [("truncated", "model.pt: cannot be read as saved weights"),
                                        ("not a model", "model.pt: does not hold the weights of the model"),
                                        ("corrupt run.json", "run.json: not valid JSON"),
                                        ("truncated front-end", "frontend.npz: cannot be read as the run's fitted front-end"),
                                        ("empty folder", "no run.json: not a finished avfusion-train run")])
def test_a_broken_run_folder_is_named(finished_run, how, named, tmp_path, capsys):
    run = tmp_path / "run_copy"
    if how == "empty folder":
        run.mkdir()
    else:
        shutil.copytree(finished_run, run)
        spoil_model(run, how)
    assert run_command("evaluate", [f"run_dirs=[{run}]", "evaluation.noises=[]"], tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("avfusion-evaluate: error: ") and named in err and "Traceback" not in err, err


@pytest.mark.parametrize("changed, named", [(["encoder.widths.audio=[64,16]"], "encoder.widths.audio: [64, 32] then, [64, 16] now"),
                                             (["training.lr=0.01"], "lr: 0.001 then, 0.01 now")])
def test_resume_refuses_a_finished_run_trained_with_other_settings(finished_run, tiny_root, changed, named,
                                                                    tmp_path, capsys):
    run = tmp_path / "run_copy"
    shutil.copytree(finished_run, run)
    cfg = compose_cfg("train", [*tiny_overrides(tiny_root), "fusion=audio_only", "trainer.max_epochs=1",
                                "evaluation.noises=[]", "training.resume=true", *changed])
    with pytest.raises(SystemExit) as exit_info:
        user_errors("train")(api.train)(cfg, run)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "trained with other settings" in err and named in err, err
    assert "Traceback" not in err


def test_a_bug_keeps_its_traceback():
    @user_errors("train")
    def buggy():
        return {}["missing"]

    with pytest.raises(KeyError):
        buggy()


def test_the_console_scripts_print_one_line_and_exit_2(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "report.json").write_text("[1, 2")
    (tmp_path / "empty").mkdir()
    cases = [("avfusion-train", ["seed=abc"], "seed='abc'"),
             ("avfusion-evaluate", [f"run_dirs=[{tmp_path}]"], "no run.json"),
             ("avfusion-report", [str(tmp_path / "r")], "report.json: not a report"),
             ("avfusion-report", [str(tmp_path / "empty")], "no report.json under it"),  # exited 1
             ("avfusion-report", [str(tmp_path / "nope")], "nope: no such folder")]
    # all at once: each is mostly its imports, and the cores are shared
    started = [subprocess.Popen([str(BIN / cmd), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=tmp_path) for cmd, args, _ in cases]
    debug = subprocess.Popen([str(BIN / "avfusion-train"), "seed=abc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=tmp_path, env={**__import__("os").environ, "AVFUSION_DEBUG": "1"})
    for (cmd, _, named), process in zip(cases, started):
        _, stderr = process.communicate()
        assert process.returncode == 2, (cmd, stderr[-2000:])
        assert stderr.strip().splitlines()[-1].startswith(f"{cmd}: error: ") and named in stderr
        assert "Traceback" not in stderr, stderr
    _, stderr = debug.communicate()
    assert debug.returncode != 0 and "Traceback" in stderr  # the traceback, for who wants it


def test_a_warmup_as_long_as_training_is_warned_about_before_any_work(tmp_path, capsys, caplog):
    """Joint training that never starts is legal but almost surely not meant: a warning before the corpus
    is read (here a missing manifest stops the run right after it)."""
    missing = tmp_path / "nowhere.jsonl"
    with caplog.at_level("WARNING", logger="avfusion.api"):
        status = run_command("train", ["fusion=bilinear", "fusion.warmup_epochs=3", "trainer.max_epochs=3",
                                       "data=manifest", f"data.manifest={missing}"], tmp_path)
    assert status == 2 and "nowhere.jsonl" in capsys.readouterr().err
    assert "fusion.warmup_epochs=3 >= trainer.max_epochs=3: the encoders are never trained jointly" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="avfusion.api"):
        run_command("train", ["fusion=bilinear", "fusion.warmup_epochs=1", "trainer.max_epochs=3",
                              "data=manifest", f"data.manifest={missing}"], tmp_path)
    assert "never trained jointly" not in caplog.text


EXTENDED_TRAINING = '''
from dataclasses import dataclass

from avfusion.training.settings import TrainingSettings


@dataclass
class SmoothedTraining(TrainingSettings):
    label_smoothing: float = 0.0
'''


def test_a_setting_added_to_the_training_config_is_refused_on_resume_without_editing_a_list(tiny_root, tmp_path,
                                                                                            monkeypatch, capsys):
    """What shapes a stage is the run's config less what its owners declare irrelevant, so a new training
    setting guards resume the moment it exists."""
    (tmp_path / "my_training.py").write_text(EXTENDED_TRAINING)
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    overrides = [*tiny_overrides(tiny_root), "fusion=audio_only", "trainer.max_epochs=1", "evaluation.noises=[]",
                 "decoding=framewise", "training._target_=my_training.SmoothedTraining"]
    api.train(compose_cfg("train", [*overrides, "+training.label_smoothing=0.0"]), run)
    recorded = [json.loads(p.read_text()) for p in run.glob("stages/*/settings.json")]
    assert recorded and all(r["training.label_smoothing"] == 0.0 and "training.resume" not in r for r in recorded)
    (run / "report.json").unlink()  # as if killed before its report
    cfg = compose_cfg("train", [*overrides, "+training.label_smoothing=0.1", "training.resume=true"])
    with pytest.raises(SystemExit) as exit_info:
        user_errors("train")(api.train)(cfg, run)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "training.label_smoothing: 0.0 then, 0.1 now" in err, err


def test_averaging_refuses_runs_whose_fitted_front_ends_differ(finished_run, tmp_path, capsys):
    """The same config on an edited corpus fits other LDA scalings: averaging must compare what each run
    fitted, not only its config (it used to feed every run the first run's front-end)."""
    import numpy as np

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(finished_run, a)
    shutil.copytree(finished_run, b)
    with np.load(b / "frontend.npz") as saved:
        arrays = dict(saved)
    key = next(k for k in arrays if arrays[k].dtype.kind == "f" and arrays[k].size > 1)
    arrays[key] = arrays[key] * 1.5
    with open(b / "frontend.npz", "wb") as f:
        np.savez(f, **arrays)
    assert run_command("evaluate", [f"run_dirs=[{a},{b}]", "evaluation.noises=[]"], tmp_path) == 2
    err = capsys.readouterr().err
    assert f"{b} cannot be averaged with {a}: its fitted front-end differs ({key}" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_predict_checks_its_output_folder_before_the_work(finished_run, tiny_root, tmp_path, capsys, monkeypatch):
    """An output folder that cannot be written is refused before the prediction is computed, not after
    (the work used to be thrown away). Root ignores permission bits, so the folder sits under a file."""
    wav = next((tiny_root / "corpus").rglob("*.wav"))
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    monkeypatch.setattr(api, "predict", lambda *a, **k: pytest.fail("predicted before the output folder was checked"))
    status = run_command("predict", [f"run_dir={finished_run}", f"audio={wav}", f"output_dir={blocked / 'out'}"],
                         tmp_path)
    err = capsys.readouterr().err
    assert status == 2 and f"output_dir={blocked / 'out'}: cannot write there" in err, err


def test_prepare_refuses_zero_jobs_before_validation_runs(tmp_path):
    """avfusion-prepare validated the corpus (with validation_jobs inherited from frontend.n_jobs) before it
    checked the config: joblib's traceback instead of a line."""
    out = subprocess.run([sys.executable, "-m", "avfusion.cli.prepare", "frontend.n_jobs=0",
                          f"data.root={tmp_path / 'corpus'}", f"frontend.cache_dir={tmp_path / 'features'}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip() == "avfusion-prepare: error: frontend.n_jobs=0: must be a whole number >= 1"
    assert not (tmp_path / "corpus").exists()  # refused before the corpus was generated


@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_an_unwritable_run_folder_is_one_line_before_hydra_makes_it(mode, tmp_path):
    """Root ignores permission bits, so the folder sits under a file."""
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    args = [f"hydra.run.dir={blocked / 'run'}"] if mode == "run" else ["-m", "seed=1,2", f"hydra.sweep.dir={blocked / 'sweep'}"]
    out = subprocess.run([sys.executable, "-m", "avfusion.cli.train", *args], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip() == (f"avfusion-train: error: hydra.{mode}.dir={blocked / mode}: cannot write there "
                                  "(Not a directory); give a folder you can write to")


def test_an_average_that_gives_a_run_no_weight_is_not_named_an_average_of_it(caplog):
    from avfusion.api import combination_name

    assert combination_name("average", {"concat": 0.5, "bilinear": 0.5}) == "average(concat+bilinear)"
    with caplog.at_level("WARNING", logger="avfusion.api"):
        assert combination_name("average", {"concat": 1.0, "bilinear": 0.0}) == "average(concat)"
    assert "gives no weight to ['bilinear']: it is concat alone" in caplog.text
