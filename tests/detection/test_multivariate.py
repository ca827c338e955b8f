from pathlib import Path

import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.model import load_state, save_state
from dcops.detection.multivariate import MultivariateDetector, measure_throughput
from dcops.detection.shrinkage import ledoit_wolf

DIMS = 6


def _normal(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(0.5, 0.05, (rows, 1))
    return np.clip(base + rng.normal(0.0, 0.03, (rows, DIMS)), 0.0, 1.0)


def _fitted(**kw: float) -> MultivariateDetector:
    return MultivariateDetector(**kw).fit(_normal(3_000))  # type: ignore[arg-type]


def test_a_spike_in_one_metric_scores_high_and_is_explained_by_it() -> None:
    det = _fitted()
    test = _normal(400, seed=1)
    test[300:305, 3] += 0.6
    score = det.score(test[:303])
    assert det.explain().top(1)[0][0] == "m4"
    score = np.r_[score, det.score(test[303:])]
    assert score[300:305].min() > det.threshold
    assert score[300:305].min() > np.quantile(score[:300], 0.99)
    assert np.all((score >= 0) & (score <= 1))


def test_names_given_at_construction_are_used() -> None:
    names = [f"gpu{i}_temp_celsius" for i in range(DIMS)]
    det = MultivariateDetector(names).fit(_normal(2_000))
    row = _normal(1, seed=2)
    row[0, 1] += 1.0
    det.score(row)
    assert det.explain().top(1)[0][0] == "gpu1_temp_celsius"


def test_prefix_scores_are_the_prefix_of_the_scores() -> None:
    test = _normal(1_000, seed=3)
    test[500:520, 2] += 0.4
    whole = _fitted().score(test)
    det = _fitted()
    parts = [det.score(test[a:b]) for a, b in [(0, 1), (1, 37), (37, 600), (600, 1_000)]]
    assert np.array_equal(np.concatenate(parts), whole)
    assert np.array_equal(_fitted().score(test[:600]), whole[:600])


def test_restore_mid_stream_continues_identically(tmp_path: Path) -> None:
    test = _normal(800, seed=4)
    test[600:610, 0] -= 0.4
    det = _fitted()
    det.score(test[:400])
    save_state(det.state(), tmp_path / "det.npz")
    again = MultivariateDetector.restore(load_state(tmp_path / "det.npz"))
    assert np.array_equal(again.score(test[400:]), det.score(test[400:]))
    assert again.explain() == det.explain()
    assert again.threshold == det.threshold


def test_a_state_saved_before_the_baseline_term_is_refused_clearly() -> None:
    state = _fitted().state()
    for key in ("base", "base_ring", "baseline_weight", "sustain_rows", "local_weight",
                "local_mean", "local_calib", "settle_flatness", "settled", "flat", "last"):
        old = {k: v for k, v in state.items() if k != key}
        with pytest.raises(Invalid, match=f"state lacks '{key}'"):
            MultivariateDetector.restore(old)


def test_nan_rows_score_zero_and_leave_the_state_alone() -> None:
    test = _normal(300, seed=5)
    gappy = test.copy()
    gappy[100:110] = np.nan
    det, ref = _fitted(), _fitted()
    got = det.score(gappy)
    assert np.all(got[100:110] == 0.0)
    want = np.r_[ref.score(test[:100]), ref.score(test[110:])]
    assert np.array_equal(np.r_[got[:100], got[110:]], want)


def test_a_metric_that_vanishes_or_appears_raises_no_flood() -> None:
    train = _normal(3_000)
    train[:, 4] = np.nan
    det = MultivariateDetector().fit(train)
    test = _normal(2_000, seed=6)
    test[:1_000, 2] = np.nan
    test[:, 4] = 5.0
    score = det.score(test)
    assert np.all(np.isfinite(score))
    assert np.mean(score > det.threshold) < 0.05
    assert all(name != "m5" for name, _ in det.explain().contributions)


def test_constant_metric_in_train_does_not_alarm_on_a_tiny_change() -> None:
    train = _normal(3_000)
    train[:, 1] = 0.25
    det = MultivariateDetector().fit(train)
    test = _normal(1_000, seed=7)
    test[:, 1] = 0.25 + 0.001
    score = det.score(test)
    assert np.all(np.isfinite(score))
    assert np.mean(score > det.threshold) < 0.05


def test_values_far_outside_the_train_range_stay_finite_and_pass() -> None:
    det = _fitted()
    test = _normal(3_000, seed=8)
    test[1_000, :] = 1e12
    score = det.score(test)
    assert np.all(np.isfinite(score)) and score[1_000] > 0.99
    assert np.mean(score[1_100:] > det.threshold) < 0.05


def test_a_lasting_level_shift_stops_alarming_eventually() -> None:
    det = _fitted()
    test = _normal(40_000, seed=9)
    test[:, 0] += 0.25
    score = det.score(test)
    assert score[:100].min() > det.threshold
    assert np.mean(score[-5_000:] > det.threshold) < 0.05


def test_bad_input_is_invalid() -> None:
    with pytest.raises(Invalid, match="not been fitted"):
        MultivariateDetector().score(np.zeros((2, 3)))
    with pytest.raises(Invalid, match="rows"):
        MultivariateDetector().fit(np.zeros((3, 3)))
    with pytest.raises(Invalid, match="names"):
        MultivariateDetector(["a"]).fit(np.zeros((100, 3)))
    with pytest.raises(Invalid, match="metrics"):
        _fitted().score(np.zeros((2, DIMS + 1)))
    with pytest.raises(Invalid, match="smooth_rows"):
        MultivariateDetector(smooth_rows=0)
    with pytest.raises(Invalid, match="spike_weight"):
        MultivariateDetector(spike_weight=-1.0)
    with pytest.raises(Invalid, match="baseline_rank"):
        MultivariateDetector(baseline_rank=0)
    with pytest.raises(Invalid, match="sustain_rows"):
        MultivariateDetector(sustain_rows=-1)
    local = "local_weight, local_halflife_rows or local_floor"
    with pytest.raises(Invalid, match=local):
        MultivariateDetector(local_weight=-0.1)
    with pytest.raises(Invalid, match=local):
        MultivariateDetector(local_halflife_rows=0.0)
    with pytest.raises(Invalid, match=local):
        MultivariateDetector(local_floor=0.0)
    settle = "settle_flatness or settle_halflife_rows"
    with pytest.raises(Invalid, match=settle):
        MultivariateDetector(settle_flatness=-0.1)
    with pytest.raises(Invalid, match=settle):
        MultivariateDetector(settle_halflife_rows=0.0)
    with pytest.raises(Invalid, match="kind"):
        MultivariateDetector.restore({"kind": "ewma"})


def test_fit_reports_progress() -> None:
    seen: list[tuple[str, int, int]] = []
    MultivariateDetector().fit(_normal(500), progress=lambda *a: seen.append(a))
    assert seen[-1] == ("fit", 3, 3)


def test_ledoit_wolf_is_a_symmetric_positive_definite_covariance() -> None:
    x = _normal(200)
    cov = ledoit_wolf(x - x.mean(axis=0))
    assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0


def test_measure_throughput_counts_rows() -> None:
    assert measure_throughput(rows=2_000, dims=4) > 0


def test_a_metric_that_turns_noisier_for_good_stops_alarming() -> None:
    det = _fitted()
    test = _normal(40_000, seed=10)
    test[:, 5] += np.random.default_rng(11).normal(0.0, 0.15, len(test))
    alarms = det.score(test) > det.threshold
    first, last = np.mean(alarms[:500]), np.mean(alarms[-5_000:])
    assert first > 0.5 and last < 0.2 and last < first / 4  # the joint term still notices some


def test_the_plain_python_loop_matches_the_compiled_one() -> None:
    from dcops.detection import multivariate_kernel as kernel
    from dcops.detection.jit import COMPILED

    if not COMPILED:
        pytest.skip("numba is not installed: only the plain loop exists")
    test = _normal(300, seed=12)
    test[100:103, 2] = np.nan
    test[200:210, 1] += 0.5
    a, b = _fitted(), _fitted()
    want = a.score(test)
    got = np.zeros(len(test))
    kernel.step_rows.py_func(test, b._present, b._mean, b._recent, b._spread, b._scale,
                             b._weight, b._precision, b._params(), b._ring, b._cursor, got,
                             b._contrib, b._base, b._base_ring, b._local_mean, b._local_var,
                             b._local_calib, b._settled, b._flat, b._last)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)
    z_compiled, z_plain = np.zeros(test.shape), np.zeros(test.shape)
    for fn, z in ((kernel.local_rows, z_compiled), (kernel.local_rows.py_func, z_plain)):
        fn(test, b._present, b._base_mean.copy(), b._scale ** 2, b.local_floor, 0.01, z)
    assert np.allclose(z_plain, z_compiled, rtol=1e-12, atol=1e-12)


