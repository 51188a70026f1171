"""The leaderboard: a pure function of the stored records, written as markdown, csv and json.

Rows are submissions, columns each task's primary metric, then the aggregate and the rank. Sorted by rank, then
by name; no clock, no randomness: the same records give byte-identical files. Baselines (declared by a contest)
anchor the normalisation and are listed but never ranked; intervals and tiers come in `BoardExtras`
(harness.boards computes them); a changed board keeps its previous version (harness.history).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from harness.store import dumps

POLICIES = {
    "mean_normalized": ("Mean of normalised scores: each task's primary metric is mapped linearly so that the best "
                        "baseline scores 0 and the best entry 100 (where no baseline is scored, or none is below the "
                        "best entry, the worst scored entry is 0), respecting the metric's direction; an entry below "
                        "the baseline goes negative; the aggregate is the mean over the suite's tasks; higher is "
                        "better."),
    "mean_rank": ("Mean rank: entries are ranked on each task's primary metric (ties share the better rank); the "
                  "aggregate is the mean rank over the suite's tasks; lower is better."),
    "borda": ("Borda count: on each task an entry gets one point for every entry it beats outright (ties give no "
              "point); the aggregate is the sum over the suite's tasks; higher is better."),
    "win_rate": ("Mean win rate (HELM): on each task an entry's share of head-to-head comparisons won against the "
                 "other entries, a tie counting half; the aggregate is the mean over the suite's tasks, in percent; "
                 "higher is better."),
}
LOWER_IS_BETTER = ("mean_rank",)  # policies whose aggregate ranks ascending
MISSING_RULES = {
    "worst": ("A failed, missing, n/a or not-submitted cell counts as the worst on its task: it ties the lowest "
              "normalised score (at most 0), ranks last, wins no comparison and loses to every scored cell."),
    "unranked": ("An entry with any failed, missing, n/a or not-submitted cell is not ranked: it is listed below the "
                 "ranked entries, marked unranked, and takes no part in the other entries' aggregates."),
}
STATUS_TEXT = {"not-submitted": "not submitted", "n/a": "n/a", "missing": "not evaluated"}


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
    cell and wins nothing."""
    rounded = np.round(values[pool], 9)
    scored = ~np.isnan(rounded)
    filled = np.where(scored, rounded, -np.inf)
    mine = np.round(values, 9)
    mine_scored = ~np.isnan(mine)
    mine = np.where(mine_scored, mine, -np.inf)
    wins = ((mine[:, None, :] > filled[None, :, :]) & mine_scored[:, None, :]).sum(axis=1).astype(float)
    ties = ((mine[:, None, :] == filled[None, :, :]) & mine_scored[:, None, :] & scored[None, :, :]).sum(axis=1)
    ties = ties - mine_scored * pool[:, None]  # a row does not tie with itself
    return wins, ties.astype(float)


def policy_aggregate(values: np.ndarray, baseline: np.ndarray, pool: np.ndarray, policy: str,
                     bounds: Optional[np.ndarray] = None) -> np.ndarray:
    """The aggregate of every row under `policy` (NaN outside the pool). `values`: rows x tasks, oriented so that
    higher is better, NaN where a cell has no score. `bounds` fixes the normalisation (the bootstrap holds it)."""
    if values.shape[1] == 0:
        return np.where(pool, 0.0, np.nan)
    if policy == "mean_normalized":
        bounds = anchors(values, baseline, pool) if bounds is None else bounds
        per_task = _normalised(values, pool, bounds)
        aggregate = per_task.mean(axis=1)
    elif policy == "mean_rank":
        wins, ties = _head_to_head(values, pool)
        # 1 + the pool rows strictly better; a missing cell ranks last
        better = int(pool.sum()) - wins - ties - (~np.isnan(values)) * pool[:, None]
        per_task = np.where(np.isnan(values), float(pool.sum()), 1.0 + better)
        aggregate = per_task.mean(axis=1)
    else:
        wins, ties = _head_to_head(values, pool)
        if policy == "borda":
            aggregate = wins.sum(axis=1)
        else:
            aggregate = ((wins + 0.5 * ties) / max(int(pool.sum()) - 1, 1) * 100.0).mean(axis=1)
    return np.where(pool, aggregate, np.nan)


def build(records: Sequence[Dict[str, Any]], tasks: Sequence[str], policy: str,
          baselines: Iterable[str] = (), missing: str = "worst") -> pd.DataFrame:
    """The ranked frame. `baselines` (submission names) anchor the normalisation and are never ranked; `missing`
    is the declared rule for failed, missing and n/a cells (MISSING_RULES)."""
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
    values = oriented_values(frame, tasks, directions(records, tasks))
    baseline, pool = masks(frame, tasks, baselines, missing)
    frame["aggregate"] = policy_aggregate(values, baseline, pool, policy)
    ranked = pool & ~baseline
    ascending = policy in LOWER_IS_BETTER
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


