"""Linear probe: how much frame-level class information a feature set carries.

A standardised multinomial logistic regression fitted on (a seeded subsample of) training frames
and scored on held-out frames, next to the chance rate of always predicting the most frequent
training class.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ProbeResult:
    accuracy: float
    chance: float
    train_frames: int
    eval_frames: int


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray,
                 max_frames: int = 20000, seed: int = 0) -> ProbeResult:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    if len(x_train) > max_frames:
        keep = rng.choice(len(x_train), max_frames, replace=False)
        x_train, y_train = x_train[keep], y_train[keep]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    with warnings.catch_warnings():  # a probe, not a tuned model: 300 lbfgs iterations are enough
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(np.asarray(x_train), np.asarray(y_train))
    accuracy = float(np.mean(model.predict(np.asarray(x_eval)) == np.asarray(y_eval)))
    majority = np.bincount(np.asarray(y_train)).argmax()
    chance = float(np.mean(np.asarray(y_eval) == majority))
    return ProbeResult(accuracy, chance, len(x_train), len(x_eval))
