from pathlib import Path

import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.model import Explanation, load_state, save_state


def test_explanation_orders_and_normalises() -> None:
    e = Explanation.from_weights(["a", "b", "c"], np.array([1.0, 3.0, 0.0]))
    assert e.contributions == (("b", 0.75), ("a", 0.25))
    assert e.top(1) == (("b", 0.75),)


def test_explanation_of_nothing_is_empty() -> None:
    assert Explanation.from_weights(["a"], np.array([np.nan])).contributions == ()


def test_state_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "det.npz"
    save_state({"mean": np.array([1.0, 2.0]), "n": 7, "name": "ewma"}, path)
    got = load_state(path)
    assert np.array_equal(got["mean"], [1.0, 2.0])
    assert got["n"] == 7 and got["name"] == "ewma"


def test_damaged_state_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "det.npz"
    path.write_bytes(b"not a state")
    with pytest.raises(Invalid, match="unreadable") as info:
        load_state(path)
    assert info.value.where == str(path)
