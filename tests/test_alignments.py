import pytest

from avfusion.corpus.alignments import (AlignmentError, normalise_phones, normalise_words, read_alignment, read_htk_mlf,
                                       read_phones, utterance_labels, write_textgrid)
from avfusion.corpus.types import Segment


def test_timit_phn_sample_offsets(tmp_path):
    phn = tmp_path / "sa1.phn"
    phn.write_text("0 3050 h#\n3050 4559 sh\n4559 5723 ix\n5723 6642 q\n6642 8772 hv\n8772 9190 pcl\n9190 9600 epi\n")
    raw = read_phones(phn)
    assert raw[1] == Segment("sh", 3050 / 16000, 4559 / 16000)
    folded = normalise_phones(raw)
    assert [s.label for s in folded] == ["sil", "sh", "ih", "hh", "sil"]
    # q is deleted and its time goes to its left neighbour; pcl + epi merge into one silence
    assert folded[2] == Segment("ih", 4559 / 16000, 6642 / 16000)
    assert folded[-1] == Segment("sil", 8772 / 16000, 9600 / 16000)


def test_textgrid_round_trip_and_mfa_conventions(tmp_path):
    path = tmp_path / "u.TextGrid"
    phones = [Segment("", 0.0, 0.1), Segment("HH", 0.1, 0.2), Segment("AH0", 0.2, 0.3),
              Segment("L", 0.3, 0.38), Segment("OW1", 0.38, 0.5), Segment("sp", 0.5, 0.6)]
    words = [Segment("hello", 0.1, 0.5)]
    write_textgrid(path, {"words": words, "phones": phones}, duration=0.6)
    back = read_phones(path)
    assert [(s.label, round(s.start, 6), round(s.end, 6)) for s in back] == \
        [(s.label, s.start, s.end) for s in phones]
    assert [s.label for s in normalise_phones(back)] == ["sil", "hh", "ah", "l", "ow", "sil"]
    from avfusion.corpus.alignments import read_textgrid

    assert [w.label for w in read_textgrid(path, tier="words") if w.label] == ["hello"]


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "overlap.phn"
    bad.write_text("0 100 h#\n50 200 aa\n")
    with pytest.raises(AlignmentError, match="overlap.phn.*overlaps"):
        read_phones(bad)
    with pytest.raises(AlignmentError, match="no alignment reader"):
        read_phones(tmp_path / "x.lab")
    with pytest.raises(AlignmentError, match="does not exist"):
        read_phones(tmp_path / "missing.phn")
    unknown = tmp_path / "unknown.phn"
    unknown.write_text("0 100 h#\n100 200 xx\n")
    with pytest.raises(AlignmentError, match="unknown.phn.*'xx'"):
        normalise_phones(read_phones(unknown), source=unknown)
    garbled = tmp_path / "garbled.phn"
    garbled.write_text("0 100\n")
    with pytest.raises(AlignmentError, match="garbled.phn:1"):
        read_phones(garbled)
    with pytest.raises(AlignmentError, match="tier 'phones'"):
        write_textgrid(tmp_path / "w.TextGrid", {"words": [Segment("a", 0, 1)]}, 1.0)
        read_phones(tmp_path / "w.TextGrid")


# --- HTK MLF ------------------------------------------------------------------------------------------

MLF = """#!MLF!#
"/home/tcd/volunteers/01M/Clips/straightcam/sa1.rec"
0 2300000 sil
2300000 3150000 sh
3150000 4000000 iy -1.5 she
4000000 5000000 sil
.
"*/02F/sa1.lab"
0 1000000 sil
1000000 2000000 aa
.
"""


