"""Forced alignment (avfusion.decoding.align): the best path through an utterance's own unit sequence, optional
positions skipped or kept, equal to an exhaustive search over every path on small problems."""

import itertools

import numpy as np
import pytest

from avfusion.corpus.alignments import read_textgrid, write_textgrid
from avfusion.decoding.align import Transcript, align_positions, flat_start, force_align, linear_arcs
from avfusion.decoding.framewise import DecodedUnit
from avfusion.frames.clock import frame_span


def allowed(path, cross, start, end, n_states) -> bool:
    """A path of (position, state) per frame that the linear HMM can take, start to end."""
    (p0, k0), (pn, kn) = path[0], path[-1]
    if k0 != 0 or start[p0] == -np.inf or kn != n_states - 1 or end[pn] == -np.inf:
        return False
    return all((q, j) in ((p, k), (p, k + 1)) or (k == n_states - 1 and j == 0 and cross[p, q] == 0)
               for (p, k), (q, j) in zip(path, path[1:]))


def exhaustive(loglik, units, optional, log_stay, log_move):
    """Every (position, state) sequence over the frames, scored as the kernel scores a path; the best."""
    n_frames, _, n_states = loglik.shape
    cross, start, end = linear_arcs(optional)
    best, best_path = -np.inf, None
    for path in itertools.product([(p, k) for p in range(len(units)) for k in range(n_states)], repeat=n_frames):
        if not allowed(path, cross, start, end, n_states):
            continue
        score = start[path[0][0]] + end[path[-1][0]] + log_move[units[path[-1][0]], n_states - 1]
        score += sum(loglik[t, units[p], k] for t, (p, k) in enumerate(path))
        score += sum(log_stay[units[p], k] if (q, j) == (p, k) else log_move[units[p], k]
                     for (p, k), (q, j) in zip(path, path[1:]))
        if score > best:
            best, best_path = score, path
    return best, best_path


def segments_of(path, units):
    """(unit, start, end) runs of positions along a path."""
    out, start = [], 0
    for t in range(1, len(path) + 1):
        if t == len(path) or path[t][0] != path[t - 1][0]:
            out.append((units[path[start][0]], start, t))
            start = t
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_alignment_is_the_best_of_every_path(seed):
    rng = np.random.default_rng(seed)
    n_units, n_states, n_frames = 3, 2, 6
    loglik = rng.normal(0, 2, (n_frames, n_units, n_states))
    stay = rng.uniform(0.3, 0.8, (n_units, n_states))
    log_stay, log_move = np.log(stay), np.log1p(-stay)
    units, optional = [0, 1, 2, 0], [True, False, False, True]  # sil a b sil, the silences optional
    segments, score = force_align(loglik, units, optional, log_stay, log_move)
    best, path = exhaustive(loglik, units, optional, log_stay, log_move)
    assert score == pytest.approx(best)
    assert [tuple(s) for s in segments] == segments_of(path, units)


def test_an_optional_silence_is_kept_where_the_frames_are_silent_and_skipped_where_not():
    n_states, units, optional = 2, [0, 1, 2, 0], [True, False, False, True]
    log_stay = log_move = np.log(np.full((3, n_states), 0.5))
    frames = [0, 0, 0, 1, 1, 1, 2, 2, 2]  # silence, a, b: the final silence has no frames of its own
    loglik = np.full((len(frames), 3, n_states), -10.0)
    loglik[np.arange(len(frames)), frames] = 0.0
    segments, _ = force_align(loglik, units, optional, log_stay, log_move)
    assert [tuple(s) for s in segments] == [(0, 0, 3), (1, 3, 6), (2, 6, 9)]
    with pytest.raises(ValueError, match="3 frames cannot hold the 4 states"):
        force_align(loglik[:3], units, optional, log_stay, log_move)


def test_arcs_skip_only_optional_positions():
    cross, start, end = linear_arcs([True, False, True, False, True])
    allowed_next = {p: list(np.flatnonzero(cross[p] == 0)) for p in range(5)}
    assert allowed_next == {0: [1], 1: [2, 3], 2: [3], 3: [4], 4: []}
    assert list(start == 0) == [True, True, False, False, False] and list(end == 0) == [False, False, False, True, True]


def test_a_transcript_has_optional_silence_only_where_words_meet_and_at_the_ends():
    t = Transcript.of([[3, 4], [5]], silence=0)
    assert t.units == (0, 3, 4, 0, 5, 0)
    assert t.optional == (True, False, False, True, False, True)
    assert t.words == (-1, 0, 0, -1, 1, -1)
    with pytest.raises(ValueError, match="pronunciation"):
        Transcript.of([[3], []], silence=0)


