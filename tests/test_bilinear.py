import pytest
import torch

from avfusion.corpus.labels import get_scheme
from avfusion.models.encoders import MlpEncoder
from avfusion.models.fusion.bilinear import FactoredBilinearSoftmax
from avfusion.training.module import FusionModule

D1, D2 = 4, 3


def head(scheme="phone", **kw) -> FactoredBilinearSoftmax:
    return FactoredBilinearSoftmax(**kw).build({"audio": D1, "video": D2}, get_scheme(scheme))


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
    no_linear = FactoredBilinearSoftmax(rank=7, linear_terms=False).build({"audio": D1, "video": D2}, scheme)
    s = no_linear(h)
    p, b = scheme.classes.index("p"), scheme.classes.index("b")
    torch.testing.assert_close(s[:, p], s[:, b])


def test_joint_training_sends_gradients_through_both_encoders():
    torch.manual_seed(0)
    encoders = {"audio": MlpEncoder(6, [5, D1], batch_norm=False), "video": MlpEncoder(8, [5, D2], batch_norm=False)}
    encoders["audio"].inputs, encoders["video"].inputs = ["audio"], ["video"]
    bil = FactoredBilinearSoftmax(rank=5, linear_terms=False).build({"audio": D1, "video": D2}, get_scheme("phone"))
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


def test_two_encoders_exactly():
    with pytest.raises(ValueError, match="exactly two"):
        FactoredBilinearSoftmax(encoders=["audio"])


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
    assert sum(tuned.weights.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        PosteriorAverage({"a": -1.0, "b": 1.0})


def test_auto_sharing_picks_the_level_the_scheme_has():
    from avfusion.corpus.labels import word_scheme

    assert torch.equal(head("phone", rank=3).groups, torch.as_tensor(get_scheme("phone").group_index("viseme")))
    assert torch.equal(head("phone_state", rank=3).groups,
                       torch.as_tensor(get_scheme("phone_state").group_index("phone")))
    words = FactoredBilinearSoftmax(rank=3).build({"audio": D1, "video": D2}, word_scheme(["bin", "blue"]))
    assert torch.equal(words.groups, torch.arange(3))  # words have no groups: one vector per class
    with pytest.raises(ValueError, match=r"fusion.sharing='phone'.*\['auto', 'none', 'viseme'\]"):
        head("phone", rank=3, sharing="phone")


def test_a_missing_sharing_level_is_refused_before_any_training(monkeypatch):
    from avfusion.training import stages

    def no_stage(*args, **kwargs):
        raise AssertionError("a stage ran before the scheme was checked")

    monkeypatch.setattr(stages, "run_stage", no_stage)
    with pytest.raises(ValueError, match="fusion.sharing='phone'"):
        stages.train_model(FactoredBilinearSoftmax(sharing="phone"), None, {}, get_scheme("phone"), None)
