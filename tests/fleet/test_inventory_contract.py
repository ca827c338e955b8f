"""One contract for every Inventory: in memory, SQLite and PostgreSQL behave the same."""

from __future__ import annotations

import pytest

from dcops.backends.sql.state import StateStore
from dcops.core.errors import Conflict, Invalid, NotFound
from dcops.fleet.inventory import Inventory
from dcops.fleet.model import Gpu, Lifecycle, Node, Rack, Room, Site


@pytest.fixture
def inv(state_store: StateStore) -> Inventory:
    return state_store.inventory


def build(inv: Inventory) -> None:
    """Two sites; site a has room a1 with racks r1, r2; r1 holds n1 (2 GPUs) and n2."""
    inv.add_site(Site("a", "campus A"))
    inv.add_site(Site("b"))
    inv.add_room(Room("a1", "a"))
    inv.add_room(Room("b1", "b"))
    inv.add_rack(Rack("r1", "a1", 40_000.0))
    inv.add_rack(Rack("r2", "a1"))
    inv.add_node(Node("n1", "r1", gpu_model="H100", gpu_count=2, labels={"pool": "train"}))
    inv.add_node(Node("n2", "r1", state=Lifecycle.PLANNED))
    inv.add_gpu(Gpu("n1", 0, "GPU-0", "H100"))
    inv.add_gpu(Gpu("n1", 1, "GPU-1", "H100"))


def test_added_objects_read_back_equal(inv: Inventory) -> None:
    build(inv)
    assert inv.get_site("a") == Site("a", "campus A")
    assert inv.get_room("a1") == Room("a1", "a")
    assert inv.get_rack("r1") == Rack("r1", "a1", 40_000.0)
    assert inv.get_node("n1") == Node("n1", "r1", Lifecycle.ACTIVE, "H100", 2, {"pool": "train"})
    assert inv.get_gpu("n1", 1) == Gpu("n1", 1, "GPU-1", "H100")


def test_lists_are_sorted_and_filtered(inv: Inventory) -> None:
    build(inv)
    assert [s.name for s in inv.list_sites()] == ["a", "b"]
    assert [r.name for r in inv.list_rooms()] == ["a1", "b1"]
    assert [r.name for r in inv.list_rooms(site="b")] == ["b1"]
    assert [r.name for r in inv.list_racks(room="a1")] == ["r1", "r2"]
    assert inv.list_racks(room="b1") == []
    assert [n.name for n in inv.list_nodes()] == ["n1", "n2"]
    assert [n.name for n in inv.list_nodes(rack="r1", state=Lifecycle.PLANNED)] == ["n2"]
    assert inv.list_nodes(rack="r2") == []
    assert [g.key for g in inv.list_gpus()] == ["n1/0", "n1/1"]
    assert inv.list_gpus(node="n2") == []
    assert inv.list_rooms(site="nowhere") == []


def test_add_of_existing_name_conflicts(inv: Inventory) -> None:
    build(inv)
    with pytest.raises(Conflict):
        inv.add_site(Site("a"))
    with pytest.raises(Conflict):
        inv.add_room(Room("a1", "b"))
    with pytest.raises(Conflict):
        inv.add_rack(Rack("r1", "a1"))
    with pytest.raises(Conflict):
        inv.add_node(Node("n1"))
    with pytest.raises(Conflict):
        inv.add_gpu(Gpu("n1", 0))
    assert inv.get_room("a1").site == "a"


@pytest.mark.parametrize(("add", "kind", "name"), [
    (lambda inv: inv.add_room(Room("x1", "nowhere")), "site", "nowhere"),
    (lambda inv: inv.add_rack(Rack("x1", "nowhere")), "room", "nowhere"),
    (lambda inv: inv.add_node(Node("x1", "nowhere")), "rack", "nowhere"),
    (lambda inv: inv.add_gpu(Gpu("nowhere", 0)), "node", "nowhere"),
    (lambda inv: inv.upsert_rack(Rack("x1", "nowhere")), "room", "nowhere"),
    (lambda inv: inv.upsert_gpu(Gpu("nowhere", 0)), "node", "nowhere"),
])
def test_unknown_parent_is_not_found(inv: Inventory, add: object, kind: str, name: str) -> None:
    assert callable(add)
    with pytest.raises(NotFound) as caught:
        add(inv)
    assert (caught.value.kind, caught.value.id) == (kind, name)
    assert inv.list_rooms() == [] and inv.list_racks() == [] and inv.list_nodes() == []


def test_node_without_rack_is_allowed(inv: Inventory) -> None:
    inv.add_node(Node("loose", gpu_count=8))
    assert inv.get_node("loose").rack is None
    assert [n.name for n in inv.list_nodes()] == ["loose"]


