"""Evaluate trained models of a run on its test split and write the run's report."""

from __future__ import annotations

from pathlib import Path

from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Corpus
from avfusion.decoding.base import Decoder, Decoding
from avfusion.evaluation.evaluate import Evaluator
from avfusion.noise import Babble, NoiseSource
from avfusion.reporting.report import write_report
from avfusion.utils.machine import describe_machine


def report_run(run_dir: str | Path, name: str, seed: int, scheme: LabelScheme, evaluator: Evaluator, models: dict,
               frontend, corpus: Corpus, sources: dict[str, NoiseSource], decoding: Decoding,
               decoders: dict[str, Decoder], combine=None, skipped: list[str] | None = None,
               frames_dir: Path | None = None, dev_posteriors=None) -> str:
    """Scores on the test split, clean and in noise (and on dev in the same conditions, with
    `evaluator.report_dev`); report.json/report.md in run_dir; returns the Markdown. `decoders`: the
    dev-tuned decoder of each model (and of "combined"), made by `decoding`; `sources`: the noise sources by name
    (conf/noise/); `frames_dir`: the front-end's prepared
    frames, where the noisy conditions' features are kept for the next run; `dev_posteriors`: the dev posteriors
    the decoders were tuned on (`Evaluator.dev_posteriors`), which the dev rows reuse."""
    noise = evaluator.mixer(sources, corpus, frontend.audio.extractor.sample_rate)

    def scores(split: str) -> dict[str, list[dict]]:
        return evaluator.evaluate(models, frontend, corpus.split(split), scheme, decoders, combine=combine,
                                  beside=decoding.beside(scheme), noise=noise, cache_dir=frames_dir, split=split,
                                  known=dev_posteriors if split == "dev" else None)

    dev = scores("dev") if evaluator.report_dev else None  # tuned on dev: its numbers are for choosing, not claims
    results = scores("test")
    key = "combined" if combine is not None else next(iter(models))
    decoder = decoders[key]
    report = {
        "name": name + decoding.label(), "seed": seed, "label_scheme": scheme.name, "unit": scheme.unit,
        "test_speakers": len(corpus.speakers("test")),
        "skipped_utterances": list(skipped or []),  # invalid, left out with on_error=skip (all splits)
        "models": list(models), "test": results[key],
        "dev": dev[key] if dev else None, "dev_speakers": len(corpus.speakers("dev")),
        "weights": getattr(combine, "weights", None),
        **({"upper_bound": "oracle_weight: weights chosen per condition on the scored split itself, never a model"}
           if getattr(combine, "oracle", False) else {}),
        "all": results, "all_dev": dev,
        "evaluation": {"noises": evaluator.noises, "snrs_db": evaluator.snrs_db, "seed": evaluator.seed,
                       "noise_draws": evaluator.noise_draws,
                       **({"video_degradations": {c.video: evaluator.degradations[c.video].identity()
                                                  for c in evaluator.conditions() if c.video is not None}}
                          if any(c.video for c in evaluator.conditions()) else {}),
                       "noise_sources": {name: source.describe() for name, source in noise.sources.items()},
                       **_babble_facts(noise.sources.values(), corpus),
                       **decoding.describe(), **decoder.describe()},
        "machine": describe_machine(),  # the numbers move with its instruction set
    }
    return write_report(run_dir, report, decoder.summary())


def _babble_facts(sources, corpus: Corpus) -> dict:
    """Where babble came from, when a condition used it (nothing otherwise: no pool was looked at)."""
    babble = next((s for s in sources if isinstance(s, Babble)), None)
    if babble is None:
        return {}
    return {"babble_source": "babble pool" if corpus.babble else "train split",
            "babble_pool_talkers": len({u.speaker for u in babble.pool})}
