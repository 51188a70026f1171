"""A suite's boards with their uncertainty: the public board (`harness run`, `harness leaderboard`) and the
private board (`harness reveal`).

Per-item statistics never leave the organizer's process: they are recomputed here from the stored predictions
and the task's references (the same `score` the runner calls, so the recomputed score must equal the stored one,
and a cell where it does not gets no interval), restricted to the board's part of the test set, resampled
(harness.significance) and dropped. Only aggregates reach the files: each cell's 95% interval, each entry's tier
and p-value against the entry above, and the share of resamples in which each entry took each rank.
"""
from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from harness import leaderboard, significance, store
from harness.errors import ConfigError, HarnessError

Key = Tuple[str, str]  # (submission, task)


# ---------------------------------------------------------------- per-item statistics of the stored cells


def _primary_stats(scored: Any, primary: str) -> Tuple[Any, np.ndarray]:
    for metric, stats in scored.stats.values():
        if any(info.name == primary for info in metric.scores):
            return metric, np.asarray(stats)
    raise ConfigError(f"no metric of the task produces its primary metric {primary!r}")


def _view(task: Any, n: Optional[int], cache: Dict[tuple, Tuple[Any, List[Any]]]) -> Tuple[Any, List[Any]]:
    """(task, examples) as a record with `n` examples was scored: the task's data as configured, or its first n
    examples (a run with `data.limit` keeps the first N), so a board does not depend on this command's limit."""
    from harness.data import load_examples

    if (task.name, None) not in cache:
        cache[(task.name, None)] = (task, load_examples(task))
    if len(cache[(task.name, None)][1]) == n or n is None:
        return cache[(task.name, None)]
    if (task.name, n) not in cache:
        view = copy.deepcopy(task)
        view.data.limit = n
        cache[(task.name, n)] = (view, load_examples(view))
    return cache[(task.name, n)]


def rescore(cfg: Any, tasks: Dict[str, Any], records: Sequence[Dict[str, Any]],
            every_metric: bool = False) -> Dict[Key, Tuple[Any, Any, List[Any]]]:
    """(Scored over every example, the task as scored, its examples) of each ok cell, from its stored predictions.
    `every_metric`: all the task's metrics (reveal rescores every score), else only the one producing the primary
    metric. A cell whose predictions no longer score on the data is left out (no interval, never a failed board);
    resample_cells also leaves out one whose recomputed score differs from the record."""
    from harness.metrics import build_metric
    from harness.scoring import metric_options, score

    out: Dict[Key, Tuple[Any, Any, List[Any]]] = {}
    cache: Dict[tuple, Tuple[Any, List[Any]]] = {}
    for record in records:
        task = tasks.get(record["task"])
        if task is None or record["status"] != "ok":
            continue
        try:
            rows = store.read_predictions(Path(cfg.paths.results), record["submission"], record["task"])
        except FileNotFoundError:
            continue  # no per-example predictions: the cell gets no interval
        task, examples = _view(task, record["counts"].get("examples"), cache)
        if len(examples) != record["counts"].get("examples"):
            continue
        only = None if every_metric else [m for m in task.metrics if any(
            info.name == task.primary_metric for info in build_metric(m, metric_options(task, m)).scores)]
        predictions = {row["id"]: row["prediction"] for row in rows if row["prediction"] is not None}
        try:
            out[(record["submission"], record["task"])] = (score(task, examples, predictions, only), task, examples)
        except (HarnessError, ValueError):
            continue
    return out


def resample_cells(cfg: Any, records: Sequence[Dict[str, Any]], part: str,
                   scored: Dict[Key, Tuple[Any, Any, List[Any]]]) -> Dict[Key, np.ndarray]:
    """Each ok cell's primary metric on every bootstrap resample of the board's part of its task: the same
    draws for every entry of a task (sacrebleu's convention). Cells whose recomputed score differs from the record
    (stale records) are left out."""
    from harness.splits import part_rows

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


# ---------------------------------------------------------------- intervals, tiers, rank distribution


