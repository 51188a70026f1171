"""Uncertainty of a board: bootstrap confidence intervals, the paired bootstrap test, significance tiers.

The convention is sacrebleu's (`sacrebleu/significance.py`), so that its own paired bootstrap reproduces these
numbers exactly on the same systems: 1,000 resamples of the items drawn with numpy's `default_rng(12345)`, the same
draws for every entry; each resample's score recomputed from the resampled per-item statistics (so corpus metrics
such as BLEU are recomputed, not averaged); the 95% interval read off the sorted resampled scores at positions
n // 40 and n - n // 40 - 1; and the p-value of a difference from the centred resampled absolute differences
(except for exactly equal scores, whose p-value is 1: see `paired_p_value`).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

RESAMPLES = 1000
SEED = 12345
ALPHA = 0.05  # entries whose difference has p >= ALPHA are not significantly different


@functools.lru_cache(maxsize=8)
def draws(n_items: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Item indices of every resample, shape (resamples, n_items): sacrebleu's `rng.choice` call, same seed.
    Drawn once per size and process (read-only: every entry of a task shares them)."""
    out = np.random.default_rng(seed).choice(n_items, size=(resamples, n_items), replace=True)
    out.flags.writeable = False
    return out


def resample_scores(metric: Any, stats: np.ndarray, score_name: str, idxs: np.ndarray) -> np.ndarray:
    """The score `score_name` of `metric` on every resample of the rows of `stats` (the metric's own hook)."""
    return metric.resample(stats, score_name, idxs)


def confidence_interval(samples: np.ndarray) -> Tuple[float, float]:
    """The 95% percentile interval of the resampled scores (sacrebleu's `estimate_ci` order statistics; its
    reported half-width is (high - low) / 2)."""
    ordered = np.sort(np.asarray(samples))
    n = len(ordered)
    lower = n // 40
    return float(ordered[lower]), float(ordered[n - lower - 1])


def paired_p_value(real_a: float, real_b: float, samples_a: np.ndarray, samples_b: np.ndarray) -> float:
    """sacrebleu's paired bootstrap p-value: how often the centred resampled |difference| exceeds the real one.

    One deliberate departure: two exactly equal real scores (identical submissions, two failed entries) give
    p = 1, never sacrebleu's 1/1001 (its +1 smoothing would split an exact tie into two tiers)."""
    if real_a == real_b:
        return 1.0
    diff = abs(real_a - real_b)
    sample_diffs = np.abs(np.asarray(samples_b) - np.asarray(samples_a))
    centred = sample_diffs - sample_diffs.mean()
    return (np.sum(centred > diff).item() + 1) / (len(centred) + 1)


def tiers(n_entries: int, p_value: Callable[[int, int], float], alpha: float = ALPHA) -> List[int]:
    """Tier of each entry in board order, 1 first, built top down (WMT-style clusters): an entry joins the tier of
    the entries directly above it unless it is significantly different (p < alpha) from one of them, and then
    starts the next tier. `p_value(i, j)` compares entries i < j. Unlike a chain of neighbour tests, a tier never
    spans two entries that differ significantly."""
    out: List[int] = []
    members: List[int] = []
    for j in range(n_entries):
        if not out:
            out.append(1)
        elif any(p_value(i, j) < alpha for i in members):
            out.append(out[-1] + 1)
            members = []
        else:
            out.append(out[-1])
        members.append(j)
    return out


def rank_distribution(names: Sequence[str], aggregates: np.ndarray, higher_is_better: bool) -> Dict[str, Dict[str, float]]:
    """Share of resamples in which each entry took each rank. `aggregates` has shape (resamples, entries); ties
    share the better rank, as on the board. Each resample's ranks come from one sort (O(K log K) time, O(K)
    memory per resample), never from a K x K comparison."""
    values = np.round(aggregates if higher_is_better else -aggregates, 9)
    values = np.where(np.isnan(values), -np.inf, values)  # an entry without an aggregate never ranks first
    n_entries = values.shape[1] if values.ndim == 2 else 0
    counts = np.zeros((n_entries, n_entries + 1), dtype=np.int64)
    columns = np.arange(n_entries)
    for row in -values:  # ascending order of -value = best first
        ordered = np.sort(row)
        # competition rank: 1 + the number of entries strictly better = 1 + the first position of its value
        counts[columns, 1 + np.searchsorted(ordered, row, side="left")] += 1
    out: Dict[str, Dict[str, float]] = {}
    for column, name in enumerate(names):
        out[name] = {str(rank): float(count) / len(values) for rank, count in enumerate(counts[column]) if count}
    return out