def directions(records: Sequence[Dict[str, Any]], tasks: Sequence[str]) -> Dict[str, bool]:
    """Whether each task's primary metric is higher-is-better."""
    primaries = {t: next((r["primary_metric"] for r in records if r["task"] == t), "") for t in tasks}
    return {t: _task_direction(records, t, primaries[t]) for t in tasks}


def oriented_values(frame: pd.DataFrame, tasks: Sequence[str], higher: Dict[str, bool]) -> np.ndarray:
    """The frame's primary scores, rows x tasks, negated where lower is better; NaN where a cell has no score."""
    if not tasks:
        return np.zeros((len(frame), 0))
    return np.column_stack([frame[t].to_numpy(dtype=float) * (1.0 if higher[t] else -1.0) for t in tasks])


def _task_info(records: Sequence[Dict[str, Any]], tasks: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    info = {}
    for task in tasks:
        ok = [r for r in records if r["task"] == task and r["status"] == "ok"]
        sample = ok[0] if ok else next((r for r in records if r["task"] == task), None)
        primary = sample["primary_metric"] if sample else ""
        info[task] = {"primary_metric": primary, "kind": sample["task_kind"] if sample else "",
                      "higher_is_better": _task_direction(records, task, primary),
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
    contest: Optional[Dict[str, str]] = None  # {"name", "phase", "split"}
    last_updated: Optional[str] = None  # from stored acceptance times, never the clock at render time
    accepted_at: Mapping[str, str] = field(default_factory=dict)
    notes: Tuple[str, ...] = ()  # extra lines under the table (final selection, why tiers are absent, ...)


def is_baseline(row: Any, baselines: frozenset) -> bool:
    """Declared baselines where the board has any; otherwise the built-in baseline entries are marked (and ranked)."""
    return row["submission"] in baselines if baselines else row["kind"] == "baseline"


def _rank_text(row: pd.Series) -> str:
    return "—" if pd.isna(row["rank"]) else str(int(row["rank"]))


def _format_cell(row: pd.Series, task: str, ci: Optional[Tuple[float, float]] = None) -> str:
    status = row[f"{task}_status"]
    if status == "ok":
        return f"{row[task]:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    if status in STATUS_TEXT:
        return STATUS_TEXT[status]
    reason = " ".join(str(row[f"{task}_reason"]).split())
    return f"failed: {status}" + (f" ({reason[:80]}{'…' if len(reason) > 80 else ''})" if reason else "")


def _bootstrap_text(boot: Dict[str, Any]) -> str:
    return (f"**Uncertainty**: [low, high] is the 95% bootstrap interval of the primary metric ({boot['resamples']} "
            f"resamples of the examples, seed {boot['seed']}, the same draws for every entry; corpus metrics "
            f"recomputed on each resample). Tiers, top down: an entry shares the tier of the entries directly "
            f"above it unless the paired bootstrap finds it different from one of them (p < {boot['alpha']}); then it "
            f"starts the next tier (one task: on its primary metric; several: on the mean normalised score with this "
            f"board's anchors held fixed).")


def to_markdown(frame: pd.DataFrame, suite: str, tasks: Sequence[str], info: Dict[str, Dict[str, Any]],
                policy: str, extras: Optional[BoardExtras] = None) -> str:
    extras = extras or BoardExtras()
    arrows = {t: "↑" if info[t]["higher_is_better"] else "↓" for t in tasks}
    header = ["Rank", "Submission", "Team"] + [f"{t} ({info[t]['primary_metric']} {arrows[t]})" for t in tasks]
    header.append("Aggregate " + ("↓" if policy in LOWER_IS_BETTER else "↑"))
    with_tiers = bool(extras.tiers)
    header += ["Tier"] if with_tiers else []
    title = f"# Leaderboard: {suite}"
    if extras.contest:
        title += f" — contest {extras.contest['name']}, phase {extras.contest['phase']}, {extras.contest['split']} part"
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in frame.iterrows():
        name = str(row["submission"]) + (" *(baseline)*" if is_baseline(row, extras.baselines) else "")
        cells = [_rank_text(row), name, str(row["team"])]
        cells += [_format_cell(row, t, extras.ci.get((row["submission"], t))).replace("|", "\\|") for t in tasks]
        cells.append("unranked (incomplete)" if pd.isna(row["aggregate"]) else f"{row['aggregate']:.2f}")
        cells += [str(extras.tiers.get(row["submission"], "—"))] if with_tiers else []
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"**Ranking** ({policy}): {POLICIES[policy]}",
              "", f"**Missing cells** ({extras.missing}): {MISSING_RULES[extras.missing]}"]
    if extras.baselines:
        lines += ["", f"**Baselines** (marked, never ranked): {', '.join(sorted(extras.baselines))}."]
    if extras.bootstrap:
        lines += ["", _bootstrap_text(extras.bootstrap)]
    lines += [item for note in extras.notes for item in ("", note)]
    lines += ["", "**Metrics**", ""]
    for task in tasks:
        signatures = "; ".join(f"`{s}`" for s in info[task]["signatures"]) or "no scored entry"
        lines.append(f"- {task} ({info[task]['kind']}): primary {info[task]['primary_metric']}, "
                     f"{'higher' if info[task]['higher_is_better'] else 'lower'} is better. {signatures}")
    return "\n".join(lines) + "\n"


def _optional_float(value: Any) -> Optional[float]:
    return None if value is None or pd.isna(value) else float(value)


def to_json(frame: pd.DataFrame, records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str],
            info: Dict[str, Dict[str, Any]], policy: str, extras: Optional[BoardExtras] = None) -> str:
    extras = extras or BoardExtras()
    cells = _cells(records, tasks)
    rows = []
    for _, row in frame.iterrows():
        name = row["submission"]
        by_task = cells.get(name, {})

        def cell(task: str) -> Dict[str, Any]:
            if task not in by_task:
                return {"status": "missing", "ci": None}
            out = {k: by_task[task].get(k) for k in ("status", "reason", "primary", "scores", "higher_is_better",
                                                     "signatures", "counts")}
            ci = extras.ci.get((name, task))
            return dict(out, ci=[ci[0], ci[1]] if ci else None)

        rows.append({
            "rank": None if pd.isna(row["rank"]) else int(row["rank"]), "submission": name, "team": row["team"],
            "kind": row["kind"], "aggregate": _optional_float(row["aggregate"]),
            "baseline": is_baseline(row, extras.baselines), "tier": extras.tiers.get(name),
            "p_above": extras.p_above.get(name), "accepted_at": extras.accepted_at.get(name),
            "cells": {t: cell(t) for t in tasks},
        })
    return dumps({"suite": suite, "tasks": info, "rows": rows,
                  "ranking": {"policy": policy, "rule": POLICIES[policy], "missing": extras.missing,
                              "missing_rule": MISSING_RULES[extras.missing],
                              "higher_is_better": policy not in LOWER_IS_BETTER},
                  "contest": extras.contest, "last_updated": extras.last_updated, "bootstrap": extras.bootstrap,
                  "rank_distribution": extras.rank_distribution})


