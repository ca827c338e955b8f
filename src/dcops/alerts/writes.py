"""A group's rule outputs, written to the store together instead of once per rule.

A store write has a fixed cost (a lock, a WAL record, the caches' bookkeeping), so a group of
100 rules writing one by one pays it 100 times per evaluation. Rules in a group still see
what the rules before them wrote at the same evaluation, as in Prometheus: the outputs held
so far are written before a rule whose expressions might read one of them, i.e. one that
names a metric among them, or has a selector without a metric name (``{rack="r1"}``,
``{__name__=~"..."}``), which might match anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from dcops.core.errors import DcopsError
from dcops.telemetry.model import Batch

_NAMELESS = re.compile(r"(?<![\w:])\{|__name__")
"""A selector without a metric name: a brace not right after a name, or ``__name__``."""


@dataclass
class GroupWrites:
    """Outputs of a group's rules at one evaluation, not yet in the store."""

    held: list[tuple[str, Batch]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    _nameless: dict[tuple[str, ...], bool] = field(default_factory=dict)

    def add(self, key: str, batch: Batch, names: tuple[str, ...]) -> None:
        """Hold rule `key`'s output, whose series are named `names`."""
        self.held.append((key, batch))
        self.names.update(names)

    def read_by(self, exprs: tuple[str, ...]) -> bool:
        """Whether a rule with these expressions might read an output held now."""
        if not self.held:
            return False
        nameless = self._nameless.get(exprs)
        if nameless is None:
            nameless = self._nameless[exprs] = any(_NAMELESS.search(e) for e in exprs)
        return nameless or any(name in e for name in self.names for e in exprs)

    def flush(self, write: Callable[[Batch], object] | None) -> list[tuple[str, DcopsError]]:
        """Write what is held, as one batch; if that fails, each rule's output on its own,
        so that an error is the rule's whose write failed. The rules that failed."""
        held, self.held = self.held, []
        self.names.clear()
        if write is None or not held:
            return []
        if len(held) == 1:
            return _each(held, write)
        try:
            write(merged([batch for _, batch in held]))
        except DcopsError:
            return _each(held, write)
        return []


def _each(held: list[tuple[str, Batch]], write: Callable[[Batch], object]) \
        -> list[tuple[str, DcopsError]]:
    failed = []
    for key, batch in held:
        try:
            write(batch)
        except DcopsError as exc:
            failed.append((key, exc))
    return failed


def merged(batches: list[Batch]) -> Batch:
    """One batch of the samples of `batches`, in order (a series in several is listed once
    per batch it is in; the store takes them all, the later sample of a pair winning)."""
    out = Batch()
    for batch in batches:
        offset = len(out.labels)
        out.labels += batch.labels
        out.series_index += [i + offset for i in batch.series_index] if offset \
            else batch.series_index
        out.ts_ms += batch.ts_ms
        out.values += batch.values
    return out
