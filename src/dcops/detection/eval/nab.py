"""The Numenta Anomaly Benchmark, scored exactly as NAB v1.1 scores it.

`evaluate` runs a detector causally over every series of a NAB-layout folder (one fresh detector
per series) and scores it; `score_scores` scores anomaly scores computed elsewhere. Each profile
gets one global threshold, the one that maximises the corpus raw score over every distinct
score value, and the raw score is normalised as 100 * (S - S_null) / (S_perfect - S_null),
where the null detector never fires and the perfect one fires at the left edge of every window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.eval.nab_corpus import CostMatrix, FloatArray, NabCorpus, load_corpus
from dcops.detection.eval.nab_sweep import RowWorth, row_worth, sweep
from dcops.detection.model import Detector, Progress


@dataclass(frozen=True)
class FileScore:
    """One series at the profile's threshold: its raw score and NAB's row counts."""

    file: str
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int


@dataclass(frozen=True)
class ProfileScore:
    """A detector under one cost profile: the normalised score (0 null, 100 perfect)."""

    profile: str
    score: float
    threshold: float
    raw: float
    null: float
    perfect: float
    files: tuple[FileScore, ...]


@dataclass(frozen=True)
class NabReport:
    """A detector's NAB result: one `ProfileScore` per profile, the standard one the headline."""

    detector: str
    profiles: tuple[ProfileScore, ...]

    def score(self, profile: str = "standard") -> float:
        return self.profile(profile).score

    def profile(self, name: str) -> ProfileScore:
        for p in self.profiles:
            if p.profile == name:
                return p
        raise Invalid(f"no profile {name!r}", hint=f"one of {[p.profile for p in self.profiles]}")

    def scores(self) -> dict[str, float]:
        return {p.profile: p.score for p in self.profiles}

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "profiles": {p.profile: {
                "score": p.score, "threshold": p.threshold, "raw": p.raw, "null": p.null,
                "perfect": p.perfect,
                "files": [vars(f) for f in p.files]} for p in self.profiles},
        }


def score_scores(data_dir: Path | NabCorpus, scores_by_file: Mapping[str, FloatArray], *,
                 detector: str = "scores") -> NabReport:
    """Scores precomputed anomaly scores, one array per series name (`category/file.csv`)."""
    corpus = data_dir if isinstance(data_dir, NabCorpus) else load_corpus(Path(data_dir))
    missing = [n for n in corpus.names() if n not in scores_by_file]
    extra = sorted(set(scores_by_file) - set(corpus.names()))
    if missing or extra:
        raise Invalid(f"scores do not cover the corpus: missing {missing[:3]}, extra {extra[:3]}",
                      where=str(corpus.root), hint="give one score per row of every series")
    scores, worths = [], []
    for s in corpus.series:
        a = np.asarray(scores_by_file[s.name], dtype=np.float64)
        if a.shape != s.values.shape:
            raise Invalid(f"{len(a)} scores for {len(s.values)} rows", where=s.name)
        if not np.all(np.isfinite(a)):
            raise Invalid(f"non-finite score at row {int(np.argmin(np.isfinite(a)))}",
                          where=s.name, hint="a missing sample scores 0")
        scores.append(a)
        worths.append(row_worth(s))
    profiles = tuple(_score_profile(corpus, scores, worths, cost) for cost in corpus.profiles)
    return NabReport(detector, profiles)


def evaluate(data_dir: Path, detector_factory: Callable[[], Detector] | None = None, *,
             progress: Progress | None = None) -> NabReport:
    """Runs a detector over every series causally, a fresh one per series, and scores it.

    Without a factory it runs dcops's univariate detector (`LikelihoodDetector`)."""
    corpus = load_corpus(Path(data_dir))
    total = len(corpus.series)
    if detector_factory is None:
        from dcops.detection.likelihood import LikelihoodDetector

        detector_factory = LikelihoodDetector
    results: dict[str, FloatArray] = {}
    name = "detector"
    for i, s in enumerate(corpus.series):
        det = detector_factory()
        name = det.name
        results[s.name] = np.asarray(det.score(s.values), dtype=np.float64)
        if progress is not None:
            progress("nab", i + 1, total)
    return score_scores(corpus, results, detector=name)


def _score_profile(corpus: NabCorpus, scores: list[FloatArray], worths: list[RowWorth],
                   cost: CostMatrix) -> ProfileScore:
    offsets = np.cumsum([0] + [len(s.windows) for s in corpus.series])
    flat = np.concatenate([a[w.rows] for a, w in zip(scores, worths, strict=True)])
    window = np.concatenate([np.where(w.window >= 0, w.window + off, -1)
                             for w, off in zip(worths, offsets, strict=False)])
    weight = np.concatenate([w.weighted(cost) for w in worths])
    sw = sweep(flat, window, weight, cost.fn_weight)
    threshold, raw = sw.best()
    null = -cost.fn_weight * sw.windows
    perfect = cost.tp_weight * sw.windows
    files = tuple(_file_score(s.name, a, w, cost, threshold)
                  for s, a, w in zip(corpus.series, scores, worths, strict=True))
    norm = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
    return ProfileScore(cost.name, norm, threshold, raw, null, perfect, files)


def _file_score(name: str, scores: FloatArray, worth: RowWorth, cost: CostMatrix,
                threshold: float) -> FileScore:
    hit = scores[worth.rows] >= threshold
    weight = worth.weighted(cost)
    inside = worth.window >= 0
    total = float(np.sum(weight[hit & ~inside]))
    for k in np.unique(worth.window[inside]):
        mine = worth.window == k
        total += float(np.max(weight[mine & hit])) if np.any(mine & hit) else -cost.fn_weight
    tp = int(np.sum(hit & inside))
    fp = int(np.sum(hit & ~inside))
    fn = int(np.sum(~hit & inside))
    tn = int(np.sum(~hit & ~inside))
    return FileScore(name, total, tp, tn, fp, fn, len(scores))
