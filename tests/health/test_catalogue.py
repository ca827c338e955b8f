"""The Xid catalogue: the packaged policy, site overrides, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.health.catalogue import XidCatalogue, parse_catalogue
from dcops.health.model import Health, Remedy

SHARED = Path(__file__).resolve().parents[2].parent / "shared/data/failures/xid_catalogue.csv"
HEADER = "xid,mnemonic,immediate_action,investigatory_action,notes"


def test_packaged_catalogue_has_a_version_and_the_shared_rows() -> None:
    catalogue = XidCatalogue.load()
    assert catalogue.version == "1"
    assert len(catalogue) == 21
    entry = catalogue.get(79)
    assert entry is not None
    assert (entry.mnemonic, entry.immediate, entry.investigatory) == (
        "GPU_HAS_FALLEN_OFF_THE_BUS", "RESTART_BM", "CONTACT_SUPPORT")
    assert catalogue.get(12345) is None
    assert 48 in catalogue and 12345 not in catalogue


@pytest.mark.skipif(not SHARED.exists(), reason="shared data not beside the repository")
def test_packaged_rows_match_the_shared_data() -> None:
    shared = parse_catalogue("# version: 0\n" + SHARED.read_text("utf-8"), where="shared")
    assert {e.xid: e for e in shared} == {e.xid: e for e in XidCatalogue.load()}


@pytest.mark.parametrize(("xid", "health", "remedy", "repeat"), [
    (63, Health.HEALTHY, Remedy.NONE, False),          # IGNORE
    (13, Health.HEALTHY, Remedy.RESTART_APP, False),   # RESTART_APP
    (95, Health.DEGRADED, Remedy.RESET_GPU, False),    # RESET_GPU, investigate IGNORE
    (64, Health.DEGRADED, Remedy.RESET_GPU, True),     # RESET_GPU, recurrence means RMA
    (79, Health.FAILED, Remedy.REBOOT, True),          # RESTART_BM
    (48, Health.FAILED, Remedy.RESET_GPU, True),       # WORKFLOW_XID_48
    (74, Health.SUSPECT, Remedy.WATCH, False),         # WORKFLOW_NVLINK_ERR
    (45, Health.SUSPECT, Remedy.WATCH, False),         # WORKFLOW_XID_45
    (92, Health.SUSPECT, Remedy.WATCH, False),         # IGNORE, investigate CONTACT_SUPPORT
    (154, Health.SUSPECT, Remedy.WATCH, False),        # no bucket: the driver says
])
def test_bucket_policy(xid: int, health: Health, remedy: Remedy, repeat: bool) -> None:
    entry = XidCatalogue.load().get(xid)
    assert entry is not None
    policy = entry.policy
    assert (policy.health, policy.remedy, policy.repair_on_repeat) == (health, remedy, repeat)


def test_restart_fm_is_a_degraded_reboot() -> None:
    catalogue = parse_catalogue(f"# version: 2\n{HEADER}\n999,FM_DOWN,RESTART_FM,,\n", where="x")
    entry = catalogue.get(999)
    assert entry is not None
    assert (entry.policy.health, entry.policy.remedy) == (Health.DEGRADED, Remedy.REBOOT)


def test_site_file_overrides_and_extends(tmp_path: Path) -> None:
    site = tmp_path / "site.csv"
    site.write_text(f"# version: 7\n{HEADER}\n63,INFOROM_DRAM_RETIREMENT_EVENT,RESET_GPU,,site\n"
                    "200,SITE_SPECIAL,RESTART_BM,CONTACT_SUPPORT,\n")
    merged = XidCatalogue.load(site)
    assert merged.version == "1+site-7"
    overridden = merged.get(63)
    assert overridden is not None and overridden.immediate == "RESET_GPU"
    assert merged.get(200) is not None and merged.get(79) is not None
    alone = XidCatalogue.load(site, base=False)
    assert (alone.version, sorted(e.xid for e in alone)) == ("7", [63, 200])


@pytest.mark.parametrize(("text", "where", "reason"), [
    ("", "f.csv:1", "empty catalogue"),
    (f"{HEADER}\n", "f.csv:1", "first line is not a version line"),
    ("# version: 1\nxid,name\n", "f.csv:2", "header is"),
    (f"# version: 1\n{HEADER}\nabc,X,IGNORE,IGNORE,\n", "f.csv:3", "not a whole number"),
    (f"# version: 1\n{HEADER}\n13,,IGNORE,IGNORE,\n", "f.csv:3", "no mnemonic"),
    (f"# version: 1\n{HEADER}\n13,A,IGNORE,IGNORE,\n13,B,IGNORE,IGNORE,\n", "f.csv:4",
     "listed twice"),
    (f"# version: 1\n{HEADER}\n13,A,REPLACE_DC,IGNORE,\n", "f.csv:3", "unknown immediate"),
    (f"# version: 1\n{HEADER}\n13,A,ignore,IGNORE,\n", "f.csv:3", "not an upper-case"),
    (f"# version: 1\n{HEADER}\n13,A\n", "f.csv:3", "2 fields"),
])
def test_bad_files_say_where_and_why(text: str, where: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_catalogue(text, where="f.csv")
    assert caught.value.where == where
    assert reason in caught.value.message


def test_missing_site_file_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        XidCatalogue.load(tmp_path / "nope.csv")
    assert caught.value.where == str(tmp_path / "nope.csv")
