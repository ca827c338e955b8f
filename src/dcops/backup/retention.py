"""Which snapshots a retention policy keeps, as restic's ``forget`` decides it.

Snapshots are put into groups (by default by host and sorted paths) and each group is
decided on its own, newest first. A snapshot is kept when any rule keeps it:

- ``keep_last n``: the n newest;
- ``keep_hourly/daily/weekly/monthly/yearly n``: the newest snapshot of each of the n
  newest hours (days, ISO weeks, months, years: calendar boundaries in UTC) that hold a
  snapshot; if a rule's count is not used up when the oldest snapshot is reached, the
  oldest is kept too ("oldest daily snapshot"), which keeps the longest history;
- ``keep_within d``: every snapshot less than ``d`` older than the group's newest one
  (snapshots from the future, relative to ``now``, do not count as the newest);
- ``keep_tags``: every snapshot that has all tags of one of the entries (``"a,b"`` means
  both ``a`` and ``b``; ``""`` means untagged).

Unlike restic, a negative count (restic's ``-1``, unlimited) is refused, and ``w``
(weeks) is accepted in durations besides restic's ``y``, ``m``, ``d`` and ``h``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

from dcops.backup.model import Snapshot
from dcops.core.errors import Invalid

GROUP_KEYS = ("host", "paths", "tags")
_DURATION = re.compile(r"(\d+)([ymwdh])")


@dataclass(frozen=True)
class Duration:
    """A calendar span as restic writes it (``1y2m3d4h``): months and years have their
    calendar lengths, so ``1m`` before 31 March is 3 March, as Go's ``AddDate`` has it."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    def before(self, t: datetime) -> datetime:
        """The time this span before `t`."""
        month_index = t.year * 12 + (t.month - 1) - self.years * 12 - self.months
        year, month = divmod(month_index, 12)
        start = date(year, month + 1, 1) + timedelta(days=t.day - 1 - self.days)
        return datetime.combine(start, t.timetz()) - timedelta(hours=self.hours)

    def __bool__(self) -> bool:
        return any((self.years, self.months, self.days, self.hours))

    def __str__(self) -> str:
        parts = [(self.years, "y"), (self.months, "m"), (self.days, "d"), (self.hours, "h")]
        return "".join(f"{n}{unit}" for n, unit in parts if n) or "0h"


def parse_duration(text: str) -> Duration:
    """A `Duration` from restic's notation: ``2d``, ``1y2m3d4h``, ``6h`` (also ``1w3d``,
    a week being 7 days); `Invalid` for anything else."""
    cleaned = text.strip()
    if not cleaned or _DURATION.sub("", cleaned):
        raise Invalid(f"duration {text!r} is not like 1y2m3d4h (years, months, days, hours)",
                      hint="e.g. --keep-within 7d or 1y6m")
    spans = {"y": 0, "m": 0, "w": 0, "d": 0, "h": 0}
    for number, unit in _DURATION.findall(cleaned):
        spans[unit] += int(number)
    return Duration(years=spans["y"], months=spans["m"], days=spans["d"] + 7 * spans["w"],
                    hours=spans["h"])


@dataclass(frozen=True)
class RetentionPolicy:
    """What ``forget`` keeps. A policy that keeps nothing is refused unless
    `allow_remove_all` says that forgetting every snapshot is meant."""

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: Duration | timedelta | None = None
    keep_tags: tuple[str, ...] = ()
    allow_remove_all: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("keep_") and isinstance(value, int) and value < 0:
                raise Invalid(f"{f.name.replace('_', '-')} is {value}: counts must be 0 or "
                              "more", hint="leave it out (0) to not use the rule")
        if isinstance(self.keep_within, timedelta) and self.keep_within < timedelta(0):
            raise Invalid(f"keep-within is negative ({self.keep_within})")
        if self.empty and not self.allow_remove_all:
            raise Invalid("the retention policy keeps nothing, so every snapshot would be "
                          "forgotten", hint="give a --keep-* option, or --unsafe-allow-remove-"
                                            "all if that is really meant")

    @property
    def empty(self) -> bool:
        counts = (self.keep_last, self.keep_hourly, self.keep_daily, self.keep_weekly,
                  self.keep_monthly, self.keep_yearly)
        return not any(counts) and not self.keep_within and not self.keep_tags

    def within_start(self, newest: datetime) -> datetime | None:
        """Snapshots after this time are kept by `keep_within`."""
        if not self.keep_within:
            return None
        if isinstance(self.keep_within, Duration):
            return self.keep_within.before(newest)
        return newest - self.keep_within


