"""MemoryInventory: the inventory of sites, rooms, racks, nodes and GPUs held in process memory.

It is the in-memory twin of the SQL inventory (dcops.backends.sql.inventory) and defines
the behaviour both must show; the contract tests in tests/fleet run over both:

- `add_*` raises Conflict when the name exists and NotFound when the parent does not
  (a rack whose room is unknown raises NotFound("room", ...)); a node's rack may be None.
- `upsert_*` creates or replaces the whole object; its parent must still exist.
- `get_*`, `set_*_state` and `touch_node` raise NotFound for unknown names.
- `list_*` return objects sorted by name (GPUs by node, then index); a filter naming an
  unknown parent returns an empty list.
- `delete(kind, name)` raises Conflict while a site has rooms, a room racks, or a rack
  nodes. A node's GPUs are parts of the node and are deleted with it. A GPU is named
  "node/index".
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import TypeVar

from dcops.core.errors import Conflict, Invalid, NotFound
from dcops.fleet.model import Gpu, Kind, Lifecycle, Node, Rack, Room, Site

T = TypeVar("T")


MAX_NAME = 200
"""Longest name of a site, room, rack or node, in characters."""


def check_name(kind: str, name: str) -> None:
    """Reject names an operator could not type back: empty, padded, long, or with '/'."""
    if not name or name != name.strip() or "/" in name or len(name) > MAX_NAME:
        raise Invalid(f"{kind} name {name!r} must be non-empty, unpadded, without '/' and "
                      f"at most {MAX_NAME} characters", where=kind)


def check_node(node: Node) -> None:
    """A node needs a usable name and a GPU count of 0 or more."""
    check_name("node", node.name)
    if node.gpu_count < 0:
        raise Invalid(f"gpu_count {node.gpu_count} must be 0 or more", where=node.name)


def check_gpu(gpu: Gpu) -> None:
    """A GPU's index is its position on the node: 0 or more."""
    if gpu.index < 0:
        raise Invalid(f"gpu index {gpu.index} must be 0 or more", where=gpu.key)


def parse_kind(kind: str) -> Kind:
    """The inventory Kind named by `kind`, or Invalid listing the kinds there are."""
    try:
        return Kind(kind)
    except ValueError:
        names = ", ".join(k.value for k in Kind)
        raise Invalid(f"unknown kind {kind!r}", where="kind", hint=f"one of {names}") from None


def parse_gpu_key(key: str) -> tuple[str, int]:
    """Split a GPU's name "node/index" into its node and index."""
    node, sep, index = key.rpartition("/")
    if not sep or not node or not index.isdigit():
        raise Invalid(f"gpu name {key!r} must look like 'node/index'", where="gpu")
    return node, int(index)


