"""Decoders: the Viterbi search against an exhaustive search and against librosa's Viterbi on the same
model, the unit language model, the hybrid decoder's topology, tuning and its saved state."""

import itertools
import json
from types import SimpleNamespace

import numpy as np
import pytest

from avfusion.configs import configured
from avfusion.corpus.labels import get_scheme
from avfusion.decoding import hybrid
from avfusion.decoding.hybrid import DecoderParams, HybridDecoder, ViterbiSettings, emission_matrix
from avfusion.decoding.lm import UnitLanguageModel
from avfusion.metrics.per import per
from avfusion.decoding.viterbi import ViterbiSearch, decoded_units, dense_loop, search_grid, viterbi
from avfusion.frames.data import FrameData


def viterbi_settings(**values) -> ViterbiSettings:
    """conf/decoding/viterbi.yaml's decoder settings with `values` changed."""
    return configured("decoding", "decoding=viterbi", **values).settings


def random_model(rng, n_units, n_states):
    stay = rng.uniform(0.2, 0.8, n_units)
    log_stay = np.repeat(np.log(stay)[:, None], n_states, axis=1)
    log_move = np.repeat(np.log1p(-stay)[:, None], n_states, axis=1)
    lm = UnitLanguageModel.fit([rng.integers(0, n_units, 6).tolist() for _ in range(4)], n_units)
    return log_stay, log_move, lm


def path_score(path, loglik, log_stay, log_move, cross, start, end):
    """Score of one flat-state path under the loop model, or -inf if the topology forbids it."""
    n_frames, n_units, n_states = loglik.shape
    u, k = divmod(path[0], n_states)
    if k != 0:
        return -np.inf
    score = start[u] + loglik[0, u, k]
    for t in range(1, n_frames):
        (pu, pk), (u, k) = divmod(path[t - 1], n_states), divmod(path[t], n_states)
        options = []
        if (u, k) == (pu, pk):
            options.append(log_stay[u, k])
        if u == pu and k == pk + 1:
            options.append(log_move[u, pk])
        if k == 0 and pk == n_states - 1:
            options.append(log_move[pu, pk] + cross[pu, u])
        if not options:
            return -np.inf
        score += max(options) + loglik[t, u, k]
    u, k = divmod(path[-1], n_states)
    return score + log_move[u, k] + end[u] if k == n_states - 1 else -np.inf


