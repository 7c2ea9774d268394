import json

import pytest

from avfusion.corpus.manifest import read_manifest, write_manifest
from avfusion.corpus.types import Corpus, CorpusError, Utterance


def test_round_trip_paths_relative_to_manifest(tmp_path):
    root = tmp_path / "corpus"
    utts = [Utterance("s1_u1", "s1", "train", root / "audio/s1/u1.wav", root / "video/s1/u1.mp4",
                      root / "align/s1/u1.TextGrid", "hello"),
            Utterance("s2_u1", "s2", "test", root / "audio/s2/u1.wav", None, root / "align/s2/u1.phn")]
    write_manifest(Corpus(utts, root=root), root / "manifest.jsonl")
    first = json.loads((root / "manifest.jsonl").read_text().splitlines()[0])
    assert first["audio"] == "audio/s1/u1.wav"  # DESIGN §8: relative paths
    back = read_manifest(root / "manifest.jsonl")
    assert [u.id for u in back] == ["s1_u1", "s2_u1"]
    assert back.utterances[0].audio == (root / "audio/s1/u1.wav").resolve()
    assert back.utterances[1].video is None
    assert back.speakers("test") == ["s2"]


def test_bad_lines_are_reported_with_file_and_line(tmp_path):
    m = tmp_path / "manifest.jsonl"
    m.write_text('{"id": "a", "speaker": "s1", "split": "train"}\n{oops\n')
    with pytest.raises(CorpusError, match="manifest.jsonl:2: not valid JSON"):
        read_manifest(m)
    m.write_text('{"id": "a", "split": "train"}\n')
    with pytest.raises(CorpusError, match=r"manifest.jsonl:1: missing field\(s\) \['speaker'\]"):
        read_manifest(m)
    m.write_text('{"id": "a", "speaker": "s1", "split": "eval"}\n')
    with pytest.raises(CorpusError, match="unknown split names"):
        read_manifest(m)
    m.write_text('{"id": "a", "speaker": "s1", "split": "train"}\n{"id": "a", "speaker": "s2", "split": "test"}\n')
    with pytest.raises(CorpusError, match="more than once"):
        read_manifest(m)


def test_speaker_independence_check():
    utts = [Utterance("a", "s1", "train", None, None, None), Utterance("b", "s1", "test", None, None, None),
            Utterance("c", "s2", "dev", None, None, None)]
    corpus = Corpus(utts)
    assert corpus.shared_speakers() == {"s1": ["test", "train"]}
    with pytest.raises(CorpusError, match="s1 in test/train"):
        corpus.check_speaker_independent()
