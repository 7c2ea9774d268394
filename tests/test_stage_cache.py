"""Pre-trained encoders shared across the runs of a sweep (avfusion.training.stage_cache)."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import tiny_overrides

FAST = ["evaluation.noises=[]", "decoding=framewise"]


def train(root, cache, run, *overrides):
    settings = [o for o in tiny_overrides(root) if not o.startswith("training.encoder_cache_dir=")]
    cmd = [sys.executable, "-m", "avfusion.cli.train", *settings, f"training.encoder_cache_dir={cache}", *FAST, *overrides,
           f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    return run


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def sweep(tiny_root):
    cache = tiny_root / "stage_cache"
    runs = {name: train(tiny_root, cache, tiny_root / f"cached_{name}", f"fusion={name}", *extra)
            for name, extra in (("audio_only", []), ("concat", []), ("bilinear", ["fusion.rank=8"]))}
    return cache, runs


def test_an_audio_only_run_is_the_audio_pretraining_of_every_fusion_run(sweep):
    _, runs = sweep
    solo = weights(runs["audio_only"] / "stages" / "fusion" / "best.pt")
    for fusion in ("concat", "bilinear"):
        stage = runs[fusion] / "stages" / "pretrain_audio"
        assert (stage / "from_cache.txt").is_file()
        logged = "".join(p.read_text() for p in runs[fusion].glob("*.log"))
        assert "stage pretrain_audio: weights from the stage cache" in logged  # not "already finished" (a resume)
        shared = weights(stage / "best.pt")
        assert shared.keys() == solo.keys() and all(torch.equal(shared[k], solo[k]) for k in solo)


def test_a_sweep_pretrains_each_encoder_once(sweep):
    cache, runs = sweep
    entries = [p for p in cache.iterdir() if (p / "complete").is_file()]
    assert len(entries) == 2  # audio (trained by audio_only), video (trained by concat)
    assert not (runs["concat"] / "stages" / "pretrain_video" / "from_cache.txt").exists()
    for stage in ("pretrain_audio", "pretrain_video"):  # bilinear trained neither: no training log
        assert (runs["bilinear"] / "stages" / stage / "from_cache.txt").is_file()
        assert not (runs["bilinear"] / "logs" / stage).exists()


def test_cached_stages_give_the_numbers_of_trained_ones(sweep, tiny_root):
    _, runs = sweep
    uncached = train(tiny_root, "null", tiny_root / "uncached_concat", "fusion=concat")
    assert not (uncached / "stages" / "pretrain_audio" / "from_cache.txt").exists()
    report = {r: json.loads((r / "report.json").read_text())["test"] for r in (runs["concat"], uncached)}
    assert report[runs["concat"]] == report[uncached]


@pytest.mark.slow  # ~30 s; the cache hit and its numbers stay in the default run
def test_other_settings_or_an_unfinished_entry_are_trained_again(sweep, tiny_root):
    cache, runs = sweep
    other_seed = train(tiny_root, cache, tiny_root / "cached_audio_seed1", "fusion=audio_only", "seed=1")
    assert not (other_seed / "stages" / "fusion" / "from_cache.txt").exists()
    for entry in cache.iterdir():  # an entry whose writer died before marking it complete is not used
        (entry / "complete").unlink(missing_ok=True)
    again = train(tiny_root, cache, tiny_root / "cached_bilinear_again", "fusion=bilinear", "fusion.rank=8")
    assert not (again / "stages" / "pretrain_audio" / "from_cache.txt").exists()
    assert (again / "logs" / "pretrain_audio").is_dir()
