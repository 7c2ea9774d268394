"""Fisher-vector and VLAD pooling, checked against scikit-image, direct formulas and finite differences."""

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

from avfusion.configs import configured
from avfusion.models.pooling import FisherVectorPooling, VladPooling

K, D = 4, 5


@pytest.fixture(scope="module")
def gmm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, D)) + rng.integers(0, 3, (3000, 1)) * 2.0
    return GaussianMixture(K, covariance_type="diag", random_state=0).fit(x)


def fv_layer(gmm, **kw) -> FisherVectorPooling:
    kw.setdefault("posterior_floor", 0.0)  # exact: every (frame, component) pair
    return FisherVectorPooling(K, D, **kw).double().set_gmm(gmm.weights_, gmm.means_, gmm.covariances_)


def whole(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(x)[None], torch.ones(1, len(x), dtype=torch.bool)


def test_fisher_vector_equals_skimage(gmm):
    from skimage.feature import fisher_vector

    rng = np.random.default_rng(1)
    descriptors = rng.normal(size=(40, D)) + 1.5
    for improved in (False, True):
        reference = fisher_vector(descriptors, gmm, improved=improved)
        layer = fv_layer(gmm, alpha_block=True, improved=improved)
        ours = layer.skimage_layout(layer.pool(*whole(descriptors)))[0].numpy()
        np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert np.linalg.norm(ours) == pytest.approx(1.0)
    # by hand: the sigma block of skimage has the opposite sign, the alpha block comes first
    raw = fisher_vector(descriptors, gmm, improved=False)
    ours = fv_layer(gmm, alpha_block=False, improved=False).pool(*whole(descriptors))[0].numpy().reshape(K, 2, D)
    np.testing.assert_allclose(ours[:, 0], raw[K:K + K * D].reshape(K, D), atol=1e-10)
    np.testing.assert_allclose(ours[:, 1], -raw[K + K * D:].reshape(K, D), atol=1e-10)


def padded(rng, lengths):
    x = torch.zeros(len(lengths), max(lengths), D, dtype=torch.float64)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.tensor(rng.normal(size=(n, D)) * 1.5 + 1)
        mask[i, :n] = True
    return x, mask


@pytest.mark.parametrize("make", [lambda g: fv_layer(g, alpha_block=True), lambda g: fv_layer(g, improved=False),
                                  lambda g: VladPooling(K, D).double().set_codebook(g.means_),
                                  lambda g: VladPooling(K, D, soft=True).double().set_codebook(g.means_)])
@pytest.mark.parametrize("half_width", [0, 3, 50])
def test_window_pooling_by_cumulative_sums_equals_pooling_each_window(gmm, make, half_width):
    layer = make(gmm)
    rng = np.random.default_rng(2)
    x, mask = padded(rng, [17, 9])  # the second sequence is padded: its windows stop at frame 9
    pooled = layer.window(x, mask, half_width)
    for b, n in enumerate([17, 9]):
        for t in range(n):
            lo, hi = max(0, t - half_width), min(n, t + half_width + 1)
            direct = layer.pool(x[b:b + 1, lo:hi], torch.ones(1, hi - lo, dtype=torch.bool))[0]
            torch.testing.assert_close(pooled[b, t], direct, atol=1e-6, rtol=1e-6)
    assert (pooled[1, 9:] == 0).all()  # padding frames get no vector


def test_the_differentiable_path_gives_the_compiled_paths_vectors(gmm):
    """Training (gradients wanted) assembles vectors with torch ops; evaluation with one compiled pass."""
    rng = np.random.default_rng(10)
    x, mask = padded(rng, [20, 13])
    for layer in (fv_layer(gmm, learnable=True, alpha_block=True), fv_layer(gmm, learnable=True, improved=False),
                  VladPooling(K, D, soft=True).double().set_codebook(gmm.means_)):
        with torch.no_grad():
            compiled = [layer.window(x, mask, 3), layer.pool(x, mask)]
        differentiable = [layer.window(x, mask, 3), layer.pool(x, mask)]
        assert differentiable[0].requires_grad
        for a, b in zip(differentiable, compiled):
            torch.testing.assert_close(a.detach(), b, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("algorithm", ["sparse", "dense"])
def test_every_window_algorithm_gives_the_same_vectors(gmm, algorithm):
    """The compiled sliding window (evaluation), dense running sums and sparse pairs (differentiable)."""
    rng = np.random.default_rng(11)
    x, mask = padded(rng, [30, 19, 4])
    layers = [fv_layer(gmm, alpha_block=True, posterior_floor=1e-8, learnable=True, window_algorithm=algorithm),
              VladPooling(K, D, soft=True, window_algorithm=algorithm).double().set_codebook(gmm.means_),
              VladPooling(K, D, window_algorithm=algorithm).double().set_codebook(gmm.means_)]
    for layer in layers:
        for half_width in (0, 2, 40):
            with torch.no_grad():
                compiled = layer.window(x, mask, half_width)  # auto, no gradient: the sliding-window kernel
            chosen = layer.window(x, mask, half_width)
            torch.testing.assert_close(chosen.detach(), compiled, atol=1e-9, rtol=1e-7)
            assert (compiled[1, 19:] == 0).all() and (compiled[2, 4:] == 0).all()


def test_auto_trains_on_dense_running_sums_only_where_most_posteriors_are_above_the_floor(gmm):
    """Where the dense running sums train faster (benchmarks/fisher_pooling.py --training-scales): more than
    DENSE_TRAINING_ABOVE of the (frame, component) pairs above the floor; padding frames do not count."""
    from avfusion.models.pooling import DENSE_TRAINING_ABOVE

    layer = fv_layer(gmm, posterior_floor=1e-8)
    mask = torch.tensor([[True] * 8 + [False] * 2])
    dense = torch.full((10, K), 0.25)
    dense[8:] = 0  # padding has no weights
    sparse = dense.clone()
    sparse[:, 1:] = 0
    assert layer.auto_algorithm(dense, mask, True, "cpu") == "dense"
    assert layer.auto_algorithm(sparse, mask, True, "cpu") == "sparse"
    at_most, above = dense.clone(), dense.clone()
    at_most[:4, 0] = 0  # 28 of the 32 pairs of the 8 frames: 0.875
    above[:3, 0] = 0  # 29 of 32: 0.906 (of all 40 rows, padding counted, it would be 0.725)
    assert DENSE_TRAINING_ABOVE == 0.9
    assert layer.auto_algorithm(at_most, mask, True, "cpu") == "sparse"
    assert layer.auto_algorithm(above, mask, True, "cpu") == "dense"
    assert layer.auto_algorithm(sparse, mask, False, "cpu") == "dense"  # evaluation: the compiled kernel
    assert layer.auto_algorithm(dense, mask, True, "cuda") == "sparse"  # not measured off the CPU: as before


def test_float32_fisher_vectors_survive_a_component_of_near_zero_variance():
    """Expanded in float32, the quadratic form of a variance-1e-8 component cancels to garbage."""
    from skimage.feature import fisher_vector

    rng = np.random.default_rng(12)
    x = np.concatenate([rng.normal(size=(400, D)), 3.0 + 1e-4 * rng.normal(size=(100, D))]).astype(np.float32)
    fitted = GaussianMixture(2, covariance_type="diag", random_state=0, reg_covar=1e-12).fit(x.astype(np.float64))
    assert fitted.covariances_.min() < 2e-8
    layer = FisherVectorPooling(2, D, alpha_block=True).set_gmm(fitted.weights_, fitted.means_, fitted.covariances_)
    # the reference sees the model as the float32 layer holds it, in float64
    fitted.means_ = layer.means.double().numpy()
    fitted.covariances_ = torch.exp(2 * layer.log_sigmas.double()).numpy()
    fitted.weights_ = torch.softmax(layer.mixture_logits.double(), 0).numpy()
    fitted.precisions_cholesky_ = 1 / np.sqrt(fitted.covariances_)
    window = x[380:420]  # frames of both components
    reference = fisher_vector(window.astype(np.float64), fitted, improved=True)
    with torch.no_grad():
        for algorithm in ("auto", "sparse"):
            layer.window_algorithm = algorithm
            ours = layer.window(torch.from_numpy(window)[None], torch.ones(1, 40, dtype=torch.bool), 40)[0, 20]
            assert np.abs(layer.skimage_layout(ours).numpy() - reference).max() < 1e-3


def test_a_wrong_window_algorithm_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"fusion.window_algorithm must be one of \('auto', 'sparse', 'dense'\)"):
        FisherVectorPooling(K, D, window_algorithm="fast")


def test_dropping_tiny_posteriors_stays_within_1e_4_of_the_exact_vectors(gmm):
    rng = np.random.default_rng(8)
    x, mask = padded(rng, [60, 41])
    exact = fv_layer(gmm, alpha_block=True).window(x, mask, 10)
    for floor in (1e-8, 1e-6):
        sparse = fv_layer(gmm, alpha_block=True, posterior_floor=floor).window(x, mask, 10)
        assert (sparse - exact).abs().max() < (1e-4 if floor == 1e-8 else 1e-3)


def test_segment_pooling_gives_every_frame_its_segments_vector(gmm):
    layer = fv_layer(gmm)
    rng = np.random.default_rng(3)
    x, mask = padded(rng, [12, 7])
    ids = torch.tensor([[0] * 4 + [1] * 5 + [2] * 3, [0] * 2 + [1] * 5 + [9] * 5])  # padding ids are ignored
    pooled = layer.segments(x, mask, ids)
    for b, spans in enumerate([[(0, 4), (4, 9), (9, 12)], [(0, 2), (2, 7)]]):
        for lo, hi in spans:
            direct = layer.pool(x[b:b + 1, lo:hi], torch.ones(1, hi - lo, dtype=torch.bool))[0]
            for t in range(lo, hi):
                torch.testing.assert_close(pooled[b, t], direct)


def test_learnable_fisher_vector_gradients_match_finite_differences():
    # overlapping components: no posterior is vanishingly small, so no entry sits at the signed square
    # root's kink at 0 (where finite differences cannot agree with any gradient)
    rng = np.random.default_rng(9)
    overlapping = GaussianMixture(K, covariance_type="diag", random_state=0).fit(
        rng.normal(size=(3000, D)) * 2 + rng.integers(0, 3, (3000, 1)) * 0.5)
    layer = fv_layer(overlapping, learnable=True, alpha_block=True)  # every pair: the posteriors' gradients too
    assert {n for n, _ in layer.named_parameters()} == {"mixture_logits", "means", "log_sigmas"}
    rng = np.random.default_rng(4)
    x, mask = padded(rng, [6, 4])
    x.requires_grad_(True)

    def f(x, logits, means, log_sigmas):
        params = {"mixture_logits": logits, "means": means, "log_sigmas": log_sigmas}
        return torch.func.functional_call(layer, params, (x, mask, 2), strict=True)

    layer.forward = layer.window  # functional_call calls forward
    params = [p.detach().clone().requires_grad_(True) for p in (layer.mixture_logits, layer.means, layer.log_sigmas)]
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5)


