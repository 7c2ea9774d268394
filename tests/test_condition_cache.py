"""The evaluation's noisy-condition cache (avfusion.evaluation.conditions.noisy_frames): each condition's
audio features are mixed and extracted once per prepared frames, and are the arrays computed directly."""

import numpy as np
import pytest

from avfusion.corpus.labels import get_scheme
from avfusion.evaluation.conditions import noisy_frames
from avfusion.noise import NoiseCondition, NoiseMixer
from avfusion.frames.data import frames_of
from avfusion.frames.labelling import FrameLabeller



@pytest.fixture(scope="module")
def test_split(small_test_split):
    return small_test_split


def reference_audio(frontend, utterances, noise, condition):
    """Independent of the cache: the front-end on the noisy waveforms, utterance by utterance."""
    return np.concatenate(frontend.transform(utterances, lambda u, w: noise(u, w, condition), modalities=["audio"])["audio"])


def test_a_cached_condition_is_the_computed_one_and_is_computed_once(test_split, tmp_path, monkeypatch):
    frontend, utterances, clean, noise = test_split
    condition = NoiseCondition("babble", 0.0)
    first = noisy_frames(frontend, clean, utterances, condition, noise, tmp_path)
    expected = reference_audio(frontend, utterances, noise, condition)
    np.testing.assert_array_equal(first.features["audio"], expected)
    np.testing.assert_array_equal(first.features["video"], clean.features["video"])  # only the audio is noisy
    assert len(list((tmp_path / "conditions").glob("*.npy"))) == 1
    monkeypatch.setattr(type(frontend), "transform", lambda *a, **k: pytest.fail("condition computed again"))
    again = noisy_frames(frontend, clean, utterances, condition, noise, tmp_path)
    np.testing.assert_array_equal(again.features["audio"], expected)
    np.testing.assert_array_equal(again.labels, clean.labels)


def test_another_snr_noise_seed_or_utterance_set_is_another_entry(test_split, tmp_path):
    frontend, utterances, clean, noise = test_split
    white = NoiseCondition("white", 10.0)
    a = noisy_frames(frontend, clean, utterances, white, noise, tmp_path).features["audio"]
    b = noisy_frames(frontend, clean, utterances, NoiseCondition("white", 0.0), noise, tmp_path).features["audio"]
    other_seed = NoiseMixer(noise.sources, noise.sample_rate, seed=8)
    c = noisy_frames(frontend, clean, utterances, white, other_seed, tmp_path).features["audio"]
    assert not np.allclose(a, b) and not np.allclose(a, c)
    one = frames_of(frontend, utterances[:1], FrameLabeller(get_scheme("phone")))
    d = noisy_frames(frontend, one, utterances[:1], white, noise, tmp_path).features["audio"]
    np.testing.assert_array_equal(d, a[:len(d)])  # the same noise per utterance, whatever the set
    assert len(list((tmp_path / "conditions").glob("*.npy"))) == 4


def test_a_damaged_entry_is_computed_again_not_used(test_split, tmp_path, caplog):
    frontend, utterances, clean, noise = test_split
    condition = NoiseCondition("white", 5.0)
    noisy_frames(frontend, clean, utterances, condition, noise, tmp_path)
    entry, = (tmp_path / "conditions").glob("*.npy")
    np.save(entry, np.zeros((3, 2), np.float32))  # a file of the wrong shape under the entry's name
    out = noisy_frames(frontend, clean, utterances, condition, noise, tmp_path)
    np.testing.assert_array_equal(out.features["audio"], reference_audio(frontend, utterances, noise, condition))
    assert "computing the condition again" in caplog.text
    assert np.load(entry).shape == out.features["audio"].shape  # and the entry is mended


class Projection:
    """A stand-in model: class scores from a fixed random projection of the audio features (no training)."""

    def __init__(self, n_in: int, n_classes: int) -> None:
        self.weights = np.random.default_rng(0).standard_normal((n_in, n_classes))

    def posteriors(self, data, batch_size: int = 8192, kept=None) -> np.ndarray:
        scores = np.asarray(data.features["audio"]) @ self.weights
        return np.exp(scores - scores.max(1, keepdims=True))


