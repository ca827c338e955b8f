"""The policy registry: every name makes a fresh policy of that name."""

from __future__ import annotations

import pytest

from dcops.core.errors import Invalid
from dcops.scheduling.policies import LIVE, POLICIES, names, policy

BUILT_IN = ("fifo", "sjf", "srtf", "qssf", "tiresias", "easy", "fairshare", "dcops")


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_built_in_name_makes_a_fresh_policy_of_that_name(name: str) -> None:
    first, second = policy(name), policy(name)
    assert first.name == name
    assert first is not second


def test_the_registry_lists_every_policy() -> None:
    assert set(POLICIES) == set(BUILT_IN)
    assert policy(" FIFO ").name == "fifo"
    assert policy("sjf").oracle and policy("srtf").oracle and not policy("qssf").oracle


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(Invalid, match="unknown policy 'lottery'") as caught:
        policy("lottery")
    assert caught.value.hint is not None and "fifo" in caught.value.hint
    assert "dcops" in caught.value.hint


def test_names_checks_a_comma_list_and_drops_repeats() -> None:
    assert names("fifo, SRTF,fifo") == ["fifo", "srtf"]
    with pytest.raises(Invalid, match="no policy given"):
        names(" , ")
    with pytest.raises(Invalid, match="unknown policy 'fcfs'"):
        names("fifo,fcfs")


def test_live_policies_are_those_without_oracle_knowledge() -> None:
    assert set(LIVE) == {"fifo", "qssf", "tiresias", "easy", "fairshare", "dcops"}
