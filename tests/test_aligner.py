"""avfusion-align: a text-only corpus in, TextGrids and a manifest that trains out (avfusion/aligner/)."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from avfusion import api
from avfusion.aligner.boundaries import boundary_accuracy, boundary_errors
from avfusion.configs import compose_config, configured
from avfusion.corpus.alignments import read_textgrid
from avfusion.corpus.lexicon import Lexicon
from avfusion.corpus.manifest import read_manifest, write_records
from avfusion.corpus.types import Segment
from avfusion.corpus.validation import validate_corpus
from avfusion.errors import UserError
from avfusion.frames.clock import frame_span

QUICK = ["trainer.max_epochs=2", "encoder.widths.audio=[32]", "frontend.n_jobs=1", "aligner.passes=1"]


def test_boundaries_are_matched_by_phone_and_counted_at_both_edges():
    """A hand-made case: the hypothesis lacks one phone (its boundaries are not counted), the others are off by
    5 and 30 ms; a stop's onset is reported apart."""
    ref = [Segment("sil", 0, 0.1), Segment("k", 0.1, 0.2), Segment("ae", 0.2, 0.3), Segment("t", 0.3, 0.4)]
    hyp = [Segment("sil", 0, 0.095), Segment("k", 0.095, 0.23), Segment("t", 0.23, 0.4)]  # "ae" missing
    errors, stops, matched, total = boundary_errors(hyp, ref)
    assert (matched, total) == (2, 3)
    np.testing.assert_allclose(errors, [0.005, 0.03, 0.07, 0.0], atol=1e-12)  # k: start, end; t: start, end
    assert stops.tolist() == [True, False, True, False]
    shares = boundary_accuracy([(hyp, ref)])
    assert shares["all"]["within_10ms"] == 0.5 and shares["all"]["within_40ms"] == 0.75
    assert shares["stop_onsets"] == {"n": 2, "within_10ms": 0.5, "within_20ms": 0.5, "within_40ms": 0.5,
                                     "median_ms": 37.5}
    assert shares["phones_matched"] == round(2 / 3, 4)


@pytest.fixture(scope="module")
def text_only(layout_source, tmp_path_factory):
    """The layout source corpus with its alignments dropped (its text kept), one utterance given a text far too
    long for its recording and one no text at all."""
    root = tmp_path_factory.mktemp("text_only")
    test = layout_source.split("test")
    too_long, silent = test[0].id, test[1].id
    utterances = [dataclasses.replace(u, alignment=None, text=u.text * 30 if u.id == too_long else
                                      "" if u.id == silent else u.text) for u in layout_source]
    write_records(utterances, root / "manifest.jsonl")
    return root, too_long, silent


def _align(root, out, *overrides):
    cfg = compose_config("align", ["data=manifest", f"data.manifest={root}/manifest.jsonl",
                                   f"frontend.cache_dir={root}/features", *QUICK, *overrides])
    return api.align(cfg, out)


@pytest.fixture(scope="module")
def aligned(text_only):
    root, _, _ = text_only
    return _align(root, root / "aligned")


def test_alignment_writes_textgrids_of_each_transcript_and_a_manifest_that_prepares(text_only, aligned):
    root, too_long, silent = text_only
    corpus = read_manifest(root / "aligned" / "manifest.jsonl")
    assert aligned["aligned"] == len(corpus) == 8 and aligned["utterances"] == 10
    assert "frames cannot hold" in aligned["unaligned"][too_long]  # reported and skipped, not fatal
    assert aligned["unaligned"][silent] == "no text to align"
    assert [p["pass"] for p in aligned["passes"]] == [0, 1]
    assert validate_corpus(corpus, n_jobs=1, progress=False).ok  # alignments and all
    lexicon = Lexicon()
    for utt in corpus:
        words = read_textgrid(utt.alignment, "words")
        phones = read_textgrid(utt.alignment, "phones")
        said = lexicon.transcribe(utt.text)
        assert [w.label for w in words if w.label != "sil"] == [w for w, _ in said]
        assert [p.label for p in phones if p.label != "sil"] == [p for _, ps in said for p in ps]
        n_frames = round(phones[-1].end * 100)  # the tiers end with the recording's last frame
        spans = [frame_span(p.start, p.end, n_frames) for p in phones]
        assert all(b - a >= 3 for a, b in spans)  # 3 states: 3 frames a phone at least
    cfg = compose_config("prepare", ["data=manifest", f"data.manifest={root}/aligned/manifest.jsonl",
                                     "frontend=audio_only", f"frontend.cache_dir={root}/features", "frontend.n_jobs=1",
                                     "frontend.audio.steps.2.n_components=12", "probe=false"])
    _, frames, scheme = api.prepare(cfg)
    assert scheme.name == "phone" and len(frames["train"]) > 0


def test_alignment_is_reproducible_and_resumes_with_more_passes(text_only, aligned):
    root, _, _ = text_only
    again = _align(root, root / "again")
    grids = sorted((root / "aligned" / "alignments").rglob("*.TextGrid"))
    assert grids and all(g.read_bytes() == (root / "again" / g.relative_to(root / "aligned")).read_bytes() for g in grids)
    timeless = lambda passes: [{k: v for k, v in p.items() if k != "seconds"} for p in passes]  # noqa: E731
    assert timeless(again["passes"]) == timeless(aligned["passes"])
    first = (root / "again" / "passes" / "1" / "alignment.json")
    before = first.read_bytes(), first.stat().st_mtime_ns
    more = _align(root, root / "again", "resume=true", "aligner.passes=2")
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before  # pass 1 kept, not redone
    assert [p["pass"] for p in more["passes"]] == [0, 1, 2] and more["passes"][1] == again["passes"][1]
    with pytest.raises(UserError, match=r"align_config.yaml: this folder was aligned with other settings "
                                        r"\(aligner.acoustic_scale differ"):
        _align(root, root / "again", "resume=true", "aligner.acoustic_scale=0.5")


def test_more_folds_than_training_speakers_is_refused_before_training(text_only):
    root, _, _ = text_only
    with pytest.raises(UserError, match=r"aligner.folds=4: the training split has 2 speaker\(s\)"):
        _align(root, root / "folds", "aligner.folds=4")
    assert not (root / "folds" / "passes").exists()


def test_a_bad_aligner_setting_is_one_line_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "avfusion.cli.align", "aligner.passes=0",
                             f"hydra.run.dir={tmp_path}"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "avfusion-align: error: aligner.passes=0: must be a whole number >= 1"
    with pytest.raises(UserError, match=r"aligner.lexicon='/nowhere.dict': must be an existing lexicon file"):
        configured("aligner", "aligner.lexicon=/nowhere.dict", config="align")


def test_audio_visual_alignment_trains_concat_on_both_streams(text_only):
    root, _, _ = text_only
    summary = _align(root, root / "av", "frontend=aligner_av", "fusion=concat", "encoder.widths.video=[32]",
                     "frontend.video.steps.1.n_components=12")
    assert summary["aligned"] == 8
    stages = root / "av" / "passes" / "1" / "model0" / "stages"
    assert sorted(p.name for p in stages.iterdir()) == ["fusion", "pretrain_audio", "pretrain_video"]
