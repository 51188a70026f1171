"""A board's uncertainty: each cell's 95% interval, each entry's tier and p-value against the entry above, and the
share of resamples in which each entry took each rank.

Each cell was scored once, by `harness run`, which kept its per-example statistics and its primary metric on every
bootstrap resample of the board's part beside its predictions (harness.execution.statistics; the store checks them
like the predictions). A board reads those resampled scores: it loads no data and no metric library. Only a cell
stored without them (a store written before they were kept) is scored again here from its predictions and the
task's references (the same `score` the evaluator calls, so the recomputed score must equal the stored one, and a
cell where it does not gets no interval). Per-item statistics never reach the board's files: only aggregates.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from harness import store
from harness.board import significance
from harness.board.frame import directions, masks, oriented_values
from harness.board.policies import POLICIES, TIER_POLICY, anchors, policy_aggregate
from harness.config import RunConfig, TaskConfig
from harness.contest.splits import part_rows
from harness.errors import ConfigError, HarnessError
from harness.metrics import build_metric
from harness.scoring import Scored, metric_options, score, time_budget
from tasks.examples import load_examples

Key = Tuple[str, str]  # (submission, task)


def _primary_stats(scored: Scored, primary: str) -> Tuple[Any, np.ndarray]:
    for metric, stats in scored.stats.values():
        if any(info.name == primary for info in metric.scores):
            return metric, np.asarray(stats)
    raise ConfigError(f"no metric of the task produces its primary metric {primary!r}")


def _view(task: TaskConfig, n: Optional[int], cache: Dict[tuple, Tuple[Any, List[Any]]]) -> Tuple[Any, List[Any]]:
    """(task, examples) as a record with `n` examples was scored: the task's data as configured, or its first n
    examples (a run with `data.limit` keeps the first N), so a board does not depend on this command's limit."""
    if (task.name, None) not in cache:
        cache[(task.name, None)] = (task, load_examples(task))
    if len(cache[(task.name, None)][1]) == n or n is None:
        return cache[(task.name, None)]
    if (task.name, n) not in cache:
        view = copy.deepcopy(task)
        view.data.limit = n
        cache[(task.name, n)] = (view, load_examples(view))
    return cache[(task.name, n)]


def _fits(stats: Dict[str, Any], record: Dict[str, Any], part: str) -> bool:
    """Stored resamples are this board's: its part, the bootstrap's settings, the record's primary score."""
    primary = stats.get("primary", {})
    return (stats.get("version") == 1 and stats.get("part") == part
            and stats.get("bootstrap") == {"resamples": significance.RESAMPLES, "seed": significance.SEED}
            and primary.get("name") == record["primary_metric"] and primary.get("score") == record["primary"]
            and len(primary.get("resampled", ())) == significance.RESAMPLES)


def stored_samples(cfg: RunConfig, records: Sequence[Dict[str, Any]],
                   part: str) -> Tuple[Dict[Key, np.ndarray], List[Dict[str, Any]]]:
    """(each ok cell's stored resampled primary scores, the ok records stored without fitting ones)."""
    results = Path(cfg.paths.results)
    samples: Dict[Key, np.ndarray] = {}
    lacking: List[Dict[str, Any]] = []
    for record in records:
        if record["status"] != "ok":
            continue
        stats = store.read_stats(results, record)
        if stats is None or not _fits(stats, record, part):
            lacking.append(record)
            continue
        samples[(record["submission"], record["task"])] = np.asarray(stats["primary"]["resampled"], dtype=np.float64)
    return samples, lacking


def board_samples(cfg: RunConfig, tasks: Dict[str, TaskConfig], records: Sequence[Dict[str, Any]],
                  part: str) -> Dict[Key, np.ndarray]:
    """Every ok cell's resampled primary scores: stored ones, and for a cell stored without them, scored again."""
    samples, lacking = stored_samples(cfg, records, part)
    if lacking:
        samples.update(resample_cells(cfg, lacking, part, rescore(cfg, tasks, lacking)))
    return samples


