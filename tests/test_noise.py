from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.manifest import read_manifest, write_manifest
from avfusion.corpus.types import Corpus, CorpusError
from avfusion.errors import ConfigError
from avfusion.noise import (Babble, NoiseCondition, NoiseMixer, active_samples, babble_pool, conditions, p56_active,
                            pink_noise)
from avfusion.media import load_audio
from avfusion.synth.builder import check_test_texts_unseen

from conftest import built_in_noises


def _db(x):
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2))


def test_the_snr_is_that_of_the_active_speech_not_of_the_padded_file(small_corpus):
    """A test utterance with its silent padding: the mixed noise is nominal dB below the speech over the
    alignment's non-silence, which the whole-file measure would misstate by the padding's share."""
    _, corpus = small_corpus
    maker = NoiseMixer(built_in_noises(corpus, talkers=3), seed=5)
    utt = corpus.split("test")[0]
    speech = load_audio(utt.audio, 16000)
    active = active_samples(utterance_labels(utt), len(speech), 16000)
    assert 0.3 < active.mean() < 0.95  # the file has silence to get wrong
    for kind in ("white", "babble"):
        for snr in (20, 0, -5):
            noise = maker(utt, speech, NoiseCondition(kind, snr)) - speech
            assert _db(speech[active]) - _db(noise) == pytest.approx(snr, abs=0.1)
    whole_file = _db(speech) - _db(maker(utt, speech, NoiseCondition("white", 0.0)) - speech)
    assert whole_file < -0.5  # what measuring over the whole file would call 0 dB


def test_one_noise_draw_per_utterance_and_kind_scaled_to_each_snr(small_corpus):
    _, corpus = small_corpus
    maker = NoiseMixer(built_in_noises(corpus, talkers=3), seed=5)
    utt = corpus.split("test")[0]
    speech = load_audio(utt.audio, 16000)
    for kind in ("white", "pink", "babble"):
        at = {snr: maker(utt, speech, NoiseCondition(kind, snr)).astype(np.float64) - speech for snr in (10, 0)}
        np.testing.assert_allclose(at[0], at[10] * np.sqrt(10), atol=1e-5)  # the same noise, 10 dB louder


def test_p56_active_level_of_a_burst_in_silence_is_the_bursts_level():
    rng = np.random.default_rng(0)
    sr, t = 16000, np.arange(16000) / 16000
    x = 1e-4 * rng.standard_normal(3 * sr)
    x[sr:2 * sr] += 0.3 * np.sin(2 * np.pi * 200 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))
    active = p56_active(x, sr)
    # active: the burst and its 0.2 s hangover (P.56 counts the hangover), not the silence around it
    assert 1.0 <= active.sum() / sr <= 1.3 and active[sr + 1600:2 * sr].all()  # onset: the envelope rises in ~30 ms
    assert _db(x[active]) == pytest.approx(_db(x[sr:2 * sr]), abs=1.2)
    assert _db(x) < _db(x[active]) - 3  # over the whole file: 3.7 dB lower


def test_p56_agrees_with_the_alignment_on_a_synthetic_utterance(small_corpus):
    _, corpus = small_corpus
    for utt in corpus.utterances[:3]:
        speech = load_audio(utt.audio, 16000)
        by_alignment = _db(speech[active_samples(utterance_labels(utt), len(speech), 16000)])
        assert _db(speech[p56_active(speech, 16000)]) == pytest.approx(by_alignment, abs=1.5)


def test_pink_noise_slope():
    x = pink_noise(2**16, np.random.default_rng(0))
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.arange(len(power))
    low, high = power[(f > 100) & (f < 200)].mean(), power[(f > 10000) & (f < 20000)].mean()
    assert 10 * np.log10(low / high) == pytest.approx(10 * np.log10(100), abs=2)  # 10 dB per decade


def test_conditions_and_validation():
    names = [c.name for c in conditions(["white", "babble"], [10, 0])]
    assert names == ["clean", "white 10 dB", "white 0 dB", "babble 10 dB", "babble 0 dB"]
    with pytest.raises(ValueError):
        NoiseCondition("white")


