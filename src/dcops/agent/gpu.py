"""What the agent needs from a GPU source, and how it finds one on this host.

The NVML backend (`dcops.backends.nvml.NvmlCollector`) is the real source. It is imported
only when the agent starts GPU collection, and it is given the nvml module to use, so
tests can hand it recorded NVML answers instead of a driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from dcops.telemetry.model import Batch

if TYPE_CHECKING:
    from dcops.backends.nvml import GpuInfo, XidEvent


class GpuSource(Protocol):
    """The GPUs of one host: their inventory, and their metrics once per interval."""

    def inventory(self) -> list[GpuInfo]:
        """The GPUs of this host, in index order."""
        ...

    def collect(self, batch: Batch, ts_ms: int, node: str) -> list[XidEvent]:
        """Add one sample of every GPU metric to `batch`; return Xid events seen since last."""
        ...

    def close(self) -> None: ...


def open_gpu_source(nvml: object | None = None) -> GpuSource | None:
    """The NVML collector for this host, or None where there is no driver or no GPU."""
    from dcops.backends.nvml import NvmlCollector

    return NvmlCollector.open(nvml)
