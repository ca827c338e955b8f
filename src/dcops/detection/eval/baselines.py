"""The four trivial SMD scorers behind smd_baselines_dev.csv: any detector must beat them.

Each takes the train and test matrices of one machine (rows x metrics, float64) and returns one
score for each test row, exactly as the anomaly data README describes them:

* `random_uniform`: numpy.random.default_rng(0).random(n_test);
* `zscore_max`: max over metrics of |x - mean_train| / max(std_train, 1e-3) (population std);
* `l2_norm`: L2 norm of (x - min_train) / max(max_train - min_train, 1e-6);
* `pca_recon_error`: squared reconstruction error under a PCA fitted on train that keeps the
  fewest components explaining at least 90 % of the variance (sklearn's
  PCA(n_components=0.9, svd_solver='full'), done here with numpy's SVD).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Baseline = Callable[[FloatArray, FloatArray], FloatArray]


def random_uniform(train: FloatArray, test: FloatArray) -> FloatArray:
    """Uniform noise from a fixed seed: what a detector that knows nothing scores."""
    return np.random.default_rng(0).random(len(test))


def zscore_max(train: FloatArray, test: FloatArray) -> FloatArray:
    """The largest per-metric |z| against train mean and population std (floored at 1e-3)."""
    mean = train.mean(axis=0)
    std = np.maximum(train.std(axis=0), 1e-3)
    result: FloatArray = np.max(np.abs(test - mean) / std, axis=1)
    return result


def l2_norm(train: FloatArray, test: FloatArray) -> FloatArray:
    """Length of the test row after min-max scaling with the train range (floored at 1e-6)."""
    low = train.min(axis=0)
    span = np.maximum(train.max(axis=0) - low, 1e-6)
    result: FloatArray = np.linalg.norm((test - low) / span, axis=1)
    return result


def pca_components(train: FloatArray, variance: float = 0.9) -> tuple[FloatArray, FloatArray]:
    """(mean, components (k, d)) of the PCA on train keeping `variance` of the total.

    k is sklearn's choice for a float n_components: the first k whose cumulative explained
    variance ratio exceeds `variance` (searchsorted side='right', plus one)."""
    mean = train.mean(axis=0)
    _, singular, vt = np.linalg.svd(train - mean, full_matrices=False)
    explained = singular**2
    ratio = np.cumsum(explained / explained.sum())
    k = int(np.searchsorted(ratio, variance, side="right")) + 1
    k = min(k, len(singular))
    return mean, vt[:k]


def pca_recon_error(train: FloatArray, test: FloatArray) -> FloatArray:
    """Sum over metrics of the squared error of the test row rebuilt from the train PCA."""
    mean, components = pca_components(train)
    centred = test - mean
    rebuilt = centred @ components.T @ components
    result: FloatArray = np.sum((centred - rebuilt) ** 2, axis=1)
    return result


BASELINES: dict[str, Baseline] = {
    "random_uniform": random_uniform,
    "zscore_max": zscore_max,
    "l2_norm": l2_norm,
    "pca_recon_error": pca_recon_error,
}
