"""The routing tree: Alertmanager's depth-first matching, continue, and inheritance."""

from __future__ import annotations

import pytest

from dcops.alerts.matchers import parse_matchers
from dcops.alerts.routing import Route, RouteSpec, build_route
from dcops.core.errors import Invalid


def spec(matchers: str = "", **kwargs: object) -> RouteSpec:
    return RouteSpec(matchers=tuple(parse_matchers(matchers, "t")), **kwargs)  # type: ignore[arg-type]


def docs_tree() -> Route:
    """The example tree of Alertmanager's configuration docs, in short."""
    return build_route(RouteSpec(
        receiver="default-receiver", group_by=("cluster", "alertname"),
        routes=(
            spec('service=~"mysql|cassandra"', receiver="database-pager", group_wait_s=10.0),
            spec('team="frontend"', receiver="frontend-pager",
                 group_by=("product", "environment")),
            spec('team="infra"', continue_=True, receiver="infra-log", routes=(
                spec('severity="critical"', receiver="infra-pager"),
            )),
            spec('team=~"infra|storage"', receiver="infra-mail", repeat_interval_s=3600.0),
        )))


def receivers(route: Route, **labels: str) -> list[str]:
    return [r.receiver for r in route.match(labels)]


def test_first_matching_child_wins_and_the_root_takes_the_rest() -> None:
    root = docs_tree()
    assert receivers(root, service="mysql", team="frontend") == ["database-pager"]
    assert receivers(root, team="frontend") == ["frontend-pager"]
    assert receivers(root, team="dev") == ["default-receiver"]
    assert receivers(root) == ["default-receiver"]


def test_continue_goes_on_to_later_siblings() -> None:
    root = docs_tree()
    assert receivers(root, team="infra", severity="critical") == ["infra-pager", "infra-mail"]
    # the parent with continue handles it itself when no child matches
    assert receivers(root, team="infra", severity="warning") == ["infra-log", "infra-mail"]
    assert receivers(root, team="storage") == ["infra-mail"]


def test_children_inherit_what_they_leave_unset() -> None:
    root = docs_tree()
    db, frontend, infra, mail = root.routes
    assert (root.group_wait_s, root.group_interval_s, root.repeat_interval_s) == (
        30.0, 300.0, 14400.0)
    assert db.group_wait_s == 10.0 and db.group_by == ("cluster", "alertname")
    assert db.repeat_interval_s == 14400.0
    assert frontend.group_by == ("product", "environment")
    assert infra.routes[0].receiver == "infra-pager"
    assert mail.repeat_interval_s == 3600.0 and mail.group_wait_s == 30.0


def test_inherited_receiver_and_group_by_all() -> None:
    root = build_route(RouteSpec(receiver="ops", group_by=("...",), routes=(
        spec('rack="r1"', routes=(spec('gpu="0"', group_by=("node",)),)),)))
    rack = root.routes[0]
    assert rack.receiver == "ops" and rack.group_by_all
    assert rack.group_labels({"rack": "r1", "node": "n1"}) == {"rack": "r1", "node": "n1"}
    gpu = rack.routes[0]
    assert not gpu.group_by_all and gpu.group_labels({"node": "n1", "gpu": "0"}) == {
        "node": "n1"}


def test_group_labels_leave_out_missing_labels() -> None:
    root = docs_tree()
    assert root.group_labels({"alertname": "A", "node": "n1"}) == {"alertname": "A"}


def test_keys_and_ids_follow_alertmanagers_paths() -> None:
    root = docs_tree()
    assert root.key == root.id == "{}"
    assert root.routes[0].key == '{}/{service=~"mysql|cassandra"}'
    assert root.routes[0].id == '{}/{service=~"mysql|cassandra"}/0'
    pager = root.routes[2].routes[0]
    assert pager.id == '{}/{team="infra"}/{severity="critical"}/0'
    twins = build_route(RouteSpec(receiver="r", routes=(spec(), spec())))
    assert twins.routes[0].key == twins.routes[1].key == "{}/{}"
    assert twins.routes[0].id != twins.routes[1].id
    assert [r.id for r in docs_tree().walk()] == [r.id for r in root.walk()]


def test_a_route_that_does_not_match_returns_nothing() -> None:
    route = build_route(RouteSpec(receiver="r"))
    child = build_route(spec('a="b"', receiver="x"), route, 0)
    assert child.match({"a": "c"}) == []


@pytest.mark.parametrize(("bad", "reason"), [
    (RouteSpec(), "root route needs a receiver"),
    (RouteSpec(receiver="r", group_by=("a", "a")), "repeated in group_by"),
    (RouteSpec(receiver="r", group_by=("...", "a")), "cannot be given with other labels"),
    (RouteSpec(receiver="r", group_interval_s=0.0), "group_interval must be greater"),
    (RouteSpec(receiver="r", repeat_interval_s=0.0), "repeat_interval must be greater"),
])
def test_bad_trees_are_refused(bad: RouteSpec, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        build_route(bad)
