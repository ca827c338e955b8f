"""The regularised incomplete gamma function, for Gamma-Poisson lemon scoring without scipy.

`gamma_p(a, x)` = P(a, x) = lower_gamma(a, x) / Gamma(a), the CDF at `x` of Gamma(a, rate 1);
`gamma_q(a, x)` = 1 - P(a, x). The series converges fast for x < a + 1, the continued
fraction (modified Lentz) elsewhere, as in Numerical Recipes §6.2.
"""

from __future__ import annotations

import math

from dcops.core.errors import Invalid

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITER = 10_000


def gamma_p(a: float, x: float) -> float:
    """The regularised lower incomplete gamma P(a, x), for a > 0 and x >= 0."""
    _check(a, x)
    if x == 0:
        return 0.0
    if x < a + 1:
        return _series(a, x)
    return 1.0 - _continued_fraction(a, x)


def gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma Q(a, x) = 1 - P(a, x)."""
    _check(a, x)
    if x == 0:
        return 1.0
    if x < a + 1:
        return 1.0 - _series(a, x)
    return _continued_fraction(a, x)


def _check(a: float, x: float) -> None:
    if not a > 0 or not x >= 0 or math.isinf(a):
        raise Invalid(f"incomplete gamma needs a > 0 and x >= 0, got a={a}, x={x}",
                      where="dcops.health.stats")


def _prefix(a: float, x: float) -> float:
    """x^a e^-x / Gamma(a), in logs to stay finite."""
    return math.exp(a * math.log(x) - x - math.lgamma(a))


def _series(a: float, x: float) -> float:
    term = total = 1.0 / a
    denominator = a
    for _ in range(_MAX_ITER):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return min(1.0, total * _prefix(a, x))


def _continued_fraction(a: float, x: float) -> float:
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return min(1.0, _prefix(a, x) * h)