def to_csv(frame: pd.DataFrame, tasks: Sequence[str], extras: Optional[BoardExtras]) -> str:
    """The frame's columns; with extras, then baseline, tier and each task's interval (columns only ever added)."""
    out = frame.copy()
    if extras is not None:
        out["baseline"] = [is_baseline(row, extras.baselines) for _, row in frame.iterrows()]
        out["tier"] = pd.array([extras.tiers.get(n) for n in frame["submission"]], dtype="Int64")
        for task in tasks:
            bounds = [extras.ci.get((n, task)) for n in frame["submission"]]
            out[f"{task}_ci_low"] = [b[0] if b else math.nan for b in bounds]
            out[f"{task}_ci_high"] = [b[1] if b else math.nan for b in bounds]
    return out.to_csv(index=False, lineterminator="\n")


def render(frame: pd.DataFrame, records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str], policy: str,
           extras: Optional[BoardExtras] = None) -> Dict[str, str]:
    """The board's files (name -> text): markdown, csv, json and the html page rendered from that json."""
    from harness import publish  # imported here so matplotlib loads only when a board is written

    info = _task_info(records, tasks)
    board_json = to_json(frame, records, suite, tasks, info, policy, extras)
    return {"leaderboard.md": to_markdown(frame, suite, tasks, info, policy, extras),
            "leaderboard.csv": to_csv(frame, tasks, extras), "leaderboard.json": board_json,
            publish.PAGE: publish.render_page(json.loads(board_json), records)}


def write_frame(frame: pd.DataFrame, records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str],
                policy: str, folder: Path, extras: Optional[BoardExtras] = None) -> Optional[int]:
    """Writes the board into `folder`, keeping the previous version as a numbered snapshot when the content
    changes (harness.history). Returns the snapshot's number, or None when no snapshot was taken."""
    from harness import history

    return history.publish(Path(folder), render(frame, records, suite, tasks, policy, extras))


def write(records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str], policy: str, out_dir: Path,
          extras: Optional[BoardExtras] = None) -> pd.DataFrame:
    extras_or_default = extras or BoardExtras()
    frame = build(records, tasks, policy, extras_or_default.baselines, extras_or_default.missing)
    write_frame(frame, records, suite, tasks, policy, Path(out_dir) / suite, extras)
    return frame