@pytest.mark.parametrize("get", [
    lambda inv: inv.get_site("x"), lambda inv: inv.get_room("x"),
    lambda inv: inv.get_rack("x"), lambda inv: inv.get_node("x"),
    lambda inv: inv.get_gpu("n1", 7), lambda inv: inv.set_node_state("x", Lifecycle.FAILED),
    lambda inv: inv.set_gpu_state("n1", 7, Lifecycle.FAILED),
    lambda inv: inv.touch_node("x", 1.0), lambda inv: inv.delete("node", "x"),
    lambda inv: inv.delete("gpu", "n1/7"), lambda inv: inv.delete("site", "x"),
])
def test_unknown_names_are_not_found(inv: Inventory, get: object) -> None:
    build(inv)
    assert callable(get)
    with pytest.raises(NotFound):
        get(inv)


def test_upsert_creates_then_replaces(inv: Inventory) -> None:
    build(inv)
    inv.upsert_site(Site("c", "new"))
    inv.upsert_site(Site("c", "changed"))
    assert inv.get_site("c") == Site("c", "changed")
    inv.upsert_rack(Rack("r2", "b1", 12_500.5, "moved"))
    assert inv.get_rack("r2") == Rack("r2", "b1", 12_500.5, "moved")
    inv.upsert_node(Node("n1", None, Lifecycle.DRAINED, "B200", 8, {"a": "1"}, 5.5))
    assert inv.get_node("n1") == Node("n1", None, Lifecycle.DRAINED, "B200", 8, {"a": "1"}, 5.5)
    inv.upsert_gpu(Gpu("n1", 0, "GPU-new", "B200", Lifecycle.FAILED))
    assert inv.get_gpu("n1", 0) == Gpu("n1", 0, "GPU-new", "B200", Lifecycle.FAILED)
    assert len(inv.list_gpus("n1")) == 2


def test_states_change_and_touch_records_last_seen(inv: Inventory) -> None:
    build(inv)
    drained = inv.set_node_state("n1", Lifecycle.DRAINING)
    assert drained.state is Lifecycle.DRAINING and drained.labels == {"pool": "train"}
    assert inv.get_node("n1").state is Lifecycle.DRAINING
    assert [n.name for n in inv.list_nodes(state=Lifecycle.DRAINING)] == ["n1"]
    failed = inv.set_gpu_state("n1", 1, Lifecycle.FAILED)
    assert failed == Gpu("n1", 1, "GPU-1", "H100", Lifecycle.FAILED)
    assert inv.get_gpu("n1", 0).state is Lifecycle.ACTIVE
    inv.touch_node("n2", 1_700_000_123.456)
    assert inv.get_node("n2").last_seen == 1_700_000_123.456
    assert inv.get_node("n2").state is Lifecycle.PLANNED


def test_delete_refuses_parents_with_children(inv: Inventory) -> None:
    build(inv)
    for kind, name in (("site", "a"), ("room", "a1"), ("rack", "r1")):
        with pytest.raises(Conflict):
            inv.delete(kind, name)
    inv.delete("rack", "r2")
    with pytest.raises(Conflict):
        inv.delete("site", "b")
    inv.delete("room", "b1")
    inv.delete("site", "b")
    assert [s.name for s in inv.list_sites()] == ["a"]


def test_delete_node_takes_its_gpus_and_gpu_delete_by_key(inv: Inventory) -> None:
    build(inv)
    inv.delete("gpu", "n1/1")
    assert [g.key for g in inv.list_gpus()] == ["n1/0"]
    inv.delete("node", "n1")
    assert inv.list_gpus() == []
    with pytest.raises(NotFound):
        inv.get_node("n1")
    inv.delete("node", "n2")
    inv.delete("rack", "r1")
    assert [r.name for r in inv.list_racks()] == ["r2"]


@pytest.mark.parametrize("call", [
    lambda inv: inv.delete("shelf", "a"),
    lambda inv: inv.delete("gpu", "n1"),
    lambda inv: inv.add_site(Site("")),
    lambda inv: inv.add_site(Site("a/b")),
    lambda inv: inv.add_site(Site("x" * 201)),
    lambda inv: inv.add_node(Node("n9", gpu_count=-1)),
    lambda inv: inv.add_gpu(Gpu("n1", -1)),
])
def test_bad_input_is_invalid(inv: Inventory, call: object) -> None:
    build(inv)
    assert callable(call)
    with pytest.raises(Invalid):
        call(inv)


def test_returned_labels_cannot_change_what_is_stored(inv: Inventory) -> None:
    build(inv)
    inv.get_node("n1").labels["pool"] = "changed"
    assert inv.get_node("n1").labels == {"pool": "train"}
