"""The leaderboard: a pure function of the stored records, written as markdown, csv and json.

Rows are submissions, columns each task's primary metric, then the aggregate and the rank. Sorted by rank, then
by name; no clock, no randomness: the same records give byte-identical files.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pandas as pd

from harness.store import atomic_write_text, dumps

POLICIES = {
    "mean_normalized": ("Mean of normalised scores: each task's primary metric is mapped to 0 (the worst scored "
                        "entry) .. 100 (the best), respecting its direction; a failed, missing or n/a cell counts "
                        "0; the aggregate is the mean over the suite's tasks; higher is better."),
    "mean_rank": ("Mean rank: entries are ranked on each task's primary metric (ties share the better rank); a "
                  "failed, missing or n/a cell ranks last; the aggregate is the mean rank; lower is better."),
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


def build(records: Sequence[Dict[str, Any]], tasks: Sequence[str], policy: str) -> pd.DataFrame:
    if policy not in POLICIES:
        raise ValueError(f"ranking {policy!r} is not valid; use one of {', '.join(POLICIES)}")
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
    primaries = {t: next((r["primary_metric"] for r in records if r["task"] == t), "") for t in tasks}
    directions = {t: _task_direction(records, t, primaries[t]) for t in tasks}
    if policy == "mean_normalized":
        parts = []
        for task in tasks:
            values = frame[task] if directions[task] else -frame[task]
            low, high = values.min(), values.max()
            span = high - low
            norm = (values - low) / span * 100 if span and not math.isnan(span) else values.notna() * 100.0
            parts.append(norm.where(values.notna(), 0.0))
        frame["aggregate"] = pd.concat(parts, axis=1).mean(axis=1) if parts else 0.0
        frame["rank"] = _competition_rank(frame["aggregate"], ascending=False)
    else:
        parts = []
        for task in tasks:
            ranks = frame[task].round(9).rank(method="min", ascending=not directions[task])
            parts.append(ranks.fillna(len(frame)))
        frame["aggregate"] = pd.concat(parts, axis=1).mean(axis=1) if parts else 0.0
        frame["rank"] = _competition_rank(frame["aggregate"], ascending=True)
    return frame.sort_values(["rank", "submission"], kind="stable").reset_index(drop=True)


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


def _format_cell(row: pd.Series, task: str) -> str:
    status = row[f"{task}_status"]
    if status == "ok":
        return f"{row[task]:.2f}"
    if status in STATUS_TEXT:
        return STATUS_TEXT[status]
    reason = " ".join(str(row[f"{task}_reason"]).split())
    return f"failed: {status}" + (f" ({reason[:80]}{'…' if len(reason) > 80 else ''})" if reason else "")


def to_markdown(frame: pd.DataFrame, suite: str, tasks: Sequence[str], info: Dict[str, Dict[str, Any]],
                policy: str) -> str:
    arrows = {t: "↑" if info[t]["higher_is_better"] else "↓" for t in tasks}
    header = ["Rank", "Submission", "Team"] + [f"{t} ({info[t]['primary_metric']} {arrows[t]})" for t in tasks]
    header.append("Aggregate " + ("↑" if policy == "mean_normalized" else "↓"))
    lines = [f"# Leaderboard: {suite}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in frame.iterrows():
        cells = [str(row["rank"]), str(row["submission"]), str(row["team"])]
        cells += [_format_cell(row, t).replace("|", "\\|") for t in tasks]
        cells.append(f"{row['aggregate']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"**Ranking** ({policy}): {POLICIES[policy]}", "", "**Metrics**", ""]
    for task in tasks:
        signatures = "; ".join(f"`{s}`" for s in info[task]["signatures"]) or "no scored entry"
        lines.append(f"- {task} ({info[task]['kind']}): primary {info[task]['primary_metric']}, "
                     f"{'higher' if info[task]['higher_is_better'] else 'lower'} is better. {signatures}")
    return "\n".join(lines) + "\n"


def to_json(frame: pd.DataFrame, records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str],
            info: Dict[str, Dict[str, Any]], policy: str) -> str:
    cells = _cells(records, tasks)
    rows = []
    for _, row in frame.iterrows():
        by_task = cells.get(row["submission"], {})
        rows.append({
            "rank": int(row["rank"]), "submission": row["submission"], "team": row["team"], "kind": row["kind"],
            "aggregate": float(row["aggregate"]),
            "cells": {t: {k: by_task[t].get(k) for k in ("status", "reason", "primary", "scores", "higher_is_better",
                                                         "signatures", "counts")} if t in by_task
                      else {"status": "missing"} for t in tasks},
        })
    return dumps({"suite": suite, "ranking": {"policy": policy, "rule": POLICIES[policy]}, "tasks": info, "rows": rows})


def write(records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str], policy: str, out_dir: Path) -> pd.DataFrame:
    frame = build(records, tasks, policy)
    info = _task_info(records, tasks)
    out_dir = Path(out_dir) / suite
    atomic_write_text(out_dir / "leaderboard.md", to_markdown(frame, suite, tasks, info, policy))
    atomic_write_text(out_dir / "leaderboard.csv", frame.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out_dir / "leaderboard.json", to_json(frame, records, suite, tasks, info, policy))
    # The html page is rendered from the json just written (one source for every output) plus the records
    # (provenance); imported here so matplotlib loads only when a board is written.
    from harness import publish

    publish.write_page(json.loads((out_dir / "leaderboard.json").read_text(encoding="utf-8")), records, out_dir)
    return frame
