"""The regularised incomplete gamma function against closed forms and published values."""

from __future__ import annotations

import math

import pytest

from dcops.core.errors import Invalid
from dcops.health.stats import gamma_p, gamma_q


@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 2.0, 7.5, 30.0])
def test_shape_one_is_the_exponential_cdf(x: float) -> None:
    assert gamma_p(1.0, x) == pytest.approx(1 - math.exp(-x), rel=1e-12)


@pytest.mark.parametrize(("a", "x"), [(3, 2.5), (5, 20.0), (10, 3.0), (40, 45.0)])
def test_integer_shape_is_a_poisson_tail(a: int, x: float) -> None:
    poisson_cdf = math.exp(-x) * sum(x ** k / math.factorial(k) for k in range(a))
    assert gamma_q(a, x) == pytest.approx(poisson_cdf, rel=1e-10)


def test_half_shape_is_the_error_function() -> None:
    assert gamma_p(0.5, 1.0) == pytest.approx(math.erf(1.0), rel=1e-12)
    assert gamma_q(0.5, 4.0) == pytest.approx(math.erfc(2.0), rel=1e-10)


def test_known_values_and_edges() -> None:
    assert gamma_q(100, 90) == pytest.approx(0.841779, abs=1e-6)   # scipy.special.gammaincc
    assert gamma_p(2.0, 0.0) == 0.0 and gamma_q(2.0, 0.0) == 1.0
    assert gamma_p(0.001, 1e-9) + gamma_q(0.001, 1e-9) == pytest.approx(1.0)
    with pytest.raises(Invalid):
        gamma_q(0.0, 1.0)
    with pytest.raises(Invalid):
        gamma_p(1.0, -1.0)
