import pytest
import torch

from avfusion.corpus.labels import get_scheme
from avfusion.models.encoders import MlpEncoder
from avfusion.configs import configured
from avfusion.models.fusion.bilinear import FactoredBilinearSoftmax
from avfusion.training.module import FusionModule

D1, D2 = 4, 3


def bilinear(**values) -> FactoredBilinearSoftmax:
    return configured("fusion", "fusion=bilinear", **values)


def concat(**values):
    return configured("fusion", "fusion=concat", **values)


def head(scheme="phone", **kw) -> FactoredBilinearSoftmax:
    return bilinear(**kw).build({"audio": D1, "video": D2}, get_scheme(scheme))


def test_factored_at_full_rank_reproduces_the_full_bilinear_scores():
    torch.manual_seed(0)
    full = head(rank=None)
    factored = head(rank=D1 * D2)
    with torch.no_grad():
        # f = (i, j): (U1 h1)_f = h1_i, (U2 h2)_f = h2_j, v_g,f = W_g[i, j]
        factored.u1.weight.copy_(torch.eye(D1).repeat_interleave(D2, dim=0))
        factored.u2.weight.copy_(torch.eye(D2).repeat(D1, 1))
        factored.v.copy_(full.weight.reshape(len(full.weight), -1))
        for name in ("bias", "linear1.weight", "linear2.weight"):
            factored.get_parameter(name).copy_(full.get_parameter(name))
    h = {"audio": torch.randn(5, D1), "video": torch.randn(5, D2)}
    torch.testing.assert_close(factored(h), full(h))


@pytest.mark.parametrize("rank", [None, 6])
def test_gradcheck(rank):
    torch.manual_seed(0)
    m = head(rank=rank).double()
    h1 = torch.randn(3, D1, dtype=torch.double, requires_grad=True)
    h2 = torch.randn(3, D2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: m({"audio": a, "video": b}), (h1, h2))


def test_sharing_costs_groups_times_rank():
    shared, unshared = head(rank=7, sharing="viseme"), head(rank=7, sharing="none")
    assert shared.v.shape == (13, 7)  # 13 visemes x F
    assert unshared.v.shape == (39, 7)  # 39 phones x F
    states = head("phone_state", rank=7, sharing="phone")
    assert states.v.shape == (39, 7)  # 115 states share by their 39 phones
    assert torch.equal(states.groups, torch.as_tensor(get_scheme("phone_state").group_index("phone")))
    # classes of one group get the same bilinear term
    h = {"audio": torch.randn(2, D1), "video": torch.randn(2, D2)}
    scheme = get_scheme("phone")
    no_linear = bilinear(rank=7, linear_terms=False, init="random").build({"audio": D1, "video": D2}, scheme)
    s = no_linear(h)
    p, b = scheme.classes.index("p"), scheme.classes.index("b")
    torch.testing.assert_close(s[:, p], s[:, b])


def test_joint_training_sends_gradients_through_both_encoders():
    torch.manual_seed(0)
    encoders = {"audio": MlpEncoder(6, [5, D1], batch_norm=False), "video": MlpEncoder(8, [5, D2], batch_norm=False)}
    encoders["audio"].inputs, encoders["video"].inputs = ["audio"], ["video"]
    bil = bilinear(rank=5, linear_terms=False, init="random").build({"audio": D1, "video": D2}, get_scheme("phone"))
    model = FusionModule(encoders, bil)
    x = {"audio": torch.randn(16, 6), "video": torch.randn(16, 8)}
    y = torch.randint(0, 39, (16,))

    def audio_grad(video):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model({"audio": x["audio"], "video": video}), y).backward()
        for enc in encoders.values():
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
        return encoders["audio"].net[0].weight.grad.clone()

    # the audio network's gradient depends on the video input: it is trained through the other network
    assert not torch.allclose(audio_grad(x["video"]), audio_grad(x["video"] * 2 + 1))