def _from_stored(task: TaskConfig, record: Dict[str, Any], stats: Dict[str, Any]) -> Optional[Any]:
    """A Scored holding the stored per-example statistics of every metric of the task (None if one is absent)."""
    if stats.get("version") != 1 or not stats.get("examples") or any(
            name not in stats.get("metrics", {}) for name in task.metrics):
        return None
    result = Scored(dict(record["scores"]), dict(record["higher_is_better"]), dict(record["signatures"]),
                    dict(record["counts"]))
    for name in task.metrics:
        metric = build_metric(name, metric_options(task, name))
        values = np.asarray(stats["metrics"][name], dtype=np.float64).reshape(len(stats["metrics"][name]), -1)
        result.stats[name] = (metric, values)
    return result


def rescore(cfg: RunConfig, tasks: Dict[str, TaskConfig], records: Sequence[Dict[str, Any]],
            every_metric: bool = False) -> Dict[Key, Tuple[Any, Any, List[Any]]]:
    """(Scored over every example, the task as scored, its examples) of each ok cell, from its stored predictions.
    `every_metric`: all the task's metrics (reveal rescores every score), else only the one producing the primary
    metric. A cell with stored statistics is not scored again: they are read back. A cell whose predictions no
    longer score on the data is left out (no interval, never a failed board); resample_cells also leaves out one
    whose recomputed score differs from the record."""
    out: Dict[Key, Tuple[Any, Any, List[Any]]] = {}
    cache: Dict[tuple, Tuple[Any, List[Any]]] = {}
    for record in records:
        task = tasks.get(record["task"])
        if task is None or record["status"] != "ok":
            continue
        stats = store.read_stats(Path(cfg.paths.results), record)
        if stats is not None and stats.get("examples") == record["counts"].get("examples"):
            view, examples = _view(task, record["counts"].get("examples"), cache)
            result = _from_stored(view, record, stats)
            if result is not None and len(examples) == stats["examples"]:
                out[(record["submission"], record["task"])] = (result, view, examples)
                continue
        try:
            rows = store.read_predictions(Path(cfg.paths.results), record["submission"], record["task"])
        except (FileNotFoundError, ValueError):
            continue  # no (or damaged) per-example predictions: the cell gets no interval
        task, examples = _view(task, record["counts"].get("examples"), cache)
        if len(examples) != record["counts"].get("examples"):
            continue
        only = None if every_metric else [m for m in task.metrics if any(
            info.name == task.primary_metric for info in build_metric(m, metric_options(task, m)).scores)]
        predictions = {row["id"]: row["prediction"] for row in rows if row["prediction"] is not None}
        try:  # within the scoring budget (harness.scoring.time_budget), as when the cell was scored
            with time_budget(cfg.scoring_budget_s):
                out[(record["submission"], record["task"])] = (score(task, examples, predictions, only), task,
                                                               examples)
        except (HarnessError, ValueError):
            continue
    return out


def resample_cells(cfg: RunConfig, records: Sequence[Dict[str, Any]], part: str,
                   scored: Dict[Key, Tuple[Any, Any, List[Any]]]) -> Dict[Key, np.ndarray]:
    """Each ok cell's primary metric on every bootstrap resample of the board's part of its task: the same
    draws for every entry of a task (sacrebleu's convention). Cells whose recomputed score differs from the record
    (stale records) are left out."""
    partition = cfg.contest.partition if cfg.contest is not None else None
    out: Dict[Key, np.ndarray] = {}
    rows_of: Dict[tuple, np.ndarray] = {}
    draws_of: Dict[int, np.ndarray] = {}
    for record in records:
        key = (record["submission"], record["task"])
        if key not in scored:
            continue
        result, task, examples = scored[key]
        view = (task.name, len(examples))
        if view not in rows_of:
            rows_of[view] = part_rows(task, examples, partition, part)
        rows = rows_of[view]
        if len(rows) not in draws_of:
            draws_of[len(rows)] = significance.draws(len(rows))
        metric, stats = _primary_stats(result, task.primary_metric)
        stats = stats[rows]
        if metric.aggregate(stats)[task.primary_metric] != record["primary"]:
            continue
        out[key] = significance.resample_scores(metric, stats, task.primary_metric, draws_of[len(rows)])
    return out


