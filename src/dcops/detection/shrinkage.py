"""Shrunk covariance: a covariance of dozens of metrics that stays invertible on short history."""

from __future__ import annotations

import numpy as np

from dcops.detection.model import FloatArray


def ledoit_wolf(centred: FloatArray) -> FloatArray:
    """The Ledoit-Wolf shrunk covariance of rows already centred (n, p), as
    sklearn.covariance.ledoit_wolf(assume_centered=True) computes it: the sample covariance
    pulled towards a scaled identity by the shrinkage that minimises the expected error."""
    n, p = centred.shape
    if p == 0:
        return np.zeros((0, 0))
    emp = centred.T @ centred / n
    mu = float(np.trace(emp)) / p
    sq = centred**2
    beta_sum = float(np.sum(sq.T @ sq))
    delta_sum = float(np.sum(emp**2))
    beta = (beta_sum / n - delta_sum) / (p * n)
    delta = (delta_sum - 2 * mu * float(np.trace(emp)) + p * mu**2) / p
    beta = min(beta, delta)
    shrink = 0.0 if beta <= 0 or delta <= 0 else beta / delta
    out: FloatArray = (1 - shrink) * emp + shrink * mu * np.eye(p)
    return out