Decision = tuple[Snapshot, bool, list[str]]
_Bucketer = Callable[[datetime, int], int]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _hour(t: datetime, _: int) -> int:
    return ((t.year * 100 + t.month) * 100 + t.day) * 100 + t.hour


def _day(t: datetime, _: int) -> int:
    return (t.year * 100 + t.month) * 100 + t.day


def _week(t: datetime, _: int) -> int:
    year, week, _weekday = t.isocalendar()
    return year * 100 + week


def _month(t: datetime, _: int) -> int:
    return t.year * 100 + t.month


def _year(t: datetime, _: int) -> int:
    return t.year


def _nth(_: datetime, nr: int) -> int:
    return nr


def _has_tags(snapshot: Snapshot, wanted: str) -> bool:
    if wanted == "":
        return not snapshot.tags
    return all(tag in snapshot.tags for tag in wanted.split(",") if tag)


def _decide_group(group: Sequence[Snapshot], policy: RetentionPolicy,
                  now: datetime) -> list[Decision]:
    ordered = sorted(group, key=lambda s: (_utc(s.time), s.id), reverse=True)
    if policy.empty:  # allowed by `allow_remove_all`
        return [(s, False, []) for s in ordered]
    now_utc = _utc(now)
    past = [_utc(s.time) for s in ordered if _utc(s.time) < now_utc]
    newest = max(past) if past else None
    within = policy.within_start(newest) if newest is not None else None
    buckets: list[tuple[int, _Bucketer, str]] = [
        (policy.keep_last, _nth, "last snapshot"),
        (policy.keep_hourly, _hour, "hourly snapshot"),
        (policy.keep_daily, _day, "daily snapshot"),
        (policy.keep_weekly, _week, "weekly snapshot"),
        (policy.keep_monthly, _month, "monthly snapshot"),
        (policy.keep_yearly, _year, "yearly snapshot")]
    left = [count for count, _, _ in buckets]
    last: list[int | None] = [None] * len(buckets)
    decisions: list[Decision] = []
    for nr, snap in enumerate(ordered):
        t = _utc(snap.time)
        reasons = [f"has tags {wanted or '(none)'}" for wanted in policy.keep_tags
                   if _has_tags(snap, wanted)]
        if policy.keep_within and (newest is None or within is None or t > within):
            reasons.append(f"within {policy.keep_within}")
        oldest = nr == len(ordered) - 1
        for i, (_, bucket_of, reason) in enumerate(buckets):
            if left[i] <= 0:
                continue
            value = bucket_of(t, nr)
            if value != last[i] or oldest:
                reasons.append(reason if value != last[i] else f"oldest {reason}")
                last[i] = value
                left[i] -= 1
        decisions.append((snap, bool(reasons), reasons))
    return decisions


def group_key(snapshot: Snapshot, group_by: str) -> tuple[object, ...]:
    """The group a snapshot belongs to under `group_by` (``"host,paths"`` and so on)."""
    keys = [k.strip() for k in group_by.split(",") if k.strip()]
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown:
        raise Invalid(f"cannot group snapshots by {', '.join(unknown)}",
                      hint=f"group by any of {', '.join(GROUP_KEYS)}, or '' for one group")
    values: dict[str, object] = {"host": snapshot.host, "paths": tuple(sorted(snapshot.paths)),
                                 "tags": tuple(sorted(snapshot.tags))}
    return tuple(values[k] for k in keys)


def decide(snapshots: Iterable[Snapshot], policy: RetentionPolicy, now: datetime, *,
           group_by: str = "host,paths") -> list[Decision]:
    """(snapshot, kept, why) for every snapshot, each group newest first, groups in
    order of their key. A group that only `keep_tags` applies to and in which no snapshot
    has the tags is refused (restic's rule: it would lose every snapshot) unless the policy
    allows removing all."""
    groups: dict[tuple[object, ...], list[Snapshot]] = {}
    for snap in snapshots:
        groups.setdefault(group_key(snap, group_by), []).append(snap)
    decisions: list[Decision] = []
    for key in sorted(groups, key=repr):
        decided = _decide_group(groups[key], policy, now)
        if not policy.allow_remove_all and not any(kept for _, kept, _ in decided):
            raise Invalid(f"the policy would forget every snapshot of group {key!r} (none has "
                          f"the tags {', '.join(repr(t) for t in policy.keep_tags)})",
                          hint="add a --keep-last or --keep-within rule")
        decisions.extend(decided)
    return decisions