def test_a_metric_with_rare_big_train_spikes_is_damped() -> None:
    train = _normal(3_000, seed=13)
    train[::50, 4] += 0.5
    det = MultivariateDetector().fit(train)
    assert det._weight[4] < 0.9
    assert np.all(det._weight[[0, 1, 2, 3, 5]] > 0.9)
    assert np.all(det._weight <= 1.0)
    test = _normal(400, seed=14)
    test[200:205, 4] += 0.5
    calm = MultivariateDetector(damping_quantile=0.0).fit(train).score(test)
    assert det.score(test)[200:205].max() < calm[200:205].max()


def test_the_drift_gate_keeps_a_long_anomaly_scoring() -> None:
    test = _normal(1_500, seed=15)
    test[500:1_000, :3] += 0.2
    gated = _fitted().score(test)
    plain = _fitted(drift_gate=0.0).score(test)
    assert gated[950:1_000].mean() > plain[950:1_000].mean()


def test_the_tail_cut_ends_an_alarm_sooner() -> None:
    test = _normal(600, seed=16)
    test[300:320, 2] += 0.6
    det = _fitted(smooth_clip=0.0)  # unclipped: the cut alone ends the alarm
    cut = det.score(test)
    plain = _fitted(smooth_clip=0.0, tail_rows=0).score(test)
    assert cut[300:320].min() > det.threshold  # the anomaly itself still alarms throughout
    assert np.all(cut[326:335] < plain[326:335])


