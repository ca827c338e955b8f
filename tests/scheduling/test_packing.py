"""The packer: less fragmentation than first fit and best fit, gangs in one rack, weights,
the greedy fallbacks, valid placements on random clusters, and 12,500 nodes."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace

import pytest

from dcops.core.errors import Invalid
from dcops.scheduling.cluster import Cluster, NodeInfo
from dcops.scheduling.model import Job, JobSpec, Placement
from dcops.scheduling.pack_model import fragmentation, patterns
from dcops.scheduling.packing import Packer, PackPath, greedy, invalid


def job(name: str, gpus_per_task: int, tasks: int = 1) -> Job:
    return Job(name, JobSpec(name, gpus_per_task=gpus_per_task, tasks=tasks), 0.0)


def cluster_of(*free: int, rack: str = "r") -> Cluster:
    """8-GPU nodes n0, n1, ... with `free` GPUs free each."""
    cluster = Cluster(NodeInfo(f"n{i}", rack=rack) for i in range(len(free)))
    for i, f in enumerate(free):
        if f < 8:
            cluster.allocate(Placement(((f"n{i}", 8 - f),)))
    return cluster


def first_fit(jobs: list[Job], cluster: Cluster) -> dict[str, Placement]:
    """The naive baseline: each job on the first node (by name) with room for it."""
    trial = cluster.copy()
    out: dict[str, Placement] = {}
    for j in jobs:
        name = next((n for n in sorted(trial.free) if trial.free[n] >= j.gpus), None)
        if name is not None:
            out[j.id] = Placement(((name, j.gpus),))
            trial.allocate(out[j.id])
    return out


def shape(cluster: Cluster, placements: Mapping[str, Placement]) -> tuple[int, int]:
    """(partially used nodes, whole free nodes) once `placements` are allocated."""
    trial = cluster.copy()
    for placement in placements.values():
        trial.allocate(placement)
    sizes = {n: trial.nodes[n].gpus for n in trial.nodes if trial.usable(n)}
    partial = sum(1 for n, size in sizes.items() if 0 < trial.free[n] < size)
    return partial, sum(1 for n, size in sizes.items() if trial.free[n] == size)


def nodes_of(placements: Mapping[str, Placement]) -> dict[str, dict[str, int]]:
    return {job_id: dict(p.nodes) for job_id, p in placements.items()}


def test_the_solver_fills_partial_nodes_where_first_fit_breaks_a_whole_one() -> None:
    cluster = cluster_of(8, 4, 2)  # n0 whole, n1 with 4 free, n2 with 2
    jobs = [job("a", 2), job("b", 4)]
    naive = first_fit(jobs, cluster)
    assert nodes_of(naive) == {"a": {"n0": 2}, "b": {"n0": 4}}
    assert shape(cluster, naive) == (3, 0)
    packed = Packer().pack(jobs, cluster)
    assert packed.path is PackPath.SOLVER
    assert packed.reason == "optimal"
    assert nodes_of(packed.placements) == {"a": {"n2": 2}, "b": {"n1": 4}}
    assert shape(cluster, packed.placements) == (0, 1)


def test_the_solver_packs_what_best_fit_one_job_at_a_time_cannot() -> None:
    cluster = cluster_of(8, 6, 4)
    jobs = [job("a", 2), job("b", 4), job("c", 4)]
    # best fit: a on n2 (4 free), b on n1 (6), c no longer fits a partial node: n0.
    assert nodes_of(greedy(jobs, cluster)) == {"a": {"n2": 2}, "b": {"n1": 4}, "c": {"n0": 4}}
    assert shape(cluster, greedy(jobs, cluster)) == (3, 0)
    packed = Packer().pack(jobs, cluster)
    # a and b, or a and c, fill n1; the other fills n2; n0 stays whole.
    assert shape(cluster, packed.placements) == (0, 1)
    assert sorted(p.nodes[0] for p in packed.placements.values()) == [
        ("n1", 2), ("n1", 4), ("n2", 4)]


def test_a_gang_takes_one_rack_and_small_jobs_take_the_other() -> None:
    cluster = Cluster([*(NodeInfo(f"a{i}", rack="ra") for i in range(2)),
                       *(NodeInfo(f"b{i}", rack="rb") for i in range(4))])
    jobs = [job("small", 8), job("gang", 8, tasks=4)]
    packed = Packer().pack(jobs, cluster)
    assert packed.path is PackPath.SOLVER
    assert set(packed.placements["gang"].node_names) == {"b0", "b1", "b2", "b3"}
    assert packed.placements["gang"].gpus == 32
    assert packed.placements["small"].node_names[0] in {"a0", "a1"}


def test_a_small_job_goes_into_what_a_gang_leaves_on_its_last_node() -> None:
    cluster = cluster_of(8, 8, 8)
    packed = Packer().pack([job("gang", 4, tasks=3), job("small", 4)], cluster)
    assert packed.reason == "optimal"
    gang = dict(packed.placements["gang"].nodes)
    assert sorted(gang.values()) == [4, 8]
    last = next(name for name, gpus in gang.items() if gpus == 4)
    assert packed.placements["small"] == Placement(((last, 4),))
    assert shape(cluster, packed.placements) == (0, 1)


def test_the_most_jobs_start_and_weights_can_put_one_first() -> None:
    cluster = cluster_of(8)
    jobs = [job("big", 8), job("x", 4), job("y", 4)]
    assert set(Packer().pack(jobs, cluster).placements) == {"x", "y"}
    assert set(Packer().pack(jobs, cluster, weights=[3, 1, 1]).placements) == {"big"}
    with pytest.raises(Invalid):
        Packer().pack(jobs, cluster, weights=[1, 0, 1])


def test_time_limit_size_cutoff_and_no_solver_fall_back_to_greedy() -> None:
    cluster = cluster_of(8, 6, 4)
    jobs = [job("a", 2), job("b", 4), job("c", 4)]
    expected = greedy(jobs, cluster)
    for packer, why in ((Packer(time_limit_s=0), "solver: Time limit reached"),
                        (Packer(max_columns=2), "too big: more than 2 columns"),
                        (Packer(use_solver=False), "no solver")):
        result = packer.pack(jobs, cluster)
        assert (result.path, result.reason) == (PackPath.GREEDY, why)
        assert result.placements == expected
        assert packer.runs == {PackPath.SOLVER: 0, PackPath.GREEDY: 1}


def test_as_a_placer_it_places_one_job_and_counts_the_path() -> None:
    cluster = cluster_of(8, 3)
    packer = Packer()
    assert packer.place(job("a", 3), cluster) == Placement((("n1", 3),))
    assert packer.place(job("b", 16), cluster) is None
    assert packer.place(job("c", 0), cluster) == Placement(())
    assert packer.runs == {PackPath.SOLVER: 3, PackPath.GREEDY: 0}


def test_fragmentation_costs_and_patterns() -> None:
    assert fragmentation(8, 8, 0) == 1.0  # a whole node used up
    assert fragmentation(8, 4, 0) == -1.0  # a partial node filled
    assert fragmentation(8, 8, 4) == 2.25  # a whole node broken, half of it left
    assert list(patterns([4, 2], {4: 1, 2: 2}, 6)) == [((4, 1), (2, 1)), ((4, 1),),
                                                      ((2, 2),), ((2, 1),)]


def random_cluster(rng: random.Random, sizes: tuple[int, ...]) -> Cluster:
    nodes = [NodeInfo(f"n{i}", gpus=rng.choice(sizes), rack=f"r{rng.randrange(6)}",
                      switch=f"s{rng.randrange(3)}", suspect=rng.random() < 0.1,
                      schedulable=rng.random() > 0.1) for i in range(rng.randint(1, 40))]
    cluster = Cluster(replace(n, suspect=False, schedulable=True) for n in nodes)
    for info in nodes:
        if rng.random() < 0.5:
            cluster.allocate(Placement(((info.name, rng.randint(0, info.gpus)),)))
        cluster.update(info)
    return cluster


def random_jobs(rng: random.Random) -> list[Job]:
    return [job(f"j{i}", rng.choice([1, 1, 2, 3, 4, 8]), rng.choice([1, 1, 1, 2, 3, 6]))
            for i in range(rng.randint(1, 12))]


def assert_valid(placements: Mapping[str, Placement], jobs: list[Job], cluster: Cluster) -> None:
    assert invalid(placements, cluster) == ""
    by_id = {j.id: j for j in jobs}
    for job_id, placement in placements.items():
        spec = by_id[job_id].spec
        assert placement.gpus == spec.gpus
        assert all(gpus % spec.gpus_per_task == 0 and gpus > 0 for _, gpus in placement.nodes)
        assert len(set(placement.node_names)) == len(placement.nodes)
    trial = cluster.copy()
    for placement in placements.values():
        trial.allocate(placement)  # raises if any node would go below zero


def weight(placements: Mapping[str, Placement], jobs: list[Job]) -> float:
    return sum(2 - i / len(jobs) for i, j in enumerate(jobs) if j.id in placements)


@pytest.mark.parametrize("sizes", [(8,), (4, 8)])
def test_placements_are_valid_on_random_clusters(sizes: tuple[int, ...]) -> None:
    rng = random.Random(2024)
    paths = set()
    for _ in range(150):
        cluster, jobs = random_cluster(rng, sizes), random_jobs(rng)
        packed = Packer(time_limit_s=1.0).pack(jobs, cluster)
        paths.add(packed.path)
        assert_valid(packed.placements, jobs, cluster)
        fallback = greedy(jobs, cluster)
        assert_valid(fallback, jobs, cluster)
        if sizes == (8,) and packed.reason == "optimal":  # greedy is a solution of the model
            assert weight(packed.placements, jobs) >= weight(fallback, jobs) - 1e-9
    assert paths == {PackPath.SOLVER}


def test_one_job_on_12500_nodes() -> None:
    rng = random.Random(5)
    cluster = Cluster(NodeInfo(f"n{i}", rack=f"r{i // 16}", switch=f"s{i // 512}")
                      for i in range(12_500))
    for i in range(0, 12_500, 2):
        cluster.allocate(Placement(((f"n{i}", rng.randint(1, 8)),)))
    for j in (job("small", 3), job("gang", 8, tasks=24)):
        packed = Packer().pack([j], cluster)
        assert set(packed.placements) == {j.id}
        assert_valid(packed.placements, [j], cluster)
