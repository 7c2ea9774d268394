import numpy as np

from avfusion.corpus.labels import get_scheme, num_frames
from avfusion.corpus.phones import PHONES, VISEME_CLASSES
from avfusion.corpus.types import Segment


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
    labels = s.frame_labels(SEGMENTS, num_frames(0.2))
    names = [s.classes[i] for i in labels]
    assert names == ["sil"] * 5 + ["aa"] * 6 + ["b"] * 10


def test_frame_labels_states_split_phone_in_thirds():
    s = get_scheme("phone_state")
    labels = s.frame_labels(SEGMENTS, num_frames(0.2))
    names = [s.classes[i] for i in labels]
    assert names[5:11] == ["aa_b", "aa_b", "aa_m", "aa_m", "aa_e", "aa_e"]
    assert names[:5] == ["sil"] * 5


def test_frames_beyond_alignment_are_silence():
    s = get_scheme("phone")
    labels = s.frame_labels([Segment("aa", 0.0, 0.05)], 10)
    # the frame centred exactly on the alignment's end keeps the last label; later ones are silence
    assert [s.classes[i] for i in labels] == ["aa"] * 6 + ["sil"] * 4
