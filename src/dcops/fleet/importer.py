"""Inventory files: what an operator writes to describe sites, rooms, racks and nodes.

Two formats, chosen by the file's suffix (`.yaml`/`.yml` or `.csv`).

YAML nests things the way they stand in the building::

    sites:
      - name: ams1
        description: Amsterdam campus            # optional
        rooms:
          - name: ams1-hall-a
            description: liquid-cooled hall      # optional
            racks:
              - name: a01
                power_capacity_watts: 40000      # optional
                description: ""                  # optional
                nodes:
                  - name: gpu-a01-01
                    gpu_model: H100              # optional
                    gpu_count: 8                 # optional, integer >= 0
                    state: active                # optional: planned, active, draining,
                                                 #   drained, failed, retired
                    labels: {pool: training}     # optional, values are strings or numbers

CSV has one row per node and a header naming its columns, in any order::

    site,room,rack,node,gpu_model,gpu_count,state,labels
    ams1,ams1-hall-a,a01,gpu-a01-01,H100,8,active,pool=training;tier=1

`site`, `room`, `rack` and `node` are required; `gpu_model`, `gpu_count`, `state` and
`labels` (`key=value` pairs separated by `;`) may be left out or left empty.

Names are unique per kind across the whole file (a room name belongs to one site).
An optional field left out keeps what the inventory already holds, so a file that
does not mention state leaves drained nodes drained. Importing creates what is
missing and updates what differs; it never deletes. Each node gets GPUs with indexes
0 .. gpu_count-1 created when missing. Importing the same file twice changes nothing
the second time. Errors raise Invalid with `where="file:line"`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dcops.core.errors import Invalid
from dcops.files.yamlnodes import YamlNodes, parse
from dcops.fleet.inventory import Inventory
from dcops.fleet.memory import check_name
from dcops.fleet.model import Gpu, Kind, Lifecycle, Node, Rack, Room, Site

log = logging.getLogger(__name__)

T = TypeVar("T")

STATES = ", ".join(s.value for s in Lifecycle)
CSV_REQUIRED = ("site", "room", "rack", "node")
CSV_OPTIONAL = ("gpu_model", "gpu_count", "state", "labels")


@dataclass(frozen=True, slots=True)
class SiteEntry:
    """A site as the file describes it; None means "not given, keep what is there"."""

    name: str
    description: str | None
    where: str


@dataclass(frozen=True, slots=True)
class RoomEntry:
    """A room as the file describes it."""

    name: str
    site: str
    description: str | None
    where: str


@dataclass(frozen=True, slots=True)
class RackEntry:
    """A rack as the file describes it."""

    name: str
    room: str
    power_capacity_watts: float | None
    description: str | None
    where: str


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """A node as the file describes it."""

    name: str
    rack: str
    gpu_model: str | None
    gpu_count: int | None
    state: Lifecycle | None
    labels: dict[str, str] | None
    where: str


@dataclass(frozen=True, slots=True)
class InventoryDoc:
    """A parsed, validated inventory file, parents before children."""

    source: str
    sites: tuple[SiteEntry, ...] = ()
    rooms: tuple[RoomEntry, ...] = ()
    racks: tuple[RackEntry, ...] = ()
    nodes: tuple[NodeEntry, ...] = ()


def _counts() -> dict[str, int]:
    return {k.value: 0 for k in Kind}


@dataclass
class ImportResult:
    """How many objects of each kind an import created, updated or left as they were."""

    created: dict[str, int] = field(default_factory=_counts)
    updated: dict[str, int] = field(default_factory=_counts)
    unchanged: dict[str, int] = field(default_factory=_counts)

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values())


# reading ---------------------------------------------------------------------------


def load_inventory_file(path: Path) -> InventoryDoc:
    """Read and validate a YAML or CSV inventory file."""
    suffix = path.suffix.lower()
    fmt = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv"}.get(suffix)
    if fmt is None:
        raise Invalid(f"unknown inventory file type {suffix or '(none)'!r}", where=str(path),
                      hint="name it .yaml, .yml or .csv")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Invalid(f"cannot read inventory file: {exc.strerror}", where=str(path)) from None
    except UnicodeDecodeError:
        raise Invalid("inventory file is not UTF-8 text", where=str(path)) from None
    return parse_inventory_text(text, fmt, source=str(path))


def parse_inventory_text(text: str, format: str, source: str = "inventory") -> InventoryDoc:
    """Parse inventory text in `format` ("yaml" or "csv"); `source` names it in errors."""
    if format == "yaml":
        return _Builder(source).from_yaml(text)
    if format == "csv":
        return _Builder(source).from_csv(text)
    raise Invalid(f"unknown inventory format {format!r}", where=source, hint="yaml or csv")


class _Builder:
    """Collects entries from either format, checking names are unique per kind."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sites: dict[str, SiteEntry] = {}
        self.rooms: dict[str, RoomEntry] = {}
        self.racks: dict[str, RackEntry] = {}
        self.nodes: dict[str, NodeEntry] = {}

    def at(self, line: int, column: int | None = None) -> str:
        return f"{self.source}:{line}" + (f":{column}" if column is not None else "")

    def doc(self) -> InventoryDoc:
        return InventoryDoc(self.source, tuple(self.sites.values()), tuple(self.rooms.values()),
                            tuple(self.racks.values()), tuple(self.nodes.values()))

    def _unique(self, kind: str, seen: dict[str, Any], name: str, where: str) -> None:
        if name in seen:
            raise Invalid(f"duplicate {kind} name {name!r}", where=where,
                          hint=f"first defined at {seen[name].where}")

    # YAML ------------------------------------------------------------------------------

    def from_yaml(self, text: str) -> InventoryDoc:
        root, nodes = parse(text, self.source)
        if root is None:
            raise Invalid("empty inventory file", where=self.source, hint="start with 'sites:'")
        reader = _YamlReader(nodes.loader, self)
        top = reader.mapping(root, "inventory", required={"sites"}, optional=set())
        for site_node in reader.sequence(top["sites"], "sites"):
            self._yaml_site(reader, site_node)
        return self.doc()

    def _yaml_site(self, r: _YamlReader, node: yaml.Node) -> None:
        f = r.mapping(node, "site", {"name"}, {"description", "rooms"})
        name, where = r.name(f["name"], "site"), r.where(node)
        self._unique("site", self.sites, name, where)
        self.sites[name] = SiteEntry(name, r.opt_str(f, "description"), where)
        for room in r.sequence(f.get("rooms"), "rooms"):
            rf = r.mapping(room, "room", {"name"}, {"description", "racks"})
            room_name, room_where = r.name(rf["name"], "room"), r.where(room)
            self._unique("room", self.rooms, room_name, room_where)
            self.rooms[room_name] = RoomEntry(room_name, name, r.opt_str(rf, "description"),
                                              room_where)
            for rack in r.sequence(rf.get("racks"), "racks"):
                self._yaml_rack(r, rack, room_name)

    def _yaml_rack(self, r: _YamlReader, node: yaml.Node, room: str) -> None:
        f = r.mapping(node, "rack", {"name"}, {"description", "power_capacity_watts", "nodes"})
        name, where = r.name(f["name"], "rack"), r.where(node)
        self._unique("rack", self.racks, name, where)
        power = r.opt_number(f, "power_capacity_watts")
        self.racks[name] = RackEntry(name, room, power, r.opt_str(f, "description"), where)
        for item in r.sequence(f.get("nodes"), "nodes"):
            nf = r.mapping(item, "node", {"name"},
                           {"gpu_model", "gpu_count", "state", "labels"})
            node_name, node_where = r.name(nf["name"], "node"), r.where(item)
            self._unique("node", self.nodes, node_name, node_where)
            self.nodes[node_name] = NodeEntry(
                node_name, name, r.opt_str(nf, "gpu_model"), r.opt_count(nf, "gpu_count"),
                r.opt_state(nf, "state"), r.opt_labels(nf, "labels"), node_where)

    # CSV -------------------------------------------------------------------------------

    def from_csv(self, text: str) -> InventoryDoc:
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader, None)
            if header is None:
                raise Invalid("empty inventory file", where=self.source,
                              hint=f"the first line names the columns: {','.join(CSV_REQUIRED)}")
            columns = self._csv_header(header)
            for row in reader:
                if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                    continue
                self._csv_row(columns, row, self.at(reader.line_num))
        except csv.Error as exc:
            raise Invalid(f"bad CSV: {exc}", where=self.at(reader.line_num)) from None
        return self.doc()

    def _csv_header(self, header: list[str]) -> list[str]:
        columns = [c.strip().lower() for c in header]
        known = CSV_REQUIRED + CSV_OPTIONAL
        for column in columns:
            if column not in known:
                raise Invalid(f"unknown column {column!r}", where=self.at(1),
                              hint=f"columns are {', '.join(known)}")
            if columns.count(column) > 1:
                raise Invalid(f"column {column!r} appears twice", where=self.at(1))
        missing = [c for c in CSV_REQUIRED if c not in columns]
        if missing:
            raise Invalid(f"missing column {', '.join(missing)}", where=self.at(1),
                          hint=f"the header must name {', '.join(CSV_REQUIRED)}")
        return columns

    def _csv_row(self, columns: list[str], row: list[str], where: str) -> None:
        if len(row) > len(columns):
            raise Invalid(f"{len(row)} fields in a file with {len(columns)} columns",
                          where=where)
        cells = {c: v.strip() for c, v in zip(columns, row, strict=False)}
        for column in CSV_REQUIRED:
            if not cells.get(column):
                raise Invalid(f"missing field {column!r}", where=where)
            _check_name_text(column, cells[column], where)
        site, room, rack, node = (cells[c] for c in CSV_REQUIRED)
        self.sites.setdefault(site, SiteEntry(site, None, where))
        self._same_parent("room", self.rooms, room, "site", site, where)
        self.rooms.setdefault(room, RoomEntry(room, site, None, where))
        self._same_parent("rack", self.racks, rack, "room", room, where)
        self.racks.setdefault(rack, RackEntry(rack, room, None, None, where))
        self._unique("node", self.nodes, node, where)
        self.nodes[node] = NodeEntry(
            node, rack, cells.get("gpu_model") or None,
            _count(cells.get("gpu_count", ""), where), _state(cells.get("state", ""), where),
            _csv_labels(cells.get("labels", ""), where), where)

    @staticmethod
    def _same_parent(kind: str, seen: dict[str, Any], name: str, parent_kind: str,
                     parent: str, where: str) -> None:
        first = seen.get(name)
        if first is not None and getattr(first, parent_kind) != parent:
            raise Invalid(f"{kind} {name!r} is in {parent_kind} {parent!r} here but in "
                          f"{getattr(first, parent_kind)!r} at {first.where}", where=where)