@pytest.mark.parametrize("n_units,n_states,n_frames", [(2, 2, 6), (3, 1, 6), (2, 3, 7), (3, 2, 5)])
def test_viterbi_equals_exhaustive_search(rng, n_units, n_states, n_frames):
    for trial in range(5):
        log_stay, log_move, lm = random_model(rng, n_units, n_states)
        loglik = np.log(rng.dirichlet(np.ones(n_units * n_states), n_frames)).reshape(n_frames, n_units, n_states)
        weight, penalty = rng.uniform(0.5, 2), rng.uniform(-1, 1)
        args = (log_stay, log_move, weight * lm.log_next - penalty, weight * lm.log_start - penalty, weight * lm.log_end)
        path, units, score = viterbi(loglik, *args)
        best = max(itertools.product(range(n_units * n_states), repeat=n_frames),
                   key=lambda p: path_score(p, loglik, *args))
        assert score == pytest.approx(path_score(best, loglik, *args))
        assert score == pytest.approx(path_score(path, loglik, *args))
        assert list(path) == list(best)
        # the units traversed, with their frames
        assert units[0].start == 0 and units[-1].end == n_frames
        assert all(a.end == b.start for a, b in zip(units, units[1:]))
        for unit in units:
            assert {int(s) // n_states for s in path[unit.start:unit.end]} == {unit.unit}
            assert path[unit.start] % n_states == 0


@pytest.mark.parametrize("kind", ["unigram", "none"])
def test_a_loop_whose_entries_ignore_the_history_takes_the_fast_path_to_the_same_result(rng, kind):
    n_units, n_states, n_frames = 6, 3, 60
    log_stay, log_move, _ = random_model(rng, n_units, n_states)
    lm = UnitLanguageModel.fit([rng.integers(0, n_units, 9).tolist() for _ in range(6)], n_units, kind)
    assert np.allclose(lm.log_next, lm.log_next[:1])
    loglik = np.log(rng.dirichlet(np.full(n_units * n_states, 0.3), n_frames)).reshape(n_frames, n_units, n_states)
    full = viterbi(loglik, log_stay, log_move, 1.5 * lm.log_next - 0.7, lm.log_start, lm.log_end)
    fast = viterbi(loglik, log_stay, log_move, 1.5 * lm.log_next[:1] - 0.7, lm.log_start, lm.log_end)
    assert list(full[0]) == list(fast[0]) and full[2] == pytest.approx(fast[2])


@pytest.mark.parametrize("spill", [False, True])
def test_the_search_a_block_at_a_time_equals_one_pass(rng, tmp_path, spill):
    """A long recording is decoded as its posteriors come (backpointers in a file): the same path, units
    and score as one search over all its frames, whatever the block sizes (1 frame, fewer than S, many)."""
    n_units, n_states, n_frames = 5, 3, 400
    log_stay, log_move, lm = random_model(rng, n_units, n_states)
    loglik = np.log(rng.dirichlet(np.full(n_units * n_states, 0.3), n_frames)).reshape(n_frames, n_units, n_states)
    args = (log_stay, log_move, 1.2 * lm.log_next - 0.5, lm.log_start, lm.log_end)
    whole = viterbi(loglik, *args)
    search = ViterbiSearch(*args, spill=tmp_path / "back.bin" if spill else None)
    edges = [0, 1, 2, 3, 50, 51, 199, 400]
    for lo, hi in zip(edges, edges[1:]):
        search.push(loglik[lo:hi])
    path, units, score = search.finish()
    assert list(path) == list(whole[0]) and units == whole[1] and score == whole[2]
    assert len(units) > 10 and not list(tmp_path.iterdir())  # a real path; the spill file is removed
    short = ViterbiSearch(*args)  # fewer frames than states: the most likely unit
    short.push(loglik[:2])
    assert short.finish()[1] == viterbi(loglik[:2], *args)[1]


@pytest.mark.parametrize("kind", ["bigram", "unigram"])
def test_many_utterances_at_many_settings_searched_at_once_get_the_paths_each_gets_alone(rng, kind):
    """What dev tuning runs over its grid: utterances of any length (shorter than S frames too) at several
    acoustic scales, LM weights and penalties, one call, in parallel and vectorised over the settings: the
    same paths and units as `viterbi` of each utterance at each setting alone (its pruning is exact)."""
    n_units, n_states = 7, 3
    log_stay, log_move, _ = random_model(rng, n_units, n_states)
    lm = UnitLanguageModel.fit([rng.integers(0, n_units, 9).tolist() for _ in range(6)], n_units, kind)
    cross = lm.log_next if kind == "bigram" else lm.log_next[:1]
    settings = [(0.3, 0.5, -2.0), (0.7, 1.3, 0.4), (1.0, 3.0, 2.0), (2.0, 1.0, 0.0), (0.7, 1.3, -6.0)]
    arcs = [(w * cross - p, w * lm.log_start - p, w * lm.log_end) for _, w, p in settings]
    lengths = [50, 1, 2, 3, 120, 0, 9]
    logliks = [np.log(rng.dirichlet(np.full(n_units * n_states, 0.3), n)).reshape(n, n_units, n_states)
               for n in lengths]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    paths, entered = search_grid(np.concatenate(logliks), offsets, [a for a, _, _ in settings], log_stay, log_move,
                                 *(np.stack(x) for x in zip(*arcs)))
    assert paths.shape == (len(settings), offsets[-1])
    decodings = set()
    for g, ((scale, _, _), arc) in enumerate(zip(settings, arcs)):
        for x, a, b in zip(logliks, offsets[:-1], offsets[1:]):
            alone = viterbi(scale * x, log_stay, log_move, *arc)
            assert list(paths[g, a:b]) == list(alone[0])
            assert decoded_units(paths[g, a:b], entered[g, a:b], n_states) == alone[1]
        decodings.add(tuple(paths[g]))
    assert len(decodings) > 2  # the settings decode differently: each was searched at its own
    with pytest.raises(ValueError, match="2 scales"):
        search_grid(np.concatenate(logliks), offsets, [1.0, 2.0], log_stay, log_move, *(np.stack(x) for x in zip(*arcs)))


def test_a_bigram_over_a_large_vocabulary_is_refused_before_training():
    viterbi_settings(lm="unigram").check(20000)
    with pytest.raises(ValueError, match="lm=unigram"):
        viterbi_settings().check(20000)


@pytest.mark.parametrize("kind", ["bigram", "none"])
def test_unit_weights_reproduce_librosa_viterbi_on_the_same_topology(rng, kind):
    import librosa

    n_units, n_states, n_frames = 5, 3, 80
    log_stay, log_move, _ = random_model(rng, n_units, n_states)
    lm = UnitLanguageModel.fit([rng.integers(0, n_units, 9).tolist() for _ in range(6)], n_units, kind)
    # posteriors that mostly agree with a state sequence, so the best path is not trivial
    probs = rng.dirichlet(np.full(n_units * n_states, 0.3), n_frames)
    trans, init = dense_loop(log_stay, log_move, lm.log_next, lm.log_start, lm.log_end)
    assert np.allclose(trans.sum(axis=1), 1)
    observed = np.vstack([np.hstack([probs, np.zeros((n_frames, 1))]), np.eye(n_units * n_states + 1)[-1]])
    expected = librosa.sequence.viterbi(observed.T, trans, p_init=init)
    path, _, _ = viterbi(np.log(probs).reshape(n_frames, n_units, n_states), log_stay, log_move, lm.log_next,
                         lm.log_start, lm.log_end)
    assert expected[-1] == n_units * n_states and list(path) == list(expected[:-1])


def test_language_model_rows_are_distributions_and_bigram_hand_case():
    seqs = [[0, 1, 0, 1], [0, 2]]
    for kind in ("bigram", "unigram", "none"):
        lm = UnitLanguageModel.fit(seqs, 3, kind)
        assert np.exp(lm.log_start).sum() == pytest.approx(1)
        assert np.allclose(np.exp(lm.log_next).sum(axis=1) + np.exp(lm.log_end), 1)
    lm = UnitLanguageModel.fit(seqs, 3, "bigram", discount=0.5)
    # events 0, 1, 2, </s> counted 3, 2, 1, 2 of 8: add-one unigram (4, 3, 2, 3) / 12
    unigram = np.array([4, 3, 2, 3]) / 12
    # history 0 was followed by 1 twice and 2 once (3 events, 2 distinct)
    expected = np.maximum(np.array([0, 2, 1, 0]) - 0.5, 0) / 3 + 0.5 * 2 / 3 * unigram
    assert np.allclose(np.exp(np.append(lm.log_next[0], lm.log_end[0])), expected)
    with pytest.raises(ValueError, match="lm='trigram'"):
        UnitLanguageModel.fit(seqs, 3, "trigram")


def test_emission_topology_of_each_scheme():
    phone = get_scheme("phone")
    m, covered = emission_matrix(phone, 3)
    assert m.shape == (39, 117) and covered.all()
    aa = phone.classes.index("aa")
    assert m[aa].nonzero()[1].tolist() == [3 * aa, 3 * aa + 1, 3 * aa + 2]  # three states share the phone
    states = get_scheme("phone_state")
    m, covered = emission_matrix(states, 3)
    aa = states.units.index("aa")
    assert [states.classes[c] for c in m[:, 3 * aa + 1].nonzero()[0]] == ["aa_m"]
    sil = states.units.index("sil")
    assert [states.classes[c] for c in m[:, 3 * sil + 2].nonzero()[0]] == ["sil"]


def toy_decoder(settings=None):
    scheme = get_scheme("phone")
    rng = np.random.default_rng(1)
    labels = np.repeat(rng.integers(0, 39, 400), rng.integers(3, 13, 400))  # phones of 3 to 12 frames
    offsets = np.array([0, len(labels) // 2, len(labels)])
    sequences = [rng.integers(0, 39, 30).tolist() for _ in range(20)]
    return HybridDecoder.fit(settings or viterbi_settings(), scheme, labels, offsets, sequences), scheme


def test_scaled_likelihoods_are_posteriors_over_priors_laid_out_for_the_search():
    """log p(state | x) - log p(state) per state, C-ordered (the search copies any other layout at every grid
    point of a tuning; benchmarks/viterbi_decoding.py measures it)."""
    decoder, scheme = toy_decoder()
    post = np.random.default_rng(2).dirichlet(np.ones(39), 50)
    loglik = decoder.state_loglik(post)
    assert loglik.shape == (50, 39, 3) and loglik.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(loglik[:, :, 1], np.log(post) - decoder.log_prior[None, :], rtol=1e-12)


def test_sharp_posteriors_decode_to_their_runs_with_a_flat_loop():
    settings = viterbi_settings(lm="none", prior_exponent=0.0)
    decoder, scheme = toy_decoder(settings)
    decoder.params = DecoderParams(1.0, 1.0, 0.0)
    truth = [("sil", 10), ("hh", 4), ("ah", 6), ("ah", 5), ("l", 3), ("ow", 12), ("sil", 8)]
    frames = [scheme.units.index(p) for p, n in truth for _ in range(n)]
    post = np.full((len(frames), 39), 1e-4)
    post[np.arange(len(frames)), frames] = 1.0
    decoded = decoder.decode(post / post.sum(axis=1, keepdims=True))
    # the runs, with adjacent equal phones merged (nothing in the posteriors separates them)
    assert [scheme.units[u.unit] for u in decoded] == ["sil", "hh", "ah", "l", "ow", "sil"]
    assert [u.end - u.start for u in decoded] == [10, 4, 11, 3, 12, 8]


def test_a_one_frame_blip_cannot_be_a_phone():
    decoder, scheme = toy_decoder(viterbi_settings(lm="none", prior_exponent=0.0))
    decoder.params = DecoderParams(1.0, 1.0, 0.0)
    frames = [0] * 6 + [5] + [0] * 6
    post = np.full((len(frames), 39), 1e-3)
    post[np.arange(len(frames)), frames] = 1.0
    assert [u.unit for u in decoder.decode(post)] == [0]


def test_tuning_picks_the_grid_point_of_lowest_error_and_saves(tmp_path, monkeypatch):
    monkeypatch.setattr(hybrid, "GRID_BATCH", 7)  # the grid searched in batches, the last one partial
    decoder, scheme = toy_decoder()
    assert len(decoder.grid()) % 7
    rng = np.random.default_rng(2)
    posts, refs = [], []
    for _ in range(3):
        phones = rng.integers(0, 38, 12)
        frames = np.repeat(phones, rng.integers(3, 9, 12))
        post = rng.dirichlet(np.full(39, 0.5), len(frames))
        post[np.arange(len(frames)), frames] += 1.0
        posts.append(post / post.sum(axis=1, keepdims=True))
        refs.append([scheme.units[p] for p in phones])
    params = decoder.tune(posts, refs)
    table = decoder.table(["clean"])
    assert len(table) == len(decoder.grid())
    logliks = [decoder.state_loglik(p) for p in posts]  # the table: each utterance decoded alone, scored
    assert [r["error_rate"] for r in table] == [
        per(zip(refs, [decoder.scored_units(decoder.search(x, q)) for x in logliks])).rate for q in decoder.grid()]
    best = min(r["error_rate"] for r in table)
    row = next(r for r in table if DecoderParams(r["acoustic_scale"], r["lm_weight"],
                                                             r["insertion_penalty"]) == params)
    assert row["error_rate"] == best
    decoder.save(tmp_path)
    loaded = HybridDecoder.load(tmp_path, scheme)
    assert loaded.params == params and loaded.settings == decoder.settings
    assert all(u == v for u, v in zip(loaded.decode(posts[0]), decoder.decode(posts[0])))


def test_settings_errors_name_the_key():
    with pytest.raises(ValueError, match="decoding.lm='trigram'"):
        viterbi_settings(lm="trigram")
    with pytest.raises(ValueError, match=r"decoding.insertion_penalties=\[\]: must be a non-empty list"):
        viterbi_settings(insertion_penalties=[])


def test_score_counts_edits_against_the_uncollapsed_reference():
    from avfusion.decoding.framewise import FramewiseDecoder
    from avfusion.evaluation.evaluate import score
    from avfusion.frames.data import FrameData
    from avfusion.frames.labelling import Reference

    scheme = get_scheme("phone")
    ids = [scheme.units.index(p) for p in ("sil", "ah", "t", "iy", "sil")]
    frames = np.repeat(ids, [4, 6, 3, 5, 4])
    data = FrameData({"audio": np.zeros((len(frames), 1))}, frames, np.array([0, len(frames)]), ["u"], ["s"])
    # reference "ah ah t iy": the decoding "ah t iy" misses one ah (a deletion a collapsed reference would hide)
    ref = Reference(["sil", "ah", "ah", "t", "iy", "sil"], np.array([[4, 7], [7, 10], [10, 13], [13, 18]]),
                    np.array([ids[1], ids[1], ids[2], ids[3]]))
    row = score(np.eye(39)[frames], data, [ref], scheme, FramewiseDecoder(scheme, 1))
    assert (row["substitutions"], row["deletions"], row["insertions"]) == (0, 1, 0)
    assert row["per"] == pytest.approx(1 / 4) and row["reference_phones"] == 4
    assert row["deletion_rate"] == pytest.approx(1 / 4)


@pytest.fixture(scope="module")
def decoder_run(tiny_root):
    """A tiny audio-only run trained with the fitting and tuning of its decoder spied on."""
    from avfusion import api
    from avfusion.decoding.hybrid import ViterbiDecoding

    from conftest import tiny_overrides
    from test_configs import compose_train

    seen = {}
    fit, tune = ViterbiDecoding.fit, ViterbiDecoding.tuned_for

    def spy_fit(self, scheme, utterances, train):
        seen["fit"] = ({u.split for u in utterances}, list(train.ids))
        return fit(self, scheme, utterances, train)

    def spy_tune(self, fitted, dev_posteriors, dev, utterances, conditions):
        seen["tune"] = ({u.split for u in utterances}, list(dev.ids), {len(dev_posteriors(c)) for c in conditions},
                        conditions, self.tune)
        return tune(self, fitted, dev_posteriors, dev, utterances, conditions)

    cfg = compose_train(*tiny_overrides(tiny_root), "fusion=audio_only", "trainer.max_epochs=1",
                        "evaluation.noises=[white]")
    run_dir = tiny_root / "run_decoder_spy"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ViterbiDecoding, "fit", spy_fit)
        patch.setattr(ViterbiDecoding, "tuned_for", spy_tune)
        report = api.train(cfg, run_dir=run_dir)
    return cfg, run_dir, report, seen


def test_decoder_fitted_on_train_tuned_on_dev_and_saved_with_the_run(decoder_run):
    from avfusion import api
    from avfusion.runs import load_run

    cfg, run_dir, report, seen = decoder_run
    corpus, _ = api.load_corpus(cfg)
    dev = corpus.split("dev")
    assert seen["fit"] == ({"train"}, [u.id for u in corpus.split("train")])
    assert seen["tune"][:2] == ({"dev"}, [u.id for u in dev])
    # every dev frame in every evaluated condition, whatever the policy (each policy's point is kept)
    conditions = [r["condition"] for r in report["test"]]
    assert seen["tune"][2:] == ({len(api.prepare(cfg, corpus)[1]["dev"])}, conditions, "pooled")
    for row in report["test"]:
        assert row["substitutions"] + row["deletions"] + row["insertions"] == round(row["per"] * row["reference_phones"])
        assert row["per_framewise"] > 0
    run = load_run(run_dir)
    assert report["evaluation"]["decoder"] == "viterbi"
    assert report["evaluation"]["tuned"] == {"acoustic_scale": run.decoder.params.acoustic_scale,
                                             "lm_weight": run.decoder.params.lm_weight,
                                             "insertion_penalty": run.decoder.params.insertion_penalty}
    assert run.decoder.tuning == "pooled" and report["evaluation"]["tuning"] == "pooled"  # the default
    assert sorted(run.decoder.dev_errors) == sorted(conditions)
    assert all(len(c["errors"]) == len(run.decoder.grid()) for c in run.decoder.dev_errors.values())
    points = report["evaluation"]["tuned_by_policy"]
    assert set(points) == {"clean", "pooled", "per_condition"} and set(points["per_condition"]) == set(conditions)
    assert {k: points["pooled"][k] for k in report["evaluation"]["tuned"]} == report["evaluation"]["tuned"]


def test_evaluate_reuses_a_runs_decoder_and_retunes_on_dev_when_settings_change(decoder_run, monkeypatch):
    from avfusion import api
    from avfusion.configs import compose_config
    from avfusion.decoding.hybrid import ViterbiDecoding

    _, run_dir, _, _ = decoder_run
    tuned = []
    tune = ViterbiDecoding.tuned_for

    def spy_tune(self, fitted, dev_posteriors, dev, utterances, conditions):
        tuned.append({u.split for u in utterances})
        return tune(self, fitted, dev_posteriors, dev, utterances, conditions)

    monkeypatch.setattr(ViterbiDecoding, "tuned_for", spy_tune)

    def evaluate(*overrides):
        return api.evaluate(compose_config("evaluate", [f"run_dirs=[{run_dir}]", "evaluation.noises=[white]",
                                                        "evaluation.snrs_db=[0]", *overrides]))

    saved = (run_dir / "decoder.json").read_text()
    report = evaluate()
    assert tuned == [] and report["evaluation"]["viterbi"]["lm"] == "bigram"  # the run's own decoder
    run = json.loads(saved)
    for policy in ("clean", "per_condition"):  # another policy's points were kept: nothing tuned again
        report = evaluate(f"decoding.tune={policy}", f"output_dir={run_dir / policy}")
        assert tuned == [] and report["evaluation"]["tuning"] == policy
    assert report["evaluation"]["tuned_by_condition"]["clean"] == {
        k: run["points"]["per_condition"]["clean"][k] for k in ("acoustic_scale", "lm_weight", "insertion_penalty")}
    evaluate("evaluation.noises=[]")  # pooled over other conditions than the run's: tuned again
    assert tuned == [{"dev"}]
    tuned.clear()
    report = evaluate("decoding.lm=none")
    assert tuned == [{"dev"}] and report["evaluation"]["viterbi"]["lm"] == "none"
    assert report["evaluation"]["tuned"]["lm_weight"] == 1.0  # a flat loop has no weight to tune
    assert (run_dir / "decoder.json").read_text() == saved  # the run keeps the decoder it was trained with


def test_every_run_saves_the_decoder_it_was_evaluated_with_framewise_too(tiny_root):
    """decoding=framewise is a component like viterbi: saved in the run, reloaded, named in the report and
    used by predict (not a silent default)."""
    from avfusion import api
    from avfusion.decoding.framewise import FramewiseDecoder

    from conftest import tiny_overrides
    from test_configs import compose_train

    run_dir = tiny_root / "run_framewise_saved"
    cfg = compose_train(*tiny_overrides(tiny_root), "fusion=audio_only", "trainer.max_epochs=1",
                        "evaluation.noises=[]", "decoding=framewise", "decoding.min_frames=3")
    report = api.train(cfg, run_dir=run_dir)
    assert json.loads((run_dir / "decoder.json").read_text()) == {"decoder": "framewise", "min_frames": 3}
    assert report["evaluation"]["decoder"] == "framewise" and report["evaluation"]["min_frames"] == 3
    assert "Decoder: framewise (runs under 3 frames dropped)." in (run_dir / "report.md").read_text()
    assert "per_framewise" not in report["test"][0]  # nothing beside it
    run = api.load_run(run_dir)
    assert isinstance(run.decoder, FramewiseDecoder) and run.decoder.min_frames == 3
    corpus, _ = api.load_corpus(run.config)
    utt = corpus.split("test")[0]
    prediction = api.predict(run_dir, video=utt.video, audio=utt.audio)
    assert prediction.decoder == "framewise"
    assert prediction.decoded == FramewiseDecoder(run.scheme, 3).decode(prediction.posteriors)


def test_a_viterbi_run_missing_its_arrays_is_named_not_decoded_framewise(decoder_run, tmp_path):
    import shutil

    from avfusion.errors import UserError
    from avfusion.runs import load_run

    _, run_dir, _, _ = decoder_run
    broken = tmp_path / "run"
    shutil.copytree(run_dir, broken)
    (broken / "decoder.npz").unlink()
    with pytest.raises(UserError, match=r"decoder.npz: missing, so the run's viterbi decoder .* is incomplete"):
        load_run(broken)
    (broken / "decoder.json").write_text('{"decoder": "beam"}')
    with pytest.raises(UserError, match=r"decoder 'beam' is not one this avfusion reads \(\['framewise', 'viterbi'\]\)"):
        load_run(broken)


def test_predict_on_a_run_without_a_saved_decoder_says_it_decodes_framewise(decoder_run, tmp_path, caplog):
    import shutil

    from avfusion import api

    cfg, run_dir, _, _ = decoder_run
    bare = tmp_path / "run"
    shutil.copytree(run_dir, bare)
    for name in ("decoder.json", "decoder.npz"):
        (bare / name).unlink()
    corpus, _ = api.load_corpus(cfg)
    utt = corpus.split("test")[0]
    with caplog.at_level("WARNING", logger="avfusion.inference.predict"):
        prediction = api.predict(bare, video=utt.video, audio=utt.audio)
    assert prediction.decoder == "framewise" and "has no saved decoder (decoder.json" in caplog.text


@pytest.mark.parametrize("policy", ["clean", "pooled", "per_condition"])
def test_each_tuning_policy_tunes_on_the_dev_posteriors_of_its_conditions_only(policy, monkeypatch):
    """Each condition's grid is decoded from that condition's dev posteriors only; per_condition's decoder of a
    condition is the best point of that condition's grid, pooled's the best of the summed grids, clean's the
    clean grid's; every policy's point is kept whichever one the run uses."""
    from avfusion.decoding.base import PerCondition
    from avfusion.decoding.hybrid import HybridDecoder

    decoder, _ = toy_decoder()
    grid = decoder.grid()
    conditions = ["clean", "white 10 dB", "babble 0 dB"]
    arrays = {c: np.full((4, 3), i, np.float32) for i, c in enumerate(conditions)}
    best = {0: 3, 1: 7, 2: 11}  # condition i's grid is lowest at point best[i] (error 0 of 100); pooled: point 7

    def dev_posteriors(condition):
        return arrays[condition]

    def grid_counts(self, posteriors, references):
        (i,) = {int(p[0, 0]) for p in posteriors}  # one condition's posteriors, never mixed
        errors = [0 if j == best[i] else 60 - 10 * (j in best.values()) for j in range(len(grid))]
        errors[7] = min(errors[7], 5)
        return {"reference_length": 100, "errors": errors, "insertions": errors, "deletions": [0] * len(grid)}

    monkeypatch.setattr(HybridDecoder, "grid_counts", grid_counts)
    dev = FrameData({"audio": np.zeros((4, 1))}, np.zeros(4, np.int64), np.array([0, 2, 4]), ["a", "b"], ["s", "s"])
    monkeypatch.setattr("avfusion.decoding.hybrid.split_references",
                        lambda labeller, utterances, data: [SimpleNamespace(units=["ah"])] * 2)
    decoding = configured("decoding", "decoding=viterbi", tune=policy)
    tuned = decoding.tuned_for(decoder, dev_posteriors, dev, [], conditions)
    at = {c: grid[best[i]] for i, c in enumerate(conditions)}
    if policy == "per_condition":
        assert isinstance(tuned, PerCondition) and decoding.label() == " [tuned per condition]"
        assert {c: tuned.for_condition(c).params for c in conditions} == at
        assert tuned.for_condition("white 10 dB").tuning == "per_condition: white 10 dB"
        points = tuned.saved.points
    else:
        assert tuned.params == (at["clean"] if policy == "clean" else grid[7]) and tuned.tuning == policy
        assert decoding.label() == ""
        points = tuned.points
    assert (DecoderParams.of(points["clean"]), DecoderParams.of(points["pooled"])) == (at["clean"], grid[7])
    assert {c: DecoderParams.of(p) for c, p in points["per_condition"].items()} == at


def test_a_finished_run_is_decoded_again_under_another_policy_without_training(decoder_run, tmp_path, monkeypatch):
    """Same model, same posteriors: the frame error of every condition is the run's; the decoded rate is the
    policy's own, its chosen points are reported, and the decoder is not fitted again."""
    from avfusion import api
    from avfusion.configs import compose_config
    from avfusion.decoding.hybrid import ViterbiDecoding

    cfg, run_dir, trained, _ = decoder_run
    monkeypatch.setattr(ViterbiDecoding, "fit", lambda *a: pytest.fail("the run's fitted decoder is reused"))
    reports = {}
    for policy in ("pooled", "per_condition"):
        reports[policy] = api.evaluate(compose_config("evaluate", [
            f"run_dirs=[{run_dir}]", "evaluation.noises=[white]", "evaluation.snrs_db=[0]", f"decoding.tune={policy}",
            f"output_dir={tmp_path / policy}"]))
    for policy, report in reports.items():  # `trained`: the run's report when it was trained (clean tuning)
        assert [r["frame_error"] for r in report["test"]] == [r["frame_error"] for r in trained["test"]]
        assert report["evaluation"]["tuning"] == policy and report["evaluation"]["tune"] == policy
    per_condition = reports["per_condition"]
    assert per_condition["name"].endswith("[tuned per condition]")
    assert set(per_condition["evaluation"]["tuned_by_condition"]) == {r["condition"] for r in per_condition["test"]}
    assert "assume the test condition is known" in (tmp_path / "per_condition" / "report.md").read_text()
    assert (run_dir / "decoder.json").is_file() and not (tmp_path / "pooled" / "decoder.json").exists()


def test_a_model_whose_inputs_a_condition_leaves_alone_is_not_run_or_tuned_again_there(tiny_root, monkeypatch):
    """A video-only run in audio noise: one forward pass per split (the clean one; the dev rows reuse the dev
    tuning's), one grid per dev set, and the very report that running it all in every condition gives."""
    from avfusion import api
    from avfusion.configs import compose_config
    from avfusion.decoding.hybrid import HybridDecoder
    from avfusion.evaluation import evaluate as evaluation
    from avfusion.training.module import FusionModule

    from test_predict import _train

    run_dir = _train(tiny_root, "video_only")
    passes, grids = [], []
    forward, grid = FusionModule.posteriors, HybridDecoder.grid_counts
    monkeypatch.setattr(FusionModule, "posteriors", lambda self, *a: passes.append(1) or forward(self, *a))
    monkeypatch.setattr(HybridDecoder, "grid_counts", lambda self, *a: grids.append(1) or grid(self, *a))

    def evaluate(name):
        return api.evaluate(compose_config("evaluate", [
            f"run_dirs=[{run_dir}]", "evaluation.noises=[white,babble]", "evaluation.snrs_db=[0,10]", "noise.babble.talkers=3",
            "evaluation.report_dev=true", f"output_dir={tiny_root / name}"]))

    reused = evaluate("reused")
    assert (len(passes), len(grids)) == (2, 1)  # clean only: dev (tuning; the dev rows reuse it), test
    monkeypatch.setattr(evaluation, "same_inputs", lambda *a: False)
    evaluate_all = evaluation.Evaluator.evaluate
    monkeypatch.setattr(evaluation.Evaluator, "evaluate", lambda self, *a, known=None, **k: evaluate_all(self, *a, **k))
    passes.clear(), grids.clear()
    every = evaluate("every")
    assert len(passes) == 3 * 5 and len(grids) == 5  # all in all five conditions, the dev rows computed again
    assert reused["test"] == every["test"] and reused["dev"] == every["dev"]
    assert reused["evaluation"]["tuned_by_policy"] == every["evaluation"]["tuned_by_policy"]


def test_an_encoder_whose_input_a_condition_leaves_alone_runs_once_per_split(tiny_root, monkeypatch):
    """concat in audio noise: the video encoder runs on clean dev and clean test only, its outputs reused in
    every noisy condition; the report is the one running it everywhere gives."""
    from avfusion import api
    from avfusion.configs import compose_config
    from avfusion.models.encoders import EncoderOutputs

    from test_predict import _train

    run_dir = _train(tiny_root, "concat")
    ran = []
    kept_of = EncoderOutputs.of

    def spied(self, encoder, inputs, compute):
        return kept_of(self, encoder, inputs, lambda: ran.append(tuple(encoder.inputs)) or compute())

    def evaluate(name):
        return api.evaluate(compose_config("evaluate", [
            f"run_dirs=[{run_dir}]", "evaluation.noises=[white]", "evaluation.snrs_db=[0,10]",
            "evaluation.report_dev=true", f"output_dir={tiny_root / name}"]))

    monkeypatch.setattr(EncoderOutputs, "of", spied)
    reused = evaluate("reused")
    assert ran.count(("video",)) == 2  # clean dev (tuning; the dev rows reuse it) and clean test
    assert ran.count(("audio",)) == 2 * 3  # every condition of both splits
    monkeypatch.setattr(EncoderOutputs, "of", lambda self, encoder, inputs, compute: compute())
    every = evaluate("every")
    assert reused["test"] == every["test"] and reused["dev"] == every["dev"]
