"""Posterior combination: a weighted mean of the class posteriors of several trained models, or their
weighted product (a log-linear combination, renormalised per frame).

Mroueh et al. (2015) average the bimodal DNN's and the bilinear model's posteriors (`rule="mean"`); the
product is the other classic rule (it treats the models as independent experts, and is what the
warm-started bilinear head computes at step 0 for two uni-modal models). Weights are equal, given, or
tuned on the dev split (a grid over the simplex maximising dev frame accuracy); never on test.
"""

from __future__ import annotations

import itertools

import numpy as np

from collections.abc import Callable

from avfusion.errors import ConfigError


RULES = ("mean", "product")


class PosteriorAverage:
    def __init__(self, weights: dict[str, float], rule: str = "mean") -> None:
        total = sum(weights.values())
        if total <= 0 or any(w < 0 for w in weights.values()):
            raise ValueError(f"posterior weights must be non-negative and not all zero, got {weights}")
        if rule not in RULES:
            raise ConfigError(f"rule={rule!r}: choose from {list(RULES)}")
        self.weights = {name: w / total for name, w in weights.items()}
        self.rule = rule

    @classmethod
    def equal(cls, names: list[str], rule: str = "mean") -> "PosteriorAverage":
        return cls({n: 1.0 for n in names}, rule)

    @classmethod
    def tuned(cls, posteriors: dict[str, np.ndarray], labels: np.ndarray, step: float = 0.1,
              rule: str = "mean") -> "PosteriorAverage":
        """Weights on a simplex grid of `step` with the best frame accuracy on these (dev) frames."""
        names = list(posteriors)
        ticks = int(round(1 / step))
        best, best_acc = None, -1.0
        for combo in itertools.product(range(ticks + 1), repeat=len(names)):
            if sum(combo) != ticks:
                continue
            weights = dict(zip(names, (c / ticks for c in combo)))
            acc = float(np.mean(cls(weights, rule)(posteriors).argmax(axis=1) == labels))
            if acc > best_acc:
                best, best_acc = weights, acc
        return cls(best, rule)

    def __call__(self, posteriors: dict[str, np.ndarray], condition: str | None = None,
                 labels: np.ndarray | None = None, split: str | None = None) -> np.ndarray:
        """The combined (N, C) posteriors (`condition`, `labels`, `split`: what the frames are; not needed here)."""
        missing = set(self.weights) - set(posteriors)
        if missing:
            raise KeyError(f"no posteriors for {sorted(missing)}")
        if self.rule == "mean":
            return sum(w * posteriors[name] for name, w in self.weights.items())
        log_p = sum(w * np.log(np.maximum(posteriors[name], 1e-30)) for name, w in self.weights.items() if w > 0)
        log_p -= log_p.max(axis=1, keepdims=True)  # exp without overflow; renormalised below
        p = np.exp(log_p)
        return p / p.sum(axis=1, keepdims=True)


class ConditionWeights:
    """Stream weights per evaluation condition, the classic multi-stream scheme: in each condition its own
    weights, chosen on the dev split in that condition (`fixed_weight`: `dev_in(condition)` gives the models'
    dev posteriors there and the dev labels), or, as an upper bound that is never a model, on the very frames
    being scored (`oracle_weight`: `dev_in` None; on test, the test labels)."""

    def __init__(self, names: list[str], rule: str, dev_in: Callable[[str], tuple[dict, np.ndarray]] | None,
                 step: float = 0.1) -> None:
        self.names, self.rule, self.dev_in, self.step = list(names), rule, dev_in, step
        self.oracle = dev_in is None
        self.chosen: dict[str, PosteriorAverage] = {}  # by condition (an oracle's: on the split scored last)

    @property
    def kind(self) -> str:
        return "oracle_weight" if self.oracle else "fixed_weight"

    @property
    def weights(self) -> dict[str, dict[str, float]]:
        """The weights chosen so far, by condition."""
        return {condition: average.weights for condition, average in self.chosen.items()}

    def __call__(self, posteriors: dict[str, np.ndarray], condition: str | None = None,
                 labels: np.ndarray | None = None, split: str | None = None) -> np.ndarray:
        """The combined (N, C) posteriors of frames in `condition`, of `split` with `labels`: dev frames seen
        first choose a fixed weight there; an oracle chooses on every call's frames."""
        if condition is None:
            raise ValueError(f"{self.kind} combines per condition: call it with the condition's name")
        if self.oracle:
            if labels is None:
                raise ValueError("oracle_weight chooses its weights on the frames' labels: call it with them")
            self.chosen[condition] = PosteriorAverage.tuned(posteriors, labels, self.step, self.rule)
        elif condition not in self.chosen:
            on_dev = (posteriors, labels) if split == "dev" and labels is not None else self.dev_in(condition)
            self.chosen[condition] = PosteriorAverage.tuned(*on_dev, self.step, self.rule)
        return self.chosen[condition](posteriors)