def test_vlad_equals_its_direct_formula():
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(K, D)) * 2
    x = rng.normal(size=(30, D)) * 2
    nearest = np.argmin(((x[:, None, :] - centres) ** 2).sum(-1), axis=1)
    v = np.zeros((K, D))
    for t, k in enumerate(nearest):
        v[k] += x[t] - centres[k]
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # intra-normalisation
    v = np.sign(v) * np.sqrt(np.abs(v))
    v = v.ravel() / np.linalg.norm(v)
    layer = VladPooling(K, D).double().set_codebook(centres)
    np.testing.assert_allclose(layer.pool(*whole(x))[0].numpy(), v, atol=1e-10)
    # NetVLAD starts as the soft version of nearest-codeword assignment: sharp alpha -> VLAD
    soft = VladPooling(K, D, soft=True, alpha=100.0).double().set_codebook(centres)
    np.testing.assert_allclose(soft.pool(*whole(x))[0].detach().numpy(), v, atol=1e-4)
    assert {n for n, _ in soft.named_parameters()} == {"centres", "assign.weight", "assign.bias"}


def test_utterance_vectors_classify_sequences():
    """Sequence classification with utterance-level labels: the API the default corpus has no task for."""
    from sklearn.linear_model import LogisticRegression

    from avfusion.corpus.labels import get_scheme

    rng = np.random.default_rng(6)
    head = configured("fusion", "fusion=fisher", encoders=["audio"], n_components=3, pca_dim=None, pooling="utterance")
    head.build({"audio": D}, get_scheme("phone"))
    # class 0: frames around one centre; class 1: the same frames' spread but around two centres
    def sequences(label, n):
        centres = [np.zeros(D)] if label == 0 else [np.full(D, -1.0), np.full(D, 1.0)]
        return [np.concatenate([rng.normal(size=(10, D)) * 0.7 + c for c in centres for _ in range(2 // len(centres))])
                for _ in range(n)]
    train = {0: sequences(0, 30), 1: sequences(1, 30)}
    head.initialise({"audio": np.concatenate(train[0] + train[1])})
    def vectors(seqs):
        x = torch.tensor(np.stack(seqs), dtype=torch.float32)
        return head.utterance_vectors({"audio": x}, torch.ones(x.shape[:2], dtype=torch.bool)).detach().numpy()
    X = np.concatenate([vectors(train[0]), vectors(train[1])])
    y = np.repeat([0, 1], 30)
    test = {0: sequences(0, 20), 1: sequences(1, 20)}
    clf = LogisticRegression(max_iter=1000).fit(X, y)
    accuracy = clf.score(np.concatenate([vectors(test[0]), vectors(test[1])]), np.repeat([0, 1], 20))
    assert accuracy >= 0.95


def test_pooling_models_are_fitted_on_training_frames_only(monkeypatch, tmp_path):
    """The PCA and the GMM see the training split's hidden vectors and nothing else (dev is made distinct)."""
    from functools import partial

    import pytorch_lightning as pl

    from avfusion.corpus.labels import get_scheme
    from avfusion.frames.data import FrameData
    from avfusion.models.fusion.fisher import FisherVectorFusion
    from avfusion.training.stages import TrainSettings, train_model

    rng = np.random.default_rng(7)

    def frames(n, shift):
        return FrameData({"audio": (rng.normal(size=(n, 6)) + shift).astype(np.float32),
                          "video": (rng.normal(size=(n, 4)) + shift).astype(np.float32)},
                         rng.integers(0, 39, n), np.array([0, n // 2, n]), ["a", "b"], ["s", "s"])

    data = {"train": frames(300, 0.0), "dev": frames(200, 100.0)}
    seen = []
    original = FisherVectorFusion.initialise
    monkeypatch.setattr(FisherVectorFusion, "initialise", lambda self, hidden: (seen.append(hidden), original(self, hidden)))
    head = configured("fusion", "fusion=fisher", n_components=2, pca_dim=4, half_width=2)
    spec = configured("encoder", widths={"audio": [8], "video": [8]}, dropout=0.0)
    callbacks = {"ckpt": partial(pl.callbacks.ModelCheckpoint, monitor="val/frame_error", save_last=True)}
    training = configured("training", encoder_cache_dir=None)
    settings = TrainSettings(run_dir=tmp_path, training=training, callbacks=callbacks,
                             trainer=partial(pl.Trainer, max_epochs=1, accelerator="cpu", enable_model_summary=False))
    model = train_model(head, spec, data, get_scheme("phone"), settings)
    assert len(seen) == 1 and all(len(h) == 300 for h in seen[0].values())  # the 300 training frames
    train_hidden = np.concatenate([seen[0]["audio"], seen[0]["video"]], axis=1)
    np.testing.assert_allclose(model.head.pca_mean.numpy(), train_hidden.mean(0), rtol=1e-4, atol=1e-4)
    assert model.posteriors(data["dev"]).shape == (200, 39)


@pytest.mark.parametrize("fusion, pooling, extra", [
    ("fisher", "window", []),
    pytest.param("netvlad", "segment", [], marks=pytest.mark.slow),  # about 30 s each: the default run stays < 10 min
    pytest.param("fisher_learnable", "window", ["fusion.freeze_encoders=false"], marks=pytest.mark.slow)])
def test_pooled_fusion_trains_end_to_end_and_reloads(tiny_root, fusion, pooling, extra):
    import json
    import subprocess
    import sys

    from test_training import train_cli

    run = tiny_root / f"run_{fusion}_{pooling}"
    # window pooling: 24 epochs, as after 12 the head was still learning and its frame error sat at the bar below
    # (0.80-0.84, on one side or the other by machine); segment pooling keeps 12 (its check below holds there)
    epochs = 24 if pooling == "window" else 12
    train_cli(tiny_root, f"fusion={fusion}", f"fusion.pooling={pooling}", "fusion.pca_dim=16",
              "fusion.n_components=4" if fusion.startswith("fisher") else "fusion.n_clusters=4", "fusion.half_width=5",
              "training.batching=chunks", "training.chunk_frames=60", "training.sequences_per_batch=4", f"trainer.max_epochs={epochs}", f"training.patience={epochs}",
              f"hydra.run.dir={run}", *extra)
    report = json.loads((run / "report.json").read_text())
    clean = report["test"][0]
    assert clean["frames"] > 1000 and clean["segments"] > 50
    if pooling == "window":
        assert clean["frame_error"] < 0.8  # it learned (untrained: ~0.97)
    else:  # a segment's class from its pooled frames: always the commonest training phone errs on ~0.93
        assert clean["segment_error"] < 0.9
    if pooling == "segment":  # every frame of a reference segment has its segment's posteriors
        assert clean["segment_error"] <= clean["frame_error"] + 0.05
    if fusion == "fisher_learnable":  # the GMM moved from its EM start, and so did the fine-tuned encoders
        state = torch.load(run / "model.pt", weights_only=True)
        pretrained = torch.load(run / "stages" / "pretrain_audio" / "best.pt", weights_only=True)
        assert not torch.equal(state["encoders.audio.net.0.weight"], pretrained["encoders.audio.net.0.weight"])
        assert "head.pool.means" in state
    subprocess.run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{run}]", "evaluation.snrs_db=[0]",
                    "noise.babble.talkers=3"],
                   check=True, capture_output=True, cwd=run)
    assert json.loads((run / "report.json").read_text())["test"] == report["test"]
