"""NVIDIA's Xid catalogue as versioned policy data: what each driver error code calls for.

The packaged `xid_catalogue.csv` holds, for each Xid that matters to a training fleet, the
immediate and investigatory action buckets of NVIDIA's catalogue. A site may load its own
file on top (same columns), overriding or extending entries. Every file starts with a
``# version: N`` line; the version appears in causes ("not in catalogue version 1").

The immediate bucket maps to a health and a remedy (`IMMEDIATE_POLICY`):

- IGNORE → healthy, no remedy; RESTART_APP → healthy, restart the job;
- RESET_GPU → degraded, reset the GPU; RESTART_BM (bare metal) → failed, reboot;
- RESTART_FM (fabric manager) → degraded, reboot: remedies have no "restart a service",
  and a reboot restarts the fabric manager with the node; the GPUs still work meanwhile;
- WORKFLOW_XID_48 (double-bit ECC) → failed, reset the GPU;
- WORKFLOW_XID_45, WORKFLOW_NVLINK_ERR and other workflows → suspect, watch (the
  diagnoser's sympathetic and NVLink rules refine them);
- CONTACT_SUPPORT as the immediate bucket → failed, repair.

An IGNORE with CONTACT_SUPPORT to investigate (Xid 92, a high single-bit ECC rate) is
suspect/watch: nothing to do now, but the GPU trends toward an RMA. A fault whose
investigatory bucket is CONTACT_SUPPORT and that already called for an action escalates
to REPAIR when it repeats on the same GPU (`XidPolicy.repair_on_repeat`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dcops.core.errors import Invalid
from dcops.health.model import Health, Remedy

COLUMNS = ("xid", "mnemonic", "immediate_action", "investigatory_action", "notes")
PACKAGED = "xid_catalogue.csv"
_VERSION_RE = re.compile(r"^#\s*version:\s*(\S+)\s*$")
_BUCKET_RE = re.compile(r"^[A-Z0-9_/;. -]*$")

IMMEDIATE_POLICY: Mapping[str, tuple[Health, Remedy]] = {
    "IGNORE": (Health.HEALTHY, Remedy.NONE),
    "RESTART_APP": (Health.HEALTHY, Remedy.RESTART_APP),
    "RESET_GPU": (Health.DEGRADED, Remedy.RESET_GPU),
    "RESTART_BM": (Health.FAILED, Remedy.REBOOT),
    "RESTART_FM": (Health.DEGRADED, Remedy.REBOOT),
    "CONTACT_SUPPORT": (Health.FAILED, Remedy.REPAIR),
    "WORKFLOW_XID_48": (Health.FAILED, Remedy.RESET_GPU),
}
"""Immediate bucket → (health, remedy); other WORKFLOW_* buckets and an empty bucket are
suspect/watch."""

_WATCH = (Health.SUSPECT, Remedy.WATCH)


@dataclass(frozen=True, slots=True)
class XidPolicy:
    """What one Xid calls for on the GPU that logged it."""

    health: Health
    remedy: Remedy
    repair_on_repeat: bool
    """True where a repeat on the same GPU means a hardware repair (RMA)."""


@dataclass(frozen=True, slots=True)
class XidEntry:
    """One row of the Xid catalogue: a driver error code and NVIDIA's action buckets."""

    xid: int
    mnemonic: str
    immediate: str
    investigatory: str
    notes: str = ""

    @property
    def policy(self) -> XidPolicy:
        """The health and remedy this Xid calls for (see the module docstring)."""
        health, remedy = IMMEDIATE_POLICY.get(self.immediate, _WATCH)
        if self.immediate == "IGNORE" and self.investigatory == "CONTACT_SUPPORT":
            health, remedy = _WATCH
        acted = remedy.rank >= Remedy.RESET_GPU.rank
        repeat = (self.investigatory == "CONTACT_SUPPORT" and acted) \
            or self.immediate == "WORKFLOW_XID_48"
        return XidPolicy(health, remedy, repeat)


