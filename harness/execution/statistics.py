"""A scored cell's per-example statistics, stored beside its predictions so boards never score again.

`harness run` scores each cell once. What the board needs from that scoring is kept in `<task>.stats` (canonical JSON)
(harness.store): every metric's per-example statistics in example order (a private board re-aggregates them on
the private part) and the primary metric on each bootstrap resample of the board's part of the test set
(harness.board.significance's draws, the same for every entry of a task), with the part's own score. The board
reads these numbers instead of loading data and metric libraries. The file lives in the organizer's result store
beside the predictions, never on a published board.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from harness.board import significance
from harness.contest.splits import board_part, part_rows

VERSION = 1


def primary_stats(scored: Any, primary: str):
    """(metric, its per-example statistics) of the metric that produces the score `primary`."""
    for metric, stats in scored.stats.values():
        if any(info.name == primary for info in metric.scores):
            return metric, np.asarray(stats)
    raise KeyError(primary)


def cell_statistics(cfg: Any, task: Any, examples: Any, scored: Any) -> Optional[Dict[str, Any]]:
    """The stats file's content for a cell scored over every example (before its public view); None for a cell
    with no example in the board's part (nothing to resample)."""
    part = board_part(cfg)
    rows = part_rows(task, examples, cfg.contest.partition if cfg.contest is not None else None, part)
    if not len(rows):
        return None
    metric, stats = primary_stats(scored, task.primary_metric)
    stats = stats[rows]
    samples = significance.resample_scores(metric, stats, task.primary_metric, significance.draws(len(rows)))
    return {"version": VERSION, "examples": len(examples), "part": part, "part_examples": int(len(rows)),
            "bootstrap": {"resamples": significance.RESAMPLES, "seed": significance.SEED},
            "primary": {"name": task.primary_metric, "score": float(metric.aggregate(stats)[task.primary_metric]),
                        "resampled": [float(v) for v in samples]},
            "metrics": {name: np.asarray(values).tolist() for name, (_, values) in scored.stats.items()}}
