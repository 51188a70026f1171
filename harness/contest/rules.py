"""A contest's rules as pure functions of its config and a clock passed in (`now`): times, phases, the checks
beyond the schema's types (every problem named with its key and value, reported together), the final selection.

A contest (`contest=NAME`, harness/conf/contest/NAME.yaml) is locked when its first submission is accepted
(harness.contest.ledger); its sha256 is hashed into every record.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from harness.board.policies import MISSING_RULES, POLICIES
from harness.config import ContestConfig, PhaseConfig, RunConfig, config_hash
from harness.errors import ConfigError

SPLITS = ("public", "full")
SELECTION_RULES = ("best_public", "last", "chosen")
FALLBACKS = ("best_public", "last", "none")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """UTC, seconds, 'Z': the one time format of the ledger and the boards."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, where: str) -> datetime:
    """An ISO 8601 time with a time zone; raises ConfigError naming `where` and the value."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(f"{where}: {value!r} is not an ISO 8601 time (e.g. 2025-03-01T00:00:00Z)") from e
    if moment.tzinfo is None:
        raise ConfigError(f"{where}: {value!r} has no time zone; end it with Z (UTC) or an offset like +01:00")
    return moment.astimezone(timezone.utc)


def _phase_errors(contest: ContestConfig) -> List[str]:
    errors: List[str] = []
    if not contest.phases:
        errors.append("phases: a contest needs at least one phase (name, start, end, suite)")
    windows = []
    for i, phase in enumerate(contest.phases):
        where = f"phases[{i}] ({phase.name})"
        try:
            start, end = parse_time(phase.start, f"{where}.start"), parse_time(phase.end, f"{where}.end")
        except ConfigError as e:
            errors.append(str(e))
            continue
        if start >= end:
            errors.append(f"{where}: start {phase.start} is not before end {phase.end}")
        windows.append((start, end, phase.name))
        if phase.split not in SPLITS:
            errors.append(f"{where}.split: {phase.split!r} is not valid; use one of {', '.join(SPLITS)}")
        for key in ("per_day", "total"):
            value = getattr(phase.limits, key)
            if value is not None and value < 1:
                errors.append(f"{where}.limits.{key}: {value} must be at least 1 (or null for no limit)")
    for key in ("name", "suite"):
        values = [getattr(p, key) for p in contest.phases]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            errors.append(f"phases: {key} {', '.join(twice)} used by more than one phase; each phase has its own "
                          f"{key} (a suite's board belongs to one phase)")
    windows.sort()
    for (_, end, first), (start, _, second) in zip(windows, windows[1:]):
        if start < end:
            errors.append(f"phases: {first} and {second} overlap; phases must not overlap in time")
    return errors


def _other_errors(contest: ContestConfig) -> List[str]:
    errors: List[str] = []
    if not _NAME.match(contest.name):
        errors.append(f"name: {contest.name!r} is not valid; use letters, digits, '.', '_', '-'")
    if not 0 < contest.partition.public_fraction < 1:
        errors.append(f"partition.public_fraction: {contest.partition.public_fraction} must be between 0 and 1")
    if contest.partition.seed < 0:
        errors.append(f"partition.seed: {contest.partition.seed} must be a non-negative integer")
    seen: Dict[str, str] = {}
    for team, spec in sorted(contest.teams.items()):
        for member in spec.members:
            if member in seen:
                errors.append(f"teams.{team}.members: {member!r} is already a member of team {seen[member]!r}; "
                              f"a person belongs to one team")
            seen.setdefault(member, team)
    checks = [("selection.rule", contest.selection.rule, SELECTION_RULES),
              ("selection.fallback", contest.selection.fallback, FALLBACKS),
              ("ranking.policy", contest.ranking.policy, tuple(POLICIES)),
              ("ranking.missing", contest.ranking.missing, tuple(MISSING_RULES))]
    errors += [f"{key}: {value!r} is not valid; use one of {', '.join(valid)}" for key, value, valid in checks
               if value not in valid]
    if contest.selection.max < 1:
        errors.append(f"selection.max: {contest.selection.max} must be at least 1")
    cap = contest.generation_caps.max_new_tokens
    if cap is not None and cap < 1:
        errors.append(f"generation_caps.max_new_tokens: {cap} must be a positive integer (or null: no raise)")
    return errors


def check_contest(contest: ContestConfig) -> None:
    """Every problem of a composed contest config, reported together (ConfigError)."""
    errors = _phase_errors(contest) + _other_errors(contest)
    if errors:
        raise ConfigError(f"contest {contest.name}: " + "; ".join(errors))


def phase_for_suite(contest: ContestConfig, suite: str) -> Optional[PhaseConfig]:
    return next((p for p in contest.phases if p.suite == suite), None)


def phase_named(contest: ContestConfig, name: str) -> PhaseConfig:
    phase = next((p for p in contest.phases if p.name == name), None)
    if phase is None:
        raise ConfigError(f"contest {contest.name}: no phase {name!r}; phases: "
                          f"{', '.join(p.name for p in contest.phases)}")
    return phase


def open_phase(contest: ContestConfig, now: datetime) -> Optional[PhaseConfig]:
    """The phase open at `now` (start <= now < end), if any."""
    for phase in contest.phases:
        if parse_time(phase.start, "start") <= now < parse_time(phase.end, "end"):
            return phase
    return None


def schedule(contest: ContestConfig) -> str:
    return "; ".join(f"{p.name} {p.start} .. {p.end} (suite {p.suite})" for p in contest.phases)


def contest_hash(cfg: RunConfig) -> Optional[str]:
    return None if cfg.contest is None else config_hash(cfg.contest)
