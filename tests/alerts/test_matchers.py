"""Matchers: Alertmanager's syntax, anchored regexes, canonical text, and bad input."""

from __future__ import annotations

import pytest

from dcops.alerts.matchers import (
    Matcher,
    MatchOp,
    format_matchers,
    parse_matcher,
    parse_matchers,
)
from dcops.core.errors import Invalid


def test_the_four_operators() -> None:
    labels = {"alertname": "GpuTooHot", "rack": "r1"}
    assert parse_matcher('alertname="GpuTooHot"', "t").matches(labels)
    assert not parse_matcher('alertname!="GpuTooHot"', "t").matches(labels)
    assert parse_matcher('rack=~"r1|r2"', "t").matches(labels)
    assert not parse_matcher('rack!~"r1|r2"', "t").matches(labels)


def test_regexes_are_fully_anchored() -> None:
    m = parse_matcher('node=~"gpu"', "t")
    assert m.matches({"node": "gpu"})
    assert not m.matches({"node": "gpu01"})
    assert not m.matches({"node": "agpu"})
    assert parse_matcher('node=~"gpu.*"', "t").matches({"node": "gpu01"})
    # an alternation is anchored as a whole, not just its ends
    assert not parse_matcher('node=~"a|b"', "t").matches({"node": "ab"})


def test_a_missing_label_is_the_empty_string() -> None:
    assert parse_matcher('team=""', "t").matches({})
    assert parse_matcher('team!="infra"', "t").matches({})
    assert parse_matcher('team=~".*"', "t").matches({})
    assert not parse_matcher('team=~".+"', "t").matches({})
    assert parse_matcher('team=~".*"', "t").matches_empty
    assert not parse_matcher('team="x"', "t").matches_empty


def test_lists_braces_unquoted_values_and_trailing_comma() -> None:
    expected = [Matcher("a", MatchOp.EQ, "b"), Matcher("c", MatchOp.RE, "x|y")]
    assert parse_matchers('{a="b", c=~"x|y"}', "t") == expected
    assert parse_matchers('a="b",c=~"x|y"', "t") == expected
    assert parse_matchers("a=b, c=~x|y", "t") == expected
    assert parse_matchers('{a="b", c=~"x|y",}', "t") == expected
    assert parse_matchers("{}", "t") == []
    assert parse_matchers("  ", "t") == []


def test_quoted_values_keep_commas_braces_and_escapes() -> None:
    [m] = parse_matchers(r'{summary="a, b } \"c\" \\ d\n"}', "t")
    assert m.value == 'a, b } "c" \\ d\n'
    assert str(m) == r'summary="a, b } \"c\" \\ d\n"'
    assert parse_matchers(str(m), "t") == [m]


def test_canonical_text_round_trips() -> None:
    text = '{alertname="GpuTooHot", rack!~"r[12]", severity!="info", gpu=~".+"}'
    matchers = parse_matchers(text, "t")
    assert format_matchers(matchers) == text
    assert format_matchers(parse_matchers("alertname = GpuTooHot", "t")) == (
        '{alertname="GpuTooHot"}')


@pytest.mark.parametrize(("text", "reason"), [
    ('a=~"("', "bad regex"),
    ('a=="b"', "bad operator"),
    ('a<"b"', "bad operator"),
    ('a="b', "unterminated quoted value"),
    ('a="b" c', "text after the closing quote"),
    ('a="\\q"', "bad escape"),
    ('1a="b"', "invalid label name"),
    ('a-b="c"', "bad operator"),
    ('="b"', "does not start with a label name"),
    ('{a="b"', "missing closing"),
    ('a="b"}', "missing opening"),
    ('a="b",,c="d"', "empty matcher"),
    ('a=b"c"', "stray quote"),
])
def test_bad_input_names_where_and_why(text: str, reason: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_matchers(text, "am.yml:7")
    assert err.value.where == "am.yml:7"
    assert reason in err.value.message


def test_parse_matcher_wants_exactly_one() -> None:
    with pytest.raises(Invalid, match="expected one matcher"):
        parse_matcher('a="b", c="d"', "t")


def test_a_matcher_built_in_code_is_validated_too() -> None:
    with pytest.raises(Invalid, match="bad regex"):
        Matcher("a", MatchOp.NRE, "[")
    with pytest.raises(Invalid, match="invalid label name"):
        Matcher("a.b", MatchOp.EQ, "x")
