"""The label index on its own: matching as PromQL selectors do, and remembered matches
that end when a series they could match arrives."""

from __future__ import annotations

import pytest

from dcops.backends.label_index import LabelIndex
from dcops.core.errors import Invalid
from dcops.telemetry.model import Matcher, MatchOp, make_labels


def _index() -> LabelIndex:
    index = LabelIndex()
    index.add_many([(0, make_labels("temp", {"node": "n1", "gpu": "0"})),
                    (1, make_labels("temp", {"node": "n2"})),
                    (2, make_labels("power", {"node": "n1", "gpu": "1"}))])
    return index


@pytest.mark.parametrize(("matchers", "ids"), [
    ([Matcher("__name__", MatchOp.EQ, "temp")], [0, 1]),
    ([Matcher("node", MatchOp.EQ, "n1"), Matcher("gpu", MatchOp.RE, "0|1")], [0, 2]),
    ([Matcher("gpu", MatchOp.EQ, "")], [1]),  # lacking the label is the empty value
    ([Matcher("gpu", MatchOp.NE, "0")], [1, 2]),
    ([Matcher("node", MatchOp.NRE, "n.")], []),
    ([Matcher("gpu", MatchOp.RE, ".*")], [0, 1, 2]),
])
def test_matches_as_a_selector_would(matchers: list[Matcher], ids: list[int]) -> None:
    assert _index().match(matchers).tolist() == ids


def test_a_bad_regex_is_invalid() -> None:
    with pytest.raises(Invalid, match="bad regular expression"):
        _index().match([Matcher("node", MatchOp.RE, "(")])


def test_a_remembered_match_ends_only_with_a_new_series_it_could_match() -> None:
    index = _index()
    by_name = [Matcher("__name__", MatchOp.EQ, "temp")]
    any_name = [Matcher("node", MatchOp.EQ, "n1")]
    index.remember(by_name, index.match(by_name))
    index.remember(any_name, index.match(any_name))
    index.add(3, make_labels("power", {"node": "n3"}))  # another metric's series
    cached = index.cached(by_name)
    assert cached is not None and cached.tolist() == [0, 1]
    assert index.cached(any_name) is None  # no metric name: any new series may match
    index.add(4, make_labels("temp", {"node": "n4"}))
    assert index.cached(by_name) is None
