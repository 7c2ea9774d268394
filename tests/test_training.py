"""Training and evaluation, end to end on a 20-utterance corpus (seconds on a CPU)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avfusion.frames.data import FrameData
from avfusion.training.datamodule import FrameBatches, FrameDataModule

from conftest import tiny_overrides


def logged(path: Path, column: str) -> list[float]:
    with open(path) as f:
        return [float(r[column]) for r in csv.DictReader(f) if r.get(column)]


def train_cli(root: Path, *overrides, multirun=False):
    cmd = [sys.executable, "-m", "avfusion.cli.train", *(["-m"] if multirun else []), *tiny_overrides(root), *overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def concat_run(tiny_root):
    run = tiny_root / "run_concat"
    out = train_cli(tiny_root, "fusion=concat", f"hydra.run.dir={run}")
    return run, out


def test_train_and_evaluate_writes_the_report(concat_run):
    run, out = concat_run
    report = json.loads((run / "report.json").read_text())
    assert report["name"] == "concat" and report["label_scheme"] == "phone"
    assert [r["condition"] for r in report["test"]] == ["clean", "white 0 dB", "babble 0 dB"]
    for row in report["test"]:
        assert row["utterances"] == 8 and row["frames"] > 1000
        assert 0 <= row["frame_error"] <= 1 and 0 <= row["frame_error_phone"] <= 1 and row["per"] >= 0
    assert "| clean |" in (run / "report.md").read_text() and "| clean |" in out.stdout
    for stage in ("pretrain_audio", "pretrain_video", "fusion"):
        assert (run / "stages" / stage / "best.pt").is_file()
        assert (run / "logs" / stage / "metrics.csv").is_file()
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert all((run / f).is_file() for f in ("model.pt", "frontend.npz", "config.yaml", "run.json"))
    # the instruction set the kernels ran on: the same run gives other numbers on another one
    assert report["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_a_trained_model_beats_always_guessing_the_commonest_training_class(tiny_root):
    """Training learns: an untrained or broken model does not pass (on this corpus: 0.95 untrained, 0.87 for
    always silence, about 0.66 after six epochs)."""
    from avfusion import api
    from avfusion.frames.data import frames_of
    from avfusion.frames.labelling import FrameLabeller

    run = tiny_root / "run_learns"
    train_cli(tiny_root, "fusion=audio_only", "trainer.max_epochs=6", "training.batch_size=32", "training.patience=10",
              "evaluation.noises=[]", "decoding=framewise", f"hydra.run.dir={run}")
    loaded = api.load_run(run)
    corpus, _ = api.load_corpus(loaded.config)
    labeller = FrameLabeller(loaded.scheme)
    commonest = np.bincount(frames_of(loaded.frontend, corpus.split("train"), labeller).labels).argmax()
    guess_error = np.mean(frames_of(loaded.frontend, corpus.split("test"), labeller).labels != commonest)
    clean = json.loads((run / "report.json").read_text())["test"][0]
    assert clean["condition"] == "clean" and clean["frame_error"] < guess_error - 0.1


def test_frozen_encoders_keep_their_pretrained_weights(concat_run):
    run, _ = concat_run
    pretrained = torch.load(run / "stages" / "pretrain_audio" / "best.pt")
    fused = torch.load(run / "model.pt")
    enc = {k: v for k, v in pretrained.items() if k.startswith("encoders.")}
    assert enc and all(torch.equal(v, fused[k]) for k, v in enc.items())


def test_a_frozen_head_on_hidden_outputs_computed_once_learns_what_it_learns_on_encoders_run_per_batch(
        tiny_root, concat_run, monkeypatch):
    """The shortcut for frozen encoders (their outputs computed once per split) moves no number: the same head
    trained with the encoders run on every batch (what a corpus too large for the shortcut gets) ends with the
    same weights and the same report."""
    from avfusion import api
    from avfusion.training import stages

    run, _ = concat_run
    computed = []
    monkeypatch.setattr(stages, "hidden_frames", lambda encoders, data: computed.append(data))
    per_batch = tiny_root / "run_concat_per_batch"
    config = api.load_run(run).config
    config.training.hidden_in_memory_gib = 0  # as for a corpus whose outputs do not fit
    api.train(config, per_batch)
    assert not computed  # the encoders ran on every batch
    once, again = torch.load(run / "model.pt"), torch.load(per_batch / "model.pt")
    assert once.keys() == again.keys()
    for key in once:  # the matrix products see other batch shapes: equal up to float rounding
        torch.testing.assert_close(once[key], again[key], rtol=1e-4, atol=1e-5, msg=key)
    report = json.loads((run / "report.json").read_text())["test"]
    assert json.loads((per_batch / "report.json").read_text())["test"] == report


def test_evaluate_cli_reproduces_the_report(tiny_root, concat_run, tmp_path):
    run, _ = concat_run
    before = json.loads((run / "report.json").read_text())["test"]
    # training kept its noisy conditions beside the prepared frames; the evaluation below reads them
    assert list((tiny_root / "features").glob("frames-*/conditions/babble-0dB-*.npy"))
    subprocess.run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{run}]", "evaluation.snrs_db=[0]",
                    "noise.babble.talkers=3"],
                   check=True, capture_output=True, cwd=run)
    assert json.loads((run / "report.json").read_text())["test"] == before  # seeded noise: same numbers
    # evaluation.contrasts adds the pairs' two-way decision, pooled and per pair, with per-utterance counts; the rest
    # of every row is what it was
    subprocess.run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{run}]", "evaluation.snrs_db=[0]",
                    "noise.babble.talkers=3", "evaluation.contrasts=[[ih,eh],[ah,ae]]", f"output_dir={tmp_path}"],
                   check=True, capture_output=True, cwd=run)
    for row, old in zip(json.loads((tmp_path / "report.json").read_text())["test"], before, strict=True):
        detail = row["by_utterance"]
        pair_frames = np.add(detail["contrast_frames_ih_eh"], detail["contrast_frames_ah_ae"])
        assert 0 < sum(detail["contrast_frames"]) < row["frames"] and detail["contrast_frames"] == pair_frames.tolist()
        assert row["contrast_error"] == pytest.approx(sum(detail["contrast_errors"]) / sum(detail["contrast_frames"]))
        assert {k: v for k, v in row.items() if not k.startswith("contrast_") and k != "by_utterance"} == \
            {k: v for k, v in old.items() if k != "by_utterance"}
    # the contrasts' pairs are phones of the run's scheme, checked before any work
    wrong = subprocess.run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{run}]", "evaluation.contrasts=[[ih,zz]]"],
                           capture_output=True, text=True, cwd=run)
    assert wrong.returncode == 2 and "evaluation.contrasts: 'zz' is not a unit of the phone scheme" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_evaluation_in_batches_from_disk_gives_the_numbers_of_evaluation_in_memory(tiny_root, concat_run, tmp_path,
                                                                                    monkeypatch):
    """With `frontend.fit_batch_utterances` (and `evaluation.hidden_in_memory_gib=0`) the evaluated split's clean
    frames and every condition's features are built a few utterances at a time into the cache and read
    memory-mapped, and the encoders run block by block keeping nothing: every row, every per-utterance count,
    the same as evaluating with everything in memory."""
    from avfusion import api
    from avfusion.configs import configured
    from avfusion.corpus.labels import get_scheme
    from avfusion.frames.data import frames_of
    from avfusion.frames.labelling import FrameLabeller

    run, _ = concat_run
    loaded = api.load_run(run)
    corpus, _ = api.load_corpus(loaded.config)
    test = corpus.split("test")
    decoders = {"concat": loaded.decoder}

    def evaluator(batch, hidden_gib):
        loaded.frontend.fit_batch_utterances = batch
        evaluator = api.evaluator_of(loaded.config)
        evaluator = type(evaluator)(**{**evaluator.__dict__, "hidden_in_memory_gib": hidden_gib, "batch_size": 700,
                                       "video_degradations": ["occlusion"], "video_severities": [0.5],
                                       "pairs": [["white", 0, "occlusion", 0.5]], "missing_streams": ["video"]})
        return evaluator, evaluator.mixer(api.noise_sources(loaded.config), corpus, 16000)

    def rows(batch, hidden_gib, cache_dir):
        evaluating, noise = evaluator(batch, hidden_gib)
        return evaluating.evaluate({"concat": loaded.model}, loaded.frontend, test, loaded.scheme, decoders,
                                   noise=noise, cache_dir=cache_dir)["concat"]

    def tuning_posteriors(batch, cache_dir):  # what pooled tuning keeps of every condition
        evaluating, noise = evaluator(batch, 0)
        frames = frames_of(loaded.frontend, test, FrameLabeller(loaded.scheme))
        in_condition = evaluating.dev_posteriors({"concat": loaded.model}, loaded.frontend, frames, test, noise,
                                                 cache_dir)
        return [in_condition(c)["concat"] for c in evaluating.condition_names()]

    in_memory = rows(None, None, None)
    assert [r["condition"] for r in in_memory] == ["clean", "white 0 dB", "babble 0 dB", "occlusion 0.5",
                                                   "white 0 dB + occlusion 0.5", "no video"]
    batched = rows(3, 0, tmp_path)
    assert batched == in_memory
    frames, = (tmp_path / "evaluated").iterdir()  # the clean frames: float32, equal to those built in memory
    on_disk = FrameData.load(frames)
    whole = frames_of(loaded.frontend, test, FrameLabeller(get_scheme("phone")))
    for m, x in whole.features.items():
        assert on_disk.features[m].dtype == np.float32 and isinstance(on_disk.features[m], np.memmap)
        np.testing.assert_array_equal(on_disk.features[m], x)
    # white, babble, the occluded video; the pair's noisy audio is white's (the audio does not see the video)
    assert len(list((tmp_path / "conditions").glob("*.npy"))) == 3
    on_disk = tuning_posteriors(3, tmp_path)  # kept memory-mapped, the same numbers
    assert all(isinstance(p, np.memmap) for p in on_disk[:-1])  # "no video": zeros for a stream, computed
    for a, b in zip(on_disk, tuning_posteriors(None, None)):
        np.testing.assert_array_equal(a, b)
    # a second evaluation reads everything it needs from the cache
    monkeypatch.setattr(type(loaded.frontend), "transform", lambda *a, **k: pytest.fail("features computed again"))
    assert rows(3, 0, tmp_path) == in_memory
    assert configured("evaluation", hidden_in_memory_gib=0.5).hidden_in_memory_gib == 0.5


@pytest.mark.slow  # ~30 s; determinism stays in the default run via the killed-and-resumed tests below
def test_same_seed_same_numbers_other_seed_differs(tiny_root, concat_run):
    run, _ = concat_run
    again = tiny_root / "run_concat_again"
    train_cli(tiny_root, "fusion=concat", f"hydra.run.dir={again}")
    a = json.loads((run / "report.json").read_text())["test"]
    b = json.loads((again / "report.json").read_text())["test"]
    assert a == b
    other = tiny_root / "run_concat_seed1"
    train_cli(tiny_root, "fusion=concat", "seed=1", f"hydra.run.dir={other}")
    assert json.loads((other / "report.json").read_text())["test"] != a


@pytest.mark.slow  # ~50 s (four runs); the default run keeps test_a_run_killed_and_resumed_gives_the_uninterrupted_numbers
def test_resume_continues_a_stage_instead_of_restarting(tiny_root):
    run = tiny_root / "run_resume"
    train_cli(tiny_root, "fusion=audio_only", "trainer.max_epochs=1", "training.patience=10", f"hydra.run.dir={run}")
    steps_one_epoch = max(logged(run / "logs" / "fusion" / "metrics.csv", "step"))
    train_cli(tiny_root, "fusion=audio_only", "trainer.max_epochs=3", "training.patience=10", "training.resume=true",
              f"hydra.run.dir={run}")
    # best.pt marks the stage as finished: resuming loads it and trains nothing more
    assert max(logged(run / "logs" / "fusion" / "metrics.csv", "step")) == steps_one_epoch
    # an unfinished stage (killed: no best.pt, no report) continues from last.ckpt at the next epoch
    (run / "stages" / "fusion" / "best.pt").unlink()
    (run / "report.json").unlink()
    train_cli(tiny_root, "fusion=audio_only", "trainer.max_epochs=3", "training.patience=10", "training.resume=true",
              f"hydra.run.dir={run}")
    metrics = run / "logs" / "fusion" / "metrics.csv"  # the resumed fit's log: epoch 0 is not trained again
    assert sorted({int(e) for e in logged(metrics, "epoch")}) == [1, 2]
    assert max(logged(metrics, "step")) > 2 * steps_one_epoch
    # a finished stage is not reused for other settings (it would report seed 5 with seed 0's weights)
    cmd = [sys.executable, "-m", "avfusion.cli.train", *tiny_overrides(tiny_root), "fusion=audio_only",
           "trainer.max_epochs=3", "training.patience=10", "training.resume=true", "seed=5", f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tiny_root)
    assert out.returncode != 0 and "trained with other settings (seed: 0 then, 5 now)" in out.stderr
    assert json.loads((run / "report.json").read_text())["seed"] == 0


@pytest.fixture(scope="module")
def uninterrupted(tiny_root):
    run = tiny_root / "run_uninterrupted"
    return run, train_concat(tiny_root, run)


def train_concat(tiny_root, run, *extra, epochs=3, patience=10):
    from avfusion import api
    from avfusion.configs import compose_config

    cfg = compose_config("train", [*tiny_overrides(tiny_root), "fusion=concat", f"training.patience={patience}",
                                   f"trainer.max_epochs={epochs}", "evaluation.noises=[]", *extra])
    return api.train(cfg, run)


def test_another_head_seed_trains_another_head_on_the_same_pretrained_encoders(tiny_root, uninterrupted):
    """The ensemble control of two heads on one pre-training: training.head_seed reseeds the fusion stage
    only; the pre-trained encoders are the same, and the stage cache serves them to either."""
    from avfusion import api
    from avfusion.configs import compose_config, configured

    run, _ = uninterrupted
    other = tiny_root / "run_head_seed_5"
    train_concat(tiny_root, other, "training.head_seed=5")

    def cached_under(*overrides):  # what keys the shared pre-training stages in the stage cache
        cfg = compose_config("train", ["fusion=concat", *overrides])
        training = configured("training", *overrides)
        train_noise = configured("train_noise")
        return api.stage_cache(cfg, training, api.stage_shaping(cfg, train_noise), Path("f"), train_noise).settings

    assert cached_under() == cached_under("training.head_seed=5") == cached_under("training.modality_dropout=0.3") \
        != cached_under("training.lr=0.01")  # the fusion stage's settings do not key the encoders' stages
    for stage in ("pretrain_audio", "pretrain_video"):  # trained again here, the same seed: the same weights
        a, b = (torch.load(r / "stages" / stage / "best.pt", weights_only=True) for r in (run, other))
        assert all(torch.equal(a[k], b[k]) for k in a), stage
    a, b = (torch.load(r / "stages" / "fusion" / "best.pt", weights_only=True) for r in (run, other))
    heads = [k for k in a if k.startswith("head.")]
    assert heads and any(not torch.equal(a[k], b[k]) for k in heads)
    assert json.loads((other / "stages" / "fusion" / "settings.json").read_text())["training.head_seed"] == 5
    assert "training.head_seed" not in json.loads((run / "stages" / "fusion" / "settings.json").read_text())
    with pytest.raises(Exception, match="training.head_seed=5: it seeds a head trained on pre-trained encoders"):
        train_concat(tiny_root, tiny_root / "run_audio_head_seed", "fusion=audio_only", "training.head_seed=5")


def test_without_a_terminal_each_stage_logs_its_start_and_its_epochs(tiny_root, caplog):
    """A batch job (stderr not a terminal, as under pytest) gets log lines, not a silent progress bar."""
    import logging

    with caplog.at_level(logging.INFO, logger="avfusion.training.epoch_log"):
        train_concat(tiny_root, tiny_root / "run_epoch_log", epochs=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "avfusion.training.epoch_log"]
    for stage in ("pretrain_audio", "pretrain_video", "fusion"):
        assert any(line.startswith(f"stage {stage}: training from epoch 1 (at most 2 epochs") for line in lines), lines
        first = next(line for line in lines if line.startswith(f"stage {stage}: epoch 1/2, train loss "))
        assert "dev frame error" in first and "at most" in first and "min more" in first


# killed in the middle of a stage (it continues from last.ckpt), or before a stage's first checkpoint
# (it starts again, after the finished stages are loaded: the head's initial weights must be the same)
@pytest.mark.parametrize("stage, epoch", [("pretrain_video", 2), ("fusion", 0)])
def test_a_run_killed_and_resumed_gives_the_uninterrupted_numbers(tiny_root, uninterrupted, stage, epoch):
    from conftest import Killed

    whole, expected = uninterrupted
    killed = tiny_root / f"run_killed_{stage}_{epoch}"
    kill = ["+callbacks.kill._target_=conftest.KillAt", "+callbacks.kill._partial_=true",
            f"+callbacks.kill.stage={stage}", f"+callbacks.kill.epoch={epoch}"]
    with pytest.raises(Killed):
        train_concat(tiny_root, killed, *kill)
    assert (killed / "stages" / "pretrain_audio" / "best.pt").is_file()
    assert not (killed / "stages" / stage / "best.pt").is_file()
    resumed = train_concat(tiny_root, killed, "training.resume=true")  # finished stages loaded, the rest trained
    assert resumed["test"] == expected["test"]
    a, b = (torch.load(r / "model.pt", weights_only=True) for r in (whole, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_a_finished_run_returns_its_report_without_training_or_evaluating_it(tiny_root, uninterrupted,
                                                                                     monkeypatch):
    """What lets a study stopped part way continue without decoding its finished runs again."""
    import shutil

    from avfusion import api

    whole, expected = uninterrupted
    run = tiny_root / "run_finished_copy"
    shutil.copytree(whole, run)

    def again(*args, **kwargs):
        raise AssertionError("trained or evaluated again")

    monkeypatch.setattr(api, "train_model", again)
    monkeypatch.setattr(api, "report_run", again)
    assert train_concat(tiny_root, run, "training.resume=true") == expected
    with pytest.raises(AssertionError, match="again"):  # other evaluation settings: not this finished run
        train_concat(tiny_root, run, "training.resume=true", "evaluation.snrs_db=[5]")
    (run / "config.yaml").touch()  # trained again into the folder and stopped before its report
    with pytest.raises(AssertionError, match="again"):
        train_concat(tiny_root, run, "training.resume=true")


def test_a_run_saved_before_newer_settings_existed_is_still_finished(tiny_root, uninterrupted, monkeypatch):
    """Settings added later (video degradations, fitting in parts) at their null or empty values leave a
    finished run as it was: a resumed study does not evaluate it again; naming a degradation does."""
    import shutil

    from omegaconf import OmegaConf

    from avfusion import api

    whole, expected = uninterrupted
    run = tiny_root / "run_saved_earlier"
    shutil.copytree(whole, run)
    saved = OmegaConf.load(run / "config.yaml")
    for key in ("video_degradation", "frontend.fit_batch_utterances", "evaluation.video_degradations",
                "evaluation.video_severities", "evaluation.pairs", "training.hidden_in_memory_gib"):
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(saved, parent) if parent else saved
        node.pop(leaf)
    OmegaConf.save(saved, run / "config.yaml")
    (run / "report.json").touch()
    monkeypatch.setattr(api, "report_run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("evaluated again")))
    assert train_concat(tiny_root, run, "training.resume=true") == expected
    with pytest.raises(AssertionError, match="evaluated again"):
        train_concat(tiny_root, run, "training.resume=true", "evaluation.video_degradations=[blur]")


@pytest.mark.slow
def test_kill_9_at_a_random_step_of_each_stage_then_resume_equals_the_uninterrupted_run(tiny_root):
    """The real thing: the training process killed with SIGKILL once in each stage, at a random moment after
    the stage's first checkpoint, and resumed each time."""
    import random
    import signal
    import time

    settings = ["fusion=concat", "training.patience=20", "trainer.max_epochs=12", "evaluation.noises=[]"]
    whole, run = tiny_root / "run_12_epochs", tiny_root / "run_kill_9"
    expected = train_concat(tiny_root, whole, epochs=12, patience=20)
    cmd = [sys.executable, "-m", "avfusion.cli.train", *tiny_overrides(tiny_root), *settings, "training.resume=true",
           f"hydra.run.dir={run}"]
    delays, unfinished = random.Random(0), []
    for stage in ("pretrain_audio", "pretrain_video", "fusion"):
        proc = subprocess.Popen(cmd, cwd=tiny_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        checkpoint = run / "stages" / stage / "checkpoints" / "last.ckpt"
        deadline = time.time() + 300
        while not checkpoint.is_file() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(delays.uniform(0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        unfinished.append(not (run / "stages" / stage / "best.pt").is_file())
    print("killed inside the stage:", dict(zip(("pretrain_audio", "pretrain_video", "fusion"), unfinished)))
    assert all(unfinished), "a kill landed after its stage had finished: the stage outran it"
    train_cli(tiny_root, *settings, "training.resume=true", f"hydra.run.dir={run}")
    assert json.loads((run / "report.json").read_text())["test"] == expected["test"]
    a, b = (torch.load(r / "model.pt", weights_only=True) for r in (whole, run))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow  # ~15 s; the report's interval and baseline tables stay in the default run (test_reporting.py)
def test_multirun_over_two_fusions_gives_a_two_row_table(tiny_root):
    sweep = tiny_root / "sweep"
    train_cli(tiny_root, "fusion=audio_only,video_only", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}",
              multirun=True)
    out = subprocess.run([sys.executable, "-m", "avfusion.cli.report", str(sweep)], capture_output=True, text=True,
                         check=True)
    assert out.stdout.startswith("## test")  # report_dev=false: no dev rows, no dev section
    table = out.stdout.split("\n\n")[1].splitlines()
    assert table[0].startswith("| per | seeds | clean |")
    assert sorted(line.split("|")[1].strip() for line in table[2:]) == ["audio_only", "video_only"]
    assert (sweep / "summary.md").is_file()
    # the sequence error rate with its 95% interval, and the paired difference from a baseline
    out = subprocess.run([sys.executable, "-m", "avfusion.cli.report", str(sweep), "--baseline", "audio_only"],
                         capture_output=True, text=True, check=True)
    tables = out.stdout.split("\n\n")
    alone = next(t for t in tables if t.startswith("| per, 95% interval (resampled: speakers × utterances) |"))
    paired = next(t for t in tables if t.startswith("| per - per(audio_only), 95% interval (")).splitlines()
    name, seeds, speakers, clean = (cell.strip() for cell in alone.splitlines()[2].split("|")[1:5])
    value, low, high = (float(x) for x in clean.replace("[", " ").replace(",", " ").replace("]", " ").split())
    assert low <= value <= high and seeds == "1" and int(speakers) >= 1  # one seed: speakers resampled only
    assert [line.split("|")[1].strip() for line in paired[2:]] == ["video_only"]
    with open(sweep / "summary.csv") as f:
        records = list(csv.DictReader(f))
    per_rows = [r for r in records if r["metric"] == "per"]
    assert {r["model"] for r in per_rows} == {"audio_only", "video_only"}
    assert all(float(r["low"]) <= float(r["mean"]) <= float(r["high"]) for r in per_rows)


def test_batches_are_gathered_rows(rng):
    n = 1000
    data = FrameData({"audio": rng.normal(size=(n, 4)).astype(np.float32),
                      "video": rng.normal(size=(n, 6)).astype(np.float32)},
                     rng.integers(0, 39, n), np.array([0, n]), ["u"], ["s"])
    features, labels = FrameBatches(data, ["audio", "video"]).__getitems__([5, 3, 999])
    np.testing.assert_array_equal(features["video"].numpy(), data.features["video"][[3, 5, 999]])
    np.testing.assert_array_equal(labels.numpy(), data.labels[[3, 5, 999]])
    loader = FrameDataModule({"train": data, "dev": data}, ["audio"], batch_size=64).train_dataloader()
    batches = list(loader)
    assert len(batches) == n // 64 and batches[0][0]["audio"].shape == (64, 4)
    seen = np.concatenate([b[1].numpy() for b in batches])
    assert len(seen) == 64 * (n // 64)


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tiny_root):
    run = tiny_root / "run_ddp"
    train_cli(tiny_root, "fusion=audio_only", "trainer=ddp_cpu", "trainer.max_epochs=1", f"hydra.run.dir={run}")
    assert (run / "report.json").is_file()


def test_bilinear_run_and_posterior_averaging(tiny_root, concat_run):
    concat, _ = concat_run
    bilinear = tiny_root / "run_bilinear"
    train_cli(tiny_root, "fusion=bilinear", "fusion.rank=16", f"hydra.run.dir={bilinear}")
    report = json.loads((bilinear / "report.json").read_text())
    assert report["name"] == "bilinear" and len(report["test"]) == 3
    out_dir = tiny_root / "average"
    subprocess.run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{concat},{bilinear}]", "weights=dev",
                    f"output_dir={out_dir}", "evaluation.snrs_db=[0]", "noise.babble.talkers=3"], check=True, capture_output=True, cwd=tiny_root)
    averaged = json.loads((out_dir / "report.json").read_text())
    assert averaged["name"] == "average(concat+bilinear)"
    assert set(averaged["all"]) == {"concat", "bilinear", "combined"}
    assert set(averaged["weights"]) == {"concat", "bilinear"}  # their values: test_test_split_untouched.py
    product_dir = tiny_root / "product"
    subprocess.run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{concat},{bilinear}]", "rule=product",
                    f"output_dir={product_dir}", "evaluation.noises=[]", "decoding=framewise"],
                   check=True, capture_output=True, cwd=tiny_root)
    product = json.loads((product_dir / "report.json").read_text())
    assert product["name"] == "product(concat+bilinear)" and product["weights"] == {"concat": 0.5, "bilinear": 0.5}
    # each single model, evaluated inside the average, scores as in its own report
    assert averaged["all"]["concat"] == json.loads((concat / "report.json").read_text())["test"]
