"""VLAD fusion: the audio-visual hidden sequence pooled into VLAD vectors (Jegou et al. 2010), or
NetVLAD (`soft: true`: soft assignment with a learnable codebook, Arandjelovic et al. 2016).

The codebook is fitted by k-means (scikit-learn MiniBatchKMeans) on the PCA-whitened concatenated
hidden vectors of training frames. Formulas: avfusion.models.pooling; pooling modes and PCA:
avfusion.models.fusion.pooled.
"""

from __future__ import annotations

import numpy as np

from avfusion.models.fusion.pooled import PooledFusion
from avfusion.models.pooling import VladPooling


class VladFusion(PooledFusion):
    def __init__(self, n_clusters: int, soft: bool, alpha: float, **pooled) -> None:
        super().__init__(**pooled)
        if n_clusters < 1:
            raise ValueError(f"fusion.n_clusters must be >= 1, not {n_clusters}")
        self.n_clusters, self.soft, self.alpha = n_clusters, soft, alpha

    def make_pooling(self, dim: int) -> VladPooling:
        return VladPooling(self.n_clusters, dim, soft=self.soft, alpha=self.alpha, posterior_floor=self.posterior_floor,
                           window_algorithm=self.window_algorithm)

    def fit_pooling(self, x: np.ndarray) -> None:
        from sklearn.cluster import MiniBatchKMeans

        kmeans = MiniBatchKMeans(self.n_clusters, random_state=self.seed, n_init=3, batch_size=4096).fit(x)
        self.pool.set_codebook(kmeans.cluster_centers_)
