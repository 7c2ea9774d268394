"""Validation finds every planted fault, names its file, reports nothing else; training refuses or skips."""

import json
import shutil
import subprocess
import sys

import pytest

from avfusion.corpus.alignments import read_textgrid, write_textgrid
from avfusion.corpus.manifest import read_manifest, write_manifest
from avfusion.synth.builder import write_video
from avfusion.corpus.types import Segment
from avfusion.corpus.validation import InvalidCorpusError, checked_corpus, validate_corpus
from avfusion.media import read_video


def copy_corpus(source, root):
    """A manifest corpus of its own (files copied), so faults can be planted in it."""
    shutil.copytree(source.root, root)
    return read_manifest(root / "manifest.jsonl")


def plant_unknown_phone(utt):
    tiers = {name: read_textgrid(utt.alignment, name) for name in ("words", "phones")}
    phones = tiers["phones"]
    i = next(i for i, s in enumerate(phones) if s.label not in ("", "sil"))
    phones[i] = Segment("xx", phones[i].start, phones[i].end)
    write_textgrid(utt.alignment, tiers, phones[-1].end)


def plant_short_video(utt):
    frames, fps = read_video(utt.video)
    write_video(utt.video, frames[: int(len(frames) * 0.6)], fps)


def plant_truncated_video(utt):
    data = utt.video.read_bytes()
    utt.video.write_bytes(data[: len(data) * 6 // 10])


@pytest.fixture(scope="module")
def faulty(layout_source, tmp_path_factory):
    """Five planted faults: missing file, truncated video, unknown phone, speaker in two splits, duration
    mismatch; the expected (utterance, file, what) of each."""
    root = tmp_path_factory.mktemp("faulty") / "corpus"
    corpus = copy_corpus(layout_source, root)
    train = corpus.split("train")
    missing, truncated, unknown, short = train[0], train[1], train[2], train[3]
    missing.audio.unlink()
    plant_truncated_video(truncated)
    plant_unknown_phone(unknown)
    plant_short_video(short)
    moved = corpus.split("dev")[0]  # a dev speaker's utterance moved to test
    lines = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    for record in lines:
        if record["id"] == moved.id:
            record["split"] = "test"
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    expected = {
        (missing.id, str(missing.audio), "audio file does not exist"),
        (truncated.id, str(truncated.video), "cannot open video"),
        (unknown.id, str(unknown.alignment), "unknown phone symbol(s) ['xx']"),
        (short.id, str(short.video), "video lasts"),
        (None, str(root / "manifest.jsonl"), f"speaker {moved.speaker} is in more than one split"),
    }
    return root, read_manifest(root / "manifest.jsonl"), expected


def test_validate_reports_every_planted_fault_and_nothing_else(faulty):
    _, corpus, expected = faulty
    report = validate_corpus(corpus, n_jobs=2, progress=False)
    assert len(report.problems) == len(expected), report.summary()
    for utt, file, what in expected:
        assert any(p.utterance == utt and p.file == file and what in p.what for p in report.problems), \
            (utt, file, what, report.summary())
    summary = report.summary()
    assert "5 problem(s) in 4 of 10 utterances and in the corpus" in summary
    for _, file, _ in expected:
        assert file in summary


def test_validate_cli_exit_status_and_summary(faulty, layout_source, tmp_path):
    root, _, expected = faulty
    cmd = [sys.executable, "-m", "avfusion.cli.validate", "data=manifest"]
    bad = subprocess.run([*cmd, f"data.manifest={root / 'manifest.jsonl'}"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr[-2000:]
    for utt, file, what in expected:
        assert f"{utt or '(corpus)'}: {file}: " in bad.stdout
    good = subprocess.run([*cmd, f"data.manifest={layout_source.root / 'manifest.jsonl'}"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert good.returncode == 0, good.stderr[-2000:]
    assert "10 utterances, no problems" in good.stdout and "classes covered (of 39)" in good.stdout


def test_training_refuses_an_invalid_corpus_before_any_work(faulty, tmp_path):
    root, _, _ = faulty
    cmd = [sys.executable, "-m", "avfusion.cli.train", "data=manifest", f"data.manifest={root / 'manifest.jsonl'}",
           f"frontend.cache_dir={tmp_path / 'features'}", f"hydra.run.dir={tmp_path / 'run'}"]
    for policy in ("raise", "skip"):  # a speaker in two splits cannot be skipped
        out = subprocess.run([*cmd, f"on_error={policy}"], capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode != 0
        assert "invalid corpus" in out.stderr and "speaker" in out.stderr and "unknown phone" in out.stderr
    assert [p.name for p in (tmp_path / "features").iterdir()] == ["validation"]  # no feature extracted


def test_skip_leaves_out_only_the_bad_utterances(layout_source, tmp_path):
    corpus = copy_corpus(layout_source, tmp_path / "corpus")
    bad = corpus.split("train")[:2]
    bad[0].audio.unlink()
    plant_unknown_phone(bad[1])
    with pytest.raises(InvalidCorpusError, match="on_error=skip"):
        checked_corpus(corpus, "raise", progress=False)
    kept, report = checked_corpus(corpus, "skip", progress=False)
    assert report.bad_utterances == sorted(u.id for u in bad)
    assert [u.id for u in kept] == [u.id for u in corpus if u not in bad]
    write_manifest(kept, tmp_path / "corpus" / "kept.jsonl")
    assert validate_corpus(read_manifest(tmp_path / "corpus" / "kept.jsonl"), progress=False).ok


def test_validation_is_remembered_until_a_file_changes(layout_source, tmp_path, monkeypatch):
    import avfusion.corpus.validation as validation

    corpus = copy_corpus(layout_source, tmp_path / "corpus")
    calls = []
    real = validation.validate_corpus
    monkeypatch.setattr(validation, "validate_corpus", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = tmp_path / "cache"
    for _ in range(2):
        assert checked_corpus(corpus, cache_dir=cache, progress=False)[1].ok
    assert len(calls) == 1
    plant_unknown_phone(corpus.split("dev")[0])  # a changed file: validated again, and found
    kept, report = checked_corpus(corpus, "skip", cache_dir=cache, progress=False)
    assert len(calls) == 2 and report.bad_utterances == [corpus.split("dev")[0].id]
    assert checked_corpus(corpus, "skip", cache_dir=cache, progress=False)[1].bad_utterances == report.bad_utterances
    assert len(calls) == 2


def test_non_finite_and_silent_audio_are_problems_that_name_the_file(layout_source, tmp_path):
    import numpy as np
    import soundfile

    corpus = copy_corpus(layout_source, tmp_path / "corpus")
    nan_utt, silent_utt, quiet_utt = corpus.split("train")[:3]
    for utt, change in ((nan_utt, lambda x: np.where(np.arange(len(x)) % 97 == 0, np.nan, x)),
                        (silent_utt, np.zeros_like),
                        (quiet_utt, lambda x: x * 10 ** (-30 / 20))):  # 30 dB quieter: still speech
        samples, rate = soundfile.read(utt.audio, dtype="float32")
        soundfile.write(utt.audio, change(samples).astype(np.float32), rate, subtype="FLOAT")
    report = validate_corpus(corpus, n_jobs=1, progress=False)
    found = {(p.utterance, p.file): p.what for p in report.problems}
    assert set(found) == {(nan_utt.id, str(nan_utt.audio)), (silent_utt.id, str(silent_utt.audio))}, report.summary()
    assert "audio samples are not finite (NaN or inf)" in found[nan_utt.id, str(nan_utt.audio)]
    assert "silent or nearly so" in found[silent_utt.id, str(silent_utt.audio)]


def test_ffmpeg_prints_nothing_of_its_own_for_a_truncated_video(layout_source, tmp_path):
    video = tmp_path / "truncated.mp4"
    video.write_bytes(layout_source.utterances[0].video.read_bytes()[:2000])
    script = ("import cv2\nfrom avfusion.media import probe_video\n"
              f"try:\n    probe_video({str(video)!r})\nexcept Exception as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "cannot open video" in out.stdout and str(video) in out.stdout
    assert "moov atom" not in out.stderr and out.stderr.strip() == "", out.stderr


def plant_silence_only(utt):
    tiers = {name: read_textgrid(utt.alignment, name) for name in ("words", "phones")}
    end = tiers["phones"][-1].end
    write_textgrid(utt.alignment, {"words": [Segment("sil", 0.0, end)], "phones": [Segment("sil", 0.0, end)]}, end)


def test_a_split_with_nothing_to_score_is_refused_before_training(layout_source, tmp_path):
    """Test references that are all silence used to pass validation and fail after training (an error rate
    of an empty reference): each such utterance is a problem, and skipping them all is refused."""
    corpus = copy_corpus(layout_source, tmp_path / "corpus")
    test = corpus.split("test")
    for utt in test:
        plant_silence_only(utt)
    report = validate_corpus(corpus, progress=False)
    assert sorted(p.utterance for p in report.problems) == sorted(u.id for u in test)
    assert all(p.what == "alignment holds only silence: nothing to score" for p in report.problems)
    with pytest.raises(InvalidCorpusError, match=r"on_error=skip leaves nothing usable \(the test split has no "
                                                 r"utterances\)"):
        checked_corpus(corpus, "skip", progress=False)
    corpus = copy_corpus(layout_source, tmp_path / "corpus2")  # one silent utterance among many: skipped, the rest kept
    plant_silence_only(corpus.split("train")[0])
    kept, report = checked_corpus(corpus, "skip", progress=False)
    assert report.bad_utterances == [corpus.split("train")[0].id] and len(kept) == len(corpus) - 1


def test_an_utterance_with_a_transcript_and_no_alignment_is_named_once_and_told_what_to_do(layout_source, tmp_path):
    import dataclasses

    corpus = copy_corpus(layout_source, tmp_path / "corpus")
    utt = corpus.split("train")[0]
    assert utt.text.strip()
    corpus.utterances[corpus.utterances.index(utt)] = dataclasses.replace(utt, alignment=None)
    report = validate_corpus(corpus, n_jobs=1, progress=False)
    (line,) = [line for line in report.summary().splitlines() if "no alignment" in line]
    assert line.strip().startswith(f"{utt.id}: no alignment but a transcript: align the corpus from its text with "
                                   "avfusion-align")
    assert line.count(utt.id) == 1
    # what the aligner reads: the recordings only, the utterance without its alignment is fine
    assert validate_corpus(corpus, n_jobs=1, progress=False, alignments=False).ok
