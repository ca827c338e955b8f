"""Series ids come out in label order however and whenever series were added."""

from __future__ import annotations

import random

import numpy as np

from dcops.backends.label_order import LabelOrder
from dcops.telemetry.model import Labels, make_labels


def test_ids_sort_by_labels_through_small_and_large_additions() -> None:
    rng = random.Random(5)
    labels: dict[int, Labels] = {}
    order = LabelOrder()
    next_id = 0
    names = rng.sample(range(10**6), 12_000)  # each series' labels are its own, as in a store
    for batch in [3000, 3, 1, 70, 2, 5000, 5, 1, 1, 40, 2000]:
        for _ in range(batch):
            labels[next_id] = make_labels("m", {"node": f"n{names[next_id]}"})
            next_id += 1
        for size in (0, 1, 50, 5000, next_id):
            ids = np.array(rng.sample(range(next_id), min(size, next_id)), dtype=np.int64)
            got = order.sort(ids, labels, next_id).tolist()
            assert got == sorted(ids.tolist(), key=labels.__getitem__)
