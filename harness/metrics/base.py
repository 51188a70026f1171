"""A metric = per-item sufficient statistics + a pure aggregate (sacrebleu's shape).

`item_stats` turns each (prediction, target) pair into a row of numbers; `aggregate` maps any multiset of rows to
scores. Bootstrap resamples rows and calls `aggregate` again, so corpus metrics (BLEU) stay correct.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from harness.config import TaskConfig
from harness.metrics.defaults import options_from_task as task_options


@dataclass(frozen=True)
class ScoreInfo:
    name: str
    higher_is_better: bool
    scale: str = "0-100"  # 0-100 | unbounded


class Metric:
    """Base class. Subclasses set `name`, `scores` and implement the three methods."""

    name: str = ""
    scores: tuple[ScoreInfo, ...] = ()
    OPTIONS: tuple[str, ...] = ()  # the constructor's keyword arguments (build_metric rejects any other)
    LANGUAGE_OPTIONS: tuple[str, ...] = ()  # options `options_from_task` derives from the task's language

    @classmethod
    def options_from_task(cls, task: TaskConfig) -> Dict[str, Any]:
        """The options this metric takes from its task (its language, its labels; its entry in
        harness.metrics.defaults, readable without importing this module); the task's `metric_options` override
        them. Raises ValueError when the metric cannot score such a task at all."""
        return task_options(cls.name, task)

    def kept_characters(self, text: str) -> Optional[int]:
        """How many of the text's characters survive this metric's tokenisation (None: it drops none by design);
        the data guard (harness.guard) refuses a task whose references mostly vanish."""
        return None

    def signature(self) -> str:
        raise NotImplementedError

    def item_stats(self, predictions: Sequence[Any], targets: Sequence[Any]) -> np.ndarray:
        """One row of float statistics per item, shape (n_items, n_stats)."""
        raise NotImplementedError

    def aggregate(self, stats: np.ndarray) -> Dict[str, float]:
        """Scores named as in `scores`, from the rows of `item_stats` (any subset or resample of them)."""
        raise NotImplementedError

    def score(self, predictions: Sequence[Any], targets: Sequence[Any]) -> Dict[str, float]:
        return self.aggregate(self.item_stats(predictions, targets))

    def resample(self, stats: np.ndarray, score_name: str, idxs: np.ndarray) -> np.ndarray:
        """The score `score_name` on every resample (a row of item indices in `idxs`) of the rows of `stats`: the
        bootstrap's one entry point. A metric whose reference scorer resamples differently overrides it."""
        stats = np.asarray(stats)
        return np.array([self.aggregate(stats[row])[score_name] for row in idxs], dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared by the metric modules (additions; the contract above is unchanged).


def as_stats(stats: Any, n_stats: int) -> np.ndarray:
    """`stats` as a float64 array of shape (n_rows, n_stats); accepts lists and a (0,)-shaped empty array."""
    arr = np.asarray(stats, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, n_stats)
    if arr.ndim != 2 or arr.shape[1] != n_stats:
        raise ValueError(f"expected stats of shape (n_items, {n_stats}), got {arr.shape}")
    return arr


def sequential_sums(stats: np.ndarray) -> np.ndarray:
    """Column sums added strictly left to right over the rows, as a Python loop would (`sum`, sacrebleu's
    `sum_of_lists`, the SQuAD script). numpy's `sum` adds pairwise, which can differ in the last bit for
    non-integer columns; `cumsum` is sequential and still vectorised."""
    if stats.shape[0] == 0:
        return np.zeros(stats.shape[1], dtype=np.float64)
    return np.cumsum(stats, axis=0)[-1]


def check_lengths(predictions: Sequence[Any], targets: Sequence[Any]) -> None:
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets; they must be aligned")


def reference_lists(targets: Sequence[Any]) -> List[List[str]]:
    """Each item's references as a list of strings: a bare string is one reference (never a sequence of
    characters), None entries are dropped; an item left with none, or a reference that is not a string, is an
    error naming the item."""
    out: List[List[str]] = []
    for i, refs in enumerate(targets):
        if isinstance(refs, str):
            refs = [refs]
        refs = [r for r in (refs or []) if r is not None]
        if not refs:
            raise ValueError(f"item {i} has no reference")
        for r in refs:
            if not isinstance(r, str):
                raise ValueError(f"item {i}: references must be strings, got {type(r).__name__}")
        out.append(refs)
    return out
