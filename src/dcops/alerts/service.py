"""The rules a running control plane evaluates: read from files, reloaded when they change.

A reload that fails (a file that does not parse) keeps the rules already loaded, as
Prometheus does, and says why in `last_error`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from dcops.alerts.manager import RuleManager
from dcops.alerts.rulefile import load_rule_files, rule_files
from dcops.core.errors import DcopsError
from dcops.files.signature import Signature, stat_signature

log = logging.getLogger(__name__)

class Rules:
    """Rule files and the manager evaluating them."""

    def __init__(self, paths: Sequence[Path], manager: RuleManager) -> None:
        self.paths = list(paths)
        self.manager = manager
        self.last_error: str | None = None
        self._signature: Signature | None = None

    def _current(self) -> Signature:
        try:
            return stat_signature(rule_files(self.paths))
        except DcopsError:
            return ()

    def reload(self) -> None:
        """Read every rule file again; raises (and keeps the old rules) if one is wrong."""
        signature = self._current()
        try:
            groups = load_rule_files(self.paths)
        except DcopsError as exc:
            self.last_error = str(exc)
            self._signature = signature  # do not retry until the files change again
            log.error("rule files not reloaded, the loaded rules stay: %s", exc)
            raise
        self.manager.load(groups)
        self.last_error = None
        self._signature = signature
        log.info("loaded %d rule groups from %d files", len(groups), len(signature))

    def reload_if_changed(self) -> None:
        if self._current() != self._signature:
            with contextlib.suppress(DcopsError):  # logged, and kept in last_error
                self.reload()

    def tick(self, now_ms: int) -> None:
        """Pick up changed files, then evaluate the groups that are due."""
        self.reload_if_changed()
        self.manager.tick(now_ms)

    def step(self, now_ms: int) -> bool:
        """Evaluate the most overdue group (see `RuleManager.step`); False if none is due."""
        return self.manager.step(now_ms)
