"""Prometheus durations in rule files: ``30s``, ``5m``, ``1h30m``, ``1d``."""

from __future__ import annotations

import re

from dcops.core.errors import Invalid

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?"
                       r"(?:(\d+)ms)?$")
_UNITS_S = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def parse_duration(text: str, where: str) -> float:
    """Seconds in a Prometheus duration; ``0`` is allowed, an empty string is not."""
    match = _DURATION.match(text.strip())
    if text.strip() == "0":
        return 0.0
    if not text.strip() or match is None:
        raise Invalid(f"not a duration: {text!r}", where=where,
                      hint="write it as Prometheus does: 30s, 5m, 1h30m, 1d")
    return float(sum(int(v) * unit for v, unit in zip(match.groups(), _UNITS_S, strict=True)
                     if v))


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of `seconds` (``90`` is ``1m30s``)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000),
                       ("ms", 1)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out)
