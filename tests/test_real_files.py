"""Real corpus files in the shapes public copies have: hand-written fixtures of each case that failed."""

import logging

import pytest

from avfusion.corpus.adapters.tcd_timit import TEST_SPLITS
from avfusion.corpus.alignments import AlignmentError, read_alignment, utterance_labels
from avfusion.corpus.types import Utterance
from conftest import corpus_adapter

LIPSPEAKER_MLF = """#!MLF!#
"/home/tcd/lipspeakers/Lipspkr1/Clips/straightcam/sa1.rec"
0 4200000 sil
4200000 5300000 sh
5300000 6100000 iy
6100000 54300000 hh
54300000 54300000 sil
.
"""


def test_mlf_zero_length_interval_is_dropped_and_counted(tmp_path, caplog):
    mlf = tmp_path / "lipspeaker_labelfiles.mlf"
    mlf.write_text(LIPSPEAKER_MLF)
    with caplog.at_level(logging.INFO):
        segments = read_alignment(mlf, "Lipspkr1/sa1")
    assert [s.label for s in segments] == ["sil", "sh", "iy", "hh"]
    assert segments[-1].end == pytest.approx(5.43)
    assert "1 zero-length interval(s) dropped" in caplog.text


KALDI_CTM = """utt1 1 0.00 0.31 SIL
utt1 1 0.31 0.07 DH_B
utt1 1 0.37 0.05 AH0_E
utt1 1 0.42 0.00 SPN_S
utt1 1 0.42 0.12 K_B
utt1 1 0.54 0.20 AE1_I
utt1 1 0.73 0.09 T_E
utt1 1 0.82 0.30 SIL
"""


def test_ctm_rounding_overlaps_and_zero_duration_tokens_are_repaired(tmp_path, caplog):
    ctm = tmp_path / "phones.ctm"
    ctm.write_text(KALDI_CTM)
    with caplog.at_level(logging.INFO):
        segments = read_alignment(ctm, "utt1")
    assert [s.label for s in segments] == ["SIL", "DH", "AH0", "K", "AE1", "T", "SIL"]
    # DH (0.31 + 0.07 = 0.38) overlaps AH0 (0.37) by 10 ms of rounding: it gives way
    assert segments[1].end == pytest.approx(0.37) and segments[4].end == pytest.approx(0.73)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(segments, segments[1:]))
    assert "2 overlap(s)" in caplog.text and "1 zero-length interval(s) dropped" in caplog.text


def test_ctm_overlap_beyond_rounding_and_reversed_intervals_are_still_errors(tmp_path):
    ctm = tmp_path / "bad.ctm"
    ctm.write_text("u 1 0.00 0.50 a\nu 1 0.30 0.40 b\n")
    with pytest.raises(AlignmentError, match="overlaps"):
        read_alignment(ctm, "u")
    mlf = tmp_path / "reversed.mlf"
    mlf.write_text('#!MLF!#\n"*/u.lab"\n0 300000 sil\n900000 600000 aa\n.\n')
    with pytest.raises(AlignmentError, match="before it starts"):
        read_alignment(mlf, "x/u")


def textgrid_text(intervals) -> str:
    """A long-format TextGrid with one `phones` tier holding `intervals` in the order given."""
    items = "".join(f"""        intervals [{i}]:
            xmin = {a}
            xmax = {b}
            text = "{label}"
""" for i, (a, b, label) in enumerate(intervals, 1))
    return f"""File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.9
tiers? <exists>
size = 1
item []:
    item [1]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.9
        intervals: size = {len(intervals)}
{items}"""


def test_textgrid_intervals_out_of_order_are_an_error_not_sorted(tmp_path):
    path = tmp_path / "shuffled.TextGrid"
    path.write_text(textgrid_text([(0, 0.3, "sil"), (0.6, 0.9, "AA1"), (0.3, 0.6, "B")]))
    with pytest.raises(AlignmentError, match=r"shuffled.TextGrid: tier 'phones': interval 3 \('B' at 0.3 s\).*out of order"):
        read_alignment(path)
    in_order = textgrid_text([(0, 0.3, "sil"), (0.3, 0.6, "B"), (0.6, 0.9, "AA1")])
    for encoding in ("utf-8", "utf-16"):  # Praat writes both
        path.write_text(in_order, encoding=encoding)
        assert [s.label for s in read_alignment(path)] == ["sil", "B", "AA1"]


def two_speaker_textgrid(path):
    from praatio import textgrid

    tg = textgrid.Textgrid()
    for speaker, phones in (("A101", ["sil", "HH", "AY1", "sil"]), ("B202", ["sil", "OW1", "K", "sil"])):
        entries = [(0.1 * i, 0.1 * (i + 1), p) for i, p in enumerate(phones)]
        tg.addTier(textgrid.IntervalTier(f"{speaker} - words", [(0.0, 0.4, "x")], 0, 0.4))
        tg.addTier(textgrid.IntervalTier(f"{speaker} - phones", entries, 0, 0.4))
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def utterance(path, speaker, tier=None):
    return Utterance(id="u", speaker=speaker, split="train", audio=None, video=None, alignment=path,
                     alignment_tier=tier)


def test_textgrid_with_two_speakers_takes_the_utterances_speaker_or_the_named_tier(tmp_path):
    path = tmp_path / "dialogue.TextGrid"
    two_speaker_textgrid(path)
    assert [s.label for s in utterance_labels(utterance(path, "A101"))] == ["sil", "hh", "ay", "sil"]
    assert [s.label for s in utterance_labels(utterance(path, "B202"))] == ["sil", "ow", "k", "sil"]
    assert [s.label for s in utterance_labels(utterance(path, "someone", "B202 - phones"))][1] == "ow"
    with pytest.raises(AlignmentError, match=r"2 speakers' phones tiers \['A101 - phones', 'B202 - phones'\].*"
                                             r"alignment_tier"):
        utterance_labels(utterance(path, "C303"))
    with pytest.raises(AlignmentError, match="no tier 'C303 - phones'.*tiers: "):
        utterance_labels(utterance(path, "A101", "C303 - phones"))


def test_manifest_carries_the_alignment_tier(tmp_path):
    from avfusion.corpus.manifest import read_manifest, write_manifest
    from avfusion.corpus.types import Corpus

    path = tmp_path / "dialogue.TextGrid"
    two_speaker_textgrid(path)
    corpus = Corpus([utterance(path, "C303", "B202 - phones")], root=tmp_path)
    write_manifest(corpus, tmp_path / "manifest.jsonl")
    back = read_manifest(tmp_path / "manifest.jsonl")
    assert back.utterances[0].alignment_tier == "B202 - phones"


def test_tcd_timit_test_split_is_a_named_choice(tmp_path):
    assert len(TEST_SPLITS["authors"]) == len(TEST_SPLITS["legacy"]) == 17
    assert len(set(TEST_SPLITS["authors"]) & set(TEST_SPLITS["legacy"])) == 6
    assert corpus_adapter("tcd_timit", tmp_path).listed_test_speakers() == list(TEST_SPLITS["authors"])
    assert corpus_adapter("tcd_timit", tmp_path, test_split="legacy").listed_test_speakers()[0] == "13F"
    assert corpus_adapter("tcd_timit", tmp_path, test_speakers=["01M"]).listed_test_speakers() == ["01M"]
    with pytest.raises(ValueError, match=r"test_split='gillen'.*\['authors', 'legacy'\]"):
        corpus_adapter("tcd_timit", tmp_path, test_split="gillen").listed_test_speakers()
