"""Helpers shared by the health tests: signal builders and a compact view of diagnoses."""

from __future__ import annotations

from dcops.health.model import Diagnosis, Signal, SignalKind


def sig(at: float, kind: SignalKind, gpu: int | None = 0, node: str = "n1", *,
        code: int | None = None, value: float = 1.0, job: str | None = None,
        peer: str | None = None, detail: str = "") -> Signal:
    """Any signal."""
    return Signal(at, node, kind, gpu=gpu, code=code, value=value, job=job, peer=peer,
                  detail=detail)


def xid(at: float, code: int, gpu: int | None = 0, node: str = "n1", *,
        job: str | None = None, peer: str | None = None, detail: str = "") -> Signal:
    """An Xid signal."""
    return sig(at, SignalKind.XID, gpu, node, code=code, job=job, peer=peer, detail=detail)


def brief(diagnoses: list[Diagnosis]) -> list[tuple[str, str, str]]:
    """(target, health, remedy) of each diagnosis."""
    return [(d.target, d.health.value, d.remedy.value) for d in diagnoses]
