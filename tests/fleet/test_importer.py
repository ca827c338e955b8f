"""Inventory files: parsing YAML and CSV, errors that name file:line, idempotent import."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dcops.backends.sql.state import StateStore
from dcops.core.errors import Invalid
from dcops.fleet.importer import (
    ImportResult,
    InventoryDoc,
    apply_inventory,
    load_inventory_file,
    parse_inventory_text,
)
from dcops.fleet.memory import MemoryInventory
from dcops.fleet.model import Gpu, Lifecycle, Node, Rack, Site

DATA = Path(__file__).parents[1] / "data" / "inventory"


def counts(result: ImportResult) -> dict[str, dict[str, int]]:
    """Only the non-zero counts, to keep expectations short."""
    return {kind: {k: v for k, v in per.items() if v}
            for kind, per in dataclasses.asdict(result).items()}


def test_yaml_file_parses_to_entries_with_lines() -> None:
    doc = load_inventory_file(DATA / "fleet.yaml")
    assert [s.name for s in doc.sites] == ["ams1"]
    assert [(r.name, r.site) for r in doc.rooms] == [("ams1-hall-a", "ams1"),
                                                      ("ams1-hall-b", "ams1")]
    assert [(r.name, r.room, r.power_capacity_watts) for r in doc.racks] == [
        ("a01", "ams1-hall-a", 40000.0), ("a02", "ams1-hall-a", None),
        ("b01", "ams1-hall-b", None)]
    first = doc.nodes[0]
    assert (first.name, first.rack, first.gpu_model, first.gpu_count, first.state) == (
        "gpu-a01-01", "a01", "H100", 8, Lifecycle.ACTIVE)
    assert first.labels == {"pool": "training", "tier": "1"}
    assert first.where == f"{DATA / 'fleet.yaml'}:11"
    assert doc.nodes[2].gpu_count is None and doc.nodes[2].state is None


def test_yaml_and_csv_describe_the_same_fleet() -> None:
    from_yaml = load_inventory_file(DATA / "fleet.yaml")
    from_csv = load_inventory_file(DATA / "fleet.csv")
    assert [n.name for n in from_csv.nodes] == [n.name for n in from_yaml.nodes]
    strip = [dataclasses.replace(n, where="") for n in from_csv.nodes]
    assert strip == [dataclasses.replace(n, where="") for n in from_yaml.nodes]
    assert {r.name for r in from_csv.racks} == {"a01", "b01"}


@pytest.mark.parametrize("name", ["fleet.yaml", "fleet.csv"])
def test_import_creates_then_changes_nothing(name: str, state_store: StateStore) -> None:
    inv = state_store.inventory
    doc = load_inventory_file(DATA / name)
    first = apply_inventory(doc, inv)
    racks = 3 if name == "fleet.yaml" else 2
    assert counts(first) == {"created": {"site": 1, "room": 2, "rack": racks, "node": 3,
                                         "gpu": 16},
                             "updated": {}, "unchanged": {}}
    assert first.changed
    second = apply_inventory(doc, inv)
    assert not second.changed
    assert counts(second)["unchanged"] == {"site": 1, "room": 2, "rack": racks, "node": 3,
                                           "gpu": 16}
    assert inv.get_node("gpu-a01-01") == Node("gpu-a01-01", "a01", Lifecycle.ACTIVE, "H100", 8,
                                              {"pool": "training", "tier": "1"})
    assert inv.get_node("cpu-b01-01") == Node("cpu-b01-01", "b01")
    assert [g.key for g in inv.list_gpus("gpu-a01-02")] == [f"gpu-a01-02/{i}" for i in range(8)]
    assert inv.get_gpu("gpu-a01-02", 7) == Gpu("gpu-a01-02", 7, model="H100")


def test_import_updates_what_differs_and_keeps_what_is_not_given() -> None:
    inv = MemoryInventory()
    inv.add_site(Site("ams1", "old words"))
    inv.add_node(Node("cpu-b01-01", state=Lifecycle.DRAINED, gpu_model="none",
                      labels={"x": "y"}, last_seen=5.0))
    result = apply_inventory(load_inventory_file(DATA / "fleet.yaml"), inv)
    assert result.updated == {"site": 1, "room": 0, "rack": 0, "node": 1, "gpu": 0}
    assert inv.get_site("ams1") == Site("ams1", "Amsterdam campus")
    assert inv.get_node("cpu-b01-01") == Node("cpu-b01-01", "b01", Lifecycle.DRAINED, "none",
                                              0, {"x": "y"}, 5.0)


def test_import_keeps_existing_gpus_and_rack_power() -> None:
    inv = MemoryInventory()
    apply_inventory(load_inventory_file(DATA / "fleet.yaml"), inv)
    inv.set_gpu_state("gpu-a01-01", 3, Lifecycle.FAILED)
    inv.upsert_rack(Rack("b01", "ams1-hall-b", 30_000.0))
    again = apply_inventory(load_inventory_file(DATA / "fleet.csv"), inv)
    assert not again.changed
    assert inv.get_gpu("gpu-a01-01", 3).state is Lifecycle.FAILED
    assert inv.get_rack("b01").power_capacity_watts == 30_000.0


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


NODE = "sites:\n- name: s\n  rooms:\n  - name: r\n    racks:\n    - name: k\n      nodes:\n"


@pytest.mark.parametrize(("text", "line", "words"), [
    ("sites:\n  - name: [unclosed\n", "3:1", "bad YAML"),
    ("sites:\n- name: s\n  colour: red\n", "3", "unknown site field 'colour'"),
    ("sites:\n- description: no name\n", "2", "missing field 'name'"),
    (NODE + "      - name: n1\n        state: broken\n", "9", "invalid state 'broken'"),
    (NODE + "      - name: n1\n        gpu_count: eight\n", "9", "gpu_count must be"),
    (NODE + "      - name: n1\n        gpu_count: -1\n", "9", "gpu_count must be"),
    (NODE + "      - name: n1\n      - name: n1\n", "9", "duplicate node name 'n1'"),
    (NODE + "      - name: n1\n        name: n2\n", "9", "given twice"),
    (NODE + "      - name: a/b\n", "8", "without '/'"),
    (NODE + "      - name: n1\n        labels: [a, b]\n", "9", "labels must be a mapping"),
    ("sites: {name: s}\n", "1", "sites must be a list"),
    ("- just a list\n", "1", "inventory must be a mapping"),
    ("sites:\n- name: s\n  rooms:\n  - name: r\n- name: t\n  rooms:\n  - name: r\n",
     "7", "duplicate room name 'r'"),
])
def test_bad_yaml_names_file_and_line(tmp_path: Path, text: str, line: str, words: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(Invalid) as caught:
        load_inventory_file(path)
    assert caught.value.where == f"{path}:{line}"
    assert words in caught.value.message


HEADER = "site,room,rack,node,gpu_model,gpu_count,state\n"


@pytest.mark.parametrize(("text", "line", "words"), [
    ("site,room,rack,node,colour\ns,r,k,n,red\n", "1", "unknown column 'colour'"),
    ("site,room,node\ns,r,n\n", "1", "missing column rack"),
    (HEADER + "s,r,k,n1,H100,8,active\ns,r,k,,H100,8,active\n", "3", "missing field 'node'"),
    (HEADER + "s,r,k,n1,H100,eight,active\n", "2", "gpu_count must be"),
    (HEADER + "s,r,k,n1,H100,8,up\n", "2", "invalid state 'up'"),
    (HEADER + "s,r,k,n1,H100,8,active\n\ns,r,k,n1,H100,8,active\n", "4",
     "duplicate node name 'n1'"),
    (HEADER + "s,r,k,n1,H100,8,active\nt,r,k,n2,H100,8,active\n", "3",
     "room 'r' is in site 't' here"),
    (HEADER + "s,r,k,n1,H100,8,active,extra\n", "2", "8 fields"),
    ("site,room,rack,node,labels\ns,r,k,n1,novalue\n", "2", "key=value"),
    ("", "", "empty inventory file"),
])
def test_bad_csv_names_file_and_line(tmp_path: Path, text: str, line: str, words: str) -> None:
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(Invalid) as caught:
        load_inventory_file(path)
    assert caught.value.where == (f"{path}:{line}" if line else str(path))
    assert words in caught.value.message


def test_unknown_suffix_and_missing_file_are_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="unknown inventory file type"):
        load_inventory_file(write(tmp_path, "fleet.json", "{}"))
    with pytest.raises(Invalid, match="cannot read"):
        load_inventory_file(tmp_path / "missing.yaml")
    with pytest.raises(Invalid, match="unknown inventory format"):
        parse_inventory_text("", "toml")


def test_parse_text_names_its_source() -> None:
    with pytest.raises(Invalid) as caught:
        parse_inventory_text("sites: [{name: s, x: 1}]\n", "yaml", source="upload")
    assert caught.value.where == "upload:1"
    assert parse_inventory_text("sites: []\n", "yaml") == InventoryDoc("inventory")
