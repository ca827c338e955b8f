"""The comparison the differential suite relies on must see real differences."""

from __future__ import annotations

from typing import Any

from tests.query.differential import differences, load_corpus


def _vector(*points: tuple[str, str]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"gpu": gpu}, "value": [1, value]} for gpu, value in points]}}


def test_equal_answers_agree_in_any_order() -> None:
    assert differences(_vector(("0", "1"), ("1", "NaN")), _vector(("1", "NaN"), ("0", "1"))) == []
    assert differences(_vector(("0", "0.1")), _vector(("0", "0.10000000000000002"))) == []


def test_wrong_values_labels_order_and_errors_are_reported() -> None:
    assert differences(_vector(("0", "1")), _vector(("0", "2")))
    assert differences(_vector(("0", "1")), _vector(("1", "1")))
    # the same number written two ways is a difference too
    assert differences(_vector(("0", "1e+06")), _vector(("0", "1000000")))
    assert differences(_vector(("0", "1"), ("1", "2")), _vector(("1", "2"), ("0", "1")),
                       ordered=True)
    error = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    assert differences(error, _vector(("0", "1")))
    assert differences(error, {**error, "errorType": "execution"})
    assert differences(error, error) == []


def test_corpus_is_large_and_fills_in_the_moment() -> None:
    cases = load_corpus(at_s="1700000000.000")
    assert len(cases) >= 400
    assert not any("{at}" in c.query for c in cases)
    assert any("@ 1700000000.000" in c.query for c in cases)
