"""A pynvml stand-in that replays recorded NVML answers from tests/data/nvml/*.json.

It raises the real ``pynvml.NVMLError`` classes (importing pynvml needs no driver), so the
collector's error handling is exercised exactly as on a GPU server. Every device call is
logged in `calls`, so tests can check that unsupported queries are not repeated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "nvml"
H100_NODE = DATA_DIR / "h100_8gpu.json"


@dataclass(frozen=True)
class RecordedHandle:
    """What nvmlDeviceGetHandleByIndex returns here: just the index."""

    index: int


@dataclass(frozen=True)
class RecordedEventSet:
    """What nvmlEventSetCreate returns here."""

    id: int = 1


def nvml_error(name: str) -> pynvml.NVMLError:
    """The pynvml exception for NVML_ERROR_<name>, e.g. NOT_SUPPORTED."""
    return pynvml.NVMLError(getattr(pynvml, f"NVML_ERROR_{name}"))


def _answer(value: Any) -> Any:
    if isinstance(value, dict) and "error" in value:
        raise nvml_error(value["error"])
    if isinstance(value, dict):
        return SimpleNamespace(**value)
    return value


class RecordedNvml:
    """Answers pynvml calls from a recording; `init_error` makes nvmlInit fail like that."""

    NVMLError = pynvml.NVMLError

    def __init__(self, recording: Path | dict[str, Any] = H100_NODE, *,
                 init_error: str | None = None) -> None:
        data = json.loads(recording.read_text()) if isinstance(recording, Path) else recording
        self.data: dict[str, Any] = data
        self.init_error = init_error
        self.calls: list[str] = []
        self.initialised = False
        self.registered: list[int] = []
        self._round = 0
        self._pending: list[dict[str, Any]] = []
        self._memo: dict[tuple[int, str, tuple[Any, ...]], Any] = {}
        for name, value in data.get("constants", {}).items():
            setattr(self, name, value)

    # -- library and devices --------------------------------------------------------------

    def nvmlInit(self) -> None:
        if self.init_error:
            raise nvml_error(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:
        return str(self.data.get("driver_version", ""))

    def nvmlDeviceGetCount(self) -> int:
        return len(self.data["devices"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> RecordedHandle:
        if not 0 <= index < len(self.data["devices"]):
            raise nvml_error("INVALID_ARGUMENT")
        return RecordedHandle(index)

    def nvmlDeviceGetIndex(self, handle: RecordedHandle) -> int:
        return handle.index

    def nvmlDeviceGetUUID(self, handle: RecordedHandle) -> str:
        return str(self.data["devices"][handle.index]["uuid"])

    def nvmlDeviceGetName(self, handle: RecordedHandle) -> str:
        return str(self.data["devices"][handle.index]["name"])

    # -- events -----------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> RecordedEventSet:
        return RecordedEventSet()

    def nvmlDeviceRegisterEvents(self, handle: RecordedHandle, types: int,
                                 event_set: RecordedEventSet) -> None:
        self.registered.append(handle.index)

    def nvmlEventSetFree(self, event_set: RecordedEventSet) -> None:
        pass

    def nvmlEventSetWait(self, event_set: RecordedEventSet, timeout_ms: int) -> SimpleNamespace:
        """Events of the current polling round, then Timeout, which ends the round."""
        if not self._pending:
            self._pending = [e for e in self.data.get("events", []) if e["round"] == self._round]
            self._pending.append({"timeout": True})
        event = self._pending.pop(0)
        if "timeout" in event:
            self._round += 1
            raise nvml_error("TIMEOUT")
        return SimpleNamespace(device=RecordedHandle(event["gpu"]), eventType=event["eventType"],
                               eventData=event["eventData"], gpuInstanceId=0xFFFFFFFF,
                               computeInstanceId=0xFFFFFFFF)

    # -- every other device query ---------------------------------------------------------

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if not name.startswith("nvmlDevice"):
            raise AttributeError(name)

        def replay(handle: RecordedHandle, *args: Any) -> Any:
            key = "/".join([name, *(str(a) for a in args)])
            self.calls.append(f"{handle.index}:{key}")
            memo_key = (handle.index, name, args)
            if memo_key not in self._memo:
                device = self.data["devices"][handle.index]
                table = device["calls"] if self._has(device["calls"], name, args) else (
                    self.data["defaults"])
                self._memo[memo_key] = self._lookup(table, name, args)
            return _answer(self._memo[memo_key])

        return replay

    @staticmethod
    def _candidates(table: dict[str, Any], name: str, args: tuple[Any, ...]) -> list[str]:
        found = []
        for key in table:
            parts = key.split("/")
            if parts[0] != name or len(parts) != len(args) + 1:
                continue
            if all(p in ("*", str(a)) for p, a in zip(parts[1:], args, strict=True)):
                found.append(key)
        return sorted(found, key=lambda k: k.count("*"))

    def _has(self, table: dict[str, Any], name: str, args: tuple[Any, ...]) -> bool:
        return bool(self._candidates(table, name, args))

    def _lookup(self, table: dict[str, Any], name: str, args: tuple[Any, ...]) -> Any:
        found = self._candidates(table, name, args)
        if not found:
            raise nvml_error("FUNCTION_NOT_FOUND")
        return table[found[0]]
