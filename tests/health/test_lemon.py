"""Lemon-node scoring: a repeat offender among identical peers, and fleet priors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.health.lemon import FLEET_INTERRUPTIONS, LemonScorer, fleet_rates

SHARED = Path(__file__).resolve().parents[2].parent / "shared/data/failures"
DAY = 86_400.0


def fleet(scorer: LemonScorer, model: str, peers: int, faults_each: int, days: float,
          prefix: str) -> None:
    for i in range(peers):
        node = f"{prefix}{i:03d}"
        scorer.observe(node, model, 0.0, counted_fault=False)
        scorer.exposure(node, days)
        for _ in range(faults_each):
            scorer.observe(node, model, 0.0)


def with_node(scorer: LemonScorer, node: str, model: str, faults: int, days: float) -> None:
    scorer.observe(node, model, 0.0, counted_fault=False)
    scorer.exposure(node, days)
    for _ in range(faults):
        scorer.observe(node, model, 0.0)


def test_fleet_rates_from_the_llama3_table() -> None:
    rates = fleet_rates(FLEET_INTERRUPTIONS)
    assert rates.node_rate_per_day == pytest.approx(419 / (2048 * 54))
    assert rates.gpu_rate_per_day == pytest.approx(268 / (16384 * 54))


def test_fleet_rates_reject_a_bad_count(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("component,category,count\nGPU,GPU,many\n")
    with pytest.raises(Invalid) as caught:
        fleet_rates(bad)
    assert caught.value.where == f"{bad}:2"


def test_four_faults_in_thirty_days_among_quiet_peers_is_a_suspect() -> None:
    scorer = LemonScorer(fleet_rate_per_day=419 / (2048 * 54))
    fleet(scorer, "H100", 100, 0, 30, "p")
    with_node(scorer, "lemon", "H100", 4, 30)
    score = scorer.score("lemon")
    assert (score.faults, score.exposure_days, score.suspect) == (4, 30, True)
    assert score.p_lemon > 0.999
    assert score.posterior_rate_per_day > 30 * score.peer_rate_per_day
    assert [s.node for s in scorer.suspects()] == ["lemon"]


def test_one_fault_is_not_a_suspect() -> None:
    scorer = LemonScorer(fleet_rate_per_day=419 / (2048 * 54))
    fleet(scorer, "H100", 100, 0, 30, "p")
    with_node(scorer, "unlucky", "H100", 1, 30)
    assert scorer.score("unlucky").suspect is False
    assert scorer.suspects() == []


def test_a_model_that_fails_more_by_nature_does_not_flag_its_members() -> None:
    scorer = LemonScorer(fleet_rate_per_day=419 / (2048 * 54))
    fleet(scorer, "H100", 100, 0, 30, "h")
    fleet(scorer, "B200", 100, 3, 30, "b")
    with_node(scorer, "b-node", "B200", 4, 30)
    score = scorer.score("b-node")
    assert score.peer_rate_per_day == pytest.approx(0.1, rel=0.05)
    assert (score.suspect, score.p_lemon < 0.05) == (False, True)
    assert scorer.suspects() == []


def test_exposure_runs_from_first_sighting() -> None:
    scorer = LemonScorer(fleet_rate_per_day=0.004)
    scorer.observe("a", "H100", 0.0, counted_fault=False)
    scorer.observe("b", "H100", 10 * DAY, counted_fault=False)
    assert scorer.score("a").exposure_days == pytest.approx(10.0)
    assert scorer.score("b").exposure_days == 0.0


def test_unknown_node_and_bad_settings_are_invalid() -> None:
    scorer = LemonScorer(fleet_rate_per_day=0.004)
    with pytest.raises(Invalid):
        scorer.score("nope")
    with pytest.raises(Invalid):
        scorer.exposure("nope", 3)
    with pytest.raises(Invalid):
        LemonScorer(fleet_rate_per_day=0.0)
    with pytest.raises(Invalid):
        LemonScorer(fleet_rate_per_day=0.004, threshold=1.5)


@pytest.mark.skipif(not SHARED.exists(), reason="shared data not beside the repository")
def test_the_packaged_table_is_the_published_one() -> None:
    shipped = FLEET_INTERRUPTIONS.read_text("utf-8")
    assert shipped == (SHARED / "llama3_interruptions.csv").read_text("utf-8")
