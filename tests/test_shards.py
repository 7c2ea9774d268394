"""Feature extraction in shards (avfusion-prepare shards=N shard=i): array jobs through a Hydra launcher,
then one finishing step, giving the frames an unsharded preparation gives."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avfusion.configs import compose_config
from avfusion.corpus.types import Utterance
from avfusion.errors import UserError
from avfusion.frontends.shards import check_shard_settings, shard_utterances

from conftest import TINY


def utterance(speaker: str, uid: str) -> Utterance:
    return Utterance(id=uid, speaker=speaker, split="train", audio=None, video=None, alignment=None)


def test_shards_cut_the_corpus_into_near_equal_parts_the_same_whatever_the_order():
    rng = np.random.default_rng(0)
    corpus = [utterance(f"s{i % 7}", f"u{i:03d}") for i in range(103)]
    parts = [shard_utterances(corpus, 8, i) for i in range(8)]
    assert sorted(u.id for p in parts for u in p) == sorted(u.id for u in corpus)  # each utterance in one shard
    assert {len(p) for p in parts} == {12, 13}
    shuffled = [corpus[i] for i in rng.permutation(len(corpus))]
    assert [shard_utterances(shuffled, 8, i) for i in range(8)] == parts
    # in (speaker, id) order: a speaker's utterances are contiguous, so at most 7 speakers are split
    assert sum(len({u.speaker for u in p}) for p in parts) <= 7 + 7
    with pytest.raises(UserError, match=r"shard=8: must be 0 to 7 \(shards=8\)"):
        shard_utterances(corpus, 8, 8)
    with pytest.raises(UserError, match="shard=2 needs shards="):
        check_shard_settings(None, 2)


def settings(root: Path, cache: Path) -> list[str]:
    return [f"data.root={root}/corpus", f"frontend.cache_dir={cache}", "probe=false",
            *(a for a in TINY if a.split(".")[0] in ("data", "frontend"))]


def prepare(root: Path, cache: Path, *overrides: str) -> int:
    """avfusion-prepare in this process, as its CLI runs it: its exit status (0: done)."""
    from avfusion.cli.prepare import main

    try:
        main(compose_config("prepare", [*settings(root, cache), *overrides]))  # hydra.main passes a config through
    except SystemExit as exit_info:
        return exit_info.code
    return 0


def test_shards_run_as_jobs_of_a_launcher_then_finish_to_the_unsharded_frames(tiny_root, tmp_path, capsys,
                                                                               monkeypatch):
    from avfusion.corpus.validation import UtteranceCheck

    # finishing before any shard ran: names both, extracts nothing
    assert prepare(tiny_root, tmp_path / "early", "shards=2") == 2
    err = capsys.readouterr().err
    assert "2 shard(s) not extracted yet: 0 (" in err and "shard=0,1" in err
    assert not list((tmp_path / "early").glob("*/*.npy"))

    checked, check = [], UtteranceCheck.__call__
    monkeypatch.setattr(UtteranceCheck, "__call__", lambda self, u: checked.append(u.id) or check(self, u))
    cache = tmp_path / "features"
    assert prepare(tiny_root, cache, "shards=2", "shard=0") == 0
    assert "shard 0 of 2 (" in capsys.readouterr().out
    first, checked[:] = set(checked), []  # a shard's job checks its own utterances' files only
    assert prepare(tiny_root, cache, "shards=2") == 2
    assert "1 shard(s) not extracted yet: 1 (" in capsys.readouterr().err
    assert len(first) == len(set(checked)) == 10 and not first & set(checked)  # shard 0's checks are kept

    # both shards as a multirun through Hydra's launcher (what hydra/launcher=slurm runs as an array job)
    jobs = subprocess.run([sys.executable, "-m", "avfusion.cli.prepare", "-m", *settings(tiny_root, cache), "shards=2",
                           "shard=0,1", f"hydra.sweep.dir={tmp_path}/sweep"], capture_output=True, text=True)
    assert jobs.returncode == 0, jobs.stderr[-3000:]
    lines = {line.split(" (")[0]: line for line in jobs.stdout.splitlines() if line.startswith("shard ")}
    assert "audio: 0 extracted" in lines["shard 0 of 2"]  # a finished shard is not redone
    assert "audio: 0 extracted" not in lines["shard 1 of 2"] and "video: " in lines["shard 1 of 2"]

    checked.clear()
    assert prepare(tiny_root, cache, "shards=2") == 0
    assert not checked  # every shard's files were checked by its job
    assert prepare(tiny_root, tmp_path / "unsharded") == 0
    sharded, unsharded = (sorted(c.glob("frames-*/train/*.npy")) for c in (cache, tmp_path / "unsharded"))
    assert [p.name for p in sharded] == [p.name for p in unsharded] and sharded
    for a, b in zip(sharded, unsharded):  # the same features, front-end fit and frames
        np.testing.assert_array_equal(np.load(a), np.load(b))


@pytest.mark.parametrize("overrides, named", [(["shard=3"], "shard=3 needs shards="),
                                              (["shards=2", "shard=2"], "shard=2: must be 0 to 1"),
                                              (["shards=0"], "shards=0")])
def test_a_shard_setting_out_of_range_is_one_line_before_the_corpus_is_read(tmp_path, capsys, overrides, named):
    assert prepare(tmp_path / "nowhere", tmp_path / "features", *overrides) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and not (tmp_path / "nowhere").exists()


def test_utterances_left_out_as_invalid_move_no_shard_boundary(tiny_root, tmp_path, monkeypatch):
    """on_error=skip: each job knows only its own shard's bad utterances, so the shards are cut on every
    utterance the corpus has; cut on what a job kept, shard 1 would reach into shard 0 and extract an
    utterance it never validated."""
    from hydra.utils import instantiate

    from avfusion.corpus.validation import Problem, UtteranceCheck

    cache = tmp_path / "features"
    cfg = compose_config("prepare", settings(tiny_root, cache))
    utterances = list(instantiate(cfg.data, _convert_="all").load())
    bad = {shard_utterances(utterances, 2, 0)[-1].id, shard_utterances(utterances, 2, 1)[5].id}
    check = UtteranceCheck.__call__
    monkeypatch.setattr(UtteranceCheck, "__call__", lambda self, u: [Problem(str(u.audio), "unreadable", u.id)]
                        if u.id in bad else check(self, u))
    for shard in ("shard=0", "shard=1"):
        assert prepare(tiny_root, cache, "shards=2", shard, "on_error=skip") == 0
    assert not [p for b in bad for p in cache.glob(f"*/{b}.*")]  # an invalid utterance is never extracted
    assert prepare(tiny_root, cache, "shards=2", "on_error=skip") == 0  # and every kept one was


def test_shard_jobs_gather_the_statistics_the_finish_fits_from(tiny_root, tmp_path, monkeypatch, caplog):
    """frontend.fit_batch_utterances set: each shard's job keeps its training utterances' statistics, the finish
    adds them up instead of reading the training frames for them, and fits the front-end one pass over all the
    training frames fits (to rounding); a damaged statistics file is gathered again."""
    from avfusion.frontends.pipeline import FrontEnd

    cache, batched = tmp_path / "features", "frontend.fit_batch_utterances=2"
    for shard in range(3):
        assert prepare(tiny_root, cache, "shards=3", f"shard={shard}", batched) == 0
    saved = sorted((cache / "statistics").glob("*.npz"))
    assert len(saved) == 3 and sum(bool(np.load(p).files) for p in saved) >= 2  # a shard of dev/test speakers has none
    gathers, real = [], FrontEnd.gather
    monkeypatch.setattr(FrontEnd, "gather", lambda self, *a, **k: gathers.append(len(a[0])) or real(self, *a, **k))
    # how the finish batches and stores the frames is not what the statistics are: the jobs' are used
    assert prepare(tiny_root, cache, "shards=3", "frontend.fit_batch_utterances=3", "frontend.store_dtype=float16") == 0
    assert not gathers
    for frames in cache.glob("frames-*"):
        shutil.rmtree(frames)
    assert prepare(tiny_root, cache, "shards=3", batched) == 0
    assert not gathers  # every shard's statistics were read, none gathered again
    assert prepare(tiny_root, tmp_path / "one", batched) == 0  # unsharded: one pass over the training frames, in batches

    def prepared(root: Path) -> tuple[dict, dict]:
        frames = next(root.glob("frames-*"))
        return dict(np.load(frames / "frontend.npz")), {p.name: np.load(p) for p in (frames / "train").glob("x_*.npy")}

    (sharded, x), (one, y) = prepared(cache), prepared(tmp_path / "one")
    assert sharded.keys() == one.keys() and x.keys() == y.keys() == {"x_audio.npy", "x_video.npy"}
    for name, a in sharded.items():  # each LDA direction, its sign included (fixed whatever the order of the sums)
        assert np.abs(a - one[name]).max() < 1e-6 * np.abs(a).max(), name
    for name in x:  # the frames through them: 1e-4 of the largest (as fitting in batches: test_frontend_statistics)
        assert np.abs(x[name] - y[name]).max() < 1e-4 * np.abs(x[name]).max()

    damaged = next(p for p in saved if np.load(p).files)
    damaged.write_bytes(damaged.read_bytes()[:100])
    for frames in cache.glob("frames-*"):
        shutil.rmtree(frames)
    assert prepare(tiny_root, cache, "shards=3", batched) == 0
    assert len(gathers) == 1 and "unreadable shard statistics" in caplog.text  # that shard's alone, kept again
    assert np.load(damaged).files
    np.testing.assert_array_equal(prepared(cache)[0]["audio.steps.2.scalings_"], sharded["audio.steps.2.scalings_"])


def test_a_shard_killed_mid_way_runs_again_alone_from_where_it_stopped(tiny_root, tmp_path, capsys):
    """kill -9 in shard 0's job after 3 features are written (the 4th half-written): shard 0 run again extracts
    only what it lacks, shard 1 was never touched, and the finishing step then runs."""
    cache = tmp_path / "features"
    job = (  # the shard's job, killed for real while writing its 4th feature file
        "import os, signal, sys\n"
        "from avfusion.frontends import store\n"
        "writes = []\n"
        "real = store.FeatureStore.write\n"
        "def write(self, utt, x, meta):\n"
        "    writes.append(utt.id)\n"
        "    if len(writes) == 4:\n"
        "        (self.dir / f'.{utt.id}.x1y2.tmp.npy').write_bytes(b'half')  # as atomic_path names it\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(self, utt, x, meta)\n"
        "store.FeatureStore.write = write\n"
        "from avfusion.configs import compose_config\n"
        "from avfusion.cli.prepare import main\n"
        "main(compose_config('prepare', sys.argv[1:]))\n")
    killed = subprocess.run([sys.executable, "-c", job, *settings(tiny_root, cache), "shards=2", "shard=0",
                             "frontend.fit_batch_utterances=2"], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    def features() -> list[Path]:
        return [p for p in cache.glob("mfcc-*/*.npy") if not p.name.startswith(".")]

    assert len(features()) == 3 and list(cache.glob("mfcc-*/.*.tmp.npy")) and not list(cache.glob("statistics/*"))
    for half in cache.glob("mfcc-*/.*.tmp.npy"):  # left by the kill, an hour ago (a live writer's is not removed)
        os.utime(half, (half.stat().st_mtime - 3600,) * 2)
    assert prepare(tiny_root, cache, "shards=2", "frontend.fit_batch_utterances=2") == 2  # not done (no video yet): named
    assert "2 shard(s) not extracted yet: 0 (10 utterances), 1 (10 utterances)" in capsys.readouterr().err
    assert prepare(tiny_root, cache, "shards=2", "shard=0", "frontend.fit_batch_utterances=2") == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("shard 0 of 2"))
    assert "audio: 7 extracted, 3 already cached" in line and "statistics of" in line
    assert len(features()) == 10 and not list(cache.glob("mfcc-*/.*.tmp.npy"))  # shard 1's untouched; no half file
    assert prepare(tiny_root, cache, "shards=2", "shard=1", "frontend.fit_batch_utterances=2") == 0
    assert prepare(tiny_root, cache, "shards=2", "frontend.fit_batch_utterances=2") == 0
    assert next(cache.glob("frames-*/complete"))