class MemoryInventory:
    """The Inventory Protocol over dictionaries, guarded by one lock."""

    def __init__(self) -> None:
        self._sites: dict[str, Site] = {}
        self._rooms: dict[str, Room] = {}
        self._racks: dict[str, Rack] = {}
        self._nodes: dict[str, Node] = {}
        self._gpus: dict[tuple[str, int], Gpu] = {}
        self._lock = threading.RLock()

    # parents -------------------------------------------------------------------------

    def _need(self, kind: str, table: Mapping[str, object], name: str) -> None:
        if name not in table:
            raise NotFound(kind, name)

    def _check_room(self, room: Room) -> None:
        check_name("room", room.name)
        self._need("site", self._sites, room.site)

    def _check_rack(self, rack: Rack) -> None:
        check_name("rack", rack.name)
        self._need("room", self._rooms, rack.room)

    def _check_node(self, node: Node) -> None:
        check_node(node)
        if node.rack is not None:
            self._need("rack", self._racks, node.rack)

    def _check_gpu(self, gpu: Gpu) -> None:
        check_gpu(gpu)
        self._need("node", self._nodes, gpu.node)

    @staticmethod
    def _fresh(kind: str, table: Mapping[str, object], name: str) -> None:
        if name in table:
            raise Conflict(f"{kind} {name!r} already exists", where=name,
                           hint="use upsert to replace it")

    # add -----------------------------------------------------------------------------

    def add_site(self, site: Site) -> Site:
        check_name("site", site.name)
        with self._lock:
            self._fresh("site", self._sites, site.name)
            self._sites[site.name] = site
        return site

    def add_room(self, room: Room) -> Room:
        with self._lock:
            self._check_room(room)
            self._fresh("room", self._rooms, room.name)
            self._rooms[room.name] = room
        return room

    def add_rack(self, rack: Rack) -> Rack:
        with self._lock:
            self._check_rack(rack)
            self._fresh("rack", self._racks, rack.name)
            self._racks[rack.name] = rack
        return rack

    def add_node(self, node: Node) -> Node:
        with self._lock:
            self._check_node(node)
            self._fresh("node", self._nodes, node.name)
            self._nodes[node.name] = _copy_node(node)
        return node

    def add_gpu(self, gpu: Gpu) -> Gpu:
        with self._lock:
            self._check_gpu(gpu)
            if (gpu.node, gpu.index) in self._gpus:
                raise Conflict(f"gpu {gpu.key!r} already exists", where=gpu.key,
                               hint="use upsert to replace it")
            self._gpus[(gpu.node, gpu.index)] = gpu
        return gpu

    # upsert --------------------------------------------------------------------------

    def upsert_site(self, site: Site) -> Site:
        check_name("site", site.name)
        with self._lock:
            self._sites[site.name] = site
        return site

    def upsert_room(self, room: Room) -> Room:
        with self._lock:
            self._check_room(room)
            self._rooms[room.name] = room
        return room

    def upsert_rack(self, rack: Rack) -> Rack:
        with self._lock:
            self._check_rack(rack)
            self._racks[rack.name] = rack
        return rack

    def upsert_node(self, node: Node) -> Node:
        with self._lock:
            self._check_node(node)
            self._nodes[node.name] = _copy_node(node)
        return node

    def upsert_gpu(self, gpu: Gpu) -> Gpu:
        with self._lock:
            self._check_gpu(gpu)
            self._gpus[(gpu.node, gpu.index)] = gpu
        return gpu

    # get -----------------------------------------------------------------------------

    def get_site(self, name: str) -> Site:
        with self._lock:
            return _found("site", self._sites.get(name), name)

    def get_room(self, name: str) -> Room:
        with self._lock:
            return _found("room", self._rooms.get(name), name)

    def get_rack(self, name: str) -> Rack:
        with self._lock:
            return _found("rack", self._racks.get(name), name)

    def get_node(self, name: str) -> Node:
        with self._lock:
            return _copy_node(_found("node", self._nodes.get(name), name))

    def get_gpu(self, node: str, index: int) -> Gpu:
        with self._lock:
            return _found("gpu", self._gpus.get((node, index)), f"{node}/{index}")

    # list ----------------------------------------------------------------------------

    def list_sites(self) -> list[Site]:
        with self._lock:
            return sorted(self._sites.values(), key=lambda s: s.name)

    def list_rooms(self, site: str | None = None) -> list[Room]:
        with self._lock:
            rooms = [r for r in self._rooms.values() if site is None or r.site == site]
        return sorted(rooms, key=lambda r: r.name)

    def list_racks(self, room: str | None = None) -> list[Rack]:
        with self._lock:
            racks = [r for r in self._racks.values() if room is None or r.room == room]
        return sorted(racks, key=lambda r: r.name)

    def list_nodes(self, rack: str | None = None, state: Lifecycle | None = None) -> list[Node]:
        with self._lock:
            nodes = [_copy_node(n) for n in self._nodes.values()
                     if (rack is None or n.rack == rack) and (state is None or n.state == state)]
        return sorted(nodes, key=lambda n: n.name)

    def list_gpus(self, node: str | None = None) -> list[Gpu]:
        with self._lock:
            gpus = [g for g in self._gpus.values() if node is None or g.node == node]
        return sorted(gpus, key=lambda g: (g.node, g.index))

    # change --------------------------------------------------------------------------

    def set_node_state(self, name: str, state: Lifecycle) -> Node:
        with self._lock:
            node = _found("node", self._nodes.get(name), name)
            changed = dataclasses.replace(node, state=Lifecycle(state))
            self._nodes[name] = changed
            return _copy_node(changed)

    def set_gpu_state(self, node: str, index: int, state: Lifecycle) -> Gpu:
        with self._lock:
            gpu = _found("gpu", self._gpus.get((node, index)), f"{node}/{index}")
            changed = dataclasses.replace(gpu, state=Lifecycle(state))
            self._gpus[(node, index)] = changed
            return changed

    def touch_node(self, name: str, seen_at: float) -> None:
        with self._lock:
            node = _found("node", self._nodes.get(name), name)
            self._nodes[name] = dataclasses.replace(node, last_seen=seen_at)

    def delete(self, kind: str, name: str) -> None:
        chosen = parse_kind(kind)
        with self._lock:
            if chosen is Kind.GPU:
                key = parse_gpu_key(name)
                _found("gpu", self._gpus.get(key), name)
                del self._gpus[key]
            elif chosen is Kind.NODE:
                _found("node", self._nodes.get(name), name)
                for key in [k for k in self._gpus if k[0] == name]:
                    del self._gpus[key]
                del self._nodes[name]
            elif chosen is Kind.RACK:
                _found("rack", self._racks.get(name), name)
                _no_children("rack", name, "nodes", [n.rack for n in self._nodes.values()])
                del self._racks[name]
            elif chosen is Kind.ROOM:
                _found("room", self._rooms.get(name), name)
                _no_children("room", name, "racks", [r.room for r in self._racks.values()])
                del self._rooms[name]
            else:
                _found("site", self._sites.get(name), name)
                _no_children("site", name, "rooms", [r.site for r in self._rooms.values()])
                del self._sites[name]


def _found(kind: str, value: T | None, name: str) -> T:
    if value is None:
        raise NotFound(kind, name)
    return value


def _no_children(kind: str, name: str, children: str, parents: list[str | None]) -> None:
    count = parents.count(name)
    if count:
        raise Conflict(f"{kind} {name!r} still has {count} {children}", where=name,
                       hint=f"delete or move its {children} first")


def _copy_node(node: Node) -> Node:
    """A node with its own labels dict, so callers cannot change what is stored."""
    return dataclasses.replace(node, labels=dict(node.labels))
