"""The positive control for audio-visual interaction (avfusion.synth.interaction): phone pairs whose labels
sound and look alike and differ only in the sign of their tokens' audio-visual coupling."""

import json

import numpy as np
import pytest

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.types import Segment
from avfusion.synth import interaction, vocal_tract
from avfusion.synth.generator import SyntheticCorpus

from conftest import small_synthetic


def test_a_tokens_coupling_may_be_given_per_token_and_mirrored():
    rng = np.random.default_rng(0)
    coupling = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    seen, heard = vocal_tract.token_articulation(6, rng, coupling)
    np.testing.assert_array_equal(heard[::2], seen[::2])  # +1: the sound deviates as the lips do
    np.testing.assert_array_equal(heard[1::2], -seen[1::2])  # -1: the other way
    with pytest.raises(ValueError, match="coupling"):
        vocal_tract.token_articulation(3, rng, -0.5)  # one value for every token: in [0, 1]
    with pytest.raises(ValueError, match="coupling"):
        vocal_tract.token_articulation(2, rng, np.array([0.5, 1.5]))


def test_each_token_of_a_pair_gets_one_of_its_two_labels_and_the_labels_sign():
    folded = [Segment(p, i, i + 1) for i, p in enumerate(["sil", "ih", "t", "eh", "ih", "ah", "eh", "s"] * 20)]
    labels, coupling, scale = interaction.relabelled(folded, [["ih", "eh"]], 1.0, 3.0, seed=5)
    assert [s.start for s in labels] == [s.start for s in folded]
    pair = [i for i, s in enumerate(folded) if s.label in ("ih", "eh")]
    others = [i for i in range(len(folded)) if i not in pair]
    assert {labels[i].label for i in pair} == {"ih", "eh"}  # both labels, whatever was spoken
    assert {(folded[i].label, labels[i].label) for i in pair} == {(a, b) for a in ("ih", "eh") for b in ("ih", "eh")}
    assert all(labels[i] == folded[i] for i in others) and np.all(coupling[others] == 1.0) and np.all(scale[others] == 1)
    assert all(coupling[i] == (1.0 if labels[i].label == "ih" else -1.0) for i in pair) and np.all(scale[pair] == 3.0)
    again, _, _ = interaction.relabelled(folded, [["ih", "eh"]], 1.0, 3.0, seed=5)
    assert again == labels  # seeded per utterance
    assert interaction.relabelled(folded, [], 0.7, 3.0, seed=5) == (folded, 0.7, None)  # off: nothing changes


def test_a_corpus_with_pairs_writes_the_pair_labels_and_records_them(tmp_path):
    builder = small_synthetic(tmp_path / "corpus", realism={"interaction_pairs": [["ih", "eh"], ["ah", "ae"]],
                                                            "interaction_sd": 2.0})
    corpus = builder.load(progress=False)
    spoken = [s.label for u in corpus for s in utterance_labels(u)]
    assert {"ih", "eh", "ah", "ae"} <= set(spoken)
    settings = json.loads((tmp_path / "corpus" / "synth_config.json").read_text())
    assert settings["interaction_pairs"] == [["ih", "eh"], ["ah", "ae"]] and settings["interaction_sd"] == 2.0
    again = SyntheticCorpus.from_settings(str(tmp_path / "corpus"), settings, n_jobs=1)
    assert again.realism.interaction_pairs == [["ih", "eh"], ["ah", "ae"]] and again.realism.interaction_sd == 2.0
    plain = small_synthetic(tmp_path / "plain")
    assert "interaction_pairs" not in plain.settings()  # a corpus without the control keeps its settings (and key)
