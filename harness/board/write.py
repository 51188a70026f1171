"""Writing a suite's boards, the only writer of board files: the public board (`harness run`, `harness
leaderboard`) and the private board (`harness reveal`), each as markdown, csv, json and the page, keeping the
previous version when the content changes (harness.board.history)."""
from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import pandas as pd

from harness import status, store
from harness.board import history
from harness.board.formats import to_csv, to_json, to_markdown
from harness.board.frame import BoardExtras, _task_info, build
from harness.board.policies import MISSING_RULES, POLICIES
from harness.board.uncertainty import Key, board_samples, resample_cells, rescore, uncertainty
from harness.config import PhaseConfig, RunConfig, TaskConfig, contest_of, suite_of
from harness.contest import ledger, rules
from harness.contest.splits import board_part, part_rows, part_scores
from harness.errors import ConfigError
from harness.execution.cells import changed_task_keys, task_parts
from harness.scoring import primary_direction
from harness.publish import page


def render(frame: pd.DataFrame, records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str], policy: str,
           extras: Optional[BoardExtras] = None) -> Dict[str, str]:
    """The board's files (name -> text): markdown, csv, json and the html page rendered from that json."""
    info = _task_info(records, tasks, extras.declared if extras else None)
    board_json = to_json(frame, records, suite, tasks, info, policy, extras)
    return {"leaderboard.md": to_markdown(frame, suite, tasks, info, policy, extras),
            "leaderboard.csv": to_csv(frame, tasks, extras), "leaderboard.json": board_json,
            page.PAGE: page.render_page(json.loads(board_json), records)}


def write_frame(frame: pd.DataFrame, records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str],
                policy: str, folder: Path, extras: Optional[BoardExtras] = None) -> Optional[int]:
    """Writes the board into `folder`, keeping the previous version as a numbered snapshot when the content
    changes (harness.board.history). Returns the snapshot's number, or None when no snapshot was taken."""
    return history.publish(Path(folder), render(frame, records, suite, tasks, policy, extras))


def write(records: Sequence[Dict[str, Any]], suite: str, tasks: Sequence[str], policy: str, out_dir: Path,
          extras: Optional[BoardExtras] = None) -> pd.DataFrame:
    extras_or_default = extras or BoardExtras()
    frame = build(records, tasks, policy, extras_or_default.baselines, extras_or_default.missing,
                  extras_or_default.declared)
    write_frame(frame, records, suite, tasks, policy, Path(out_dir) / suite, extras)
    return frame
def declared_directions(tasks: Dict[str, TaskConfig]) -> Dict[str, Tuple[str, bool]]:
    """Each task's (primary metric, higher is better) from its config: the board's arrows and orientation."""
    return {name: (task.primary_metric, primary_direction(task)) for name, task in tasks.items()}


def mark_stale(records: List[Dict[str, Any]], tasks: Dict[str, TaskConfig]) -> List[Dict[str, Any]]:
    """Records computed from another config of their task, as `stale` cells naming the keys that differ: a board
    never mixes them with current ones (`harness run` re-runs or re-scores them)."""
    parts = {name: task_parts(task) for name, task in tasks.items()}
    out = []
    for record in records:
        changed = changed_task_keys(record, parts[record["task"]])
        if changed:
            record = dict(record, status=status.STALE, primary=None, scores={},
                          reason=f"computed with another config of task {record['task']} ({', '.join(changed)} "
                                 f"changed); `harness run` redoes it")
        out.append(record)
    return out


def no_records_error(cfg: RunConfig, tasks: Dict[str, TaskConfig]) -> ConfigError:
    return ConfigError(f"paths.results: no records for suite {suite_of(cfg).name} ({', '.join(sorted(tasks))}) under "
                       f"{str(cfg.paths.results)!r}; run `harness run suite={suite_of(cfg).name}` first, or point "
                       f"paths.results at the store that holds them")


