"""Linear projections fitted on training frames: LDA (with frame labels) and PCA."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from avfusion.frontends.statistics import ClassMoments, lda_scalings
from avfusion.frontends.step import FrontEndStep

log = logging.getLogger(__name__)


def _training_frames(utterances, max_frames: int | None, seed: int, with_labels: bool):
    x = np.concatenate([u.x for u in utterances])
    y = np.concatenate([u.labels for u in utterances]) if with_labels else None
    if max_frames is not None and len(x) > max_frames:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), max_frames, replace=False))
        x = x[keep]
        y = y[keep] if y is not None else None
    return x, y


class _Projection(FrontEndStep):
    """A fitted linear map kept as plain arrays (the sklearn estimator is only used to fit it)."""

    _state: tuple[str, ...] = ()
    frame_context = 0  # frame by frame (see avfusion.inference.chunks)

    def _project(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def transform(self, utterances):
        if any(getattr(self, k) is None for k in self._state):
            raise RuntimeError(f"{type(self).__name__} used before fit (fit it on the training split)")
        return [u.replace(self._project(u.x).astype(np.float32)) for u in utterances]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self, k)) for k in self._state if getattr(self, k) is not None}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        missing = sorted(set(self._state) - set(arrays))
        if missing:
            raise ValueError(f"the saved {type(self).__name__} lacks {missing}")
        for k in self._state:
            setattr(self, k, arrays[k])


@dataclass
class Lda(_Projection):
    """Linear discriminant analysis to `n_components` dims (sklearn), fitted on labelled train frames.

    Needs more classes than dimensions: fit it with the `phone_state` labels (115 classes) to get
    40 or 60 dims, as the paper fits it on context-dependent states. Applied as sklearn's eigen solver
    does, x @ scalings, first n_components columns.
    """

    n_components: int
    shrinkage: float | str | None = "auto"
    max_frames: int | None = 200_000  # subsample very large training sets (seeded)
    min_class_frames: int = 2
    seed: int = 0
    scalings_: np.ndarray | None = field(default=None, repr=False)
    _state = ("scalings_",)

    def fit(self, utterances) -> "Lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        x, y = _training_frames(utterances, self.max_frames, self.seed, with_labels=True)
        classes, counts = np.unique(y, return_counts=True)
        rare = self._rare(classes, counts)
        if len(rare):
            keep = ~np.isin(y, rare)
            x, y = x[keep], y[keep]
        self._check_size(len(classes) - len(rare), x.shape[1])
        model = LinearDiscriminantAnalysis(n_components=self.n_components, solver="eigen",
                                           shrinkage=self.shrinkage).fit(x, y)
        self.scalings_ = model.scalings_
        return self

    def fit_moments(self, moments: ClassMoments) -> "Lda":
        """`fit` from per-class moments gathered in parts (`avfusion.frontends.statistics`, over every training
        frame: no subsample): the same projection within floating-point rounding."""
        rare = self._rare(np.arange(moments.n_classes), moments.n)
        kept = moments.without(rare) if len(rare) else moments
        self._check_size(int((kept.n > 0).sum()), moments.dim)
        self.scalings_ = lda_scalings(kept, self.shrinkage)
        return self

    gathers = True

    def gather(self, utterances, into: ClassMoments | None = None) -> ClassMoments:
        """`into` (None: new per-class moments) with a batch of labelled training utterances' frames added
        (`fit_moments` fits from them)."""
        moments = into
        for u in utterances:
            moments = moments or ClassMoments(0, u.x.shape[1])
            moments.add(u.x, u.labels)
        return moments

    def _rare(self, classes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The classes with frames but too few for a class covariance, left out (logged)."""
        rare = classes[(counts > 0) & (counts < self.min_class_frames)]
        if len(rare):
            log.info("LDA: leaving out %d class(es) with fewer than %d training frames", len(rare), self.min_class_frames)
        return rare

    def _check_size(self, n_classes: int, dim: int) -> None:
        if self.n_components > min(n_classes - 1, dim):
            raise ValueError(
                f"LDA to {self.n_components} dims needs more than {self.n_components} classes and input dims; "
                f"the training frames have {n_classes} classes and {dim} dims "
                "(fit the projection with the phone_state labels)"
            )

    def _project(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.scalings_)[:, :self.n_components]


@dataclass
class Pca(_Projection):
    """Principal components (sklearn), applied as sklearn does: x @ C^T - mean @ C^T."""

    n_components: int = 40
    max_frames: int | None = 200_000
    seed: int = 0
    components_: np.ndarray | None = field(default=None, repr=False)
    mean_: np.ndarray | None = field(default=None, repr=False)
    _state = ("components_", "mean_")

    def fit(self, utterances) -> "Pca":
        from sklearn.decomposition import PCA

        x, _ = _training_frames(utterances, self.max_frames, self.seed, with_labels=False)
        model = PCA(n_components=self.n_components, random_state=self.seed).fit(x)
        self.components_, self.mean_ = model.components_, model.mean_
        return self

    def _project(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.components_.T
        y -= self.mean_.reshape(1, -1) @ self.components_.T
        return y
