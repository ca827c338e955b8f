"""SeriesBlock: a Batch built column by column equals one built sample by sample."""

from __future__ import annotations

import numpy as np
import pytest

from dcops.simulation.series import SeriesBlock
from dcops.telemetry.model import Batch, make_labels


def test_block_batch_matches_added_samples() -> None:
    gpus = [{"node": "n1", "gpu": "0"}, {"node": "n1", "gpu": "1"}]
    block = SeriesBlock()
    block.add_metric("dcops_gpu_power_watts", gpus)
    block.add_metric("dcops_gpu_throttle_active", gpus, {"reason": "sw_power_cap"})
    batch = block.batch(5, [np.array([100.0, 200.0]), np.array([True, False])])

    expected = Batch()
    for name, extra, vals in (("dcops_gpu_power_watts", {}, (100.0, 200.0)),
                              ("dcops_gpu_throttle_active", {"reason": "sw_power_cap"},
                               (1.0, 0.0))):
        for gpu, value in zip(gpus, vals, strict=True):
            expected.add(make_labels(name, {**gpu, **extra}), 5, value)
    assert list(batch.samples()) == list(expected.samples())
    # The batch stays usable: adding to a known series reuses its index.
    batch.add(make_labels("dcops_gpu_power_watts", gpus[0]), 6, 1.0)
    assert batch.series_index[-1] == 0


def test_block_rejects_wrong_column_sizes() -> None:
    block = SeriesBlock()
    block.add_metric("dcops_gpu_power_watts", [{"gpu": "0"}])
    with pytest.raises(ValueError, match="column sizes"):
        block.batch(0, [np.array([1.0, 2.0])])
