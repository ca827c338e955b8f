"""Scheduling policies by name, for the simulator and the CLI.

`POLICIES` maps each name to a factory of a fresh policy (policies keep state, so every
run needs its own); `policy(name)` makes one and says which names exist when it does not.

Policies of modules that may not be there yet (EASY backfill, DRF fair share and the
project's best policy) are imported when first asked for: their module defines a class
whose `name` is the registry name (or a `POLICY` factory), and nothing here names the class.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from dcops.core.errors import Invalid
from dcops.scheduling.policies.base import Policy
from dcops.scheduling.policies.ordered import Fifo, Qssf, SjfOracle
from dcops.scheduling.policies.preemptive import SrtfOracle, Tiresias

Factory = Callable[[], Policy]


def _lazy(name: str, module: str) -> Factory:
    """A factory that imports `dcops.scheduling.policies.<module>` on first use."""

    def make() -> Policy:
        qualified = f"{__name__}.{module}"
        try:
            loaded = importlib.import_module(qualified)
        except ModuleNotFoundError as missing:
            if missing.name != qualified:
                raise
            raise Invalid(f"policy {name!r} is not in this version of dcops (no {qualified})",
                          hint=f"use one of {', '.join(n for n in POLICIES if n != name)}"
                          ) from None
        factory = getattr(loaded, "POLICY", None)
        if factory is None:
            factory = next((cls for _, cls in inspect.getmembers(loaded, inspect.isclass)
                            if cls.__module__ == qualified
                            and getattr(cls, "name", None) == name), None)
        if factory is None:
            raise Invalid(f"policy {name!r}: {qualified} defines no policy of that name",
                          hint="give its class name = " + repr(name))
        made: Policy = factory()  # type: ignore[assignment]  # trusted by its name
        return made

    make.__name__ = f"make_{module}"
    return make


POLICIES: dict[str, Factory] = {
    "fifo": Fifo,
    "sjf": SjfOracle,
    "srtf": SrtfOracle,
    "qssf": Qssf,
    "tiresias": Tiresias,
    "easy": _lazy("easy", "backfill"),
    "fairshare": _lazy("fairshare", "fairshare"),
    "dcops": _lazy("dcops", "best"),
}
"""Every policy name and a factory of a fresh instance. sjf and srtf read true durations
(oracles: simulation only)."""


def policy(name: str) -> Policy:
    """A fresh policy called `name` (case and spaces ignored)."""
    key = name.strip().lower()
    factory = POLICIES.get(key)
    if factory is None:
        raise Invalid(f"unknown policy {name!r}", hint=f"use one of {', '.join(POLICIES)}")
    return factory()


def names(text: str) -> list[str]:
    """Policy names from a comma-separated list, each checked, in order, without repeats."""
    out: list[str] = []
    for part in text.split(","):
        key = part.strip().lower()
        if not key:
            continue
        if key not in POLICIES:
            raise Invalid(f"unknown policy {part.strip()!r}",
                          hint=f"use one of {', '.join(POLICIES)}")
        if key not in out:
            out.append(key)
    if not out:
        raise Invalid("no policy given", hint=f"use one of {', '.join(POLICIES)}")
    return out
