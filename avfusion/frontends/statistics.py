"""Sufficient statistics for fitting the front-end in parts: gathered over batches of utterances (or over
shards of a corpus on different machines), merged by adding, and solved once. What they give equals what
the fits on all the frames at once give: CMVN's global mean and deviation, and the LDA that scikit-learn's
`LinearDiscriminantAnalysis(solver="eigen", shrinkage=...)` fits (`avfusion.frontends.projection.Lda`),
with Ledoit-Wolf shrinkage ("auto") of each class covariance and of the total covariance included.

Everything is accumulated in float64 about a shift per class (the class's first batch's mean): covariances
do not move with it, and the fourth moments the Ledoit-Wolf coefficient needs lose far less to cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg


@dataclass
class Moments:
    """Count, sum and sum of squares per dimension of frames (D,): what global CMVN is fitted from."""

    n: int = 0
    total: np.ndarray | float = 0.0
    squares: np.ndarray | float = 0.0

    def add(self, x: np.ndarray) -> "Moments":
        self.n += len(x)
        self.total = self.total + x.sum(axis=0, dtype=np.float64)
        self.squares = self.squares + (x.astype(np.float64) ** 2).sum(axis=0)
        return self

    def __add__(self, other: "Moments") -> "Moments":
        return Moments(self.n + other.n, self.total + other.total, self.squares + other.squares)

    def arrays(self) -> dict[str, np.ndarray]:
        """As plain arrays (saved with np.savez; `from_arrays` reads them back)."""
        return {"n": np.asarray(self.n), "total": np.asarray(self.total), "squares": np.asarray(self.squares)}

    def mean_std(self, floor: float) -> tuple[np.ndarray, np.ndarray]:
        """The mean and the (population) standard deviation, at least `floor`."""
        mean = self.total / self.n
        return mean, np.sqrt(np.maximum(self.squares / self.n - mean**2, floor**2))


@dataclass
class ClassMoments:
    """Per class c of frames (D,), about the class's own shift (its first batch's mean, so that a feature
    constant within a class has exactly zero variance, as scikit-learn finds it): the count, sum x, scatter
    x xᵀ, and the third and fourth moments (x∘x) xᵀ and (x∘x)(x∘x)ᵀ that the Ledoit-Wolf coefficient of a
    standardised covariance needs. Classes are counted as they come."""

    n_classes: int
    dim: int
    n: np.ndarray = field(init=False)
    shift: np.ndarray = field(init=False)  # (C, D)
    s1: np.ndarray = field(init=False)  # (C, D)
    s2: np.ndarray = field(init=False)  # (C, D, D)
    s3: np.ndarray = field(init=False)  # (C, D, D): sum of (x∘x) xᵀ
    s4: np.ndarray = field(init=False)  # (C, D, D): sum of (x∘x)(x∘x)ᵀ

    def __post_init__(self) -> None:
        c, d = self.n_classes, self.dim
        self.n = np.zeros(c, np.int64)
        self.shift, self.s1 = np.zeros((c, d)), np.zeros((c, d))
        self.s2, self.s3, self.s4 = (np.zeros((c, d, d)) for _ in range(3))

    def add(self, x: np.ndarray, labels: np.ndarray) -> "ClassMoments":
        """Frames (N, D) with their classes (N,) >= 0."""
        x = np.asarray(x, dtype=np.float64)
        labels = np.asarray(labels)
        if len(labels) and labels.max() >= self.n_classes:
            self.grow(int(labels.max()) + 1)
        order = np.argsort(labels, kind="stable")
        classes, starts = np.unique(labels[order], return_index=True)
        for c, rows in zip(classes, np.split(order, starts[1:])):
            if self.n[c] == 0:
                self.shift[c] = x[rows].mean(axis=0)
            xc = x[rows] - self.shift[c]
            squared = xc * xc
            self.n[c] += len(xc)
            self.s1[c] += xc.sum(axis=0)
            self.s2[c] += xc.T @ xc
            self.s3[c] += squared.T @ xc
            self.s4[c] += squared.T @ squared
        return self

    def arrays(self) -> dict[str, np.ndarray]:
        """As plain arrays (saved with np.savez; `from_arrays` reads them back)."""
        return {"n": self.n, "shift": self.shift, "s1": self.s1, "s2": self.s2, "s3": self.s3, "s4": self.s4}

    def grow(self, n_classes: int) -> None:
        """Room for classes up to `n_classes` (new ones empty)."""
        extra = n_classes - self.n_classes
        if extra > 0:
            self.n = np.concatenate([self.n, np.zeros(extra, np.int64)])
            self.shift, self.s1 = (np.concatenate([a, np.zeros((extra, self.dim))]) for a in (self.shift, self.s1))
            self.s2, self.s3, self.s4 = (np.concatenate([a, np.zeros((extra, self.dim, self.dim))])
                                         for a in (self.s2, self.s3, self.s4))
            self.n_classes = n_classes

    def __add__(self, other: "ClassMoments") -> "ClassMoments":
        """The moments of both sets of frames (each class about this one's shift for it, or other's for a class
        only other has)."""
        out = self.copy()
        out += other
        return out

    def __iadd__(self, other: "ClassMoments") -> "ClassMoments":
        """`+` in place, a class at a time (temporaries of one class's moments, (D, D) each: the (C, D, D) of
        all classes at once would be hundreds of MB for an audio LDA)."""
        self.grow(other.n_classes)
        for c in np.flatnonzero(other.n):
            one = other.one(c)
            if self.n[c] == 0:
                self.shift[c] = one.shift[0]
            else:
                one = one.about(self.shift[c:c + 1])
            self.n[c] += one.n[0]
            self.s1[c] += one.s1[0]
            self.s2[c] += one.s2[0]
            self.s3[c] += one.s3[0]
            self.s4[c] += one.s4[0]
        return self

    def copy(self) -> "ClassMoments":
        return from_arrays({k: np.array(v) for k, v in self.arrays().items()})

    def one(self, c: int) -> "ClassMoments":
        """Class c's moments alone (views), as a one-class ClassMoments."""
        out = ClassMoments(1, self.dim)
        out.n, out.shift = self.n[c:c + 1], self.shift[c:c + 1]
        out.s1, out.s2, out.s3, out.s4 = (a[c:c + 1] for a in (self.s1, self.s2, self.s3, self.s4))
        return out

    def about(self, shift: np.ndarray) -> "ClassMoments":
        """The same moments about other shifts (C, D), by the binomial expansion of (x + d) in each."""
        d = self.shift - shift  # x_new = x_old + d, per class
        out = ClassMoments(self.n_classes, self.dim)
        n = self.n[:, None].astype(np.float64)
        s1, s2, s3 = self.s1, self.s2, self.s3
        sq1 = np.einsum("cii->ci", s2)  # sum of x∘x per class (C, D)
        dd = d * d
        col = lambda v: v[:, :, None]  # noqa: E731  (C, D) -> (C, D, 1): indexes rows i
        row = lambda v: v[:, None, :]  # noqa: E731  (C, D) -> (C, 1, D): indexes columns j
        out.n, out.shift = self.n.copy(), np.array(shift, dtype=np.float64)
        out.s1 = s1 + n * d
        out.s2 = s2 + col(s1) * row(d) + col(d) * row(s1) + col(n) * col(d) * row(d)
        # (x + d)∘(x + d) = x∘x + 2 d∘x + d∘d; times (x + d)ᵀ
        out.s3 = (s3 + col(sq1) * row(d) + 2 * col(d) * (s2 + col(s1) * row(d))
                  + col(dd) * (row(s1) + col(n) * row(d)))
        # (a + 2 d∘x + d∘d)(a + 2 d∘x + d∘d)ᵀ with a = x∘x, summed over frames
        s3t = np.transpose(s3, (0, 2, 1))  # sum of x (x∘x)ᵀ
        out.s4 = (self.s4 + 2 * s3 * row(d) + col(sq1) * row(dd)
                  + 2 * col(d) * s3t + 4 * col(d) * s2 * row(d) + 2 * col(d) * col(s1) * row(dd)
                  + col(dd) * row(sq1) + 2 * col(dd) * row(s1) * row(d) + col(n) * col(dd) * row(dd))
        return out

    def without(self, classes: np.ndarray) -> "ClassMoments":
        """These moments with `classes` emptied (their frames left out)."""
        out = self.copy()
        for a in (out.n, out.s1, out.s2, out.s3, out.s4):
            a[classes] = 0
        return out

    def pooled(self) -> "ClassMoments":
        """All classes as one, about their frame-weighted mean (a class at a time: memory of one class's moments)."""
        centre = (self.n[:, None] * self.shift + self.s1).sum(axis=0) / max(int(self.n.sum()), 1)
        out = ClassMoments(1, self.dim)
        out.shift = centre[None, :]
        for c in np.flatnonzero(self.n):
            moved = self.one(c).about(out.shift)
            if out.n[0]:
                out += moved
            else:
                out = moved
        return out


