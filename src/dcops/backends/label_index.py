"""The embedded store's label index: series ids by label name and value, so selectors are
matched in memory, without asking DuckDB, and a selector's match is remembered until a
series it could match arrives."""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from dcops.core.errors import Invalid
from dcops.telemetry.model import Labels, Matcher, MatchOp

I64 = npt.NDArray[np.int64]

_MATCH_CACHE = 10_000
"""Selector matches kept between queries (rules ask the same ones every evaluation)."""


def _metric_name(matchers: Sequence[Matcher]) -> str | None:
    """The metric name `matchers` require exactly, if they do."""
    for m in matchers:
        if m.name == "__name__" and m.op is MatchOp.EQ and m.value != "":
            return m.value
    return None


class LabelIndex:
    """Series ids by label: name -> value -> ids, for matching selectors without DuckDB."""

    def __init__(self) -> None:
        self.labels: dict[int, Labels] = {}
        self.postings: dict[str, dict[str, array[int]]] = {}
        """Series ids by label name and value: arrays, which the garbage collector need
        not walk (sets of ~100k series' ids made every full collection ~60 ms longer)."""
        self.added = 0
        """Series added so far: what a cached match was computed against."""
        self.name_added: dict[str, int] = {}
        """Per metric name, `added` just after its newest series came."""
        self._cache: dict[tuple[Matcher, ...], tuple[int, I64]] = {}

    def add(self, sid: int, labels: Labels) -> None:
        self.add_many([(sid, labels)])

    def add_many(self, series: list[tuple[int, Labels]]) -> None:
        postings, name_added, known = self.postings, self.name_added, self.labels
        for sid, labels in series:
            known[sid] = labels
            self.added += 1
            for name, value in labels:
                by_value = postings.get(name)
                if by_value is None:
                    by_value = postings[name] = {}
                ids = by_value.get(value)
                if ids is None:
                    by_value[value] = array("q", (sid,))
                else:
                    ids.append(sid)
                if name == "__name__":
                    name_added[value] = self.added

    def cached(self, matchers: Sequence[Matcher]) -> I64 | None:
        """Ids a `remember`ed match found, if no series it could match came since.

        Series are only ever added to the index (retention drops samples, not series), so
        a match holds until a new series arrives; with ``__name__="x"`` among the matchers,
        only new series named x end it (a rule's own output does not end its input's)."""
        found = self._cache.get(tuple(matchers))
        if found is None:
            return None
        upto, ids = found
        name = _metric_name(matchers)
        if (self.added if name is None else self.name_added.get(name, 0)) > upto:
            return None
        return ids

    def remember(self, matchers: Sequence[Matcher], ids: I64) -> None:
        if len(self._cache) >= _MATCH_CACHE:  # ad hoc queries: start again
            self._cache.clear()
        ids.flags.writeable = False  # shared by every reader of this match
        self._cache[tuple(matchers)] = (self.added, ids)

    def match(self, matchers: Sequence[Matcher]) -> I64:
        """Ids of the series matching every one of `matchers`, ascending."""
        result: I64 | None = None
        for m in sorted(matchers, key=lambda m: m.op is not MatchOp.EQ):
            ids = self._match_one(m, result)
            result = ids if result is None else np.intersect1d(result, ids, assume_unique=True)
            if not len(result):
                return result
        return self._all() if result is None else result

    def _all(self) -> I64:
        return np.sort(np.fromiter(self.labels, dtype=np.int64, count=len(self.labels)))

    def _match_one(self, m: Matcher, within: I64 | None) -> I64:
        values = self.postings.get(m.name, {})
        if m.op is MatchOp.EQ and m.value != "":
            return _ids_of(values.get(m.value))
        try:
            pattern = re.compile(m.value) if m.op in (MatchOp.RE, MatchOp.NRE) else None
        except re.error as exc:
            raise Invalid(f"bad regular expression {m.value!r}: {exc}",
                          where=f"matcher {m.name}{m.op}") from None

        def hit(v: str) -> bool:
            if pattern is None:
                return (v == m.value) is (m.op is MatchOp.EQ)
            return (pattern.fullmatch(v) is not None) is (m.op is MatchOp.RE)

        out = _union([ids for v, ids in values.items() if hit(v)])
        if hit(""):  # series without this label carry "" for it
            having = _union(list(values.values()))
            lacking = np.setdiff1d(within if within is not None else self._all(), having,
                                   assume_unique=True)
            out = np.union1d(out, lacking)
        return out


def _ids_of(posting: array[int] | None) -> I64:
    """A posting list as a numpy array of its own (the list may grow afterwards)."""
    if posting is None or not len(posting):
        return np.zeros(0, dtype=np.int64)
    return np.frombuffer(posting, dtype=np.int64).copy()


def _union(postings: list[array[int]]) -> I64:
    """The ids in any of `postings`, ascending."""
    if not postings:
        return np.zeros(0, dtype=np.int64)
    if len(postings) == 1:
        return np.unique(_ids_of(postings[0]))
    return np.unique(np.concatenate([_ids_of(p) for p in postings]))
