"""The routing tree: which receiver an alert goes to, and how alerts are grouped there.

As in Alertmanager, an alert enters at the root route and walks down depth-first: at each
level it takes the first child whose matchers match (and also later ones while the
matching child has ``continue: true``); a route none of whose children match handles the
alert itself. Children inherit ``receiver``, ``group_by``, ``group_wait``,
``group_interval`` and ``repeat_interval`` from their parent when they leave them unset.

A `RouteSpec` is a route as written (unset fields are None); `build_route` resolves the
inheritance into a tree of `Route`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from dcops.alerts.matchers import Matcher, format_matchers, matches_all
from dcops.core.errors import Invalid

GROUP_WAIT_S = 30.0
GROUP_INTERVAL_S = 300.0
REPEAT_INTERVAL_S = 4 * 3600.0
GROUP_BY_ALL = "..."


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route as configured; None means "inherit from the parent" (or the default)."""

    receiver: str | None = None
    group_by: tuple[str, ...] | None = None
    """Label names; ``("...",)`` groups by every label (one group per alert)."""
    group_wait_s: float | None = None
    group_interval_s: float | None = None
    repeat_interval_s: float | None = None
    matchers: tuple[Matcher, ...] = ()
    """``matchers`` plus the legacy ``match`` and ``match_re``, already merged."""
    continue_: bool = False
    routes: tuple[RouteSpec, ...] = ()
    where: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """A resolved route: every option known, and its place in the tree as `key` and `id`."""

    receiver: str
    group_by: tuple[str, ...]
    group_by_all: bool
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    matchers: tuple[Matcher, ...]
    continue_: bool
    routes: tuple[Route, ...]
    key: str
    """The matchers of this route and its ancestors: ``{}/{alertname="x"}``."""
    id: str
    """`key` and the position among siblings, unique in the tree: ``{}/{alertname="x"}/0``;
    group keys start with it."""
    where: str = ""

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that handle an alert with `labels` (empty when this one does not match)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child.match(labels)
            found += matched
            if matched and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name an alert's group on this route."""
        if self.group_by_all:
            return dict(labels)
        return {name: labels[name] for name in self.group_by if labels.get(name, "")}

    def walk(self) -> list[Route]:
        """This route and all below it, depth-first."""
        out = [self]
        for child in self.routes:
            out += child.walk()
        return out


def build_route(spec: RouteSpec, parent: Route | None = None, position: int = -1) -> Route:
    """The resolved tree of `spec` (a root when `parent` is None)."""
    if parent is None and not spec.receiver:
        raise Invalid("the root route needs a receiver", where=spec.where)
    group_by = spec.group_by if spec.group_by is not None else (
        parent.group_by + ((GROUP_BY_ALL,) if parent.group_by_all else ()) if parent else ())
    _check_group_by(group_by, spec.where)
    own = format_matchers(spec.matchers)
    key = f"{parent.key}/{own}" if parent else own
    route_id = f"{key}/{position}" if parent else key
    route = Route(
        receiver=spec.receiver or (parent.receiver if parent else ""),
        group_by=tuple(n for n in group_by if n != GROUP_BY_ALL),
        group_by_all=GROUP_BY_ALL in group_by,
        group_wait_s=_pick(spec.group_wait_s, parent.group_wait_s if parent else None,
                           GROUP_WAIT_S),
        group_interval_s=_pick(spec.group_interval_s,
                               parent.group_interval_s if parent else None, GROUP_INTERVAL_S),
        repeat_interval_s=_pick(spec.repeat_interval_s,
                                parent.repeat_interval_s if parent else None,
                                REPEAT_INTERVAL_S),
        matchers=spec.matchers, continue_=spec.continue_, routes=(), key=key, id=route_id,
        where=spec.where)
    for name, value in (("group_interval", route.group_interval_s),
                        ("repeat_interval", route.repeat_interval_s)):
        if value <= 0:
            raise Invalid(f"{name} must be greater than 0", where=spec.where)
    children = tuple(build_route(child, route, i) for i, child in enumerate(spec.routes))
    return replace(route, routes=children)


def _pick(own: float | None, inherited: float | None, default: float) -> float:
    if own is not None:
        return own
    return inherited if inherited is not None else default


def _check_group_by(names: tuple[str, ...], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise Invalid(f"label {name!r} repeated in group_by", where=where)
        seen.add(name)
    if GROUP_BY_ALL in seen and len(seen) > 1:
        raise Invalid("group_by '...' cannot be given with other labels", where=where,
                      hint="'...' already groups by every label")
