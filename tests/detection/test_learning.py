"""The multivariate detector as the service runs it: learning from its first rows, then
scoring, the same however the stream is cut, and carrying on after a restart."""

from __future__ import annotations

import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.learning import LearningMultivariate
from dcops.detection.model import FloatArray
from dcops.detection.registry import lookup


def _rows(n: int, seed: int = 0) -> FloatArray:
    rng = np.random.default_rng(seed)
    base = np.sin(np.arange(n) / 50.0)[:, None] * np.array([1.0, 0.5, 2.0])
    out: FloatArray = base + rng.normal(0, 0.05, (n, 3))
    return out


def test_it_learns_first_then_scores_a_spike_in_the_metric_that_moved() -> None:
    det = LearningMultivariate(["cpu", "mem", "net"], learn_rows=400)
    rows = _rows(660)
    rows[650:, 2] += 5.0  # the network metric jumps for ten minutes
    scores = det.score(rows)
    assert not det.learning
    assert np.all(scores[:400] == 0.0)
    assert scores[655:].min() > 0.7 > 0.5 > scores[400:640].max()
    assert det.explain().top(1)[0][0] == "net"


def test_scores_do_not_depend_on_how_the_stream_is_cut() -> None:
    rows = _rows(600)
    rows[100:103] = np.nan  # empty rows do not count as learned
    whole = LearningMultivariate(learn_rows=300).score(rows)
    cut = LearningMultivariate(learn_rows=300)
    parts = [cut.score(rows[a:b]) for a, b in ((0, 7), (7, 299), (299, 305), (305, 600))]
    assert np.array_equal(whole, np.concatenate(parts))
    assert np.all(whole[:303] == 0.0) and whole[303:].any()


@pytest.mark.parametrize("cut", [150, 450])
def test_a_restart_carries_on_learning_or_scoring(cut: int) -> None:
    rows = _rows(600)
    straight = LearningMultivariate(learn_rows=300).score(rows)
    first = LearningMultivariate(learn_rows=300)
    head = first.score(rows[:cut])
    again = LearningMultivariate.restore(first.state())
    assert again.learning is (cut < 300)
    assert np.array_equal(np.concatenate([head, again.score(rows[cut:])]), straight)


def test_bad_settings_and_damaged_state_are_clear_errors() -> None:
    with pytest.raises(Invalid, match="learn_rows"):
        LearningMultivariate(learn_rows=1)
    with pytest.raises(Invalid, match="damaged"):
        LearningMultivariate.restore({"kind": LearningMultivariate.name, "names": "null"})


def test_the_service_knows_it_as_multivariate() -> None:
    kind = lookup("multivariate")
    det = kind.make({"learn_rows": 10}, ["a", "b"])
    assert kind.shape == "rows" and isinstance(det, LearningMultivariate)
    with pytest.raises(Invalid, match="multivariate"):
        kind.make({"no_such_knob": 1}, ["a"])