def test_the_clip_ends_an_alarm_with_its_anomaly() -> None:
    test = _normal(600, seed=17)
    test[300:320, 2] += 0.6
    det = _fitted(tail_rows=0)  # no tail cut: the clip alone ends the alarm
    clipped = det.score(test)
    plain = _fitted(smooth_clip=0.0, tail_rows=0).score(test)
    assert clipped[300:320].min() > det.threshold
    assert np.all(clipped[323:335] < plain[323:335])


def test_a_single_wild_row_alarms_at_once_and_not_for_long() -> None:
    test = _normal(600, seed=18)
    test[300, 1] += 0.9
    det = _fitted()
    score = det.score(test)
    assert score[300] > det.threshold
    assert score[300] == score.max()
    plain = _fitted(smooth_clip=0.0).score(test)  # the row lingers in the smoothed mean
    assert np.all(score[301:306] < plain[301:306])
    assert np.mean(score[301:320] > det.threshold) < np.mean(plain[301:320] > det.threshold)
    quiet = _fitted(spike_weight=0.0).score(test)
    assert score[300] > quiet[300]


def test_a_shift_of_several_metrics_from_training_keeps_scoring() -> None:
    shift = np.array([0.45, 0.45, 0.45, 0.0, 0.0, 0.0])
    test = _normal(6_000, seed=19)
    test[1_000:3_500] += shift
    det = _fitted()
    held = det.score(test)
    adaptive = _fitted(baseline_weight=0.0).score(test)
    assert np.mean(held[2_500:3_500] > det.threshold) > 0.95
    assert np.mean(adaptive[2_500:3_500] > det.threshold) < 0.9
    assert np.mean(held[3_600:] > det.threshold) < 0.05
    det.score(test[:1_000] + shift)
    assert {name for name, _ in det.explain().top(3)} <= {"m1", "m2", "m3"}


def test_a_jump_of_a_metric_that_went_flat_scores_although_training_saw_such_jumps() -> None:
    rng = np.random.default_rng(30)
    train = _normal(3_000)
    train[:, 5] = np.clip(rng.normal(0.1, 0.05, 3_000), 0.0, 1.0)
    train[::60, 5] += 0.4  # training saw jumps like the one below, from a noisier level
    test = _normal(3_000, seed=31)
    test[:, 5] = 0.003 + rng.normal(0.0, 0.001, 3_000)  # now the metric sits still
    test[2_500, 5] = 0.45
    det = MultivariateDetector().fit(train)
    score = det.score(test[:2_501])
    assert det.explain().top(1) == (("m6", 1.0),)
    score = np.r_[score, det.score(test[2_501:])]
    assert score[2_500] > det.threshold
    assert score[2_500] == score[500:].max()
    assert np.mean(score[500:] > det.threshold) < 0.01
    without = MultivariateDetector(local_weight=0.0).fit(train)
    assert without.score(test)[2_500] < without.threshold


def test_a_metric_that_comes_to_rest_at_a_new_value_stops_alarming_within_rows() -> None:
    test = _normal(3_000, seed=40)
    test[1_000:, 0] = 0.0  # a restart: the metric drops and sits still there
    det = _fitted()
    score = det.score(test)
    assert score[1_000] > det.threshold
    assert np.mean(score[1_100:] > det.threshold) < 0.02
    unsettled = _fitted(settle_flatness=0.0)
    assert np.mean(unsettled.score(test)[1_100:] > unsettled.threshold) > 0.5


def test_a_noisy_shift_is_not_taken_as_settled() -> None:
    test = _normal(2_000, seed=41)
    test[1_000:1_200, 0] -= 0.45  # the metric still moves as it did: not at rest
    det = _fitted()
    score = det.score(test)
    unsettled = _fitted(settle_flatness=0.0).score(test)
    assert np.array_equal(score, unsettled)