def unimodal_models(scheme):
    """Two pre-trained-like encoders (batch norm with non-trivial statistics) and their own softmax heads."""
    from avfusion.models.fusion.single import SingleEncoderSoftmax

    torch.manual_seed(1)
    encoders = {"audio": MlpEncoder(6, [5, D1], inputs=["audio"]), "video": MlpEncoder(8, [5, D2], inputs=["video"])}
    for enc in encoders.values():
        for bn in (m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm1d)):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2)
    solo = {name: SingleEncoderSoftmax(name).build({name: enc.output_dim}, scheme) for name, enc in encoders.items()}
    for h in solo.values():
        torch.nn.init.normal_(h.out.bias)
    return encoders, solo


@pytest.mark.parametrize("fusion", ["bilinear", "bilinear_full", "concat"])
def test_warm_start_on_frozen_encoders_equals_the_sum_of_the_unimodal_heads(fusion):
    scheme = get_scheme("phone")
    encoders, solo = unimodal_models(scheme)
    if fusion == "concat":
        fused = concat(init="warm")
    else:
        fused = bilinear(rank=None if fusion == "bilinear_full" else 7, freeze_encoders=True)
    fused.build({"audio": D1, "video": D2}, scheme).warm_start(solo)
    model = FusionModule(encoders, fused).eval()
    x = {"audio": torch.randn(32, 6), "video": torch.randn(32, 8)}
    with torch.no_grad():
        separate = {name: solo[name](model.hidden(x)) for name in solo}
        torch.testing.assert_close(model(x), separate["audio"] + separate["video"])
        # the sum of logits is the normalised product of the two models' posteriors
        product = torch.softmax(separate["audio"], 1) * torch.softmax(separate["video"], 1)
        torch.testing.assert_close(torch.softmax(model(x), 1), product / product.sum(1, keepdim=True))
    if fusion != "concat":  # from zero, the interaction still gets a gradient: training can move it
        torch.nn.functional.cross_entropy(model(x), torch.randint(0, 39, (32,))).backward()
        assert (fused.weight if fusion == "bilinear_full" else fused.v).grad.abs().sum() > 0


def test_a_random_start_is_not_the_sum_of_the_unimodal_heads():
    scheme = get_scheme("phone")
    encoders, solo = unimodal_models(scheme)
    cold = bilinear(rank=7, init="random").build({"audio": D1, "video": D2}, scheme)
    cold.warm_start(solo)  # init=random: keeps its random weights
    assert not torch.equal(cold.linear1.weight, solo["audio"].out.weight) and cold.v.abs().sum() > 0


def test_warm_start_needs_the_linear_terms_and_a_shallow_concat():
    from avfusion.errors import ConfigError

    with pytest.raises(ConfigError, match="linear_terms"):
        bilinear(linear_terms=False)
    with pytest.raises(ConfigError, match="shallow"):
        concat(widths=[50], init="warm")
    with pytest.raises(ConfigError, match="fusion.init='hot'"):
        bilinear(init="hot")