def test_htk_mlf_entries_times_and_lookup(tmp_path):
    path = tmp_path / "volunteer_labelfiles.mlf"
    path.write_text(MLF)
    # 100 ns units; extra columns (score, word) ignored
    assert read_alignment(path, "01M/sa1") == [Segment("sil", 0.0, 0.23), Segment("sh", 0.23, 0.315),
                                               Segment("iy", 0.315, 0.4), Segment("sil", 0.4, 0.5)]
    # a wildcard entry; a key whose folders do not occur in the entry's path is not found
    assert [s.label for s in read_alignment(path, "02F/sa1")] == ["sil", "aa"]
    with pytest.raises(AlignmentError, match="no entry for utterance '03M/sa1'"):
        read_alignment(path, "03M/sa1")
    with pytest.raises(AlignmentError, match="needs an alignment_key"):
        read_alignment(path)


@pytest.mark.parametrize("text, message", [
    ('#!MLF!#\n"a.lab"\nsil\nsh\n.\n', "labels-only MLF"),
    ('#!MLF!#\n"a.lab"\n0 100 sil\n', "not terminated"),
    ('"a.lab"\n0 100 sil\n.\n', "not an HTK MLF"),
    ('#!MLF!#\n"a.lab"\n0 100 sil\n.\n"a.rec"\n0 100 sil\n.\n', "occurs twice"),
    ('#!MLF!#\n"*/a.lab" -> "labs"\n', "sub-directory references"),
])
def test_htk_mlf_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.mlf"
    path.write_text(text)
    with pytest.raises(AlignmentError, match=f"bad.mlf.*{message}"):
        read_htk_mlf(path)


# --- Kaldi CTM ----------------------------------------------------------------------------------------

def test_kaldi_ctm_phones_with_word_position_suffixes(tmp_path):
    path = tmp_path / "phones.ctm"
    path.write_text("utt2 1 0.00 0.10 SIL\n"
                    "utt1 1 0.05 0.07 HH_B\nutt1 1 0.12 0.08 AH0_I\nutt1 1 0.20 0.10 L_E 0.9\n"
                    "utt2 1 0.10 0.05 AA1_S\n")
    got = [(s.label, s.start, s.end) for s in read_alignment(path, "utt1")]
    assert got == [("HH", 0.05, pytest.approx(0.12)), ("AH0", 0.12, pytest.approx(0.2)), ("L", 0.2, pytest.approx(0.3))]
    # gaps (silence Kaldi leaves out) become sil frames; folding strips stress
    assert [s.label for s in normalise_phones(read_alignment(path, "utt1"))] == ["hh", "ah", "l"]
    assert [s.label for s in read_alignment(path, "utt2")] == ["SIL", "AA1"]
    garbled = tmp_path / "garbled.ctm"
    garbled.write_text("utt1 1 0.0 0.1 aa\nutt1 1 x 0.1 b\n")
    with pytest.raises(AlignmentError, match="garbled.ctm:2"):
        read_alignment(garbled, "utt1")


# --- word timings: GRID .align, LRS3 .txt -------------------------------------------------------------

def test_grid_align_is_in_1_25000_s_and_gives_words(tmp_path):
    path = tmp_path / "bbaf2n.align"
    path.write_text("0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 sp\n35500 41000 at\n"
                    "41000 47250 f\n47250 53000 two\n53000 60000 now\n60000 75000 sil\n")
    raw = read_alignment(path, tier="words")
    assert raw[1] == Segment("bin", 0.95, 1.18) and raw[-1].end == 3.0
    assert [s.label for s in normalise_words(raw)] == ["sil", "bin", "blue", "sil", "at", "f", "two", "now", "sil"]
    with pytest.raises(AlignmentError, match="word timings only"):
        read_alignment(path, tier="phones")


def test_lrs3_txt_word_timings(tmp_path):
    path = tmp_path / "00001.txt"
    path.write_text("Text:  SO I THINK\nConf:  4\n\nWORD START END ASDSCORE\nSO 0.53 0.66 2.1\nI 0.66 0.74 3.0\n"
                    "THINK 0.74 1.02 4.4\n")
    assert [(s.label, s.start, s.end) for s in normalise_words(read_alignment(path, tier="words", fmt="lrs3"))] == \
        [("so", 0.53, 0.66), ("i", 0.66, 0.74), ("think", 0.74, 1.02)]
    no_words = tmp_path / "00002.txt"
    no_words.write_text("Text:  SO I THINK\nConf:  4\n")
    with pytest.raises(AlignmentError, match="00002.txt: no 'WORD START END'"):
        read_alignment(no_words, tier="words", fmt="lrs3")


