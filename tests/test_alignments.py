import pytest

from avfusion.corpus.alignments import AlignmentError, normalise_phones, read_phones, write_textgrid
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