class _YamlReader(YamlNodes):
    """Reads composed YAML nodes, so every error can name the line it is about."""

    def __init__(self, loader: yaml.SafeLoader, builder: _Builder) -> None:
        super().__init__(loader, builder.source)
        self.b = builder

    def name(self, node: yaml.Node, kind: str) -> str:
        value = self.scalar(node, f"{kind} name")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise Invalid(f"{kind} name must be text", where=self.where(node))
        text = str(value)
        _check_name_text(kind, text, self.where(node))
        return text

    def opt_str(self, fields: dict[str, yaml.Node], key: str) -> str | None:
        if key not in fields:
            return None
        value = self.scalar(fields[key], key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Invalid(f"{key} must be text", where=self.where(fields[key]))
        return str(value)

    def opt_number(self, fields: dict[str, yaml.Node], key: str) -> float | None:
        if key not in fields:
            return None
        value = self.scalar(fields[key], key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise Invalid(f"{key} must be a number of 0 or more, not {value!r}",
                          where=self.where(fields[key]))
        return float(value)

    def opt_count(self, fields: dict[str, yaml.Node], key: str) -> int | None:
        if key not in fields:
            return None
        value = self.scalar(fields[key], key)
        if value is None:
            return None
        return _count(str(value), self.where(fields[key]))

    def opt_state(self, fields: dict[str, yaml.Node], key: str) -> Lifecycle | None:
        if key not in fields:
            return None
        value = self.scalar(fields[key], key)
        return None if value is None else _state(str(value), self.where(fields[key]))

    def opt_labels(self, fields: dict[str, yaml.Node], key: str) -> dict[str, str] | None:
        if key not in fields or self.is_null(fields[key]):
            return None
        node = fields[key]
        if not isinstance(node, yaml.MappingNode):
            raise Invalid("labels must be a mapping of name: value", where=self.where(node))
        labels: dict[str, str] = {}
        for key_node, value_node in node.value:
            name = self.scalar(key_node, "label name")
            value = self.scalar(value_node, "label value")
            if not isinstance(name, str) or not name:
                raise Invalid(f"label name {name!r} must be text", where=self.where(key_node))
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise Invalid(f"label {name!r} must be text or a number",
                              where=self.where(value_node))
            labels[name] = str(value)
        return labels


def _check_name_text(kind: str, name: str, where: str) -> None:
    try:
        check_name(kind, name)
    except Invalid as exc:
        raise Invalid(exc.message, where=where) from None


def _count(text: str, where: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise Invalid(f"gpu_count must be a whole number of 0 or more, not {text!r}",
                      where=where)
    return int(text)


def _state(text: str, where: str) -> Lifecycle | None:
    text = text.strip().lower()
    if not text:
        return None
    try:
        return Lifecycle(text)
    except ValueError:
        raise Invalid(f"invalid state {text!r}", where=where, hint=f"one of {STATES}") from None


def _csv_labels(text: str, where: str) -> dict[str, str] | None:
    if not text.strip():
        return None
    labels: dict[str, str] = {}
    for pair in text.split(";"):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise Invalid(f"label {pair.strip()!r} must look like key=value", where=where)
        labels[key.strip()] = value.strip()
    return labels


# applying --------------------------------------------------------------------------


def apply_inventory(doc: InventoryDoc, inventory: Inventory) -> ImportResult:
    """Bring `inventory` in line with `doc`: create what is missing, update what differs."""
    result = ImportResult()
    sites = {s.name: s for s in inventory.list_sites()}
    for s in doc.sites:
        old = sites.get(s.name)
        new = Site(s.name, _keep(s.description, old.description if old else ""))
        _put(result, Kind.SITE, old, new, inventory.add_site, inventory.upsert_site)
    rooms = {r.name: r for r in inventory.list_rooms()}
    for r in doc.rooms:
        old_room = rooms.get(r.name)
        room = Room(r.name, r.site, _keep(r.description, old_room.description if old_room else ""))
        _put(result, Kind.ROOM, old_room, room, inventory.add_room, inventory.upsert_room)
    racks = {r.name: r for r in inventory.list_racks()}
    for k in doc.racks:
        old_rack = racks.get(k.name)
        rack = Rack(k.name, k.room,
                    k.power_capacity_watts if k.power_capacity_watts is not None
                    else (old_rack.power_capacity_watts if old_rack else None),
                    _keep(k.description, old_rack.description if old_rack else ""))
        _put(result, Kind.RACK, old_rack, rack, inventory.add_rack, inventory.upsert_rack)
    nodes = {n.name: n for n in inventory.list_nodes()}
    have_gpus = {(g.node, g.index) for g in inventory.list_gpus()}
    for n in doc.nodes:
        old_node = nodes.get(n.name)
        node = _node(n, old_node)
        _put(result, Kind.NODE, old_node, node, inventory.add_node, inventory.upsert_node)
        for index in range(node.gpu_count):
            if (node.name, index) in have_gpus:
                result.unchanged[Kind.GPU.value] += 1
            else:
                inventory.add_gpu(Gpu(node.name, index, model=node.gpu_model))
                result.created[Kind.GPU.value] += 1
    log.info("imported %s: created %s, updated %s", doc.source, result.created, result.updated)
    return result


def _keep(given: T | None, current: T) -> T:
    return current if given is None else given


def _node(entry: NodeEntry, old: Node | None) -> Node:
    base = old or Node(entry.name)
    return dataclasses.replace(
        base, rack=entry.rack,
        state=_keep(entry.state, base.state),
        gpu_model=_keep(entry.gpu_model, base.gpu_model),
        gpu_count=_keep(entry.gpu_count, base.gpu_count),
        labels=_keep(entry.labels, base.labels))


def _put(result: ImportResult, kind: Kind, old: T | None, new: T,
         add: Callable[[T], object], upsert: Callable[[T], object]) -> None:
    if old is None:
        add(new)
        result.created[kind.value] += 1
    elif old != new:
        upsert(new)
        result.updated[kind.value] += 1
    else:
        result.unchanged[kind.value] += 1
