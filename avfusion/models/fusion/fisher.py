"""GMM Fisher-vector fusion: the audio-visual hidden sequence pooled into improved Fisher vectors.

A diagonal GMM is fitted by EM (scikit-learn, k-means initialisation) on the PCA-whitened concatenated
hidden vectors of training frames; `learnable: true` makes its mixture logits, means and log standard
deviations parameters trained by backprop with the classifier (Deep Fisher Kernels, Sydorov et al. 2014).
Formulas: avfusion.models.pooling; pooling modes and PCA: avfusion.models.fusion.pooled.
"""

from __future__ import annotations

import logging

import numpy as np

from avfusion.models.fusion.pooled import PooledFusion
from avfusion.models.pooling import FisherVectorPooling

log = logging.getLogger(__name__)


class FisherVectorFusion(PooledFusion):
    def __init__(self, n_components: int, learnable: bool, alpha_block: bool, improved: bool, em_iterations: int,
                 **pooled) -> None:
        super().__init__(**pooled)
        if n_components < 1:
            raise ValueError(f"fusion.n_components must be >= 1, not {n_components}")
        self.n_components, self.learnable = n_components, learnable
        self.alpha_block, self.improved, self.em_iterations = alpha_block, improved, em_iterations

    def make_pooling(self, dim: int) -> FisherVectorPooling:
        return FisherVectorPooling(self.n_components, dim, self.learnable, self.alpha_block, self.improved,
                                   self.posterior_floor, self.window_algorithm)

    def fit_pooling(self, x: np.ndarray) -> None:
        from sklearn.mixture import GaussianMixture

        gmm = GaussianMixture(self.n_components, covariance_type="diag", init_params="kmeans",
                              max_iter=self.em_iterations, random_state=self.seed).fit(x)
        if not gmm.converged_:
            log.warning("GMM: EM did not converge in %d iterations (fusion.em_iterations)",
                                                self.em_iterations)
        self.pool.set_gmm(gmm.weights_, gmm.means_, gmm.covariances_)
