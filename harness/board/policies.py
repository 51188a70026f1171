"""Ranking policies and missing-cell rules: each policy is one aggregate function plus one registry entry.

Everything that needs a policy (the frame's ranking, the markdown arrow, the json and the page's sort, the usage
text, the contest check, the tiers' statistic) reads its `Policy` here: its description (printed under every
board) and its direction are written once.

Every aggregate takes `values` (rows x tasks, oriented so that higher is better, NaN where a cell has no score),
the `baseline` and `pool` row masks and optional normalisation `bounds` (the bootstrap holds them fixed), and
returns one number per row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from harness.errors import ConfigError

Aggregate = Callable[[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Policy:
    name: str
    description: str  # printed under every board that uses it
    higher_is_better: bool  # the direction of the aggregate: ranks, arrows and the page's sort follow it
    aggregate: Aggregate


def anchors(values: np.ndarray, baseline: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Per task (low, high) of the normalisation, shape (2, tasks): high is the best entry's score, low the best
    baseline's where one is scored and below high, else the worst scored score. `values` are oriented so that
    higher is better, NaN where a cell has no score."""
    out = np.full((2, values.shape[1]), np.nan)
    entries = pool & ~baseline
    for t in range(values.shape[1]):
        column = values[:, t]
        scored_entries = column[entries & ~np.isnan(column)]
        scored_pool = column[pool & ~np.isnan(column)]
        scored_baselines = column[baseline & ~np.isnan(column)]
        if not len(scored_pool):
            continue
        high = scored_entries.max() if len(scored_entries) else scored_pool.max()
        base = scored_baselines.max() if len(scored_baselines) else np.nan
        out[:, t] = (base if base < high else scored_pool.min()), high
    return out


def _normalised(values: np.ndarray, pool: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    low, high = bounds
    span = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(span > 0, (values - low) / np.where(span > 0, span, 1.0) * 100.0, 100.0)
    norm = np.where(np.isnan(values), np.nan, norm)
    for t in range(values.shape[1]):  # missing cells: the worst normalised score of the task, at most 0
        scored = norm[pool, t][~np.isnan(norm[pool, t])]
        worst = min(0.0, scored.min()) if len(scored) else 0.0
        norm[:, t] = np.where(np.isnan(norm[:, t]), worst, norm[:, t])
    return norm


def _head_to_head(values: np.ndarray, pool: np.ndarray) -> tuple:
    """(wins, ties) of every row on every task against the other pool rows; a missing cell loses to every scored
    cell and wins nothing. Counted by binary search in each task's sorted pool scores: O(K log K) a task, never a
    K x K comparison (a board ranks every bootstrap resample with it)."""
    mine = np.round(values, 9)
    mine_scored = ~np.isnan(mine)
    rounded = np.round(values[pool], 9)
    wins, ties = np.zeros(values.shape), np.zeros(values.shape)
    for t in range(values.shape[1]):
        scored_pool = np.sort(rounded[~np.isnan(rounded[:, t]), t])
        missing = rounded.shape[0] - len(scored_pool)  # pool rows without a score: every scored cell beats them
        probe = np.where(mine_scored[:, t], mine[:, t], 0.0)
        below = np.searchsorted(scored_pool, probe, side="left")
        equal = np.searchsorted(scored_pool, probe, side="right") - below
        wins[:, t] = np.where(mine_scored[:, t], below + missing, 0)
        ties[:, t] = np.where(mine_scored[:, t], equal, 0)
    return wins, ties - mine_scored * pool[:, None]  # a row does not tie with itself


def _mean_normalized(values: np.ndarray, baseline: np.ndarray, pool: np.ndarray,
                     bounds: Optional[np.ndarray]) -> np.ndarray:
    bounds = anchors(values, baseline, pool) if bounds is None else bounds
    return _normalised(values, pool, bounds).mean(axis=1)


def _mean_rank(values: np.ndarray, baseline: np.ndarray, pool: np.ndarray, bounds: Optional[np.ndarray]) -> np.ndarray:
    wins, ties = _head_to_head(values, pool)
    # 1 + the pool rows strictly better; a missing cell ranks last
    better = int(pool.sum()) - wins - ties - (~np.isnan(values)) * pool[:, None]
    return np.where(np.isnan(values), float(pool.sum()), 1.0 + better).mean(axis=1)


def _borda(values: np.ndarray, baseline: np.ndarray, pool: np.ndarray, bounds: Optional[np.ndarray]) -> np.ndarray:
    wins, _ = _head_to_head(values, pool)
    return wins.sum(axis=1)


def _win_rate(values: np.ndarray, baseline: np.ndarray, pool: np.ndarray, bounds: Optional[np.ndarray]) -> np.ndarray:
    wins, ties = _head_to_head(values, pool)
    return ((wins + 0.5 * ties) / max(int(pool.sum()) - 1, 1) * 100.0).mean(axis=1)


POLICIES: Dict[str, Policy] = {policy.name: policy for policy in (
    Policy("mean_normalized",
           "Mean of normalised scores: each task's primary metric is mapped linearly so that the best baseline scores "
           "0 and the best entry 100 (where no baseline is scored, or none is below the best entry, the worst scored "
           "entry is 0), respecting the metric's direction; an entry below the baseline goes negative; the aggregate "
           "is the mean over the suite's tasks; higher is better.", True, _mean_normalized),
    Policy("mean_rank",
           "Mean rank: entries are ranked on each task's primary metric (ties share the better rank); the aggregate "
           "is the mean rank over the suite's tasks; lower is better.", False, _mean_rank),
    Policy("borda",
           "Borda count: on each task an entry gets one point for every entry it beats outright (ties give no "
           "point); the aggregate is the sum over the suite's tasks; higher is better.", True, _borda),
    Policy("win_rate",
           "Mean win rate (HELM): on each task an entry's share of head-to-head comparisons won against the other "
           "entries, a tie counting half; the aggregate is the mean over the suite's tasks, in percent; higher is "
           "better.", True, _win_rate),
)}
# The statistic the paired bootstrap compares on a multi-task board, whatever the ranking policy.
TIER_POLICY = "mean_normalized"

MISSING_RULES = {
    "worst": ("A failed, missing, n/a or not-submitted cell counts as the worst on its task: it ties the lowest "
              "normalised score (at most 0), ranks last, wins no comparison and loses to every scored cell."),
    "unranked": ("An entry with any failed, missing, n/a or not-submitted cell is not ranked: it is listed below the "
                 "ranked entries, marked unranked, and takes no part in the other entries' aggregates."),
}


def policy(name: str, key: str = "ranking") -> Policy:
    """The registered policy `name`; a ConfigError naming `key`, the value and the valid names otherwise."""
    if name not in POLICIES:
        raise ConfigError(f"{key}: {name!r} is not valid; use one of {', '.join(POLICIES)}")
    return POLICIES[name]


def policy_aggregate(values: np.ndarray, baseline: np.ndarray, pool: np.ndarray, name: str,
                     bounds: Optional[np.ndarray] = None) -> np.ndarray:
    """The aggregate of every row under policy `name` (NaN outside the pool)."""
    if values.shape[1] == 0:
        return np.where(pool, 0.0, np.nan)
    return np.where(pool, policy(name).aggregate(values, baseline, pool, bounds), np.nan)
