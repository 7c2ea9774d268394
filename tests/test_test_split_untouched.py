"""The test split is read only for the final report: early stopping, checkpoint selection, decoder tuning
and posterior-averaging weights see train and dev only. Checked by spying on what they are given."""

import pytest

from avfusion import api
from avfusion.evaluation import evaluate as evaluate_module
from avfusion.configs import compose_config
from avfusion.decoding.hybrid import ViterbiDecoding
from avfusion.models.ensemble import PosteriorAverage
from avfusion.training import stages

from conftest import tiny_overrides


@pytest.fixture(scope="module")
def splits(tiny_root):
    corpus, _ = api.load_corpus(compose_config("train", tiny_overrides(tiny_root)))
    return {s: {u.id for u in corpus.split(s)} for s in ("train", "dev", "test")}


@pytest.fixture(scope="module")
def spied_runs(tiny_root, splits):
    """Two runs trained in-process; every FrameData a training stage fits on or validates on is recorded."""
    seen = []

    class SpiedDataModule(stages.FrameDataModule):
        def train_dataloader(self):
            seen.append(("fit", set(self.splits["train"].ids)))
            return super().train_dataloader()

        def val_dataloader(self):  # what early stopping and the best checkpoint are chosen on
            seen.append(("validate", set(self.splits["dev"].ids)))
            return super().val_dataloader()

    fit, tune = ViterbiDecoding.fit, ViterbiDecoding.tuned_for

    def spied_fit(self, scheme, train_utterances, train):
        seen.append(("decoder fit", {u.id for u in train_utterances} | set(train.ids)))
        return fit(self, scheme, train_utterances, train)

    def spied_tune(self, fitted, dev_posteriors, dev, dev_utterances, conditions):  # acoustic scale, LM weight, penalty
        seen.append(("decoder tuning", {u.id for u in dev_utterances} | set(dev.ids)))
        return tune(self, fitted, dev_posteriors, dev, dev_utterances, conditions)

    patch = pytest.MonkeyPatch()
    patch.setattr(stages, "FrameDataModule", SpiedDataModule)
    patch.setattr(ViterbiDecoding, "fit", spied_fit)
    patch.setattr(ViterbiDecoding, "tuned_for", spied_tune)
    runs = {}
    try:
        for fusion in ("concat", "bilinear"):
            runs[fusion] = tiny_root / f"spied_{fusion}"
            cfg = compose_config("train", tiny_overrides(tiny_root) + [f"fusion={fusion}", "fusion.rank=8"
                                                                       if fusion == "bilinear" else "evaluation.report_dev=true"])
            api.train(cfg, runs[fusion], name=fusion)
    finally:
        patch.undo()
    return runs, seen


def test_stages_fit_on_train_stop_early_on_dev_and_the_decoder_is_tuned_on_dev(spied_runs, splits):
    _, seen = spied_runs
    assert {kind for kind, _ in seen} == {"fit", "validate", "decoder fit", "decoder tuning"}
    # concat: 2 pre-training stages + the head; bilinear the same: every one fitted on train, validated on dev
    assert sum(kind == "validate" for kind, _ in seen) >= 6
    for kind, ids in seen:
        assert ids == splits["train" if kind in ("fit", "decoder fit") else "dev"], kind
        assert not ids & splits["test"]


def test_dev_tuned_averaging_weights_come_from_dev_posteriors_only(spied_runs, splits, tiny_root, monkeypatch):
    runs, _ = spied_runs
    asked = []
    tuned = PosteriorAverage.tuned.__func__

    def spy(cls, posteriors, labels, step=0.1, rule="mean"):
        asked.append(len(labels))
        return tuned(cls, posteriors, labels, step, rule)

    scored = []
    real_posteriors = evaluate_module.posteriors

    def spy_posteriors(model, data, batch_size=8192, kept=None):
        scored.append((len(asked), set(data.ids)))  # how many weight tunings had happened before this
        return real_posteriors(model, data, batch_size, kept)

    monkeypatch.setattr(PosteriorAverage, "tuned", classmethod(spy))
    monkeypatch.setattr(evaluate_module, "posteriors", spy_posteriors)
    out = tiny_root / "spied_average"
    report = api.evaluate(compose_config("evaluate", [f"run_dirs=[{runs['concat']},{runs['bilinear']}]", "weights=dev",
                                                      f"output_dir={out}", "evaluation.snrs_db=[0]",
                                                      "noise.babble.talkers=3"]))
    assert len(asked) == 1
    before_weights = [ids for tunings, ids in scored if tunings == 0]
    assert before_weights and all(ids == splits["dev"] for ids in before_weights)
    # each model's posteriors on each split in each condition once: weighting and tuning reuse the dev ones
    assert len(scored) == 2 * 2 * len(report["test"])
    # the weights used on test are the ones tuned on dev, recomputed here from the runs' dev posteriors
    loaded = {n: api.load_run(runs[n]) for n in runs}
    corpus, _ = api.load_corpus(loaded["concat"].config)
    from avfusion.frames.data import frames_of
    from avfusion.frames.labelling import FrameLabeller

    dev = frames_of(loaded["concat"].frontend, corpus.split("dev"), FrameLabeller(loaded["concat"].scheme))
    expected = tuned(PosteriorAverage, {n: real_posteriors(r.model, dev) for n, r in loaded.items()}, dev.labels)
    assert report["weights"] == pytest.approx(expected.weights)


def test_dev_is_scored_in_every_condition_beside_test(spied_runs, splits):
    import json

    runs, _ = spied_runs
    report = json.loads((runs["concat"] / "report.json").read_text())
    assert [r["condition"] for r in report["dev"]] == [r["condition"] for r in report["test"]]
    for split in ("dev", "test"):
        for row in report[split]:
            assert set(row["by_utterance"]["id"]) == splits[split]
            confusion = row["viseme_confusion"]  # frames by (reference viseme, predicted viseme)
            assert len(confusion["labels"]) == 13 and sum(map(sum, confusion["counts"])) == row["frames"]
            correct = sum(confusion["counts"][i][i] for i in range(13))
            assert 1 - correct / row["frames"] <= row["frame_error"] + 1e-9  # a wrong phone may be the right viseme
    bilinear = json.loads((runs["bilinear"] / "report.json").read_text())
    assert bilinear["dev"] is None  # evaluation.report_dev=false