def test_a_flat_start_shares_the_frames_evenly_among_the_phones():
    t = Transcript.of([[3, 4], [5]], silence=0)
    segments = flat_start(30, t, n_states=3, edges=False)
    assert [(s.unit, s.start, s.end) for s in segments] == [(1, 0, 10), (2, 10, 20), (4, 20, 30)]
    assert t.word_spans(segments) == [(0, 0, 20), (1, 20, 30)]
    # recordings start and end in silence: the edges take their share, the pause between the words none
    assert [(s.unit, s.start, s.end) for s in flat_start(50, t, n_states=3)] == \
        [(0, 0, 10), (1, 10, 20), (2, 20, 30), (4, 30, 40), (5, 40, 50)]
    assert [s.unit for s in flat_start(12, t, n_states=3)] == [1, 2, 4]  # too short for the edges: phones only
    with pytest.raises(ValueError, match="8 frames cannot hold the 9 states"):
        flat_start(8, t, n_states=3)


def test_alignment_recovers_known_boundaries_and_the_words_they_make():
    """Frames drawn from a known segmentation (silence, two words, silence between them): the alignment through the
    transcript finds every boundary within a frame, keeps the silences that are there and skips the one that is not."""
    rng = np.random.default_rng(0)
    n_units, n_states = 6, 3
    truth = [(0, 0, 12), (3, 12, 30), (4, 30, 41), (0, 41, 55), (5, 55, 80)]  # no final silence
    loglik = np.full((80, n_units, n_states), -4.0) + rng.normal(0, 0.5, (80, n_units, n_states))
    for unit, a, b in truth:
        loglik[a:b, unit, :] += 4.0
    log_stay = np.full((n_units, n_states), np.log(0.9))
    log_move = np.full((n_units, n_states), np.log(0.1))
    t = Transcript.of([[3, 4], [5]], silence=0)
    segments, score = align_positions(loglik, t, log_stay, log_move)
    assert np.isfinite(score)
    assert [t.units[s.unit] for s in segments] == [u for u, _, _ in truth]
    found = [s.start for s in segments[1:]]
    assert np.abs(np.array(found) - [a for _, a, _ in truth[1:]]).max() <= 1
    assert t.word_spans(segments) == [(0, segments[1].start, segments[2].end), (1, segments[4].start, 80)]
    assert [(s.unit, s.start, s.end) for s in force_align(loglik, t.units, t.optional, log_stay, log_move)[0]] == \
        [(t.units[s.unit], s.start, s.end) for s in segments]


def test_an_alignment_written_as_a_textgrid_reads_back_as_its_frames(tmp_path):
    """The tiers' times map back to the aligned frames through the project's own TextGrid reader and frame labels."""
    t = Transcript.of([[3, 4], [5]], silence=0)
    segments = [DecodedUnit(0, 0, 12), DecodedUnit(1, 12, 30), DecodedUnit(2, 30, 41), DecodedUnit(3, 41, 55),
                DecodedUnit(4, 55, 80)]
    names = ["sil", "a", "b", "c", "d", "e"]
    tiers = t.tiers(["hello", "world"], names, segments, n_frames=80, duration=0.8)
    assert [s.label for s in tiers["words"]] == ["sil", "hello", "sil", "world"]
    assert [s.label for s in tiers["phones"]] == ["sil", "c", "d", "sil", "e"]
    path = tmp_path / "u.TextGrid"
    write_textgrid(path, tiers, 0.8)
    for tier, expected in (("phones", segments), ("words", [(0, 12), (12, 41), (41, 55), (55, 80)])):
        read = read_textgrid(path, tier)
        spans = [frame_span(s.start, s.end, 80) for s in read]
        assert spans == [(s.start, s.end) if isinstance(s, DecodedUnit) else s for s in expected]


def test_a_transcript_from_text_takes_each_words_pronunciation_and_refuses_what_the_scheme_cannot_say():
    from avfusion.corpus.labels import get_scheme
    from avfusion.corpus.lexicon import Lexicon
    from avfusion.errors import UserError

    phones = get_scheme("phone")
    t, words = Transcript.of_text("Hello world, 2", phones, Lexicon())
    assert words == ["hello", "world", "two"]
    names = [phones.units[u] for u in t.units]
    assert names == ["sil", "hh", "ah", "l", "ow", "sil", "w", "er", "l", "d", "sil", "t", "uw", "sil"]
    with pytest.raises(UserError, match="needs a phone scheme"):
        Transcript.of_text("hello", get_scheme("word", ["hello"]), Lexicon())
    with pytest.raises(UserError, match=r"u1: no words in '\.\.\.'"):
        Transcript.of_text("...", phones, Lexicon(), "u1")