def fit_epochs(model, epochs: int):
    import pytorch_lightning as pl

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 6), torch.randn(64, 8), torch.randint(0, 39, (64,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16, collate_fn=lambda rows: (
        {"audio": torch.stack([r[0] for r in rows]), "video": torch.stack([r[1] for r in rows])},
        torch.stack([r[2] for r in rows])))
    pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(model, loader)


@pytest.mark.parametrize("epochs", [1, 2])
def test_warm_up_epochs_train_the_head_alone_then_the_encoders_join(epochs):
    scheme = get_scheme("phone")
    encoders, solo = unimodal_models(scheme)
    before = {k: v.clone() for k, v in torch.nn.ModuleDict(encoders).state_dict().items()}
    fused = bilinear(rank=7, warmup_epochs=1).build({"audio": D1, "video": D2}, scheme)
    fused.warm_start(solo)
    v_before = fused.v.detach().clone()
    model = FusionModule(encoders, fused)
    fit_epochs(model, epochs)
    after = model.encoders.state_dict()
    assert not torch.equal(fused.v, v_before)  # the head learns from the first epoch
    unchanged = all(torch.equal(before[k], after[k]) for k in before)  # weights and batch-norm statistics
    assert unchanged == (epochs == 1)


def test_the_encoders_learning_rate_is_scaled_and_the_optimiser_is_the_configured_one():
    import functools

    encoders, _ = unimodal_models(get_scheme("phone"))
    fused = bilinear(rank=7, encoder_lr_scale=0.1).build({"audio": D1, "video": D2}, get_scheme("phone"))
    sgd = functools.partial(torch.optim.SGD, momentum=0.9)
    optimiser = FusionModule(encoders, fused, lr=0.5, optimizer=sgd).configure_optimizers()
    assert isinstance(optimiser, torch.optim.SGD)
    head_group, encoder_group = optimiser.param_groups
    assert head_group["lr"] == 0.5 and encoder_group["lr"] == pytest.approx(0.05)
    assert {id(p) for p in encoder_group["params"]} == {id(p) for e in encoders.values() for p in e.parameters()}


def test_two_encoders_exactly():
    with pytest.raises(ValueError, match="exactly two"):
        bilinear(encoders=["audio"])


def test_posterior_average_weights():
    import numpy as np

    from avfusion.models.ensemble import PosteriorAverage

    labels = np.array([0, 0, 1, 1])
    a = np.array([[0.9, 0.1], [0.6, 0.4], [0.6, 0.4], [0.6, 0.4]])  # right on class 0 only
    b = np.array([[0.4, 0.6], [0.45, 0.55], [0.1, 0.9], [0.2, 0.8]])  # right on class 1 only
    equal = PosteriorAverage.equal(["a", "b"])
    np.testing.assert_allclose(equal({"a": a, "b": b}), (a + b) / 2)
    tuned = PosteriorAverage.tuned({"a": a, "b": b}, labels)
    assert np.mean(tuned({"a": a, "b": b}).argmax(1) == labels) == 1.0  # neither model alone reaches this
    with pytest.raises(ValueError):
        PosteriorAverage({"a": -1.0, "b": 1.0})


def test_product_of_posteriors_is_the_renormalised_weighted_geometric_mean():
    import numpy as np
    from scipy.stats import gmean

    from avfusion.models.ensemble import PosteriorAverage

    a = np.array([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]])
    b = np.array([[0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    product = PosteriorAverage.equal(["a", "b"], rule="product")({"a": a, "b": b})
    reference = gmean(np.stack([a, b]), axis=0)  # scipy's geometric mean, then renormalised
    reference /= reference.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(product[:2], reference[:2])
    np.testing.assert_allclose(product[0], [0.6 / (0.6 + 0.06 ** 0.5), 0.06 ** 0.5 / (0.6 + 0.06 ** 0.5)])
    assert product[2, 0] == pytest.approx(1.0)  # a zero posterior vetoes its class (floored, no nan)
    weighted = PosteriorAverage({"a": 3, "b": 1}, rule="product")({"a": a, "b": b})
    expected = a[1] ** 0.75 * b[1] ** 0.25
    np.testing.assert_allclose(weighted[1], expected / expected.sum())
    with pytest.raises(Exception, match="rule='sum'"):
        PosteriorAverage.equal(["a"], rule="sum")


def test_auto_sharing_picks_the_level_the_scheme_has():
    from avfusion.corpus.labels import word_scheme

    assert torch.equal(head("phone", rank=3).groups, torch.as_tensor(get_scheme("phone").group_index("viseme")))
    assert torch.equal(head("phone_state", rank=3).groups,
                       torch.as_tensor(get_scheme("phone_state").group_index("phone")))
    words = bilinear(rank=3).build({"audio": D1, "video": D2}, word_scheme(["bin", "blue"]))
    assert torch.equal(words.groups, torch.arange(3))  # words have no groups: one vector per class
    with pytest.raises(ValueError, match=r"fusion.sharing='phone'.*\['auto', 'none', 'viseme'\]"):
        head("phone", rank=3, sharing="phone")


def test_a_missing_sharing_level_is_refused_before_any_training(monkeypatch):
    from avfusion.training import stages

    def no_stage(*args, **kwargs):
        raise AssertionError("a stage ran before the scheme was checked")

    monkeypatch.setattr(stages, "run_stage", no_stage)
    with pytest.raises(ValueError, match="fusion.sharing='phone'"):
        stages.train_model(bilinear(sharing="phone"), None, {}, get_scheme("phone"), None)
