"""Topology-aware placement: NVLink domain first, then one switch, one rack, the fewest
switches; tasks never split; suspect and unschedulable nodes never chosen; tiers kept in
step with the cluster."""

from __future__ import annotations

import random
from dataclasses import replace

from dcops.scheduling.cluster import TIER_LEVELS, Cluster, NodeInfo
from dcops.scheduling.model import Job, JobSpec, Placement
from dcops.scheduling.topology import TopologyAware, fewest, topology_placement


def job(gpus_per_task: int, tasks: int = 1, name: str = "j") -> Job:
    return Job(name, JobSpec(name, gpus_per_task=gpus_per_task, tasks=tasks), 0.0)


def node(name: str, gpus: int = 8, rack: str = "", switch: str = "", domain: str = "",
         ) -> NodeInfo:
    return NodeInfo(name, gpus=gpus, rack=rack, switch=switch, nvlink_domain=domain)


def use(cluster: Cluster, **gpus: int) -> None:
    cluster.allocate(Placement(tuple(gpus.items())))


def placed(cluster: Cluster, j: Job) -> dict[str, int]:
    placement = TopologyAware().place(j, cluster)
    assert placement is not None
    return dict(placement.nodes)


def test_a_job_goes_to_the_fullest_nvlink_domain_that_holds_it() -> None:
    cluster = Cluster([
        *(node(f"a{i}", gpus=4, rack="ra", domain="nvl-a") for i in range(4)),
        *(node(f"b{i}", gpus=4, rack="rb", domain="nvl-b") for i in range(4)),
        node("hgx", gpus=8, rack="rc"),
    ])
    use(cluster, a0=4, a1=2)
    # nvl-a has 10 free, nvl-b 16, hgx 8: a 2 x 4 gang fits in the node hgx (8) best;
    # a 5 x 2 gang fits in nvl-a (10) best, on its fullest nodes first.
    assert placed(cluster, job(4, 2)) == {"hgx": 8}
    assert placed(cluster, job(2, 5)) == {"a1": 2, "a2": 4, "a3": 4}
    # best fit is by domain: hgx (8 free) before nvl-a (10), though a1 has 2 free.
    assert placed(cluster, job(1)) == {"hgx": 1}
    use(cluster, hgx=8)
    assert placed(cluster, job(1)) == {"a1": 1}


def test_a_gang_stays_under_one_switch_on_the_fewest_racks() -> None:
    cluster = Cluster([
        *(node(f"x{i}", rack="r1", switch="s1") for i in range(3)),
        *(node(f"y{i}", rack="r2", switch="s1") for i in range(1)),
        *(node(f"z{i}", rack="r3", switch="s1") for i in range(2)),
        *(node(f"w{i}", rack="r4", switch="s2") for i in range(8)),
    ])
    # s1 has 6 whole nodes, s2 has 8: best fit is s1, and in it r1 (3) and then the
    # best-fit rack for the last task, r2 (1).
    assert placed(cluster, job(8, 4)) == {"x0": 8, "x1": 8, "x2": 8, "y0": 8}


def test_without_a_switch_that_holds_it_a_gang_takes_one_rack() -> None:
    cluster = Cluster([
        *(node(f"p{i}", rack="r1", switch=f"s{i}") for i in range(4)),
        *(node(f"q{i}", rack="r2", switch=f"t{i}") for i in range(2)),
    ])
    assert placed(cluster, job(8, 2)) == {"q0": 8, "q1": 8}


def test_a_gang_too_big_for_any_switch_takes_the_fewest_switches() -> None:
    cluster = Cluster([
        *(node(f"a{i}", rack="ra", switch="s1") for i in range(3)),
        *(node(f"b{i}", rack="rb", switch="s2") for i in range(2)),
        *(node(f"c{i}", rack="rc", switch="s3") for i in range(1)),
    ])
    # the largest switch (3 nodes), then the best fit for the last one (s3, one node).
    assert placed(cluster, job(8, 4)) == {"a0": 8, "a1": 8, "a2": 8, "c0": 8}


