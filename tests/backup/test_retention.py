"""Retention policies on timelines: which snapshots stay, and why (restic's semantics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dcops.backup.model import Snapshot
from dcops.backup.retention import Duration, RetentionPolicy, decide, parse_duration
from dcops.core.errors import Invalid

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def snap(sid: str, when: str, *, host: str = "h1", paths: tuple[str, ...] = ("/data",),
         tags: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(id=sid, time=datetime.fromisoformat(when).replace(tzinfo=UTC), host=host,
                    user="u", paths=paths, tags=tags)


def kept(snaps: list[Snapshot], policy: RetentionPolicy, *, group_by: str = "host,paths",
         now: datetime = NOW) -> dict[str, list[str]]:
    return {s.id: why for s, keep, why in decide(snaps, policy, now, group_by=group_by)
            if keep}


# Restic's documented example: one backup every Sunday at 11:00 for 12 weeks.
SUNDAYS = [snap(f"w{i:02}", (datetime(2019, 9, 1, 11) + timedelta(weeks=i)).isoformat())
           for i in range(12)]

HOURS = [snap("a", "2024-05-31T10:05"), snap("b", "2024-05-31T10:40"),
         snap("c", "2024-05-31T11:10"), snap("d", "2024-05-31T11:50"),
         snap("e", "2024-05-31T12:30")]

DAYS = [snap("d1a", "2024-05-28T08:00"), snap("d1b", "2024-05-28T20:00"),
        snap("d2a", "2024-05-29T08:00"), snap("d2b", "2024-05-29T20:00"),
        snap("d3a", "2024-05-30T08:00"), snap("d3b", "2024-05-30T20:00")]

# Mon 2024-05-20 .. Sun 2024-06-02 spans ISO weeks 21 and 22; months April and May;
# years 2022, 2023, 2024.
SPREAD = [snap("y22", "2022-12-31T23:00"), snap("y23a", "2023-03-01T00:00"),
          snap("y23b", "2023-12-31T23:59"), snap("apr", "2024-04-15T00:00"),
          snap("wk21a", "2024-05-20T00:00"), snap("wk21b", "2024-05-26T23:59"),
          snap("wk22", "2024-05-27T00:00")]

CASES = [
    ("keep-daily 4, restic's Sundays", SUNDAYS, RetentionPolicy(keep_daily=4),
     {f"w{i:02}": ["daily snapshot"] for i in range(8, 12)}),
    ("keep-last 2", HOURS, RetentionPolicy(keep_last=2),
     {"e": ["last snapshot"], "d": ["last snapshot"]}),
    ("keep-hourly 2: newest of each of the 2 newest hours", HOURS,
     RetentionPolicy(keep_hourly=2), {"e": ["hourly snapshot"], "d": ["hourly snapshot"]}),
    ("keep-hourly 3: the hour 10 bucket keeps its newest", HOURS,
     RetentionPolicy(keep_hourly=3),
     {"e": ["hourly snapshot"], "d": ["hourly snapshot"], "b": ["hourly snapshot"]}),
    ("keep-daily 5, count left: the oldest is kept too", DAYS, RetentionPolicy(keep_daily=5),
     {"d3b": ["daily snapshot"], "d2b": ["daily snapshot"], "d1b": ["daily snapshot"],
      "d1a": ["oldest daily snapshot"]}),
    ("keep-daily 3, count used up: no oldest", DAYS, RetentionPolicy(keep_daily=3),
     {"d3b": ["daily snapshot"], "d2b": ["daily snapshot"], "d1b": ["daily snapshot"]}),
    ("keep-weekly 2 uses ISO weeks (Monday to Sunday)", SPREAD, RetentionPolicy(keep_weekly=2),
     {"wk22": ["weekly snapshot"], "wk21b": ["weekly snapshot"]}),
    ("keep-monthly 2", SPREAD, RetentionPolicy(keep_monthly=2),
     {"wk22": ["monthly snapshot"], "apr": ["monthly snapshot"]}),
    ("keep-yearly 2", SPREAD, RetentionPolicy(keep_yearly=2),
     {"wk22": ["yearly snapshot"], "y23b": ["yearly snapshot"]}),
    ("keep-yearly 5: three years, then the oldest", SPREAD, RetentionPolicy(keep_yearly=5),
     {"wk22": ["yearly snapshot"], "y23b": ["yearly snapshot"], "y22": ["yearly snapshot"]}),
    ("combined: reasons add up, a snapshot matching several rules counts for each",
     SPREAD, RetentionPolicy(keep_last=1, keep_weekly=2, keep_yearly=2),
     {"wk22": ["last snapshot", "weekly snapshot", "yearly snapshot"],
      "wk21b": ["weekly snapshot"], "y23b": ["yearly snapshot"]}),
    ("keep-within 2d of the newest, strictly after (d1b is exactly 2d older)", DAYS,
     RetentionPolicy(keep_within=parse_duration("2d")),
     {"d3b": ["within 2d"], "d3a": ["within 2d"], "d2b": ["within 2d"], "d2a": ["within 2d"]}),
    ("keep-within as a timedelta", HOURS, RetentionPolicy(keep_within=timedelta(hours=1)),
     {"e": ["within 1:00:00"], "d": ["within 1:00:00"]}),
    ("keep-within 1m counts calendar months", SPREAD,
     RetentionPolicy(keep_within=parse_duration("1m")),
     {"wk22": ["within 1m"], "wk21b": ["within 1m"], "wk21a": ["within 1m"]}),
    ("keep-tag: all the tags of one entry, or untagged with ''",
     [snap("t1", "2024-05-01T00:00", tags=("daily", "gpu")),
      snap("t2", "2024-05-02T00:00", tags=("daily",)),
      snap("t3", "2024-05-03T00:00"), snap("t4", "2024-05-04T00:00", tags=("gpu",))],
     RetentionPolicy(keep_tags=("daily,gpu", "")),
     {"t1": ["has tags daily,gpu"], "t3": ["has tags (none)"]}),
]


@pytest.mark.parametrize(("snaps", "policy", "want"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_policy_keeps_exactly(snaps: list[Snapshot], policy: RetentionPolicy,
                              want: dict[str, list[str]]) -> None:
    assert kept(snaps, policy) == want


def test_every_snapshot_is_decided_once_newest_first() -> None:
    decisions = decide(list(reversed(HOURS)), RetentionPolicy(keep_last=1), NOW)
    assert [(s.id, keep) for s, keep, _ in decisions] == [
        ("e", True), ("d", False), ("c", False), ("b", False), ("a", False)]


def test_future_snapshots_are_kept_and_do_not_move_the_window() -> None:
    snaps = [snap("old", "2024-05-20T00:00"), snap("recent", "2024-05-31T00:00"),
             snap("future", "2024-07-01T00:00")]
    assert kept(snaps, RetentionPolicy(keep_within=parse_duration("2d"))) == {
        "recent": ["within 2d"], "future": ["within 2d"]}


TWO_HOSTS = [snap("a1", "2024-05-01T00:00", host="a"), snap("a2", "2024-05-02T00:00", host="a"),
             snap("b1", "2024-05-03T00:00", host="b"),
             snap("b2", "2024-05-04T00:00", host="b", paths=("/other",)),
             snap("b3", "2024-05-05T00:00", host="b", paths=("/data", "/other"))]

GROUPINGS = [
    ("host,paths", {"a2", "b1", "b2", "b3"}),
    ("host", {"a2", "b3"}),
    ("paths", {"b1", "b2", "b3"}),
    ("", {"b3"}),
]


@pytest.mark.parametrize(("group_by", "want"), GROUPINGS, ids=[g or "all" for g, _ in GROUPINGS])
def test_each_group_is_decided_on_its_own(group_by: str, want: set[str]) -> None:
    assert set(kept(TWO_HOSTS, RetentionPolicy(keep_last=1), group_by=group_by)) == want


def test_paths_group_regardless_of_order() -> None:
    snaps = [snap("x", "2024-05-01T00:00", paths=("/b", "/a")),
             snap("y", "2024-05-02T00:00", paths=("/a", "/b"))]
    assert set(kept(snaps, RetentionPolicy(keep_last=1))) == {"y"}


@pytest.mark.parametrize("field", ["keep_last", "keep_hourly", "keep_daily", "keep_weekly",
                                   "keep_monthly", "keep_yearly"])
def test_negative_counts_are_refused(field: str) -> None:
    with pytest.raises(Invalid, match="counts must be 0 or more"):
        RetentionPolicy(**{field: -1})  # type: ignore[arg-type]


def test_an_empty_policy_is_refused_unless_removing_all_is_allowed() -> None:
    with pytest.raises(Invalid, match="keeps nothing"):
        RetentionPolicy()
    with pytest.raises(Invalid, match="keeps nothing"):
        RetentionPolicy(keep_last=0, keep_within=Duration())
    everything = RetentionPolicy(allow_remove_all=True)
    assert kept(HOURS, everything) == {}


def test_a_tag_policy_that_would_empty_a_group_is_refused() -> None:
    snaps = [snap("a", "2024-05-01T00:00", tags=("x",)), snap("b", "2024-05-01T00:00",
                                                                  host="other")]
    with pytest.raises(Invalid, match="every snapshot of group"):
        decide(snaps, RetentionPolicy(keep_tags=("x",)), NOW)


def test_unknown_grouping_is_refused() -> None:
    with pytest.raises(Invalid, match="cannot group"):
        decide(HOURS, RetentionPolicy(keep_last=1), NOW, group_by="host,colour")


@pytest.mark.parametrize(("text", "want"), [
    ("2d", Duration(days=2)), ("6h", Duration(hours=6)), ("1w3d", Duration(days=10)),
    ("1y2m3d4h", Duration(1, 2, 3, 4)), ("2y5m7d3h", Duration(2, 5, 7, 3)),
])
def test_parse_duration(text: str, want: Duration) -> None:
    assert parse_duration(text) == want


@pytest.mark.parametrize("text", ["", "3", "1x", "d", "-1d", "1d 2h", "1.5d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(Invalid):
        parse_duration(text)


def test_calendar_durations_normalise_like_go() -> None:
    end_of_march = datetime(2023, 3, 31, 12, tzinfo=UTC)
    assert Duration(months=1).before(end_of_march) == datetime(2023, 3, 3, 12, tzinfo=UTC)
    assert Duration(years=1, hours=13).before(end_of_march) == datetime(
        2022, 3, 30, 23, tzinfo=UTC)
