"""Adapters read each real corpus's layout into the same Corpus a manifest gives (fixtures made by
re-laying out synthetic files: tests/corpus_layouts.py)."""

import numpy as np
import pytest

import corpus_layouts
from avfusion.corpus.adapters.grid import VOCABULARY
from avfusion.corpus.alignments import read_textgrid, utterance_labels
from avfusion.corpus.manifest import read_manifest, write_manifest
from avfusion.corpus.types import CorpusError
from avfusion.corpus.validation import validate_corpus
from avfusion.media import probe_video
from avfusion.media import load_audio
from conftest import corpus_adapter

LAYOUTS = {
    "tcd_timit": (corpus_layouts.tcd_timit, lambda root: corpus_adapter("tcd_timit", root, dev_speakers=["05M"])),
    "grid": (corpus_layouts.grid, lambda root: corpus_adapter("grid", root, dev_speakers=["s6"])),
    "lrs3": (corpus_layouts.lrs3, lambda root: corpus_adapter("lrs3", root, n_dev_speakers=1)),
    "timit": (corpus_layouts.timit, lambda root: corpus_adapter("timit", root)),
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def laid_out(request, layout_source, tmp_path_factory):
    """(name, source corpus, speaker renaming, adapter corpus) for each layout."""
    make, adapter = LAYOUTS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    speakers = make(layout_source, root)
    return request.param, layout_source, speakers, adapter(root).load(progress=False)


def test_adapter_keeps_speakers_splits_and_utterances(laid_out):
    name, source, speakers, corpus = laid_out
    assert len(corpus) == len(source)
    norm = str.lower if name == "timit" else str
    for split in ("train", "dev", "test"):
        assert corpus.speakers(split) == sorted(norm(speakers[s]) for s in source.speakers(split)), split
    corpus.check_speaker_independent()
    assert validate_corpus(corpus, progress=False).ok


def test_adapter_labels_match_the_source_alignments(laid_out):
    name, source, speakers, corpus = laid_out
    by_speaker = {}
    for utt in corpus:
        by_speaker.setdefault(utt.speaker, []).append(utt)
    for src in source:
        spk = speakers[src.speaker].lower() if name == "timit" else speakers[src.speaker]
        utt = sorted(by_speaker[spk], key=lambda u: u.id)[int(src.id.rsplit("_u", 1)[1])]
        got, want = utterance_labels(utt), utterance_labels(src)
        if name in ("tcd_timit", "timit"):  # phone alignments, times quantised to 100 ns / one sample
            assert [s.label for s in got] == [s.label for s in want]
            np.testing.assert_allclose([s.end for s in got], [s.end for s in want], atol=1 / 16000)
        elif name == "lrs3":  # the spoken words, lower-cased, at the source's times (2 decimals)
            spoken = [w for w in read_textgrid(src.alignment, "words") if w.label]
            assert utt.labels == "words" and [s.label for s in got if s.label != "sil"] == \
                [w.label.lower() for w in spoken]
            np.testing.assert_allclose([s.end for s in got if s.label != "sil"], [w.end for w in spoken], atol=0.006)
        else:  # GRID: words of the closed vocabulary
            assert utt.labels == "words" and {s.label for s in got} <= set(VOCABULARY) | {"sil"}
        # the audio decodes (48 kHz wav, NIST SPHERE, or a container's audio track) to the source's length
        assert abs(len(load_audio(utt.audio, 16000)) - len(load_audio(src.audio, 16000))) <= 0.12 * 16000
        if name == "tcd_timit":
            assert probe_video(utt.video).fps == pytest.approx(29.97, abs=0.01)


def test_adapter_corpus_round_trips_through_a_manifest(laid_out, tmp_path):
    _, _, _, corpus = laid_out
    write_manifest(corpus, tmp_path / "manifest.jsonl")
    again = read_manifest(tmp_path / "manifest.jsonl")
    assert [(u.id, u.speaker, u.split, u.audio, u.video, u.alignment, u.alignment_key, u.labels) for u in again] == \
        [(u.id, u.speaker, u.split, u.audio, u.video, u.alignment, u.alignment_key, u.labels) for u in corpus]
    assert [utterance_labels(u) for u in again] == [utterance_labels(u) for u in corpus]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_adapter_on_an_empty_folder_says_what_layout_it_expects(name, tmp_path):
    _, adapter = LAYOUTS[name]
    (tmp_path / "test").mkdir()
    (tmp_path / "trainval").mkdir()
    with pytest.raises(CorpusError, match=f"no utterances under {tmp_path}.*expected layout"):
        adapter(tmp_path).load()
    with pytest.raises(CorpusError, match="is not a folder"):
        adapter(tmp_path / "missing").load()


def test_grid_words_outside_its_grammar_are_validation_errors(layout_source, tmp_path):
    corpus_layouts.grid(layout_source, tmp_path)
    corpus = corpus_adapter("grid", tmp_path, dev_speakers=["s6"]).load()
    utt = corpus.split("train")[0]
    lines = utt.alignment.read_text().splitlines()
    start, end, _ = lines[1].split()
    lines[1] = f"{start} {end} hello"
    utt.alignment.write_text("\n".join(lines) + "\n")
    report = validate_corpus(corpus, progress=False)
    assert [(p.utterance, p.file) for p in report.problems] == [(utt.id, str(utt.alignment))]
    assert "outside the corpus's vocabulary: ['hello']" in report.problems[0].what


def test_tcd_timit_without_wav_files_uses_the_videos_audio_track(layout_source, tmp_path):
    corpus_layouts.tcd_timit(layout_source, tmp_path)
    for wav in tmp_path.rglob("*.wav"):
        wav.unlink()
    corpus = corpus_adapter("tcd_timit", tmp_path, dev_speakers=["05M"]).load()
    assert all(u.audio == u.video for u in corpus)
    # the synthetic mp4s carry no audio: validation says so for every utterance, naming the file
    report = validate_corpus(corpus, progress=False)
    assert len(report.problems) == len(corpus)
    assert all("has no audio stream" in p.what and p.file.endswith(".mp4") for p in report.problems)


def test_tcd_timit_with_too_few_volunteers_for_the_split_lists_what_it_found(layout_source, tmp_path):
    """A partial copy of TCD-TIMIT is a corpus fact, not a bug: one line naming the speakers found and the
    setting to change."""
    corpus_layouts.tcd_timit(layout_source, tmp_path)
    with pytest.raises(CorpusError, match=r"the corpus has 5 speakers \(.*\), 2 of them listed for test; the 3 "
                                          r"others cannot give data.n_dev_speakers=4 dev speakers .*lower it"):
        corpus_adapter("tcd_timit", tmp_path, n_dev_speakers=4).load()