def _resampled_values(frame: pd.DataFrame, tasks: Sequence[str], higher: Dict[str, bool],
                      samples: Dict[Key, np.ndarray]) -> np.ndarray:
    """(resamples, rows, tasks), oriented like `leaderboard.oriented_values`; a cell without samples keeps its
    board value in every resample (NaN where it has no score)."""
    real = leaderboard.oriented_values(frame, tasks, higher)
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
    return leaderboard.policy_aggregate(values, baseline, pool, "mean_normalized", bounds)


def uncertainty(frame: pd.DataFrame, records: Sequence[Dict[str, Any]], tasks: Sequence[str], policy: str,
                baselines: frozenset, missing: str, samples: Dict[Key, np.ndarray]) -> Dict[str, Any]:
    """BoardExtras fields from the resampled cells: ci, tiers, p_above, rank_distribution, bootstrap, notes."""
    out: Dict[str, Any] = {"ci": {key: significance.confidence_interval(s) for key, s in samples.items()}}
    if not samples or frame.empty:
        return out
    out["bootstrap"] = {"resamples": significance.RESAMPLES, "seed": significance.SEED, "alpha": significance.ALPHA}
    higher = leaderboard.directions(records, tasks)
    baseline, pool = leaderboard.masks(frame, tasks, baselines, missing)
    real = leaderboard.oriented_values(frame, tasks, higher)
    resampled = _resampled_values(frame, tasks, higher, samples)
    ranked = [r for r in range(len(frame)) if not pd.isna(frame["rank"].iloc[r])]
    unsampled = sorted(f"{frame['submission'].iloc[r]} on {t}" for r in ranked for t in tasks
                       if frame[f"{t}_status"].iloc[r] == "ok" and (frame["submission"].iloc[r], t) not in samples)
    if unsampled:
        out["notes"] = (f"**Tiers** are not shown: no per-example statistics for {', '.join(unsampled)}.",)
        return out
    bounds = leaderboard.anchors(real, baseline, pool)
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
    aggregates = np.stack([leaderboard.policy_aggregate(v, baseline, pool, policy, bounds) for v in resampled])
    out["rank_distribution"] = significance.rank_distribution(
        names, aggregates[:, ranked], policy not in leaderboard.LOWER_IS_BETTER)
    return out


# ---------------------------------------------------------------- writing the boards


def _write(cfg: Any, tasks: Dict[str, Any], records: List[Dict[str, Any]], folder: Path, part: str,
           scored: Dict[Key, Tuple[Any, Any, List[Any]]], **extras: Any) -> pd.DataFrame:
    names = sorted(tasks)
    policy, missing = ((cfg.contest.ranking.policy, cfg.contest.ranking.missing) if cfg.contest is not None
                       else (cfg.ranking, cfg.missing_cells))
    for key, value, valid in (("ranking", policy, leaderboard.POLICIES), ("missing_cells", missing,
                                                                          leaderboard.MISSING_RULES)):
        if value not in valid:
            raise ConfigError(f"{key}: {value!r} is not valid; use one of {', '.join(valid)}")
    # Without a contest, the built-in baseline entries are the baselines: anchors, marked, never ranked.
    baselines = (frozenset(cfg.contest.baselines) if cfg.contest is not None
                 else frozenset(r["submission"] for r in records if r.get("submission_kind") == "baseline"))
    frame = leaderboard.build(records, names, policy, baselines, missing)
    samples = resample_cells(cfg, records, part, scored)
    found = uncertainty(frame, records, names, policy, baselines, missing, samples)
    notes = tuple(extras.pop("notes", ())) + tuple(found.pop("notes", ()))
    board_extras = leaderboard.BoardExtras(baselines=baselines, missing=missing, notes=notes, **found, **extras)
    leaderboard.write_frame(frame, records, cfg.suite.name, names, policy, folder, board_extras)
    return frame


