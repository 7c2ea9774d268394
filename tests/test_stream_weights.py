"""Stream weights per condition (avfusion.models.ensemble.ConditionWeights; avfusion-evaluate
weights=per_condition | oracle): fixed_weight chooses on dev in each condition and never looks at test,
oracle_weight chooses on the frames scored and is reported as an upper bound."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from avfusion import api
from avfusion.configs import compose_config
from avfusion.errors import ConfigError
from avfusion.runs import RunFolderError
from hydra.errors import MissingConfigException
from avfusion.models.ensemble import ConditionWeights
from conftest import tiny_overrides


def experts(labels: np.ndarray, right: str, n_classes: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Posteriors of two models `a` and `b`: `right` puts most mass on the label, the other is random."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("a", "b"):
        p = rng.random((len(labels), n_classes))
        if name == right:
            p[np.arange(len(labels)), labels] += 3.0
        out[name] = p / p.sum(1, keepdims=True)
    return out


def test_fixed_weights_are_chosen_on_dev_in_each_condition_and_never_on_what_is_scored():
    rng = np.random.default_rng(1)
    dev_labels, test_labels = rng.integers(0, 5, 400), rng.integers(0, 5, 400)
    dev = {"quiet": experts(dev_labels, "a"), "noisy": experts(dev_labels, "b")}
    asked = []
    weights = ConditionWeights(["a", "b"], "product", lambda c: asked.append(c) or (dev[c], dev_labels))
    # on test the other model is the right one: a weight chosen there would follow it
    weights(experts(test_labels, "b", seed=2), condition="quiet", labels=test_labels, split="test")
    weights(experts(test_labels, "a", seed=2), condition="noisy", labels=test_labels, split="test")
    assert asked == ["quiet", "noisy"]
    assert weights.weights["quiet"]["a"] > 0.5 > weights.weights["noisy"]["a"]
    seen_on_dev = ConditionWeights(["a", "b"], "product", lambda c: pytest.fail("dev frames were given"))
    seen_on_dev(dev["noisy"], condition="noisy", labels=dev_labels, split="dev")
    assert seen_on_dev.weights["noisy"]["b"] > 0.5 and seen_on_dev.kind == "fixed_weight"


def test_oracle_weights_follow_the_frames_scored_and_need_their_labels():
    labels = np.random.default_rng(1).integers(0, 5, 400)
    oracle = ConditionWeights(["a", "b"], "product", None)
    oracle(experts(labels, "b"), condition="c", labels=labels, split="test")
    assert oracle.kind == "oracle_weight" and oracle.weights["c"]["b"] > 0.5
    with pytest.raises(ValueError, match="labels"):
        oracle(experts(labels, "b"), condition="c")


@pytest.fixture(scope="module")
def stream_runs(tiny_root):
    runs = []
    for fusion in ("audio_only", "video_only"):
        run_dir = tiny_root / f"stream_weights_{fusion}"
        if not (run_dir / "report.json").is_file():
            api.train(compose_config("train", [*tiny_overrides(tiny_root), f"fusion={fusion}", "trainer.max_epochs=1",
                                               "evaluation.noises=[white]"]), run_dir)
        runs.append(run_dir)
    return runs


def evaluate(root, runs, weights: str) -> dict:
    cfg = compose_config("evaluate", [f"run_dirs=[{','.join(map(str, runs))}]", f"weights={weights}", "rule=product",
                                      "evaluation.noises=[white]", "evaluation.snrs_db=[0]", "decoding=framewise",
                                      "evaluation.report_dev=false", f"output_dir={root / f'stream_weights_{weights}'}"])
    return api.evaluate(cfg)


def test_per_condition_and_oracle_weights_through_avfusion_evaluate(tiny_root, stream_runs):
    fixed, oracle = (evaluate(tiny_root, stream_runs, w) for w in ("per_condition", "oracle"))
    assert fixed["name"] == "fixed_weight(audio_only+video_only)" and "upper_bound" not in fixed
    assert oracle["name"] == "oracle_weight(audio_only+video_only)" and "oracle_weight" in oracle["upper_bound"]
    assert set(fixed["weights"]) == set(oracle["weights"]) == {"clean", "white 0 dB"}
    # the oracle's weights are the best of the same grid on the test frames: never worse there by frame error
    for f, o in zip(fixed["test"], oracle["test"]):
        assert o["frame_error"] <= f["frame_error"] + 1e-12


def test_an_unknown_weights_setting_is_refused_with_the_choices(tiny_root, stream_runs):
    with pytest.raises(ConfigError, match="weights=best: choose equal, dev, per_condition, oracle or a list"):
        evaluate(tiny_root, stream_runs, "best")
    assert OmegaConf.select(compose_config("evaluate", ["run_dirs=[x]"]), "weights") == "equal"


def test_oracle_weight_is_a_report_never_a_run(tiny_root, stream_runs):
    """The oracle chooses its weights on the frames scored: an upper bound that no one can train, load or predict with."""
    evaluate(tiny_root, stream_runs, "oracle")
    out = tiny_root / "stream_weights_oracle"
    assert (out / "report.json").is_file() and not (out / "run.json").exists()
    with pytest.raises(RunFolderError, match="not a finished avfusion-train run"):
        api.load_run(out)
    with pytest.raises(MissingConfigException, match="fusion/oracle_weight"):
        compose_config("train", ["fusion=oracle_weight"])
