import numpy as np
import pytest

from avfusion.corpus.labels import get_scheme
from avfusion.corpus.phones import PHONES, VISEME_CLASSES
from avfusion.corpus.types import Segment
from avfusion.frames.clock import num_frames
from avfusion.frames.labelling import frame_labels


def test_num_frames_matches_librosa_centered_frames():
    import librosa

    for n_samples in (16000, 16159, 16160, 3217):
        y = np.zeros(n_samples, np.float32)
        n = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, hop_length=160, n_fft=400).shape[1]
        assert num_frames(n_samples / 16000) == n


def test_phone_scheme_groups_are_visemes():
    s = get_scheme("phone")
    assert s.num_classes == 39
    assert VISEME_CLASSES[s.group_index("viseme")[PHONES.index("b")]] == "E"
    assert VISEME_CLASSES[s.group_index("viseme")[PHONES.index("aa")]] == "V1"


def test_phone_state_scheme_shares_by_phone():
    s = get_scheme("phone_state")
    assert s.num_classes == 3 * 38 + 1
    groups = s.group_index("phone")
    for name in ("aa_b", "aa_m", "aa_e"):
        assert PHONES[groups[s.classes.index(name)]] == "aa"
    assert PHONES[groups[s.classes.index("sil")]] == "sil"
    assert len(set(groups.tolist())) == 39


SEGMENTS = [Segment("sil", 0.0, 0.045), Segment("aa", 0.045, 0.105), Segment("b", 0.105, 0.2)]


def test_frame_labels_hand_case():
    s = get_scheme("phone")
    labels = frame_labels(s, SEGMENTS, num_frames(0.2))
    names = [s.classes[i] for i in labels]
    assert names == ["sil"] * 5 + ["aa"] * 6 + ["b"] * 10


def test_frame_labels_states_split_phone_in_thirds():
    s = get_scheme("phone_state")
    labels = frame_labels(s, SEGMENTS, num_frames(0.2))
    names = [s.classes[i] for i in labels]
    assert names[5:11] == ["aa_b", "aa_b", "aa_m", "aa_m", "aa_e", "aa_e"]
    assert names[:5] == ["sil"] * 5


def test_frames_beyond_alignment_are_silence():
    s = get_scheme("phone")
    labels = frame_labels(s, [Segment("aa", 0.0, 0.05)], 10)
    # the frame centred exactly on the alignment's end keeps the last label; later ones are silence
    assert [s.classes[i] for i in labels] == ["aa"] * 6 + ["sil"] * 4


def test_word_schemes_vocabulary_unknown_words_and_states():
    from avfusion.corpus.labels import UNK

    closed = get_scheme("word", ["bin", "blue", "at"])
    assert closed.classes == ("at", "bin", "blue", "sil") and closed.unit == "word"
    words = [Segment("sil", 0.0, 0.05), Segment("bin", 0.05, 0.11), Segment("blue", 0.11, 0.2)]
    assert [closed.classes[i] for i in frame_labels(closed, words, 21)] == \
        ["sil"] * 5 + ["bin"] * 6 + ["blue"] * 10
    with pytest.raises(KeyError, match="'red' is not a unit"):
        frame_labels(closed, [Segment("red", 0.0, 0.1)], 11)
    open_vocab = get_scheme("word", ["bin", UNK])
    assert open_vocab.classes[frame_labels(open_vocab, [Segment("red", 0.0, 0.1)], 11)[0]] == UNK
    states = get_scheme("word_state", ["bin", "blue", "at"])
    assert states.num_classes == 3 * 3 + 1
    labels = [states.classes[i] for i in frame_labels(states, words, 21)]
    assert labels[5:11] == ["bin_b", "bin_b", "bin_m", "bin_m", "bin_e", "bin_e"]
    assert states.units[states.group_index("word")[states.classes.index("blue_m")]] == "blue"


def test_corpus_scheme_matches_the_alignments(tmp_path):
    from avfusion.corpus.labels import corpus_scheme
    from avfusion.corpus.types import Corpus, Utterance

    path = tmp_path / "u.phn"
    path.write_text("0 1600 h#\n1600 3200 aa\n")
    utts = [Utterance(f"u{i}", f"s{i}", split, None, None, path) for i, split in enumerate(("train", "dev", "test"))]
    phones = Corpus(utts, name="phone corpus")
    assert corpus_scheme("auto", phones).name == "phone" and corpus_scheme("states", phones).name == "phone_state"
    with pytest.raises(ValueError, match="phone corpus: label scheme 'word' reads words but .* hold phones"):
        corpus_scheme("word", phones)
    align = tmp_path / "u.align"
    align.write_text("0 25000 sil\n25000 50000 bin\n")
    words = Corpus([Utterance(u.id, u.speaker, u.split, None, None, align, labels="words") for u in utts])
    scheme = corpus_scheme("auto", words)  # open vocabulary: training words + <unk>
    assert scheme.name == "word" and scheme.classes == ("<unk>", "bin", "sil")


def test_reference_is_scored_as_aligned_without_silence():
    from avfusion.frames.labelling import reference

    s = get_scheme("phone")
    segments = [Segment("sil", 0.0, 0.1), Segment("ah", 0.1, 0.2), Segment("ah", 0.2, 0.3), Segment("t", 0.3, 0.35),
                Segment("sil", 0.35, 0.5)]
    ref = reference(s, segments, num_frames(0.5))
    assert ref.units == ["ah", "ah", "t"]  # adjacent identical phones kept, silence left out
    assert ref.sequence == ["sil", "ah", "ah", "t", "sil"]  # what the decoder's language model is fitted on
    assert ref.spans.tolist() == [[10, 20], [20, 30], [30, 35]]


def test_the_label_scheme_names_a_config_takes_are_the_schemes_there_are():
    from avfusion.corpus.labels import AUTO_SCHEMES, FITTED_SCHEMES, SCHEME_NAMES, SCHEMES

    assert sorted(SCHEME_NAMES) == sorted({*AUTO_SCHEMES, *SCHEMES, *FITTED_SCHEMES})
