"""The per-row loop of the multivariate detector, compiled with numba when it is installed.

One loop does everything a row needs, in time order: the distance of each metric from its
baseline, the Mahalanobis distance of the whole row, the trailing mean that smooths the score,
and the drift of the baseline towards the recent level. The drift makes each row depend on
the ones before it, so the loop cannot be vectorised over time; compiled it runs at about
300,000 rows of 38 metrics a second on one core (most of it the row's two Mahalanobis
distances). Without numba the same code runs as plain Python, so the detector still works
where numba is missing, but at about 800 rows a second.

Every value a row leaves behind is in the arrays passed in (`mean`, `ring`, `cursor`), so
scoring a series in one call or in many gives bit-identical scores.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dcops.detection.jit import jit

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

LOCAL_BOUND = 10.0
"""Each step of a metric's local level and variance is bounded by this many of its local
deviations, so one wild value cannot blow the local spread up for hundreds of rows."""


@jit
def _local_step(x: float, j: int, local_mean: FloatArray, local_var: FloatArray,
                local_floor: float, alpha: float) -> float:  # pragma: no cover - compiled
    """Metric j's distance from its local level in local deviations (at least
    `local_floor`), then one step of that level and variance towards `x`."""
    sd = max(float(np.sqrt(local_var[j])), local_floor)
    dev = x - float(local_mean[j])
    z: float = abs(dev) / sd
    bound = LOCAL_BOUND * sd
    step = min(max(dev, -bound), bound)
    local_mean[j] += alpha * step
    local_var[j] = (1.0 - alpha) * (local_var[j] + alpha * step * step)
    return z


@jit
def local_rows(values: FloatArray, present: FloatArray, local_mean: FloatArray,
               local_var: FloatArray, local_floor: float, alpha: float,
               z: FloatArray) -> None:  # pragma: no cover - compiled
    """Each metric's local distance for every row of `values` into `z` (T, D), 0 where the
    value is missing, moving the local levels as the scoring loop does (for calibration)."""
    for t in range(values.shape[0]):
        for j in range(values.shape[1]):
            x = values[t, j]
            if present[j] > 0.0 and np.isfinite(x):
                z[t, j] = _local_step(x, j, local_mean, local_var, local_floor, alpha)
            else:
                z[t, j] = 0.0


@jit
def _insert(top_v: FloatArray, top_j: IntArray, filled: int, v: float,
            j: int) -> int:  # pragma: no cover - compiled
    """Puts (v, j) into the descending list of the largest values (`filled` of them so far,
    room for len(top_v)) when it belongs there; returns the new count."""
    k = top_v.shape[0]
    if filled == k and v <= top_v[k - 1]:
        return filled
    i = filled if filled < k else k - 1
    while i > 0 and top_v[i - 1] < v:
        top_v[i] = top_v[i - 1]
        top_j[i] = top_j[i - 1]
        i -= 1
    top_v[i] = v
    top_j[i] = j
    return filled + 1 if filled < k else filled


@jit
def step_rows(values: FloatArray, present: FloatArray, mean: FloatArray, recent: FloatArray,
              spread: FloatArray, scale: FloatArray, weight: FloatArray, precision: FloatArray,
              params: FloatArray, ring: FloatArray, cursor: IntArray, out: FloatArray,
              contrib: FloatArray, base: FloatArray, base_ring: FloatArray,
              local_mean: FloatArray, local_var: FloatArray,
              local_calib: FloatArray, settled: FloatArray, flat: FloatArray,
              last: FloatArray) -> None:  # pragma: no cover - compiled
    """Scores `values` (T, D) into `out` (T,) and leaves the last scored row's per-metric
    contributions in `contrib`.

    params: [calib_z, calib_m, weight_m, alpha_drift, calib_c, weight_c, alpha_recent,
    short_rows, short_weight, alpha_spread, top_k, drift_gate, tail_rows, tail_factor,
    change_top_k, smooth_clip, spike_weight, baseline_weight, baseline_rank, calib_b,
    alpha_base, sustain_rows, weight_l, calib_l, alpha_local, local_floor, settle_flatness,
    alpha_settle]; the level part is the mean of the `top_k` largest per-metric distances
    (`top_k` 1: the largest alone), the change part that of the `change_top_k` largest
    changes; `spread` is each metric's current scale, which grows towards the recent typical
    distance (never below the train `scale`), so a metric that became noisier for good stops
    alarming (its deviation enters the Mahalanobis distance shrunk by scale / spread as well);
    `weight` (at most 1) damps each metric's level distance, so a metric with a heavy train
    tail counts for less; `recent` is each metric's fast moving average, the level a sudden
    change is measured from;
    ring: the last raw scores (its length is the smoothing window); cursor: [next slot, filled].
    The smoothed score is the larger of the mean over the whole ring and `short_weight` times
    the mean over its last `short_rows` entries, so a short burst is not averaged away.
    A row with no usable value scores 0 and changes nothing. The drift of the level slows
    where the smoothed raw score is high: its rate is divided by 1 + (smooth / drift_gate)^4
    (drift_gate 0: never), so a level inside an anomaly is not learnt as the new normal
    at full speed; the spread still adapts. The drift step is bounded by the
    train-tail distance of each metric, and so is each step of the fast average, so one wild value
    cannot drag a baseline away.

    The score is the largest of five terms: that smoothed score, in whose means each raw
    score counts for at most `smooth_clip` (0: no clip), so one wild row adds little to them
    and its alarm ends with it; the least raw score of the last `sustain_rows` rows (0: off),
    so an anomaly that lasts scores in full and stops scoring a few rows after it ends;
    `spike_weight` times the row's own raw score, so a single wild row still scores at once;
    and `baseline_weight` times the mean over the ring's window of the `baseline_rank`-th
    largest damped distance of a metric from `base` (the smallest one where fewer metrics
    have a value), the training level, which follows the rows only slowly (rate
    `alpha_base`, steps bounded as the others), divided by its train tail `calib_b`. That
    last term ignores the adaptive spread and level, so an anomaly of two or more metrics
    that lasts for hours keeps scoring after the adaptive parts have learnt it; `base_ring`
    holds its recent values, on the same cursor as `ring`.

    A fifth term, `weight_l` times the largest local distance divided by its train tail
    `calib_l`, scores a value that is far out for its metric's recent past even where it
    is ordinary against training: each metric's distance from its own fast level
    (`local_mean`, rate `alpha_local`) in its own recent deviations (`local_var`, at least
    `local_floor`, one floor for all metrics), divided by that metric's train tail
    (`local_calib`). A metric that has been flat for hours and jumps scores there although
    training saw such jumps from a noisier level. The drift gate reads the smoothed score only.

    Settling: `flat` is each metric's mean change from one row to the next (`last` holds its
    previous value), in train scales, at rate `alpha_settle`. Where it is below
    `settle_flatness` (0: never) the metric has come to rest, and `settled`, the level the
    level part measures from, catches up with it at that rate (the gated drift otherwise,
    as `mean`). The Mahalanobis distance is the smaller of the row's distance from `mean`
    and from `settled`. So metrics that come to rest at new values after a restart stop
    scoring within a few rows, while a row whose metrics disagree still scores from either
    level."""
    calib_z = params[0]
    calib_m = params[1]
    weight_m = params[2]
    alpha_drift = params[3]
    calib_c = params[4]
    weight_c = params[5]
    alpha_recent = params[6]
    short_rows = int(params[7])
    short_weight = params[8]
    alpha_spread = params[9]
    n_rows, dims = values.shape
    top_k = max(1, min(int(params[10]), dims))
    drift_gate = params[11]
    tail_rows = min(int(params[12]), ring.shape[0])
    tail_factor = params[13]
    change_top_k = max(1, min(int(params[14]), dims))
    smooth_clip = params[15] if params[15] > 0.0 else np.inf
    spike_weight = params[16]
    weight_b = params[17]
    rank_b = max(1, min(int(params[18]), dims))
    calib_b = params[19]
    alpha_base = params[20]
    sustain_rows = min(int(params[21]), ring.shape[0])
    weight_l = params[22]
    calib_l = params[23]
    alpha_local = params[24]
    local_floor = params[25]
    settle_flatness = params[26]
    alpha_settle = params[27]
    top_b = np.zeros(rank_b)
    top_bj = np.zeros(rank_b, dtype=np.int64)
    top_c = np.zeros(change_top_k)
    top_cj = np.zeros(change_top_k, dtype=np.int64)
    top_z = np.zeros(top_k)
    top_j = np.zeros(top_k, dtype=np.int64)
    window = ring.shape[0]
    d = np.zeros(dims)
    u = np.zeros(dims)
    pd = np.zeros(dims)
    v = np.zeros(dims)
    pv = np.zeros(dims)
    ok = np.zeros(dims, dtype=np.bool_)
    for t in range(n_rows):
        seen = 0
        filled = 0
        cfilled = 0
        bfilled = 0
        local = 0.0
        local_j = -1
        for j in range(dims):
            x = values[t, j]
            if present[j] > 0.0 and np.isfinite(x):
                ok[j] = True
                d[j] = x - mean[j]
                u[j] = d[j] * scale[j] / spread[j]
                e = x - settled[j]
                v[j] = e * scale[j] / spread[j]
                z = weight[j] * abs(e) / spread[j]
                flat[j] += alpha_settle * (abs(x - last[j]) / scale[j] - flat[j])
                last[j] = x
                filled = _insert(top_z, top_j, filled, z, j)
                cfilled = _insert(top_c, top_cj, cfilled, abs(x - recent[j]) / spread[j], j)
                bfilled = _insert(top_b, top_bj, bfilled, weight[j] * abs(x - base[j]) / scale[j],
                                  j)
                bound = calib_z * scale[j]
                recent[j] += alpha_recent * min(max(x - recent[j], -bound), bound)
                if weight_l > 0.0:
                    lz = _local_step(x, j, local_mean, local_var, local_floor,
                                     alpha_local) / local_calib[j]
                    if lz > local:
                        local = lz
                        local_j = j
                seen += 1
            else:
                ok[j] = False
                d[j] = 0.0
                u[j] = 0.0
                v[j] = 0.0
        if seen == 0:
            out[t] = 0.0
            continue
        m = 0.0
        mv = 0.0
        for j in range(dims):
            acc = 0.0
            acc_v = 0.0
            if ok[j]:
                for k in range(dims):
                    acc += precision[j, k] * u[k]
                    acc_v += precision[j, k] * v[k]
            pd[j] = acc * u[j]
            pv[j] = acc_v * v[j]
            m += pd[j]
            mv += pv[j]
        if mv < m:
            # the row is nearer the settled levels: its shares are taken from that distance
            m = mv
            for j in range(dims):
                pd[j] = pv[j]
        positive = 0.0
        for j in range(dims):
            if pd[j] > 0.0:
                positive += pd[j]
        dist = np.sqrt(m) if m > 0.0 else 0.0
        zsum = 0.0
        for i in range(filled):
            zsum += top_z[i]
        csum = 0.0
        for i in range(cfilled):
            csum += top_c[i]
        part_z = zsum / filled / calib_z
        part_m = weight_m * dist / calib_m
        part_c = weight_c * csum / cfilled / calib_c
        raw = (part_z + part_m + part_c) / (1.0 + weight_m + weight_c)
        if not np.isfinite(raw):
            raw = 1e12
        for j in range(dims):
            share = pd[j] / positive if positive > 0.0 and pd[j] > 0.0 else 0.0
            contrib[j] = part_m * share
        for i in range(filled):
            contrib[top_j[i]] += part_z * (top_z[i] / zsum if zsum > 0.0 else 1.0 / filled)
        for i in range(cfilled):
            contrib[top_cj[i]] += part_c * (top_c[i] / csum if csum > 0.0 else 1.0 / cfilled)
        part_b = weight_b * top_b[bfilled - 1] / calib_b
        if not np.isfinite(part_b):
            part_b = 1e12
        ring[cursor[0]] = raw
        base_ring[cursor[0]] = part_b
        cursor[0] = (cursor[0] + 1) % window
        if cursor[1] < window:
            cursor[1] += 1
        total = 0.0
        base_total = 0.0
        for i in range(cursor[1]):
            total += min(ring[i], smooth_clip)
            base_total += base_ring[i]
        smooth = total / cursor[1]
        held = base_total / cursor[1]
        recent_rows = min(short_rows, cursor[1])
        short_total = 0.0
        for i in range(recent_rows):
            short_total += min(ring[(cursor[0] - 1 - i) % window], smooth_clip)
        smooth = max(smooth, short_weight * short_total / recent_rows)
        if tail_rows > 0:
            # the alarm ends soon after the raw score falls: at most tail_factor times the
            # mean of the last tail_rows raw scores
            kept = min(tail_rows, cursor[1])
            tail_total = 0.0
            for i in range(kept):
                tail_total += min(ring[(cursor[0] - 1 - i) % window], smooth_clip)
            smooth = min(smooth, tail_factor * tail_total / kept)
        sustained = 0.0
        if 0 < sustain_rows <= cursor[1]:
            sustained = raw
            for i in range(1, sustain_rows):
                sustained = min(sustained, ring[(cursor[0] - 1 - i) % window])
        adaptive = max(smooth, sustained, spike_weight * raw)
        part_l = weight_l * local / calib_l if weight_l > 0.0 else 0.0
        if not np.isfinite(part_l):
            part_l = 1e12
        final = max(adaptive, held, part_l)
        if held > adaptive and held >= part_l:
            # the baseline term decides: its metrics are the ones to look at
            for j in range(dims):
                contrib[j] = 0.0
            for i in range(bfilled):
                contrib[top_bj[i]] += held / bfilled
        elif part_l > adaptive and local_j >= 0:
            # the local term decides: the one metric that jumped
            for j in range(dims):
                contrib[j] = 0.0
            contrib[local_j] = part_l
        out[t] = final / (final + 1.0)
        alpha = alpha_drift
        if drift_gate > 0.0:
            alpha = alpha_drift / (1.0 + (smooth / drift_gate) ** 4)
        for j in range(dims):
            if ok[j]:
                bound = calib_z * spread[j]
                step = min(max(d[j], -bound), bound)
                mean[j] += alpha * step
                rate = alpha
                if flat[j] < settle_flatness:
                    rate = max(alpha, alpha_settle)
                settled[j] += rate * min(max(values[t, j] - settled[j], -bound), bound)
                var = spread[j] * spread[j]
                var += alpha_spread * (step * step - var)
                spread[j] = max(np.sqrt(var), scale[j])
                bound = calib_z * scale[j]
                base[j] += alpha_base * min(max(values[t, j] - base[j], -bound), bound)