def _contest_view(cfg: Any, records: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """A contest board's records (baselines and the phase's accepted entries) and its BoardExtras fields."""
    from harness import contest
    from harness.splits import board_part

    phase = contest.phase_for_suite(cfg.contest, cfg.suite.name)
    if phase is None:
        raise ConfigError(f"suite {cfg.suite.name} is scored by no phase of contest {cfg.contest.name} "
                          f"({contest.schedule(cfg.contest)})")
    ledger = contest.read_ledger(cfg)
    names = set(contest.board_entries(cfg, ledger, phase))
    accepted_at = {e["name"]: e["at"] for e in contest.accepted(ledger, phase.name) if e["name"] in names}
    info = {"name": cfg.contest.name, "phase": phase.name, "split": board_part(cfg)}
    return ([r for r in records if r["submission"] in names],
            {"contest": info, "accepted_at": accepted_at, "last_updated": max(accepted_at.values(), default=None)})


def write_public(cfg: Any, tasks: Dict[str, Any]) -> pd.DataFrame:
    """The suite's board at `<paths.leaderboards>/<suite>/`: the public part in a contest, every example
    otherwise."""
    from harness.splits import board_part

    records = store.read_records(Path(cfg.paths.results))
    extras: Dict[str, Any] = {}
    if cfg.contest is not None:
        records, extras = _contest_view(cfg, records)
    records = [r for r in records if r["task"] in tasks]
    scored = rescore(cfg, tasks, records)
    return _write(cfg, tasks, records, Path(cfg.paths.leaderboards) / cfg.suite.name, board_part(cfg), scored,
                  **extras)


def _private_record(record: Dict[str, Any], result: Any, rows: np.ndarray) -> Dict[str, Any]:
    from harness.splits import part_scores

    scores = part_scores(result, rows)
    counts = {k: v for k, v in record["counts"].items() if k != "public_examples"}
    return dict(copy.deepcopy(record), scores=scores, primary=scores[record["primary_metric"]],
                counts=dict(counts, private_examples=int(len(rows))))


def reveal(cfg: Any, tasks: Dict[str, Any], phase: Any, now: datetime) -> Dict[str, Any]:
    """The private board of `phase` at `<paths.leaderboards>/<suite>/private/`: each team's final selection and
    the baselines, scored on the private part. Only after the phase has ended. Returns the selection."""
    from harness import contest
    from harness.splits import part_rows

    if phase.split != "public":
        raise ConfigError(f"phase {phase.name} has split {phase.split!r}: nothing is hidden, nothing to reveal")
    if now < contest.parse_time(phase.end, "end"):
        raise ConfigError(f"phase {phase.name} ends at {phase.end}; the private board is revealed after it ends "
                          f"(now {contest.iso(now)})")
    stored, extras = _contest_view(cfg, store.read_records(Path(cfg.paths.results)))
    stored = [r for r in stored if r["task"] in tasks]
    public = leaderboard.build(stored, sorted(tasks), cfg.contest.ranking.policy, frozenset(cfg.contest.baselines),
                               cfg.contest.ranking.missing)
    public_rank = {n: (None if pd.isna(r) else int(r)) for n, r in zip(public["submission"], public["rank"])}
    selection = contest.final_selection(cfg, contest.read_ledger(cfg), phase, public_rank)
    keep = set(cfg.contest.baselines) | {n for choice in selection.values() for n in choice["names"]}
    stored = [r for r in stored if r["submission"] in keep]
    scored = rescore(cfg, tasks, stored, every_metric=True)
    records = []
    for record in stored:
        key = (record["submission"], record["task"])
        if key in scored:
            result, task, examples = scored[key]
            rows = part_rows(task, examples, cfg.contest.partition, "private")
            record = _private_record(record, result, rows)
        elif record["status"] == "ok":  # never show a public score on the private board
            record = dict(record, status="not-rescored", primary=None, scores={},
                          reason="its stored predictions could not be scored again on the private part")
        records.append(record)
    lines = [f"{team}: {', '.join(choice['names'])} ({choice['rule']})" for team, choice in sorted(selection.items())]
    note = (f"**Final selection** (rule {cfg.contest.selection.rule}, up to {cfg.contest.selection.max} per team): "
            + ("; ".join(lines) if lines else "no team has a counted submission") + ".")
    extras["contest"] = dict(extras["contest"], split="private")
    _write(cfg, tasks, records, Path(cfg.paths.leaderboards) / cfg.suite.name / "private", "private", scored,
           notes=(note,), **extras)
    return selection