@dataclass(frozen=True, slots=True)
class XidCatalogue:
    """The Xid catalogue in force: entries by code and the version they came from."""

    entries: Mapping[int, XidEntry]
    version: str

    @classmethod
    def load(cls, path: Path | str | None = None, *, base: bool = True) -> XidCatalogue:
        """The packaged catalogue, or with `path` a site file over it (`base` False: the
        site file alone). The version reads "1" or, with a site file, "1+site-V"."""
        packaged = resources.files("dcops.health").joinpath(PACKAGED).read_text("utf-8")
        default = parse_catalogue(packaged, where=f"dcops.health/{PACKAGED}")
        if path is None:
            return default
        text = _read(Path(path))
        site = parse_catalogue(text, where=str(path))
        if not base:
            return site
        merged = {**default.entries, **site.entries}
        return cls(merged, f"{default.version}+site-{site.version}")

    def get(self, xid: int) -> XidEntry | None:
        """The entry for `xid`, or None when the catalogue does not know it."""
        return self.entries.get(xid)

    def __contains__(self, xid: object) -> bool:
        return xid in self.entries

    def __iter__(self) -> Iterator[XidEntry]:
        return iter(sorted(self.entries.values(), key=lambda e: e.xid))

    def __len__(self) -> int:
        return len(self.entries)


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise Invalid(f"cannot read Xid catalogue: {exc.strerror}", where=str(path),
                      hint="pass the path of a CSV file with a '# version: N' first line") from exc


def parse_catalogue(text: str, *, where: str) -> XidCatalogue:
    """Parse catalogue text; `where` names the file in errors ("file:line: reason")."""
    lines = text.splitlines()
    version = _version(lines, where)
    body = [(n, line) for n, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not body:
        raise Invalid("no header row", where=f"{where}:1", hint=f"columns: {','.join(COLUMNS)}")
    header_no, header = body[0]
    columns = tuple(c.strip() for c in next(csv.reader([header])))
    if columns[:len(COLUMNS)] != COLUMNS:
        raise Invalid(f"header is {','.join(columns)!r}", where=f"{where}:{header_no}",
                      hint=f"expected {','.join(COLUMNS)}")
    entries: dict[int, XidEntry] = {}
    for number, line in body[1:]:
        entry = _entry(line, f"{where}:{number}")
        if entry.xid in entries:
            raise Invalid(f"Xid {entry.xid} listed twice", where=f"{where}:{number}",
                          hint="keep one row per Xid")
        entries[entry.xid] = entry
    return XidCatalogue(entries, version)


def _version(lines: list[str], where: str) -> str:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _VERSION_RE.match(line.strip())
        if match is None:
            raise Invalid("first line is not a version line", where=f"{where}:{number}",
                          hint="start the file with '# version: 1'")
        return match.group(1)
    raise Invalid("empty catalogue", where=f"{where}:1", hint="start with '# version: 1'")


def _entry(line: str, where: str) -> XidEntry:
    fields = [f.strip() for f in next(csv.reader(io.StringIO(line)))]
    if len(fields) < 4 or len(fields) > len(COLUMNS):
        raise Invalid(f"{len(fields)} fields", where=where,
                      hint=f"expected {len(COLUMNS)}: {','.join(COLUMNS)}")
    fields += [""] * (len(COLUMNS) - len(fields))
    raw_xid, mnemonic, immediate, investigatory, notes = fields
    if not raw_xid.isdigit():
        raise Invalid(f"Xid {raw_xid!r} is not a whole number", where=where,
                      hint="the first column is the Xid code, e.g. 79")
    if not mnemonic:
        raise Invalid(f"Xid {raw_xid} has no mnemonic", where=where)
    for bucket in (immediate, investigatory):
        if not _BUCKET_RE.match(bucket):
            raise Invalid(f"bucket {bucket!r} is not an upper-case bucket word", where=where,
                          hint="use NVIDIA's words: IGNORE, RESTART_APP, RESET_GPU, ...")
    if immediate and immediate not in IMMEDIATE_POLICY and not immediate.startswith("WORKFLOW_"):
        raise Invalid(f"unknown immediate action {immediate!r}", where=where,
                      hint=f"one of {', '.join(IMMEDIATE_POLICY)} or WORKFLOW_*")
    return XidEntry(int(raw_xid), mnemonic, immediate, investigatory, notes)
