"""The ranked frame: a pure function of the stored records.

Rows are submissions, columns each task's primary metric (with its status and reason), then the aggregate and the
rank. Sorted by rank, then by name; no clock, no randomness. Baselines anchor the normalisation and are listed but
never ranked; intervals and tiers come in `BoardExtras` (harness.board.uncertainty computes them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from harness.board.policies import MISSING_RULES, POLICIES, policy_aggregate


def _cells(records: Sequence[Dict[str, Any]], tasks: Sequence[str]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """submission -> task -> record, for the suite's tasks."""
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for record in records:
        if record["task"] in tasks:
            out.setdefault(record["submission"], {})[record["task"]] = record
    return out


def _task_direction(records: Sequence[Dict[str, Any]], task: str, primary: str) -> bool:
    for record in records:
        if record["task"] == task and primary in record.get("higher_is_better", {}):
            return bool(record["higher_is_better"][primary])
    return True


def _competition_rank(values: pd.Series, ascending: bool) -> pd.Series:
    """Ties share the better rank (1, 2, 2, 4). Values are rounded so float noise does not break a tie."""
    return values.round(9).rank(method="min", ascending=ascending).astype(int)


def build(records: Sequence[Dict[str, Any]], tasks: Sequence[str], policy: str,
          baselines: Iterable[str] = (), missing: str = "worst",
          declared: Optional[Mapping[str, Tuple[str, bool]]] = None) -> pd.DataFrame:
    """The ranked frame. `baselines` (submission names) anchor the normalisation and are never ranked; `missing`
    is the declared rule for failed, missing and n/a cells (MISSING_RULES); `declared` maps each task to its
    (primary metric, higher is better) from the task config (boards built from a suite always pass it)."""
    if policy not in POLICIES:
        raise ValueError(f"ranking {policy!r} is not valid; use one of {', '.join(POLICIES)}")
    if missing not in MISSING_RULES:
        raise ValueError(f"missing-cell rule {missing!r} is not valid; use one of {', '.join(MISSING_RULES)}")
    cells = _cells(records, tasks)
    rows = []
    for submission in sorted(cells):
        by_task = cells[submission]
        first = next(iter(by_task.values()))
        row: Dict[str, Any] = {"submission": submission, "team": first.get("team") or "",
                               "kind": first.get("submission_kind") or ""}
        for task in tasks:
            record = by_task.get(task)
            status = record["status"] if record else "missing"
            row[task] = record["primary"] if record and status == "ok" else math.nan
            row[f"{task}_status"] = status
            row[f"{task}_reason"] = (record or {}).get("reason", "") if status != "ok" else ""
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["submission", "team", "kind"]
                         + [c for t in tasks for c in (t, f"{t}_status", f"{t}_reason")])
    if frame.empty:
        return frame.assign(aggregate=pd.Series(dtype=float), rank=pd.Series(dtype=int))
    values = oriented_values(frame, tasks, directions(records, tasks, declared))
    baseline, pool = masks(frame, tasks, baselines, missing)
    frame["aggregate"] = policy_aggregate(values, baseline, pool, policy)
    ranked = pool & ~baseline
    ascending = not POLICIES[policy].higher_is_better
    rank = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    if ranked.any():
        rank[ranked] = _competition_rank(frame.loc[ranked, "aggregate"], ascending=ascending)
    frame["rank"] = rank.astype(int) if ranked.all() else rank
    # ranked entries and baselines by aggregate (ties by name), then the unranked ones by name
    key = frame["aggregate"].round(9) * (1 if ascending else -1)
    order = pd.DataFrame({"group": ~pool, "key": key.fillna(0.0), "name": frame["submission"]})
    order = order.sort_values(["group", "key", "name"], kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def masks(frame: pd.DataFrame, tasks: Sequence[str], baselines: Iterable[str], missing: str) -> tuple:
    """(baseline, pool) row masks: the declared baselines, and the rows that take part in the aggregates (all of
    them, or under the `unranked` rule the complete entries and the baselines)."""
    baseline = frame["submission"].isin(set(baselines)).to_numpy()
    complete = (frame[[f"{t}_status" for t in tasks]] == "ok").all(axis=1).to_numpy()
    return baseline, (complete | baseline if missing == "unranked" else np.ones(len(frame), dtype=bool))


def directions(records: Sequence[Dict[str, Any]], tasks: Sequence[str],
               declared: Optional[Mapping[str, Tuple[str, bool]]] = None) -> Dict[str, bool]:
    """Whether each task's primary metric is higher-is-better: as the task config declares it, else (a board of
    bare records, as in tests) as the records say."""
    if declared is not None:
        return {t: declared[t][1] for t in tasks}
    primaries = {t: next((r["primary_metric"] for r in records if r["task"] == t), "") for t in tasks}
    return {t: _task_direction(records, t, primaries[t]) for t in tasks}


def oriented_values(frame: pd.DataFrame, tasks: Sequence[str], higher: Dict[str, bool]) -> np.ndarray:
    """The frame's primary scores, rows x tasks, negated where lower is better; NaN where a cell has no score."""
    if not tasks:
        return np.zeros((len(frame), 0))
    return np.column_stack([frame[t].to_numpy(dtype=float) * (1.0 if higher[t] else -1.0) for t in tasks])


def _task_info(records: Sequence[Dict[str, Any]], tasks: Sequence[str],
               declared: Optional[Mapping[str, Tuple[str, bool]]] = None) -> Dict[str, Dict[str, Any]]:
    info = {}
    for task in tasks:
        ok = [r for r in records if r["task"] == task and r["status"] == "ok"]
        sample = ok[0] if ok else next((r for r in records if r["task"] == task), None)
        primary = declared[task][0] if declared is not None else sample["primary_metric"] if sample else ""
        higher = declared[task][1] if declared is not None else _task_direction(records, task, primary)
        info[task] = {"primary_metric": primary, "kind": sample["task_kind"] if sample else "",
                      "higher_is_better": higher,
                      "signatures": sorted({f"{k}: {v}" for r in ok for k, v in r["signatures"].items()})}
    return info


@dataclass(frozen=True)
class BoardExtras:
    """What a board holds beyond the records: the contest's declarations and the bootstrap's results.

    `ci` maps (submission, task) to the 95% interval of the primary metric; `tiers` and `p_above` (the paired
    bootstrap p-value against the entry directly above) map ranked submissions. Without extras a board is written
    exactly as before they existed (the csv gains no columns)."""

    baselines: frozenset = frozenset()
    missing: str = "worst"
    ci: Mapping[Tuple[str, str], Tuple[float, float]] = field(default_factory=dict)
    tiers: Mapping[str, int] = field(default_factory=dict)
    p_above: Mapping[str, float] = field(default_factory=dict)
    rank_distribution: Optional[Dict[str, Dict[str, float]]] = None
    bootstrap: Optional[Dict[str, Any]] = None  # {"resamples", "seed", "alpha"} once the bootstrap ran
    contest: Optional[Dict[str, Any]] = None  # {"name", "phase", "split", "deadline", "teams"}
    last_updated: Optional[str] = None  # from stored acceptance times, never the clock at render time
    accepted_at: Mapping[str, str] = field(default_factory=dict)
    notes: Tuple[str, ...] = ()  # extra lines under the table (final selection, why tiers are absent, ...)
    declared: Optional[Mapping[str, Tuple[str, bool]]] = None  # task -> (primary metric, higher is better)
    removed: Tuple[Dict[str, str], ...] = ()  # withdrawn / disqualified entries: name, team, state, at, reason
    public_rank: Mapping[str, Optional[int]] = field(default_factory=dict)  # private board: each entry's public rank


def is_baseline(row: Any, baselines: frozenset) -> bool:
    """Declared baselines where the board has any; otherwise the built-in baseline entries are marked (and ranked)."""
    return row["submission"] in baselines if baselines else row["kind"] == "baseline"