def test_several_noise_draws_are_independent_and_pooled_per_utterance(test_split, tmp_path):
    """noise_draws=2: each utterance once in the counts, its two draws' errors summed; draw 0 is the
    one-draw evaluation and draw 1 a new noise (checked against that draw scored directly)."""
    from avfusion.configs import configured
    from avfusion.decoding.framewise import FramewiseDecoder

    frontend, utterances, clean, noise = test_split
    scheme = get_scheme("phone")
    model = Projection(clean.features["audio"].shape[1], scheme.num_classes)

    def rows(draws):
        evaluator = configured("evaluation", noises=["white"], snrs_db=[0], noise_draws=draws)
        return evaluator.evaluate({"m": model}, frontend, utterances, scheme, {"m": FramewiseDecoder(scheme, 2)},
                                  noise=noise, cache_dir=tmp_path)["m"]

    (clean_row, one), (_, two) = rows(1), rows(2)
    assert two["utterances"] == len(utterances) and two["noise_draws"] == 2 and two["frames"] == 2 * clean_row["frames"]
    d1, d2 = one["by_utterance"], two["by_utterance"]
    assert d2["id"] == d1["id"] == list(clean.ids) and d2["frames"] == [2 * n for n in d1["frames"]]
    second = noisy_frames(frontend, clean, utterances, NoiseCondition("white", 0.0, draw=1), noise, tmp_path)
    first = noisy_frames(frontend, clean, utterances, NoiseCondition("white", 0.0), noise, tmp_path)
    assert not np.allclose(second.features["audio"], first.features["audio"])  # another noise
    wrong = model.posteriors(second).argmax(1) != np.asarray(second.labels)
    by_utterance = [int(wrong[second.utterance(u)].sum()) for u in range(len(second.ids))]
    assert d2["frame_errors"] == [a + b for a, b in zip(d1["frame_errors"], by_utterance)]
    assert two["frame_error"] == pytest.approx(sum(d2["frame_errors"]) / sum(d2["frames"]))


def test_a_decoding_that_deletes_or_inserts_most_of_the_reference_is_warned_about(test_split, tmp_path, caplog):
    from avfusion.configs import configured
    from avfusion.decoding.framewise import FramewiseDecoder

    frontend, utterances, clean, noise = test_split
    scheme = get_scheme("phone")

    class Oracle:  # the reference labels as posteriors: a perfect decoding
        def posteriors(self, data, batch_size: int = 8192, kept=None) -> np.ndarray:
            return np.eye(scheme.num_classes)[np.asarray(data.labels)]

    evaluator = configured("evaluation", noises=["white"], snrs_db=[0])
    random = Projection(clean.features["audio"].shape[1], scheme.num_classes)
    for model, min_frames, said in ((Oracle(), 2, None), (Oracle(), 10**6, "deletions"), (random, 2, "insertions")):
        caplog.clear()  # min_frames 10**6: no run is that long, every unit is dropped
        rows = evaluator.evaluate({"m": model}, frontend, utterances, scheme, {"m": FramewiseDecoder(scheme, min_frames)},
                                  noise=noise, cache_dir=tmp_path, split="test")["m"]
        warnings = [r.message for r in caplog.records if "degenerate decoding" in r.message]
        if said is None:
            assert warnings == [] and all(r["per"] == 0 for r in rows)
        else:
            (warning,) = warnings
            assert warning.startswith(f"m on test: {said} exceed half of the reference phones in clean (")
            assert "white 0 dB (" in warning and "decoding.tune=per_condition" in warning
    assert all(r["insertion_rate"] > 0.5 for r in rows)


def test_an_evaluated_split_built_in_batches_is_the_split_built_at_once_and_a_killed_build_leaves_nothing(
        test_split, tmp_path, monkeypatch):
    """frontend.fit_batch_utterances: the clean frames of an evaluated split are built a few utterances at a time
    into the cache (float32) and read memory-mapped; a build that dies leaves no folder under the key, and the
    next evaluation builds it again."""
    from avfusion.evaluation import conditions

    frontend, utterances, clean, _ = test_split
    labeller = FrameLabeller(get_scheme("phone"))
    monkeypatch.setattr(frontend, "fit_batch_utterances", 2, raising=False)
    real_save = conditions.save_in_batches

    def dies(frontend, utterances, labeller, directory, dtype, batch):
        real_save(frontend, utterances[:batch], labeller, directory, dtype, batch)  # some of it written
        raise KeyboardInterrupt

    monkeypatch.setattr(conditions, "save_in_batches", dies)
    with pytest.raises(KeyboardInterrupt):
        conditions.evaluated_frames(frontend, utterances, labeller, tmp_path)
    assert not [p for p in (tmp_path / "evaluated").iterdir() if not p.name.startswith(".")]
    monkeypatch.setattr(conditions, "save_in_batches", real_save)
    built = conditions.evaluated_frames(frontend, utterances, labeller, tmp_path)
    assert isinstance(built.features["audio"], np.memmap) and built.ids == clean.ids
    for m, x in clean.features.items():
        np.testing.assert_array_equal(built.features[m], x)
    np.testing.assert_array_equal(built.labels, clean.labels)
    monkeypatch.setattr(type(frontend), "transform", lambda *a, **k: pytest.fail("built again"))
    again = conditions.evaluated_frames(frontend, utterances, labeller, tmp_path)
    np.testing.assert_array_equal(again.features["audio"], clean.features["audio"])