def _resampled_values(frame: pd.DataFrame, tasks: Sequence[str], higher: Dict[str, bool],
                      samples: Dict[Key, np.ndarray]) -> np.ndarray:
    """(resamples, rows, tasks), oriented like `leaderboard.oriented_values`; a cell without samples keeps its
    board value in every resample (NaN where it has no score)."""
    real = oriented_values(frame, tasks, higher)
    out = np.repeat(real[None, :, :], significance.RESAMPLES, axis=0)
    for r, name in enumerate(frame["submission"]):
        for t, task in enumerate(tasks):
            if (name, task) in samples:
                out[:, r, t] = samples[(name, task)] * (1.0 if higher[task] else -1.0)
    return out


def _tier_statistic(values: np.ndarray, baseline: np.ndarray, pool: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """What the paired test compares: the primary metric itself on a one-task board (so sacrebleu's test is
    reproduced exactly), otherwise the mean normalised score with the board's anchors held fixed."""
    if values.shape[1] == 1:
        return values[:, 0]
    return policy_aggregate(values, baseline, pool, TIER_POLICY, bounds)


def uncertainty(frame: pd.DataFrame, records: Sequence[Dict[str, Any]], tasks: Sequence[str], policy: str,
                baselines: frozenset, missing: str, samples: Dict[Key, np.ndarray],
                declared: Optional[Dict[str, Tuple[str, bool]]] = None) -> Dict[str, Any]:
    """BoardExtras fields from the resampled cells: ci, tiers, p_above, rank_distribution, bootstrap, notes."""
    out: Dict[str, Any] = {"ci": {key: significance.confidence_interval(s) for key, s in samples.items()}}
    if not samples or frame.empty:
        return out
    out["bootstrap"] = {"resamples": significance.RESAMPLES, "seed": significance.SEED, "alpha": significance.ALPHA}
    higher = directions(records, tasks, declared)
    baseline, pool = masks(frame, tasks, baselines, missing)
    real = oriented_values(frame, tasks, higher)
    resampled = _resampled_values(frame, tasks, higher, samples)
    ranked = [r for r in range(len(frame)) if not pd.isna(frame["rank"].iloc[r])]
    unsampled = sorted(f"{frame['submission'].iloc[r]} on {t}" for r in ranked for t in tasks
                       if frame[f"{t}_status"].iloc[r] == "ok" and (frame["submission"].iloc[r], t) not in samples)
    if unsampled:
        out["notes"] = (f"**Tiers** are not shown: no per-example statistics for {', '.join(unsampled)}.",)
        return out
    bounds = anchors(real, baseline, pool)
    statistic = np.stack([_tier_statistic(v, baseline, pool, bounds) for v in resampled])
    real_statistic = _tier_statistic(real, baseline, pool, bounds)
    names = [frame["submission"].iloc[r] for r in ranked]

    def p_value(i: int, j: int) -> float:
        above, below = ranked[i], ranked[j]
        if np.isnan(real_statistic[above]) or np.isnan(real_statistic[below]):
            # a missing cell against a scored one (one-task board) is no sampling question: always different
            return 1.0 if np.isnan(real_statistic[above]) and np.isnan(real_statistic[below]) else 0.0
        return significance.paired_p_value(real_statistic[above], real_statistic[below], statistic[:, above],
                                           statistic[:, below])

    out["p_above"] = {names[j]: p_value(j - 1, j) for j in range(1, len(names))}
    out["tiers"] = dict(zip(names, significance.tiers(len(names), p_value)))
    aggregates = np.stack([policy_aggregate(v, baseline, pool, policy, bounds) for v in resampled])
    out["rank_distribution"] = significance.rank_distribution(
        names, aggregates[:, ranked], POLICIES[policy].higher_is_better)
    return out
