"""Context-dependent state targets (label_scheme=cd_state): the back-off tying, labelling with it, its
groups for class sharing, and its round trip through a run's class list."""

from collections import Counter

import numpy as np
import pytest

from avfusion.corpus.labels import get_scheme
from avfusion.corpus.phones import PHONES
from avfusion.corpus.types import Segment
from avfusion.frames.labelling import FrameLabeller, frame_labels
from avfusion.frames.tying import cd_state_scheme_of, context_state_counts, tie_states


def test_back_off_by_hand():
    counts = Counter({("sil", "ah", "t", "b"): 120,  # a class of its own
                      ("sil", "ah", "t", "e"): 40, ("k", "ah", "t", "e"): 70,  # together: right biphone ah+t_e
                      ("sil", "ah", "n", "b"): 30,  # left biphone sil-ah_b has 30 < 100: monophone ah_b
                      ("sil", "ah", "t", "m"): 99})  # one short: sil-ah_m gets 99 left over: monophone ah_m
    classes = tie_states(counts, min_frames=100)
    context = [c for c in classes if "-" in c or "+" in c]
    assert context == ["ah+t_e", "sil-ah+t_b"]
    assert len(classes) == 38 * 3 + 1 + 2
    scheme = get_scheme("cd_state", classes=classes)
    table = scheme.segment_classes(["sil", "ah", "t", "sil"])
    names = [[scheme.classes[c] for c in row] for row in table]
    assert names[0] == ["sil"] * 3
    assert names[1] == ["sil-ah+t_b", "ah_m", "ah+t_e"]
    assert names[2] == ["t_b", "t_m", "t_e"]
    # an unseen context backs off as far as it must
    assert [scheme.classes[c] for c in scheme.segment_classes(["k", "ah", "t"])[1]] == ["ah_b", "ah_m", "ah+t_e"]
    with pytest.raises(ValueError, match="cd_min_frames"):
        tie_states(counts, 0)


def test_tying_on_a_corpus_is_deterministic_and_as_configured(small_corpus):
    _, corpus = small_corpus
    counts = context_state_counts(corpus)
    assert sum(counts.values()) > 500
    n = 4
    a, b = cd_state_scheme_of(corpus, n), cd_state_scheme_of(corpus, n)
    assert a.classes == b.classes
    assert len(a.classes) > len(get_scheme("phone_state").classes)
    assert len(cd_state_scheme_of(corpus, 2).classes) > len(a.classes)  # a lower threshold keeps more contexts
    triphones = [c for c in a.classes if "-" in c and "+" in c]
    assert triphones
    for name in triphones:  # each triphone class has at least n training frames
        context, state = name.rsplit("_", 1)
        left, rest = context.split("-")
        phone, right = rest.split("+")
        assert counts[(left, phone, right, state)] >= n
    leftover = Counter()
    for (left, phone, right, state), k in counts.items():
        if k < n:
            leftover[f"{left}-{phone}_{state}" if state != "e" else f"{phone}+{right}_{state}"] += k
    biphones = [c for c in a.classes if ("-" in c) != ("+" in c)]
    assert biphones and all(leftover[c] >= n for c in biphones)
    assert all(k < n for c, k in leftover.items() if c not in biphones)


def test_every_frame_of_every_split_gets_a_class(small_corpus):
    _, corpus = small_corpus
    scheme = cd_state_scheme_of(corpus, 4)
    labeller = FrameLabeller(scheme)
    for utt in corpus:  # dev and test hold contexts never seen in train
        segments = labeller.alignments(utt)
        labels = labeller.labels(utt, 300)
        assert labels.min() >= 0 and labels.max() < scheme.num_classes
        # folded to phones, the labels are the phone scheme's
        phone = get_scheme("phone")
        assert np.array_equal(scheme.unit_of_class[labels], phone.unit_of_class[frame_labels(phone, segments, 300)])


def test_groups_and_round_trip_through_the_class_list(small_corpus):
    _, corpus = small_corpus
    scheme = cd_state_scheme_of(corpus, 4)
    again = get_scheme("cd_state", classes=list(scheme.classes))
    assert again.classes == scheme.classes and np.array_equal(again.unit_of_class, scheme.unit_of_class)
    phone_of = scheme.group_index("phone")
    for c, name in enumerate(scheme.classes):
        if name != "sil":
            centre = name.rsplit("_", 1)[0].split("-")[-1].split("+")[0]
            assert PHONES[phone_of[c]] == centre
    assert scheme.sharing_level("auto") == "phone"
    with pytest.raises(ValueError, match="monophone state"):
        get_scheme("cd_state", classes=["sil", "ah_b"])


def test_frame_labels_with_contexts():
    classes = tie_states(Counter({("sil", "aa", "b", "b"): 5}), 5)
    scheme = get_scheme("cd_state", classes=classes)
    segments = [Segment("sil", 0.0, 0.045), Segment("aa", 0.045, 0.105), Segment("b", 0.105, 0.2)]
    names = [scheme.classes[i] for i in frame_labels(scheme, segments, 21)]
    assert names[5:11] == ["sil-aa+b_b", "sil-aa+b_b", "aa_m", "aa_m", "aa_e", "aa_e"]
