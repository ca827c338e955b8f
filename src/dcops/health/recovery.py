"""Xid 154: the recovery action the driver states for a GPU (R565 and later).

The driver logs "GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)";
NVML reports the same as nvmlDeviceGetGpuRecoveryAction. The stated action is authoritative
over the catalogue. Texts are matched case-insensitively, with spaces, underscores or
hyphens, with or without "required" and NVML's ``NVML_GPU_RECOVERY_ACTION_`` prefix, so
"Drain and Reset", "DRAIN_AND_RESET" and "drain-and-reset" are one action.

- None → healthy, no remedy (the GPU has recovered: it replaces an earlier 154 finding);
- Drain P2P → degraded, watch: jobs using peer-to-peer traffic must be drained, the GPU needs
  no reset; watch keeps large (multi-GPU) jobs off it until a re-check clears it;
- Drain and Reset, GPU Reset (Required) → degraded, reset the GPU;
- Node Reboot (Required) → failed, reboot.
"""

from __future__ import annotations

import re

from dcops.health.model import Health, Remedy

RECOVERY_ACTIONS: dict[str, tuple[Health, Remedy]] = {
    "none": (Health.HEALTHY, Remedy.NONE),
    "drain p2p": (Health.DEGRADED, Remedy.WATCH),
    "drain and reset": (Health.DEGRADED, Remedy.RESET_GPU),
    "gpu reset": (Health.DEGRADED, Remedy.RESET_GPU),
    "node reboot": (Health.FAILED, Remedy.REBOOT),
}
"""Normalised recovery-action text → (health, remedy)."""

_LAST_PAREN_RE = re.compile(r"\(([^()]*)\)\s*\.?\s*$")


def recovery_text(detail: str) -> str:
    """The action named in `detail`: the text itself, or the last parenthesised part of a
    full driver message ("... to 0x2 (Node Reboot Required)" → "Node Reboot Required")."""
    match = _LAST_PAREN_RE.search(detail)
    return (match.group(1) if match and "recovery action" in detail.lower() else detail).strip()


def normalise(text: str) -> str:
    """Lower-case, words separated by one space, without the NVML prefix or "required"."""
    words = re.sub(r"[\s_\-]+", " ", text.strip().lower()).split()
    if words[:4] == ["nvml", "gpu", "recovery", "action"]:
        words = words[4:]
    if words and words[-1] == "required":
        words = words[:-1]
    return " ".join(words)


def recovery_policy(detail: str) -> tuple[Health, Remedy] | None:
    """(health, remedy) for the recovery action in `detail`; None when unrecognised."""
    return RECOVERY_ACTIONS.get(normalise(recovery_text(detail)))