def test_gangs_take_whole_nodes_and_never_split_a_task() -> None:
    cluster = Cluster([node(f"n{i}", rack="r") for i in range(4)])
    use(cluster, n0=2, n1=2)
    # 3 tasks of 4 GPUs: 12 GPUs do not fit one node, so whole nodes, 2 tasks on one.
    assert placed(cluster, job(4, 3)) == {"n2": 8, "n3": 4}
    # a task of 6 GPUs fits on n0 (6 free), but two of them need two whole nodes.
    assert placed(cluster, job(6)) == {"n0": 6}
    assert placed(cluster, job(6, 2)) == {"n2": 6, "n3": 6}
    # a task bigger than every node never fits, however many GPUs are free.
    assert topology_placement(16, 1, cluster) is None
    assert topology_placement(5, 3, cluster) is None  # only 2 whole nodes hold a 5


def test_suspect_and_unschedulable_nodes_are_never_chosen() -> None:
    cluster = Cluster([node("a", rack="r"), node("b", rack="r"), node("c", rack="r")])
    use(cluster, a=6)
    cluster.update(replace(cluster.nodes["a"], suspect=True))
    cluster.update(replace(cluster.nodes["b"], schedulable=False))
    assert placed(cluster, job(2)) == {"c": 2}
    assert topology_placement(8, 2, cluster) is None
    cluster.update(replace(cluster.nodes["b"], schedulable=True))
    assert placed(cluster, job(8, 2)) == {"b": 8, "c": 8}


def test_zero_gpus_is_an_empty_placement_and_too_many_is_none() -> None:
    cluster = Cluster([node("a")])
    assert topology_placement(0, 3, cluster) == Placement(())
    assert topology_placement(8, 2, cluster) is None


def test_fewest_groups() -> None:
    sizes = {"a": 4, "b": 2, "c": 3, "d": 1}
    assert fewest(sizes, 3) == ["c"]
    assert fewest(sizes, 6) == ["a", "b"]
    assert fewest(sizes, 8) == ["a", "c", "d"]
    assert fewest(sizes, 11) is None


def test_tiers_stay_in_step_through_allocations_updates_and_copies() -> None:
    rng = random.Random(7)
    nodes = [node(f"n{i}", gpus=rng.choice([4, 8]), rack=f"r{i % 5}", switch=f"s{i % 2}",
                  domain=rng.choice(["", f"d{i % 3}"])) for i in range(40)]
    cluster = Cluster(nodes)
    for level in TIER_LEVELS:
        cluster.tier(level)
    held: list[Placement] = []
    for _ in range(300):
        name = rng.choice(nodes).name
        action = rng.random()
        if action < 0.5 and cluster.free[name]:
            held.append(Placement(((name, rng.randint(1, cluster.free[name])),)))
            cluster.allocate(held[-1])
        elif action < 0.8 and held:
            cluster.release(held.pop(rng.randrange(len(held))))
        else:
            info = cluster.nodes[name]
            cluster.update(replace(info, suspect=rng.random() < 0.3,
                                   schedulable=rng.random() < 0.8))
    fresh = cluster.copy()
    cluster.allocate(Placement(((next(n for n in cluster.free if cluster.free[n]), 1),)))
    for c in (cluster, fresh):
        for level in TIER_LEVELS:
            assert_tier_matches(c, level)


def assert_tier_matches(cluster: Cluster, level: str) -> None:
    tier = cluster.tier(level)
    free: dict[str, int] = {}
    whole: dict[str, int] = {}
    for name, info in cluster.nodes.items():
        if cluster.usable(name):
            key = tier.key(info)
            free[key] = free.get(key, 0) + cluster.free[name]
            whole[key] = whole.get(key, 0) + (info.gpus if cluster.free[name] == info.gpus else 0)
    assert tier.free == free
    assert tier.whole == whole
    assert {k: set(v) for k, v in tier.by_free.items()} == invert(free)
    assert {k: set(v) for k, v in tier.by_whole.items()} == invert(whole)


def invert(values: dict[str, int]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for key, value in values.items():
        out.setdefault(value, set()).add(key)
    return out