def _write(cfg: RunConfig, tasks: Dict[str, TaskConfig], records: List[Dict[str, Any]], folder: Path,
           samples: Dict[Key, np.ndarray], **extras: Any) -> pd.DataFrame:
    names = sorted(tasks)
    policy, missing = ((cfg.contest.ranking.policy, cfg.contest.ranking.missing) if cfg.contest is not None
                       else (cfg.ranking, cfg.missing_cells))
    for key, value, valid in (("ranking", policy, POLICIES), ("missing_cells", missing, MISSING_RULES)):
        if value not in valid:
            raise ConfigError(f"{key}: {value!r} is not valid; use one of {', '.join(valid)}")
    # Without a contest, the built-in baseline entries are the baselines: anchors, marked, never ranked.
    baselines = (frozenset(cfg.contest.baselines) if cfg.contest is not None
                 else frozenset(r["submission"] for r in records if r.get("submission_kind") == "baseline"))
    declared = declared_directions(tasks)
    frame = build(records, names, policy, baselines, missing, declared)
    if cfg.best_per_team:
        records = _best_per_team(frame, records, baselines)
        frame = build(records, names, policy, baselines, missing, declared)
        extras["notes"] = tuple(extras.get("notes", ())) + (
            "**Best entry per team** (best_per_team=true): each team's best-ranked entry only, ranked among teams.",)
    found = uncertainty(frame, records, names, policy, baselines, missing, samples, declared)
    notes = tuple(extras.pop("notes", ())) + tuple(found.pop("notes", ()))
    board_extras = BoardExtras(baselines=baselines, missing=missing, notes=notes, declared=declared, **found,
                               **extras)
    write_frame(frame, records, suite_of(cfg).name, names, policy, folder, board_extras)
    return frame


def _team_usage(cfg: RunConfig, entries: Dict[str, Any], phase: Any) -> Dict[str, Dict[str, Optional[int]]]:
    """Each team's counted submissions in the phase and, under a total limit, how many it has left."""
    teams = sorted(set(contest_of(cfg).teams) | {e["team"] for e in ledger.admitted(entries, phase.name)})
    out = {}
    for team in teams:
        used = len(ledger.counted(entries, Path(cfg.paths.results), team, phase.name))
        total = phase.limits.total
        out[team] = {"used": used, "left": None if total is None else max(total - used, 0)}
    return out


def _best_per_team(frame: pd.DataFrame, records: List[Dict[str, Any]], baselines: frozenset) -> List[Dict[str, Any]]:
    """The records of each team's best-ranked entry (and of the baselines): Kaggle's default board."""
    keep, seen = set(baselines), set()
    for _, row in frame.iterrows():  # board order: the best first
        if row["submission"] in baselines or row["kind"] == "baseline" and not baselines:
            keep.add(row["submission"])
        elif row["team"] not in seen:
            seen.add(row["team"])
            keep.add(row["submission"])
    return [r for r in records if r["submission"] in keep]


