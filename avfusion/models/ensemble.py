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

    def __call__(self, posteriors: dict[str, np.ndarray]) -> np.ndarray:
        missing = set(self.weights) - set(posteriors)
        if missing:
            raise KeyError(f"no posteriors for {sorted(missing)}")
        if self.rule == "mean":
            return sum(w * posteriors[name] for name, w in self.weights.items())
        log_p = sum(w * np.log(np.maximum(posteriors[name], 1e-30)) for name, w in self.weights.items() if w > 0)
        log_p -= log_p.max(axis=1, keepdims=True)  # exp without overflow; renormalised below
        p = np.exp(log_p)
        return p / p.sum(axis=1, keepdims=True)
