import numpy as np
import pytest

from avfusion.evaluation.noise import NoiseCondition, NoiseMaker, conditions, mix_at_snr, pink_noise


def test_mix_hits_the_snr():
    rng = np.random.default_rng(0)
    speech = np.sin(np.arange(16000) / 10).astype(np.float32)
    noise = rng.normal(size=16000)
    for snr in (20, 0, -5):
        mixed = mix_at_snr(speech, noise, snr)
        residual = mixed - speech
        measured = 10 * np.log10(np.mean(speech.astype(float) ** 2) / np.mean(residual.astype(float) ** 2))
        assert measured == pytest.approx(snr, abs=1e-3)


def test_pink_noise_slope():
    x = pink_noise(2**16, np.random.default_rng(0))
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.arange(len(power))
    low, high = power[(f > 100) & (f < 200)].mean(), power[(f > 10000) & (f < 20000)].mean()
    assert 10 * np.log10(low / high) == pytest.approx(10 * np.log10(100), abs=2)  # 10 dB per decade


def test_conditions_and_validation():
    names = [c.name for c in conditions(["white", "babble"], [10, 0])]
    assert names == ["clean", "white 10 dB", "white 0 dB", "babble 10 dB", "babble 0 dB"]
    with pytest.raises(ValueError, match="unknown noise"):
        NoiseCondition("traffic", 0)
    with pytest.raises(ValueError):
        NoiseCondition("white")


def test_babble_is_other_speakers_and_reproducible(small_corpus):
    _, corpus = small_corpus
    utts = corpus.utterances
    maker = NoiseMaker(utts, babble_talkers=4, seed=5)
    target = utts[0]
    n = 16000
    rng = np.random.default_rng(0)
    babble = maker.babble(target, n, rng)
    assert babble.shape == (n,) and np.std(babble) > 0
    speech = np.zeros(n, np.float32) + 0.1
    cond = NoiseCondition("babble", 0.0)
    a = maker(target, speech, cond)
    b = NoiseMaker(list(reversed(utts)), babble_talkers=4, seed=5)(target, speech, cond)  # other order
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, NoiseMaker(utts, babble_talkers=4, seed=6)(target, speech, cond))
    alone = NoiseMaker([target], seed=5)
    with pytest.raises(ValueError, match="other speakers"):
        alone(target, speech, cond)
    assert maker(target, speech, NoiseCondition()) is speech
