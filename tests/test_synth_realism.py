"""The corpus's realism knobs, each against what it should do: the lips' timing, one articulation seen
and heard, transient video nuisances, the schwa, and how espeak's two-phone symbols are split."""

import numpy as np
import pytest

from avfusion.corpus.alignments import normalise_phones, read_phones
from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment
from avfusion.media import load_audio
from avfusion.synth import articulation, mouth, vocal_tract
from avfusion.synth.arpabet import split_interval


def test_two_phone_symbols_split_by_typical_durations():
    # a syllabic l ("little"): a short schwa then the l, 50:65, not half and half
    assert split_interval(("AH0", "L"), 1.0, 1.115) == pytest.approx([1.0, 1.05, 1.115])
    edges = split_interval(("AY1", "ER0"), 0.0, 0.49)  # 140:105
    assert edges[1] == pytest.approx(0.28) and edges[-1] == 0.49


def test_the_schwa_is_a_neutral_mid_central_mouth_not_an_open_back_vowel():
    schwa, open_back = articulation.targets_for([Segment("ah", 0, 1), Segment("aa", 1, 2)])
    closed = articulation.targets_for([Segment("m", 0, 1)])[0]
    assert closed[0] < schwa[0] < open_back[0] - 0.3  # opening between closed lips and an open vowel
    assert abs(schwa[1] - 0.5) < 0.1 and schwa[2] < 0.2  # neither spread nor rounded


def test_the_lips_lead_the_sound_by_the_speakers_offset_and_part_before_voicing():
    phones = [Segment(SIL, 0, 0.3), Segment("b", 0.3, 0.38), Segment("aa", 0.38, 0.55), Segment("t", 0.55, 0.62),
              Segment(SIL, 0.62, 1.0)]
    same = articulation.visual_segments(phones, 0.0, 0.0, 0.0, 1.0)
    assert same == phones
    seen = articulation.visual_segments(phones, 0.04, 0.0, 0.15, 1.0)
    assert seen[0].end == pytest.approx(0.3 - 0.04 - 0.15)  # onset: lead plus the lips parting early
    assert [s.start for s in seen[2:]] == pytest.approx([0.38 - 0.04, 0.55 - 0.04, 0.62 - 0.04])
    assert [s.label for s in seen] == [s.label for s in phones] and seen[-1].end == 1.0
    behind = articulation.visual_segments(phones, -0.02, 0.0, 0.0, 1.0)  # an audio lead: the lips later
    assert behind[2].start == pytest.approx(0.40)
    jittered = articulation.visual_segments(phones, 0.04, 0.3, 0.15, 1.0, np.random.default_rng(0))
    edges = [s.start for s in jittered] + [jittered[-1].end]
    assert edges == sorted(edges) and 0 <= edges[0] and edges[-1] == 1.0  # large jitter: still ordered


def test_token_articulation_is_shared_by_coupling():
    rng = np.random.default_rng(0)
    seen, heard = vocal_tract.token_articulation(4000, rng, 1.0)
    np.testing.assert_array_equal(seen, heard)
    for coupling in (0.0, 0.5):
        seen, heard = vocal_tract.token_articulation(4000, rng, coupling)
        r = [np.corrcoef(seen[:, k], heard[:, k])[0, 1] for k in range(3)]
        assert r == pytest.approx([coupling] * 3, abs=0.05)
        assert heard.std(axis=0) == pytest.approx([1, 1, 1], abs=0.05)  # the same variation, only shared or not
    with pytest.raises(ValueError, match="coupling"):
        vocal_tract.token_articulation(3, rng, 1.5)


@pytest.fixture(scope="module")
def spoken(small_corpus):
    _, corpus = small_corpus
    u = corpus.split("train")[0]
    return load_audio(u.audio, 16000), normalise_phones(read_phones(u.alignment))


def test_formants_move_with_the_articulation_and_nothing_moves_without_it(spoken):
    import librosa

    audio, segments = spoken
    zero = np.zeros((len(segments), 3))
    np.testing.assert_allclose(vocal_tract.reshape_formants(audio, 16000, segments, zero), audio, atol=1e-6)
    speech = np.zeros(len(audio), bool)
    for s in segments:
        if s.label != SIL:
            speech[int(s.start * 16000):int(s.end * 16000)] = True

    def centroid(x):
        return librosa.feature.spectral_centroid(y=x[speech], sr=16000).mean()

    def level(x):
        return 10 * np.log10(np.mean(x[speech].astype(float) ** 2))

    def moved(column, value):
        d = zero.copy()
        d[:, column] = value
        return vocal_tract.reshape_formants(audio, 16000, segments, d)

    rounded, spread, opened = moved(2, 1.5), moved(1, 1.5), moved(0, 1.5)
    assert centroid(rounded) < 0.97 * centroid(audio)  # rounding lowers F2/F3
    assert centroid(spread) > 1.02 * centroid(audio)  # spreading raises them
    assert level(opened) - level(audio) == pytest.approx(1.5 * vocal_tract.DB_PER_OPEN, abs=0.4)
    assert abs(level(rounded) - level(audio)) < 0.3  # a formant move alone keeps the level
    # the silence before the speech is untouched, but for the 50 ms the smoothing of a token's edge reaches
    quiet = int((segments[0].end - 0.05) * 16000)
    np.testing.assert_allclose(rounded[:quiet], audio[:quiet], atol=1e-6)


def test_transient_nuisances_change_only_their_span(rng):
    base = np.stack([np.full((32, 32, 3), 40 + 5 * i, np.uint8) for i in range(50)])
    base[:, 10:22, 6:26] = 200  # something with edges, for the blur to smear
    for kind in mouth.NUISANCES:
        frames, events = mouth.transient_nuisances(base.copy(), 25.0, rng, kinds=(kind,))
        ((name, first, end),) = events
        assert name == kind and 0 < first < end <= 50
        changed = np.flatnonzero((frames != base).any(axis=(1, 2, 3)))
        assert changed.min() >= first and changed.max() < end
        if kind == "dropped":
            assert 1 <= end - first <= 4 and (frames[first:end] == base[first - 1]).all()
        elif kind == "occlusion":
            assert 0.3 * 25 - 1 <= end - first <= 25 and len(changed) == end - first
        else:
            edge = np.abs(np.diff(frames[first].astype(float), axis=1)).max()
            assert edge < np.abs(np.diff(base[first].astype(float), axis=1)).max()
