"""The fleet-relative detector: a GPU drifting hot against identical peers scores high, one
wild sample does not, small groups and missing values score nothing, and the state
carries over a save and restore exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.fleet import FleetDetector
from dcops.detection.model import load_state, save_state

KEYS = [f"node-{i // 8}/gpu-{i % 8}" for i in range(32)]


def fleet(steps: int, seed: int = 0) -> np.ndarray:
    """(steps, 32, 2): temperature near 70 C and power near 600 W, GPU noise only."""
    rng = np.random.default_rng(seed)
    temp = 70.0 + rng.normal(0.0, 0.8, (steps, 32))
    power = 600.0 + rng.normal(0.0, 15.0, (steps, 32))
    return np.stack([temp, power], axis=2)


def test_a_gpu_drifting_hot_against_its_peers_scores_high_and_is_explained() -> None:
    values = fleet(80)
    values[40:, 5, 0] += np.linspace(0.0, 12.0, 40)
    detector = FleetDetector(["temperature", "power"])
    scores = detector.score(values, KEYS)
    assert scores.shape == (80, 32)
    assert scores[:40].max() < 0.5  # a quiet fleet stays quiet
    assert scores[-1, 5] > 0.9
    assert np.delete(scores[-1], 5).max() < 0.5
    top = detector.explain_key(KEYS[5]).top(1)
    assert top[0][0] == "temperature" and top[0][1] > 0.9
    assert detector.explain().top(1)[0][0] == "temperature"
    deviation = detector.deviations(KEYS[5])[0]
    assert deviation.metric == "temperature" and deviation.sigma > 6
    assert deviation.peers == 32 and 69 < deviation.peer_median < 71


def test_one_wild_sample_does_not_alarm() -> None:
    values = fleet(20)
    values[10, 7, 0] = 500.0
    scores = FleetDetector(["temperature", "power"]).score(values, KEYS)
    assert scores[:, 7].max() < 0.5
    assert scores[-1, 7] < 0.1


def test_direction_high_ignores_gpus_below_their_peers() -> None:
    values = fleet(30)
    values[:, 3, 0] -= 30.0  # an idle GPU runs cold: not a problem
    values[:, 4, 0] += 30.0
    scores = FleetDetector(["temperature", "power"], direction="high").score(values, KEYS)
    assert scores[-1, 3] == 0.0 and scores[-1, 4] > 0.9


def test_groups_are_compared_within_themselves_and_small_groups_get_no_score() -> None:
    values = fleet(30)[:, :10, :1]
    values[:, 8:, 0] += 25.0  # another model runs hotter: not an anomaly of its own
    groups = ["h100"] * 8 + ["a100"] * 2
    scores = FleetDetector(["temperature"]).score(values, KEYS[:10], groups)
    assert scores.max() < 0.5
    assert (scores[:, 8:] == 0.0).all()  # two GPUs cannot tell which of them is odd


def test_missing_values_score_zero_and_leave_the_state_alone() -> None:
    values = fleet(40)
    values[:, 2, 0] += 20.0
    values[20:30, 2, :] = np.nan
    values[25, :, :] = np.inf  # the whole fleet missing at one step
    detector = FleetDetector(["temperature", "power"])
    scores = detector.score(values, KEYS)
    assert (scores[20:30, 2] == 0.0).all() and (scores[25] == 0.0).all()
    assert scores[19, 2] > 0.9 and scores[30, 2] > 0.9  # carried on where it was


def test_identical_constant_peers_do_not_make_tiny_differences_infinite() -> None:
    values = np.full((20, 16, 1), 65.0)
    values[:, 0, 0] = 65.1
    scores = FleetDetector(["temperature"]).score(values, KEYS[:16])
    assert scores.max() < 0.1


def test_gpus_appear_and_vanish_and_state_follows_the_key_not_the_position() -> None:
    detector = FleetDetector(["temperature"])
    values = fleet(30)[:, :, :1]
    values[:, 5, 0] += 20.0
    detector.score(values[:20], KEYS)
    order = list(reversed(range(32)))  # the same GPUs in another order, and one new
    more = np.concatenate([values[20:, order], np.full((10, 1, 1), 70.0)], axis=1)
    scores = detector.score(more, [KEYS[i] for i in order] + ["node-9/gpu-0"])
    assert scores[0, order.index(5)] > 0.9
    assert scores[-1, 32] < 0.2
    detector.forget([KEYS[5], "never-seen"])
    assert KEYS[5] not in detector.keys and len(detector.keys) == 32
    assert detector.deviations(KEYS[5]) == [] and detector.last_score(KEYS[5]) == 0.0


def test_scoring_in_one_call_or_many_gives_the_same_scores() -> None:
    values = fleet(30)
    values[10:, 9, 1] += 200.0
    whole = FleetDetector(["temperature", "power"]).score(values, KEYS)
    detector = FleetDetector(["temperature", "power"])
    parts = [detector.score(values[t], KEYS) for t in range(30)]
    np.testing.assert_allclose(np.stack(parts), whole)


def test_state_survives_a_save_and_restore(tmp_path: Path) -> None:
    values = fleet(40)
    values[:, 1, 0] += 15.0
    original = FleetDetector(["temperature", "power"], direction="high", alpha=0.2)
    original.score(values[:30], KEYS)
    save_state(original.state(), tmp_path / "fleet.npz")
    restored = FleetDetector.restore(load_state(tmp_path / "fleet.npz"))
    np.testing.assert_allclose(restored.score(values[30:], KEYS),
                               original.score(values[30:], KEYS))
    assert restored.direction == "high" and restored.alpha == 0.2


def test_bad_arguments_and_state_are_clear_errors() -> None:
    with pytest.raises(Invalid, match="min_group"):
        FleetDetector(["t"], min_group=2)
    with pytest.raises(Invalid, match="direction"):
        FleetDetector(["t"], direction="up")  # type: ignore[arg-type]
    with pytest.raises(Invalid, match=r"\(N, 2\)"):
        FleetDetector(["t", "p"]).score(np.zeros((4, 3)))
    with pytest.raises(Invalid, match="distinct keys"):
        FleetDetector(["t"]).score(np.zeros((2, 1)), ["a", "a"])
    with pytest.raises(Invalid, match="does not fit"):
        FleetDetector.restore({"metrics": "[]"})
