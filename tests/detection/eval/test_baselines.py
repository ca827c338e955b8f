from __future__ import annotations

import numpy as np
import pytest

from dcops.detection.eval.baselines import (
    l2_norm,
    pca_components,
    pca_recon_error,
    random_uniform,
    zscore_max,
)


def test_zscore_max_by_hand() -> None:
    train = np.array([[0.0, 1.0], [2.0, 1.0]])  # mean (1, 1), std (1, 0 -> 1e-3)
    test = np.array([[3.0, 1.0], [1.0, 1.002]])
    assert zscore_max(train, test).tolist() == pytest.approx([2.0, 2.0])


def test_l2_norm_by_hand() -> None:
    train = np.array([[0.0, 5.0], [2.0, 5.0]])  # min (0, 5), span (2, 0 -> 1e-6)
    test = np.array([[2.0, 5.0], [0.0, 5.0]])
    assert l2_norm(train, test).tolist() == pytest.approx([1.0, 0.0])


def test_random_uniform_is_seeded() -> None:
    first = random_uniform(np.zeros((3, 2)), np.zeros((5, 2)))
    assert first.tolist() == np.random.default_rng(0).random(5).tolist()


def test_pca_keeps_the_variance_share() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(500, 4)) * np.array([10.0, 5.0, 1.0, 0.1])
    _, components = pca_components(train)
    assert components.shape == (2, 4)  # 100 / 126 of the variance < 0.9 <= 125 / 126
    mean = train.mean(axis=0)
    rows = np.vstack([mean, mean + components[0] * 5.0, mean + components[1] * 2.0])
    assert pca_recon_error(train, rows) == pytest.approx([0.0, 0.0, 0.0], abs=1e-18)
    off = mean + np.array([0.0, 0.0, 0.0, 3.0])  # along a dropped, nearly axis-aligned direction
    assert pca_recon_error(train, off[None, :])[0] == pytest.approx(9.0, rel=0.01)

def test_pca_matches_sklearn() -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(6, 6))
    train = rng.normal(size=(400, 6)) @ mixing
    test = rng.normal(size=(50, 6)) @ mixing
    model = decomposition.PCA(n_components=0.9, svd_solver="full").fit(train)
    expected = np.sum((test - model.inverse_transform(model.transform(test))) ** 2, axis=1)
    assert pca_components(train)[1].shape[0] == model.n_components_
    assert pca_recon_error(train, test) == pytest.approx(expected, rel=1e-9, abs=1e-12)
