"""The policy registry: every name makes a fresh policy; later modules load on demand."""

from __future__ import annotations

import sys
import types

import pytest

from dcops.core.errors import Invalid
from dcops.scheduling.policies import POLICIES, names, policy
from dcops.scheduling.policies.ordered import Fifo

BUILT_IN = ("fifo", "sjf", "srtf", "qssf", "tiresias")


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_built_in_name_makes_a_fresh_policy_of_that_name(name: str) -> None:
    first, second = policy(name), policy(name)
    assert first.name == name
    assert first is not second


def test_the_registry_lists_the_later_policies_too() -> None:
    assert set(POLICIES) == {*BUILT_IN, "easy", "fairshare", "dcops"}
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


def test_a_later_policy_loads_from_its_module_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("dcops.scheduling.policies.backfill")

    class EasyBackfill(Fifo):
        name = "easy"

    EasyBackfill.__module__ = module.__name__
    module.EasyBackfill = EasyBackfill  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    made = policy("easy")
    assert isinstance(made, EasyBackfill) and made.name == "easy"


def test_a_missing_later_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dcops.scheduling.policies.fairshare", None)
    with pytest.raises(Invalid, match="'fairshare' is not in this version"):
        policy("fairshare")
    empty = types.ModuleType("dcops.scheduling.policies.best")
    monkeypatch.setitem(sys.modules, empty.__name__, empty)
    with pytest.raises(Invalid, match="defines no policy of that name"):
        policy("dcops")
