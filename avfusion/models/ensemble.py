"""Posterior averaging: a weighted mean of the class posteriors of several trained models.

Mroueh et al. (2015) average the bimodal DNN's and the bilinear model's posteriors. Weights are equal,
given, or tuned on the dev split (a grid over the simplex maximising dev frame accuracy); never on test.
"""

from __future__ import annotations

import itertools

import numpy as np


class PosteriorAverage:
    def __init__(self, weights: dict[str, float]) -> None:
        total = sum(weights.values())
        if total <= 0 or any(w < 0 for w in weights.values()):
            raise ValueError(f"posterior weights must be non-negative and not all zero, got {weights}")
        self.weights = {name: w / total for name, w in weights.items()}

    @classmethod
    def equal(cls, names: list[str]) -> "PosteriorAverage":
        return cls({n: 1.0 for n in names})

    @classmethod
    def tuned(cls, posteriors: dict[str, np.ndarray], labels: np.ndarray, step: float = 0.1) -> "PosteriorAverage":
        """Weights on a simplex grid of `step` with the best frame accuracy on these (dev) frames."""
        names = list(posteriors)
        ticks = int(round(1 / step))
        best, best_acc = None, -1.0
        for combo in itertools.product(range(ticks + 1), repeat=len(names)):
            if sum(combo) != ticks:
                continue
            weights = dict(zip(names, (c / ticks for c in combo)))
            acc = float(np.mean(cls(weights)(posteriors).argmax(axis=1) == labels))
            if acc > best_acc:
                best, best_acc = weights, acc
        return cls(best)

    def __call__(self, posteriors: dict[str, np.ndarray]) -> np.ndarray:
        missing = set(self.weights) - set(posteriors)
        if missing:
            raise KeyError(f"no posteriors for {sorted(missing)}")
        return sum(w * posteriors[name] for name, w in self.weights.items())