def test_babble_is_from_the_pool_never_the_target_speaker_or_sentence(small_corpus):
    _, corpus = small_corpus
    target = corpus.split("test")[0]
    # a pool with a recording of the target's speaker and one of the target's sentence: both left out
    own_voice = replace(corpus.babble[0], id="own", speaker=target.speaker)
    own_text = replace(corpus.babble[1], id="own_text", speaker="b99", text=target.text.upper())
    pool = corpus.babble + [own_voice, own_text]
    babble = Babble(talkers=3, talker_set="all").use_pool(pool)
    maker = NoiseMixer({"babble": babble}, seed=5)
    assert set(babble.by_talker(target)) == {u.speaker for u in corpus.babble}
    for trial in range(20):
        _, used = babble.mix(target, 16000, 16000, np.random.default_rng(trial))
        assert len(used) == 3 and len({u.split("_")[0] for u in used}) == 3  # distinct talkers
        assert "own" not in used and "own_text" not in used
    speech = np.zeros(16000, np.float32) + 0.1
    cond = NoiseCondition("babble", 0.0)
    a = maker(target, speech, cond)
    reordered = {"babble": Babble(talkers=3, talker_set="all").use_pool(list(reversed(pool)))}
    np.testing.assert_array_equal(a, NoiseMixer(reordered, seed=5)(target, speech, cond))
    assert not np.array_equal(a, NoiseMixer({"babble": babble}, seed=6)(target, speech, cond))
    with pytest.raises(ConfigError, match="noise.babble.talkers=5 talkers, but the babble pool has 4"):
        NoiseMixer({"babble": Babble(talkers=5, talker_set="all").use_pool(pool)}, seed=5)(target, speech, cond)
    assert maker(target, speech, NoiseCondition()) is speech


def test_babble_talkers_are_in_no_split(small_corpus, tmp_path):
    _, corpus = small_corpus
    assert len(corpus.babble) == 4 and {u.split for u in corpus.babble} == {"babble"}
    assert not {u.speaker for u in corpus.babble} & {u.speaker for u in corpus.utterances}
    assert all(u.video is None and Path(u.audio).is_file() for u in corpus.babble)
    with pytest.raises(CorpusError, match="babble talkers .* also speak in a split"):
        Corpus(corpus.utterances, babble=corpus.babble + [replace(corpus.babble[0], speaker=corpus.utterances[0].speaker)])
    # no babble pool (a real corpus without babble.jsonl): the training speakers, never a test speaker
    bare = replace(corpus, babble=[])
    assert {u.speaker for u in babble_pool(bare)} == set(corpus.speakers("train"))
    # written and read back beside the manifest
    write_manifest(corpus, tmp_path / "manifest.jsonl")
    again = read_manifest(tmp_path / "manifest.jsonl")
    assert [(u.id, u.speaker, u.text) for u in again.babble] == [(u.id, u.speaker, u.text) for u in corpus.babble]


def test_no_test_sentence_is_read_in_training(small_corpus):
    _, corpus = small_corpus
    train = {u.text for u in corpus.split("train")}
    assert train and not train & {u.text for u in corpus.split("test") + corpus.split("dev")}
    assert not {u.text for u in corpus.babble} & {u.text for u in corpus.utterances}
    leaked = replace(corpus, utterances=corpus.utterances + [replace(corpus.split("train")[0], id="x", split="test",
                                                                     speaker="s99")])
    with pytest.raises(CorpusError, match="1 test utterance.*read a training sentence"):
        check_test_texts_unseen(leaked)


def test_no_babble_pool_is_said_once_and_only_when_babble_is_used(tiny_root, tmp_path, caplog):
    """A run without babble conditions says nothing about a babble pool; one with babble says it once."""
    from avfusion import api

    from conftest import tiny_overrides
    from test_configs import compose_train

    overrides = [o for o in tiny_overrides(tiny_root) if not o.startswith(("data.n_babble", "data.babble", "data.root"))]
    overrides += [f"data.root={tmp_path / 'corpus'}", "data.n_babble_talkers=0", "fusion=audio_only",
                  "trainer.max_epochs=1", "decoding=framewise", "noise.babble.talkers=2"]
    said = "has no babble pool"
    with caplog.at_level("INFO"):
        report = api.train(compose_train(*overrides, "evaluation.noises=[white]"), tmp_path / "white")
    assert said not in caplog.text and "babble_source" not in report["evaluation"]
    assert "test utterances: clean" in caplog.text  # the progress line names the split it scores
    caplog.clear()
    with caplog.at_level("INFO", logger="avfusion.noise.babble"):
        report = api.train(compose_train(*overrides, "evaluation.noises=[babble]"), tmp_path / "babble")
    assert caplog.text.count(said) == 1 and report["evaluation"]["babble_source"] == "train split"


