"""A board's text formats: markdown (for a README), csv and json (what the page and the history read)."""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import pandas as pd

from harness.board.frame import BoardExtras, _cells, is_baseline
from harness.board.policies import MISSING_RULES, POLICIES
from harness.status import MARK_TEXT
from harness.store import dumps


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md_text(text: Any) -> str:
    """Free text (a team name, a failure reason) as one markdown table cell that shows exactly that text: one line,
    no markup, no table pipe, no HTML (so neither a tag nor a README block's end marker gets through)."""
    return " ".join(str(text).split()).translate(_MD_SPECIAL)


def csv_text(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula (OWASP's advice: a leading quote)."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value
def _rank_or_dash(rank: Optional[int]) -> str:
    return "—" if rank is None else str(rank)


def _rank_text(row: pd.Series) -> str:
    return "—" if pd.isna(row["rank"]) else str(int(row["rank"]))


def _format_cell(row: pd.Series, task: str, ci: Optional[Tuple[float, float]] = None) -> str:
    status = row[f"{task}_status"]
    if status == "ok":
        return f"{row[task]:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    if status in MARK_TEXT:
        return MARK_TEXT[status]
    reason = " ".join(str(row[f"{task}_reason"]).split())
    shown = md_text(reason[:80]) + ("…" if len(reason) > 80 else "")
    return f"failed: {md_text(status)}" + (f" ({shown})" if reason else "")


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
    header.append("Aggregate " + ("↑" if POLICIES[policy].higher_is_better else "↓"))
    with_tiers = bool(extras.tiers)
    header += ["Tier"] if with_tiers else []
    title = f"# Leaderboard: {suite}"
    if extras.contest:
        title += f" — contest {extras.contest['name']}, phase {extras.contest['phase']}, {extras.contest['split']} part"
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in frame.iterrows():
        name = md_text(row["submission"]) + (" *(baseline)*" if is_baseline(row, extras.baselines) else "")
        cells = [_rank_text(row), name, md_text(row["team"])]
        cells += [_format_cell(row, t, extras.ci.get((row["submission"], t))) for t in tasks]
        cells.append("unranked (incomplete)" if pd.isna(row["aggregate"]) else f"{row['aggregate']:.2f}")
        cells += [str(extras.tiers.get(row["submission"], "—"))] if with_tiers else []
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"**Ranking** ({policy}): {POLICIES[policy].description}",
              "", f"**Missing cells** ({extras.missing}): {MISSING_RULES[extras.missing]}"]
    if extras.baselines:
        lines += ["", f"**Baselines** (marked, never ranked): {', '.join(sorted(extras.baselines))}."]
    if extras.bootstrap:
        lines += ["", _bootstrap_text(extras.bootstrap)]
    lines += [item for note in extras.notes for item in ("", note)]
    if extras.removed:
        lines += ["", "**Removed entries** (not ranked): " + "; ".join(removed_text(e) for e in extras.removed) + "."]
    if extras.contest and extras.contest.get("deadline"):
        usage = "; ".join(f"{team} {use['used']} used" + ("" if use["left"] is None else f", {use['left']} left")
                          for team, use in (extras.contest.get("teams") or {}).items())
        lines += ["", f"**Deadline** of phase {extras.contest['phase']}: {extras.contest['deadline']}."
                  + (f" **Submissions** counted: {usage}." if usage else "")]
    if extras.public_rank:
        moves = [f"{row['submission']} {_rank_or_dash(extras.public_rank.get(row['submission']))} → {_rank_text(row)}"
                 for _, row in frame.iterrows() if not is_baseline(row, extras.baselines)]
        lines += ["", "**Moves from the public board**: " + ("; ".join(moves) or "none") + "."]
    lines += ["", "**Metrics**", ""]
    for task in tasks:
        signatures = "; ".join(f"`{s}`" for s in info[task]["signatures"]) or "no scored entry"
        lines.append(f"- {task} ({info[task]['kind']}): primary {info[task]['primary_metric']}, "
                     f"{'higher' if info[task]['higher_is_better'] else 'lower'} is better. {signatures}")
    return "\n".join(lines) + "\n"


def removed_text(entry: Dict[str, str]) -> str:
    return f"{entry['name']} ({entry['team']}) {entry['state']} at {entry['at']}: {entry['reason']}"


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
        if extras.public_rank:  # a private board: where each entry stood on the public one, and its move
            before, now = extras.public_rank.get(name), rows[-1]["rank"]
            rows[-1].update(public_rank=before, move=None if before is None or now is None else before - now)
    return dumps({"suite": suite, "tasks": info, "rows": rows,
                  "ranking": {"policy": policy, "rule": POLICIES[policy].description, "missing": extras.missing,
                              "missing_rule": MISSING_RULES[extras.missing],
                              "higher_is_better": POLICIES[policy].higher_is_better},
                  "contest": extras.contest, "last_updated": extras.last_updated, "bootstrap": extras.bootstrap,
                  "rank_distribution": extras.rank_distribution, "removed": list(extras.removed),
                  "notes": list(extras.notes)})


def to_csv(frame: pd.DataFrame, tasks: Sequence[str], extras: Optional[BoardExtras]) -> str:
    """The frame's columns; with extras, then baseline, tier and each task's interval (columns only ever added)."""
    out = frame.copy()
    for column in ["submission", "team"] + [f"{t}_reason" for t in tasks]:
        if column in out:
            out[column] = out[column].map(csv_text)
    if extras is not None:
        out["baseline"] = [is_baseline(row, extras.baselines) for _, row in frame.iterrows()]
        out["tier"] = pd.array([extras.tiers.get(n) for n in frame["submission"]], dtype="Int64")
        for task in tasks:
            bounds = [extras.ci.get((n, task)) for n in frame["submission"]]
            out[f"{task}_ci_low"] = [b[0] if b else math.nan for b in bounds]
            out[f"{task}_ci_high"] = [b[1] if b else math.nan for b in bounds]
    return out.to_csv(index=False, lineterminator="\n")
