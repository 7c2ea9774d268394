"""Whole runs on corpora other than the embedded one: bad utterances skipped and counted, an audio-only
corpus (TIMIT layout), a corpus of word labels (LRS3 layout)."""

import json
import subprocess
import sys

import corpus_layouts
from avfusion.corpus.alignments import utterance_labels
from test_validation import copy_corpus, plant_unknown_phone
from conftest import corpus_adapter

SMALL = ["frontend.n_jobs=1", "frontend.audio.steps.2.n_components=16", "trainer.max_epochs=2",
         "evaluation.snrs_db=[0]", "evaluation.noises=[babble]", "noise.babble.talkers=2", "encoder.widths.audio=[64,32]",
         "encoder.widths.video=[64,32]", "encoder.widths.audio_video=[64,32]"]
WITH_VIDEO = [*SMALL, "frontend.video.steps.1.n_components=16"]


def train(tmp_path, *overrides):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "avfusion.cli.train", f"frontend.cache_dir={tmp_path / 'features'}",
           f"hydra.run.dir={run}", *overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((run / "report.json").read_text()), (run / "report.md").read_text()


def test_on_error_skip_trains_without_the_bad_utterances_and_reports_them(layout_source, tmp_path):
    corpus = copy_corpus(layout_source, tmp_path / "corpus")
    bad = corpus.split("train")[0]
    plant_unknown_phone(bad)
    report, md = train(tmp_path, "data=manifest", f"data.manifest={tmp_path / 'corpus' / 'manifest.jsonl'}",
                       "on_error=skip", "fusion=concat", *WITH_VIDEO)
    assert report["skipped_utterances"] == [bad.id]
    assert "1 invalid utterance(s) left out" in md
    assert report["test"][0]["utterances"] == len(corpus.split("test"))


def test_audio_only_corpus_runs_without_a_video_modality(layout_source, tmp_path):
    corpus_layouts.timit(layout_source, tmp_path / "TIMIT")
    report, _ = train(tmp_path, "data=timit", f"data.root={tmp_path / 'TIMIT'}", "frontend=audio_only",
                      "fusion=audio_only", *SMALL)
    assert report["label_scheme"] == "phone" and report["test"][0]["utterances"] == 4
    assert 0 <= report["test"][0]["frame_error"] <= 1 and report["test"][0]["per"] > 0


def test_a_corpus_of_word_labels_trains_and_reports_word_error_rates(layout_source, tmp_path):
    corpus_layouts.lrs3(layout_source, tmp_path / "LRS3")
    report, md = train(tmp_path, "data=lrs3", f"data.root={tmp_path / 'LRS3'}", "data.n_dev_speakers=1",
                       "fusion=concat", *WITH_VIDEO)
    assert report["label_scheme"] == "word" and report["unit"] == "word"
    row = report["test"][0]
    assert {"wer", "frame_error_word", "reference_words"} <= set(row) and "per" not in row
    assert row["reference_words"] > 0 and "| wer | S / D / I | wer_framewise | segment_error |" in md
    test = corpus_adapter("lrs3", tmp_path / "LRS3", n_dev_speakers=1).load().split("test")
    assert row["segments"] == sum(s.label != "sil" for u in test for s in utterance_labels(u))  # every word
    assert 0 <= row["segment_error"] <= 1


def test_tcd_timit_layout_trains_at_29_97_fps_with_mlf_labels(layout_source, tmp_path):
    corpus_layouts.tcd_timit(layout_source, tmp_path / "TCD-TIMIT")
    report, _ = train(tmp_path, "data=tcd_timit", f"data.root={tmp_path / 'TCD-TIMIT'}", "data.dev_speakers=[05M]",
                      "fusion=concat", *WITH_VIDEO)
    assert report["label_scheme"] == "phone" and report["test"][0]["utterances"] == 4
    assert report["test"][0]["reference_phones"] > 0