def test_the_declared_format_decides_and_a_txt_is_never_guessed(tmp_path):
    """A .txt is a transcript as often as LRS3 timings: it is read only as declared; a declared format
    reads a file whatever its suffix (a TextGrid saved as .txt), and a manifest line carries it."""
    from avfusion.corpus.alignments import utterance_labels, write_textgrid
    from avfusion.corpus.manifest import read_records, write_records
    from avfusion.corpus.types import Utterance

    transcript = tmp_path / "clip.txt"
    transcript.write_text("bin blue at f two now\n")
    with pytest.raises(AlignmentError, match=r"clip.txt: a .txt file is read as an alignment only when its format is "
                                             r"declared \(alignment_format: lrs3"):
        read_alignment(transcript, tier="words")
    with pytest.raises(AlignmentError, match=r"unknown alignment_format 'praat'; known: \['textgrid', 'phn'"):
        read_alignment(transcript, fmt="praat")
    grid = tmp_path / "grid.TextGrid"
    write_textgrid(grid, {"phones": [Segment("sil", 0.0, 0.2), Segment("b", 0.2, 0.3), Segment("aa", 0.3, 0.5)]}, 0.5)
    saved_as_txt = tmp_path / "grid_export.txt"
    saved_as_txt.write_text(grid.read_text())
    assert read_alignment(saved_as_txt, fmt="textgrid") == read_alignment(grid)
    utt = Utterance("u1", "s1", "train", None, None, saved_as_txt, alignment_format="textgrid")
    write_records([utt], tmp_path / "manifest.jsonl")
    (again,) = read_records(tmp_path / "manifest.jsonl")
    assert again.alignment_format == "textgrid" and [s.label for s in utterance_labels(again)] == ["sil", "b", "aa"]


def test_unknown_phones_are_listed_together(tmp_path):
    path = tmp_path / "u.phn"
    path.write_text("0 100 h#\n100 200 xx\n200 300 aa\n300 400 yy\n")
    with pytest.raises(AlignmentError, match=r"u.phn: 2 unknown phone symbol\(s\) \['xx', 'yy'\]"):
        normalise_phones(read_phones(path), source=path)


def test_utterance_labels_reads_the_tier_the_utterance_names(tmp_path):
    from avfusion.corpus.types import Utterance

    path = tmp_path / "u.TextGrid"
    write_textgrid(path, {"words": [Segment("", 0, 0.1), Segment("Hello", 0.1, 0.5)],
                          "phones": [Segment("", 0, 0.1), Segment("HH", 0.1, 0.3), Segment("OW1", 0.3, 0.5)]}, 0.5)
    base = dict(id="u", speaker="s", split="train", audio=None, video=None, alignment=path)
    assert [s.label for s in utterance_labels(Utterance(**base))] == ["sil", "hh", "ow"]
    assert [s.label for s in utterance_labels(Utterance(**base, labels="words"))] == ["sil", "hello"]


def test_textgrid_tiers_named_by_speaker_as_mfa_writes_them(tmp_path):
    path = tmp_path / "u.TextGrid"
    write_textgrid(path, {"s03 - words": [Segment("hi", 0.0, 0.3)],
                          "s03 - phones": [Segment("HH", 0.0, 0.1), Segment("AY1", 0.1, 0.3)]}, 0.3)
    assert [s.label for s in read_phones(path)] == ["HH", "AY1"]
    write_textgrid(path, {"a - phones": [Segment("HH", 0.0, 0.3)], "b - phones": [Segment("AY1", 0.0, 0.3)]}, 0.3)
    with pytest.raises(AlignmentError, match=r"2 speakers' phones tiers \['a - phones', 'b - phones'\]: name the tier"):
        read_phones(path)