def _contest_view(cfg: RunConfig, records: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """A contest board's records (baselines and the phase's accepted entries) and its BoardExtras fields."""
    phase = rules.phase_for_suite(contest_of(cfg), suite_of(cfg).name)
    if phase is None:
        raise ConfigError(f"suite {suite_of(cfg).name} is scored by no phase of contest {contest_of(cfg).name} "
                          f"({rules.schedule(contest_of(cfg))})")
    entries = ledger.read_ledger(cfg)
    names = set(ledger.board_entries(cfg, entries, phase))
    accepted_at = {e["name"]: e["at"] for e in ledger.accepted(entries, phase.name) if e["name"] in names}
    info = {"name": contest_of(cfg).name, "phase": phase.name, "split": board_part(cfg), "deadline": phase.end,
            "teams": _team_usage(cfg, entries, phase)}
    return ([r for r in records if r["submission"] in names],
            {"contest": info, "accepted_at": accepted_at, "last_updated": max(accepted_at.values(), default=None),
             "removed": tuple(ledger.removed(entries, phase.name))})


def write_public(cfg: RunConfig, tasks: Dict[str, TaskConfig], entries: Optional[Set[str]] = None) -> pd.DataFrame:
    """The suite's board at `<paths.leaderboards>/<suite>/`: the public part in a contest, every example
    otherwise. Its entries: in a contest, the baselines and the phase's accepted entries; otherwise `entries`
    (the submissions that exist now; None: every record in the store)."""
    records = [r for r in store.read_records(Path(cfg.paths.results)) if r["task"] in tasks]
    if not records:  # a wrong or empty results path: never publish an empty board
        raise no_records_error(cfg, tasks)
    extras: Dict[str, Any] = {}
    if cfg.contest is not None:
        records, extras = _contest_view(cfg, records)
    elif entries is not None:
        records = [r for r in records if r["submission"] in entries]
    records = mark_stale(records, tasks)
    samples = board_samples(cfg, tasks, records, board_part(cfg))
    return _write(cfg, tasks, records, Path(cfg.paths.leaderboards) / suite_of(cfg).name, samples, **extras)


def _private_record(record: Dict[str, Any], result: Any, rows: np.ndarray) -> Dict[str, Any]:
    scores = part_scores(result, rows)
    counts = {k: v for k, v in record["counts"].items() if k != "public_examples"}
    return dict(copy.deepcopy(record), scores=scores, primary=scores[record["primary_metric"]],
                counts=dict(counts, private_examples=int(len(rows))))


def reveal(cfg: RunConfig, tasks: Dict[str, TaskConfig], phase: PhaseConfig, now: datetime) -> Dict[str, Any]:
    """The private board of `phase` at `<paths.leaderboards>/<suite>/private/`: each team's final selection and
    the baselines, scored on the private part. Only after the phase has ended. Returns the selection."""
    if phase.split != "public":
        raise ConfigError(f"phase {phase.name} has split {phase.split!r}: nothing is hidden, nothing to reveal")
    if now < rules.parse_time(phase.end, "end"):
        raise ConfigError(f"phase {phase.name} ends at {phase.end}; the private board is revealed after it ends "
                          f"(now {rules.iso(now)})")
    stored, extras = _contest_view(cfg, store.read_records(Path(cfg.paths.results)))
    stored = [r for r in stored if r["task"] in tasks]
    public = build(stored, sorted(tasks), contest_of(cfg).ranking.policy, frozenset(contest_of(cfg).baselines),
                   contest_of(cfg).ranking.missing, declared_directions(tasks))
    public_rank = {n: (None if pd.isna(r) else int(r)) for n, r in zip(public["submission"], public["rank"])}
    selection = ledger.final_selection(cfg, ledger.read_ledger(cfg), phase, public_rank)
    keep = set(contest_of(cfg).baselines) | {n for choice in selection.values() for n in choice["names"]}
    stored = [r for r in stored if r["submission"] in keep]
    scored = rescore(cfg, tasks, stored, every_metric=True)
    records = []
    for record in stored:
        key = (record["submission"], record["task"])
        if key in scored:
            result, task, examples = scored[key]
            rows = part_rows(task, examples, contest_of(cfg).partition, "private")
            record = _private_record(record, result, rows)
        elif record["status"] == "ok":  # never show a public score on the private board
            record = dict(record, status="not-rescored", primary=None, scores={},
                          reason="its stored predictions could not be scored again on the private part")
        records.append(record)
    lines = [f"{team}: {', '.join(choice['names'])} ({choice['rule']})" for team, choice in sorted(selection.items())]
    note = (f"**Final selection** (rule {contest_of(cfg).selection.rule}, up to {contest_of(cfg).selection.max} per team): "
            + ("; ".join(lines) if lines else "no team has a counted submission") + ".")
    extras["contest"] = dict(extras["contest"], split="private")
    extras["public_rank"] = {n: public_rank.get(n) for n in keep}
    samples = resample_cells(cfg, records, "private", scored)
    _write(cfg, tasks, records, Path(cfg.paths.leaderboards) / suite_of(cfg).name / "private", samples,
           notes=(note,), **extras)
    return selection
