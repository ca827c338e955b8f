"""Query answers in the exact shape and number formatting of Prometheus's HTTP API."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dcops.query import QueryError, Result, format_value
from dcops.query.result import ResultSeries, format_scalar


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (0.5, "0.5"), (-2.25, "-2.25"), (1e6, "1000000"), (1e20, "100000000000000000000"),
    (1e21, "1e+21"), (-1.5e22, "-1.5e+22"), (1.5e-7, "1.5e-07"), (1e-6, "0.000001"),
    (0.1 + 0.2, "0.30000000000000004"), (-0.0, "-0"), (0.0, "0"), (1.2345e-300, "1.2345e-300"),
    (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (123456.789, "123456.789"),
])
def test_sample_values_are_formatted_like_the_prometheus_api(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (1e21, "1000000000000000000000"), (1.5e-7, "0.00000015"), (2.0, "2"), (math.nan, "NaN")])
def test_scalars_are_formatted_like_go_strconv_f(value: float, text: str) -> None:
    assert format_scalar(value) == text


def test_vector_scalar_string_and_matrix_shapes() -> None:
    labels = (("__name__", "dc_gpu_temp_celsius"), ("gpu", "0"))
    one = ResultSeries(labels, np.array([1_700_000_000_500]), np.array([55.0]))
    assert Result("vector", [one]).to_prometheus_json() == {"resultType": "vector", "result": [
        {"metric": {"__name__": "dc_gpu_temp_celsius", "gpu": "0"},
         "value": [1_700_000_000.5, "55"]}]}
    two = ResultSeries(labels, np.array([1_700_000_000_000, 1_700_000_015_000]),
                       np.array([55.0, math.nan]))
    assert Result("matrix", [two]).to_prometheus_json()["result"][0]["values"] == [
        [1_700_000_000, "55"], [1_700_000_015, "NaN"]]
    assert Result("scalar", at_ms=1_000, scalar=2.0).to_prometheus_json() == {
        "resultType": "scalar", "result": [1, "2"]}
    assert Result("string", at_ms=1_500, string="hi").to_prometheus_json() == {
        "resultType": "string", "result": [1.5, "hi"]}


def test_query_errors_carry_their_prometheus_kind() -> None:
    bad = QueryError("bad_data", "parse error")
    assert (bad.kind, bad.status, bad.code) == ("bad_data", 400, "bad_data")
    execution = QueryError("execution", "too many samples")
    assert (execution.kind, execution.status) == ("execution", 422)
    assert execution.to_dict()["message"] == "too many samples"