def from_arrays(arrays: dict[str, np.ndarray]) -> Moments | ClassMoments:
    """The `Moments` or `ClassMoments` whose `arrays()` these are."""
    if "s4" not in arrays:
        return Moments(int(arrays["n"]), arrays["total"], arrays["squares"])
    n_classes, dim = arrays["s1"].shape
    out = ClassMoments(n_classes, dim)
    out.n, out.shift, out.s1, out.s2, out.s3, out.s4 = (np.asarray(arrays[k]) for k in ("n", "shift", "s1", "s2", "s3", "s4"))
    return out


def covariance(n: int, s1: np.ndarray, s2: np.ndarray, s3: np.ndarray, s4: np.ndarray,
               shrinkage: float | str | None) -> np.ndarray:
    """What scikit-learn's `discriminant_analysis._cov` gives on the frames these moments describe: the
    population covariance, shrunk by `shrinkage` (a fixed share, or "auto": Ledoit-Wolf on the standardised
    frames, then scaled back)."""
    mean = s1 / n
    cov = s2 / n - np.outer(mean, mean)
    if shrinkage is None or shrinkage == "empirical":
        return cov
    dim = len(mean)
    if shrinkage != "auto":
        mu = np.trace(cov) / dim
        return (1 - shrinkage) * cov + shrinkage * mu * np.eye(dim)
    if dim == 1:
        return cov
    scale = np.sqrt(np.maximum(np.diag(cov), 0.0))
    scale[scale < 10 * np.finfo(float).eps] = 1.0  # as StandardScaler: a constant feature is left unscaled
    w = 1.0 / scale**2
    r = cov / np.outer(scale, scale)  # the standardised frames' covariance
    # sum over frames of |z|^4, z = (x - mean) / scale: q = wᵀ(x∘x) - 2 (w∘mean)ᵀ x + c per frame, squared
    wm = w * mean
    c = wm @ mean
    sum_sq = np.diag(s2)  # sum of x∘x
    beta_sum = (w @ s4 @ w + 4 * wm @ s2 @ wm + n * c * c - 4 * w @ s3 @ wm
                + 2 * c * (w @ sum_sq) - 4 * c * (wm @ s1))
    emp_trace = np.diag(r)
    mu = emp_trace.sum() / dim
    delta_sum = (r * r).sum()  # sum of squared entries of ZᵀZ / n^2
    beta = (beta_sum / n - delta_sum) / (dim * n)
    delta = (delta_sum - 2.0 * mu * emp_trace.sum() + dim * mu**2) / dim
    beta = min(beta, delta)
    share = 0.0 if beta == 0 else beta / delta
    shrunk = (1 - share) * r
    shrunk.flat[::dim + 1] += share * mu
    return scale[:, None] * shrunk * scale[None, :]


def lda_scalings(stats: ClassMoments, shrinkage: float | str | None) -> np.ndarray:
    """(D, D) LDA directions, most discriminant first, as scikit-learn's eigen solver finds them (up to each one's
    sign: see below): the generalised eigenvectors of (total - within) against within-class covariance, the
    within-class covariance weighted by class frequency. Classes with no frames are left out."""
    present = np.flatnonzero(stats.n)
    total_n = stats.n[present].sum()
    within = sum(stats.n[c] / total_n * covariance(stats.n[c], stats.s1[c], stats.s2[c], stats.s3[c], stats.s4[c],
                                                   shrinkage) for c in present)
    pooled = stats.pooled()
    total = covariance(int(pooled.n[0]), pooled.s1[0], pooled.s2[0], pooled.s3[0], pooled.s4[0], shrinkage)
    evals, evecs = linalg.eigh(total - within, within)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    # an eigenvector's sign is arbitrary, and statistics summed in another order (8 shards, not 1) can turn it:
    # fixed as scikit-learn's svd_flip fixes it (each direction's largest entry positive), the same frames come out
    largest = evecs[np.argmax(np.abs(evecs), axis=0), np.arange(evecs.shape[1])]
    return evecs * np.where(largest < 0, -1.0, 1.0)
