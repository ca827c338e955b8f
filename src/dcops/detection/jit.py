"""The detectors' per-row loops, compiled with numba (`cache=True`: compiled once per
installation, not per process). Where numba cannot be imported the same functions run
as plain Python, with the same results, about a thousand times slower."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    import numba  # type: ignore[import-untyped, import-not-found, unused-ignore]

    jit: Callable[[Any], Any] = numba.njit(cache=True, nogil=True)
    COMPILED = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    def jit(f: Any) -> Any:
        return f

    COMPILED = False
