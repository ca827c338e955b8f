"""Series ranks in label order stay right however series arrive."""

from __future__ import annotations

import random

import numpy as np

from dcops.backends.label_order import LabelOrder
from dcops.telemetry.model import Labels, make_labels


def _check(order: LabelOrder, labels: dict[int, Labels], next_id: int) -> None:
    ranks = order.ranks(labels, next_id)
    by_rank = sorted(labels, key=lambda sid: ranks[sid])
    assert by_rank == sorted(labels, key=labels.__getitem__)
    assert not np.isnan(ranks[list(labels)]).any()


def test_ranks_follow_label_order_through_small_and_large_additions() -> None:
    rng = random.Random(5)
    labels: dict[int, Labels] = {}
    order = LabelOrder()
    next_id = 0
    for batch in [500, 3, 1, 7, 2, 900, 5, 1, 1, 40]:  # large ones rebuild, small ones insert
        for _ in range(batch):
            labels[next_id] = make_labels("m", {"node": f"n{rng.randrange(10**6)}"})
            next_id += 1
        _check(order, labels, next_id)


def test_a_used_up_gap_rebuilds_the_ranks() -> None:
    labels: dict[int, Labels] = {0: make_labels("m", {"k": "a"}), 1: make_labels("m", {"k": "c"})}
    order = LabelOrder()
    _check(order, labels, 2)
    value = "b"
    for sid in range(2, 80):  # each new one sorts just before the last: halving the gap
        value = value + "a"
        labels[sid] = make_labels("m", {"k": value[::-1]})
        _check(order, labels, sid + 1)