def test_the_babble_talker_sets_are_disjoint_halves_of_the_pool(small_corpus):
    """babble_train and babble_unseen (conf/noise/) mix from talkers the other never uses."""
    from avfusion.configs import configured

    _, corpus = small_corpus
    target = corpus.split("test")[0]
    train, unseen = (configured(f"noise.{n}", talkers=1) for n in ("babble_train", "babble_unseen"))
    for source in (train, unseen):
        source.prepare(corpus)
    talkers = {name: {u.speaker for u in s.pool} for name, s in (("train", train), ("unseen", unseen))}
    assert talkers["train"] and talkers["unseen"] and not talkers["train"] & talkers["unseen"]
    assert talkers["train"] | talkers["unseen"] == {u.speaker for u in corpus.babble}
    for trial in range(10):
        _, used = unseen.mix(target, 8000, 16000, np.random.default_rng(trial))
        assert {u.speaker for u in corpus.babble if u.id in used} <= talkers["unseen"]
    with pytest.raises(ConfigError, match=r"talkers=3: the babble pool has only 2 talkers \(test half"):
        configured("noise.babble_unseen", talkers=3).check(corpus, "noise.babble_unseen")


def test_a_corpus_declares_its_babble_training_and_test_talkers(small_corpus, tmp_path):
    """babble.jsonl records of split babble_train / babble_test: the talker sets are those, not name halves;
    a talker in both, or declared and undeclared records mixed, is refused naming the file."""
    from avfusion.configs import configured

    _, corpus = small_corpus
    talkers = sorted({u.speaker for u in corpus.babble})
    held_out = {talkers[0]}  # the name halves would put the first talker in the training half
    declared = [replace(u, split="babble_test" if u.speaker in held_out else "babble_train") for u in corpus.babble]
    write_manifest(Corpus(corpus.utterances, root=corpus.root, babble=declared), tmp_path / "manifest.jsonl")
    read = read_manifest(tmp_path / "manifest.jsonl")
    train, unseen = (configured(f"noise.{n}", talkers=1) for n in ("babble_train", "babble_unseen"))
    for source in (train, unseen):
        source.prepare(read)
    assert {u.speaker for u in unseen.pool} == held_out
    assert {u.speaker for u in train.pool} == set(talkers) - held_out
    both = declared + [replace(declared[0], id="again", split="babble_train")]
    for pool, message in ((both, rf"talker\(s\) \['{talkers[0]}'\] declared in both"),
                          (declared[:1] + [replace(u, split="babble") for u in declared[1:]], "mixed with")):
        write_manifest(Corpus(corpus.utterances, root=corpus.root, babble=pool), tmp_path / "manifest.jsonl")
        with pytest.raises(CorpusError, match=rf"babble.jsonl: .*{message}"):
            read_manifest(tmp_path / "manifest.jsonl")


def test_music_noise_is_reproducible_non_stationary_and_harmonic():
    """Unlike the noises training uses: its short-time level swings (notes start and decay) and its
    spectrum is a few partials, not flat."""
    from avfusion.configs import configured

    music, white = configured("noise.music"), configured("noise.white")
    utt = type("U", (), {"id": "x"})()
    x = music.draw(utt, 3 * 16000, 16000, np.random.default_rng(1))
    np.testing.assert_array_equal(x, music.draw(utt, 3 * 16000, 16000, np.random.default_rng(1)))

    def level_spread(y):  # coefficient of variation of the 20 ms RMS
        rms = np.sqrt(np.mean(y[: len(y) // 320 * 320].reshape(-1, 320) ** 2, axis=1))
        return rms.std() / rms.mean()

    def flatness(y):  # geometric over arithmetic mean of the power spectrum (1: white)
        power = np.abs(np.fft.rfft(y)) ** 2 + 1e-12
        return np.exp(np.mean(np.log(power))) / np.mean(power)

    w = white.draw(utt, 3 * 16000, 16000, np.random.default_rng(1))
    assert level_spread(x) > 0.3 > 0.1 > level_spread(w)
    assert flatness(x) < 0.01 < 0.3 < flatness(w)
    with pytest.raises(ConfigError, match=r"noise.music.note_s=\[0.5, 0.1\]"):
        configured("noise.music", note_s=[0.5, 0.1]).validate("noise.music")
