"""Contests: the locked config, phases, the submission ledger, per-team limits and the final selection.

A contest (`contest=NAME`, harness/conf/contest/NAME.yaml) is checked beyond its types here, every problem named
with its key and value. It is locked when its first submission is accepted: `<paths.contests>/<name>/lock.json`
keeps its sha256 (also hashed into every record) and any later command composing a different config for it fails,
naming the keys that differ. The ledger beside it (`ledger.json`) records every submission attempt with the time
the harness accepted or refused it (never a time from the manifest), its state, and each team's final choice; it
holds no scores. Plain functions take the clock as an argument (`now`); the CLI passes `utc_now()`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from harness.errors import ConfigError, SubmissionError

SPLITS = ("public", "full")
SELECTION_RULES = ("best_public", "last", "chosen")
FALLBACKS = ("best_public", "last", "none")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LEDGER = "ledger.json"
LOCK = "lock.json"


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


# ---------------------------------------------------------------- checking the config


def _phase_errors(contest: Any) -> List[str]:
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


def _other_errors(contest: Any) -> List[str]:
    from harness.leaderboard import MISSING_RULES, POLICIES

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


def check_contest(contest: Any) -> None:
    """Every problem of a composed contest config, reported together (ConfigError)."""
    errors = _phase_errors(contest) + _other_errors(contest)
    if errors:
        raise ConfigError(f"contest {contest.name}: " + "; ".join(errors))


def check(cfg: Any, overrides: Sequence[str]) -> None:
    """What `compose` checks when a contest is chosen: the config itself, its lock, and that the run does not
    override the contest's declared ranking."""
    check_contest(cfg.contest)
    for item in overrides:
        key = item.partition("=")[0].lstrip("+~")
        if key in ("ranking", "missing_cells"):
            raise ConfigError(f"{key}: contest {cfg.contest.name} declares its ranking (contest.ranking.policy="
                              f"{cfg.contest.ranking.policy}, contest.ranking.missing={cfg.contest.ranking.missing});"
                              f" drop the {key}= override")
        if key.startswith("generation_caps"):
            raise ConfigError(f"{key}: contest {cfg.contest.name} declares its own generation caps "
                              f"(contest.generation_caps.max_new_tokens={cfg.contest.generation_caps.max_new_tokens}); "
                              f"drop the {key}= override")
    check_lock(cfg)


# ---------------------------------------------------------------- phases


def phase_for_suite(contest: Any, suite: str) -> Optional[Any]:
    return next((p for p in contest.phases if p.suite == suite), None)


def phase_named(contest: Any, name: str) -> Any:
    phase = next((p for p in contest.phases if p.name == name), None)
    if phase is None:
        raise ConfigError(f"contest {contest.name}: no phase {name!r}; phases: "
                          f"{', '.join(p.name for p in contest.phases)}")
    return phase


def open_phase(contest: Any, now: datetime) -> Optional[Any]:
    """The phase open at `now` (start <= now < end), if any."""
    for phase in contest.phases:
        if parse_time(phase.start, "start") <= now < parse_time(phase.end, "end"):
            return phase
    return None


def schedule(contest: Any) -> str:
    return "; ".join(f"{p.name} {p.start} .. {p.end} (suite {p.suite})" for p in contest.phases)


# ---------------------------------------------------------------- the lock


def state_dir(cfg: Any) -> Path:
    return Path(cfg.paths.contests) / cfg.contest.name


def contest_hash(cfg: Any) -> Optional[str]:
    from harness.config import config_hash

    return None if cfg.contest is None else config_hash(cfg.contest)


def _flatten(data: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(data, dict):
        out: Dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(data, sort_keys=True)}


def check_lock(cfg: Any) -> None:
    from omegaconf import OmegaConf

    path = state_dir(cfg) / LOCK
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    if lock["sha256"] == contest_hash(cfg):
        return
    old, new = _flatten(lock["config"]), _flatten(OmegaConf.to_container(cfg.contest, resolve=True))
    changed = [f"{k}: {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}" for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)]
    raise ConfigError(f"contest {cfg.contest.name} is locked ({path}, sha256 {lock['sha256'][:12]}…, locked at "
                      f"{lock['locked_at']} by its first accepted submission); the composed config differs: "
                      f"{'; '.join(changed)}. A locked contest cannot change; restore the locked values")


def write_lock(cfg: Any, now: datetime) -> None:
    from omegaconf import OmegaConf

    from harness.store import atomic_write_text, dumps

    path = state_dir(cfg) / LOCK
    if not path.exists():
        atomic_write_text(path, dumps({"contest": cfg.contest.name, "sha256": contest_hash(cfg), "locked_at": iso(now),
                                       "config": OmegaConf.to_container(cfg.contest, resolve=True)}))


# ---------------------------------------------------------------- the ledger


def read_ledger(cfg: Any) -> Dict[str, Any]:
    path = state_dir(cfg) / LEDGER
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"contest": cfg.contest.name, "entries": [], "selections": {}}


def _update_ledger(cfg: Any, change) -> Any:
    """Read, change and write the ledger under a file lock (two submissions at once both land)."""
    from filelock import FileLock

    from harness.store import atomic_write_text, dumps

    folder = state_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".ledger.lock")):
        ledger = read_ledger(cfg)
        result = change(ledger)
        atomic_write_text(folder / LEDGER, dumps(ledger))
    return result


def accepted(ledger: Dict[str, Any], phase: Optional[str] = None) -> List[Dict[str, Any]]:
    return [e for e in ledger["entries"] if e["state"] == "accepted" and (phase is None or e["phase"] == phase)]


def failed(results: Path, name: str) -> bool:
    """Whether a submission's evaluation failed: any of its stored cells has a failure status."""
    from harness.runner import FAILED

    for path in (Path(results) / name).glob("*.json"):
        try:
            if json.loads(path.read_text(encoding="utf-8"))["status"] in FAILED:
                return True
        except (json.JSONDecodeError, KeyError):
            continue
    return False


def counted(ledger: Dict[str, Any], results: Path, team: str, phase: str) -> List[Dict[str, Any]]:
    """The team's submissions that count against its limits: accepted in the phase and not failed (a submission
    not yet evaluated counts until its evaluation fails). Refused and invalid attempts never count."""
    return [e for e in accepted(ledger, phase) if e["team"] == team and not failed(results, e["name"])]


# ---------------------------------------------------------------- submitting


def _limit_refusal(phase: Any, entries: List[Dict[str, Any]], now: datetime) -> Optional[str]:
    today = [e for e in entries if parse_time(e["at"], "at").date() == now.date()]
    if phase.limits.per_day is not None and len(today) >= phase.limits.per_day:
        resets = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
        return (f"daily limit reached: {len(today)} of {phase.limits.per_day} counted submissions today (UTC); "
                f"the next is possible from {iso(resets)}")
    if phase.limits.total is not None and len(entries) >= phase.limits.total:
        return f"total limit reached: {len(entries)} of {phase.limits.total} counted submissions in phase {phase.name}"
    return None


def _refusal(cfg: Any, ledger: Dict[str, Any], phase: Any, submission: Any, sha: str, now: datetime) -> Optional[str]:
    contest, manifest = cfg.contest, submission.manifest
    if contest.teams and manifest.team not in contest.teams:
        return f"team {manifest.team!r} is not registered in contest {contest.name} (teams: {', '.join(contest.teams)})"
    if manifest.name in contest.baselines or any(e["name"] == manifest.name for e in accepted(ledger)):
        return f"the name {manifest.name!r} is taken; give each submission a new name in submission.yaml"
    same = next((e for e in accepted(ledger, phase.name) if e["team"] == manifest.team and e["sha256"] == sha), None)
    if same is not None:
        return f"identical to the team's accepted submission {same['name']!r}"
    target = Path(cfg.paths.submissions) / manifest.name
    if target.exists() and target.resolve() != Path(submission.folder).resolve():
        return f"{target} already exists; give the submission a new name"
    return _limit_refusal(phase, counted(ledger, Path(cfg.paths.results), manifest.team, phase.name), now)


def _install(folder: Path, target: Path) -> None:
    """Copy the accepted entry into paths.submissions (a temporary name, then a rename)."""
    if target.exists():
        return  # the entry already lives there
    tmp = target.parent / f".{target.name}.incoming-{os.getpid()}"
    shutil.copytree(folder, tmp)
    os.replace(tmp, target)


def submit(folder: Path, cfg: Any, tasks: Dict[str, Any], now: datetime) -> Dict[str, Any]:
    """Validate the entry in `folder` for the phase open at `now` and, when it passes and the team is within its
    limits, accept it: the ledger records it with `now` as its acceptance time and the entry is copied into
    paths.submissions. Returns the outcome (state accepted | refused | invalid, reason, report)."""
    from harness.submission import load_submission, submission_sha256
    from harness.validate import validate

    phase = phase_for_suite(cfg.contest, cfg.suite.name)
    outcome: Dict[str, Any] = {"name": Path(folder).name, "team": None, "phase": phase.name if phase else None,
                               "at": iso(now), "state": "refused", "reason": "", "sha256": None}
    report = None
    if phase is None or open_phase(cfg.contest, now) is not phase:
        outcome["reason"] = f"no phase of contest {cfg.contest.name} is open for suite {cfg.suite.name} at " \
                            f"{iso(now)} ({schedule(cfg.contest)})"
    else:
        report = validate(Path(folder), cfg, tasks)
        if not report["accepted"]:
            outcome.update(state="invalid", reason="; ".join(c["detail"] or c["check"] for c in report["checks"]
                                                             if not c["ok"]))
    if report is not None and report["accepted"]:
        submission = load_submission(folder)
        sha = submission_sha256(Path(folder))
        outcome.update(name=submission.name, team=submission.manifest.team, sha256=sha)

        def decide(ledger: Dict[str, Any]) -> None:
            refusal = _refusal(cfg, ledger, phase, submission, sha, now)
            if refusal is None:
                _install(Path(folder), Path(cfg.paths.submissions) / submission.name)
                outcome.update(state="accepted", reason="")
            else:
                outcome["reason"] = refusal
            ledger["entries"].append(dict(outcome))

        _update_ledger(cfg, decide)
        if outcome["state"] == "accepted":
            write_lock(cfg, now)
            outcome["counted"] = len(counted(read_ledger(cfg), Path(cfg.paths.results), outcome["team"], phase.name))
    else:
        _update_ledger(cfg, lambda ledger: ledger["entries"].append(dict(outcome)))
    return dict(outcome, report=report)


# ---------------------------------------------------------------- the final selection


def select(cfg: Any, names: Sequence[str], now: datetime) -> Dict[str, Any]:
    """Record a team's final choice of up to `selection.max` of its accepted submissions (rule `chosen`)."""
    contest = cfg.contest
    if contest.selection.rule != "chosen":
        raise SubmissionError(f"contest {contest.name} selects by rule {contest.selection.rule!r}; choices made "
                              f"with `harness select` are not used (they are for rule 'chosen')", status="refused")
    if not names or len(names) > contest.selection.max:
        raise SubmissionError(f"choose between 1 and {contest.selection.max} submission(s); got {len(names)}",
                              status="refused")

    def choose(ledger: Dict[str, Any]) -> Dict[str, Any]:
        by_name = {e["name"]: e for e in accepted(ledger)}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise SubmissionError(f"not accepted submissions of contest {contest.name}: {', '.join(unknown)}",
                                  status="refused")
        teams = {by_name[n]["team"] for n in names}
        phases = {by_name[n]["phase"] for n in names}
        if len(teams) != 1 or len(phases) != 1:
            raise SubmissionError(f"a choice is one team's submissions in one phase; got teams {sorted(teams)}, "
                                  f"phases {sorted(phases)}", status="refused")
        phase = phase_named(contest, phases.pop())
        if now >= parse_time(phase.end, "end"):
            raise SubmissionError(f"phase {phase.name} ended at {phase.end}; the final choice is closed",
                                  status="refused")
        bad = [n for n in names if failed(Path(cfg.paths.results), n)]
        if bad:
            raise SubmissionError(f"failed submissions cannot be chosen: {', '.join(bad)}", status="refused")
        team = teams.pop()
        choice = {"names": sorted(set(names)), "at": iso(now)}
        ledger["selections"].setdefault(phase.name, {})[team] = choice
        return {"team": team, "phase": phase.name, **choice}

    return _update_ledger(cfg, choose)


def final_selection(cfg: Any, ledger: Dict[str, Any], phase: Any, public_rank: Dict[str, Optional[int]]) -> Dict[str, Any]:
    """team -> {"names": [...], "rule": ...}: the submissions that count on the private board. `public_rank`
    maps submissions to their rank on the public board (None when unranked)."""
    selection = cfg.contest.selection
    results = Path(cfg.paths.results)
    out: Dict[str, Any] = {}
    teams = sorted({e["team"] for e in accepted(ledger, phase.name)})
    for team in teams:
        candidates = counted(ledger, results, team, phase.name)
        rule = selection.rule
        names: List[str] = []
        if rule == "chosen":
            chosen = ledger["selections"].get(phase.name, {}).get(team)
            names = [n for n in (chosen or {}).get("names", []) if n in {c["name"] for c in candidates}]
            rule = "chosen" if names else selection.fallback
        if rule == "best_public":
            ranked = [c for c in candidates if public_rank.get(c["name"]) is not None]
            ranked.sort(key=lambda c: (public_rank[c["name"]], c["at"], c["name"]))  # a tie: the earlier one
            names = [c["name"] for c in ranked[: selection.max]]
        elif rule == "last":
            names = [c["name"] for c in sorted(candidates, key=lambda c: (c["at"], c["name"]))[-selection.max:]]
        if names:
            out[team] = {"names": sorted(names), "rule": rule}
    return out


def board_entries(cfg: Any, ledger: Dict[str, Any], phase: Any) -> Iterable[str]:
    """The names on a phase's public board: the baselines and every accepted submission of the phase."""
    return sorted(set(cfg.contest.baselines) | {e["name"] for e in accepted(ledger, phase.name)})


def run_folders(cfg: Any, folders: Sequence[Path]) -> List[Path]:
    """The folders `harness run` evaluates in a contest: baselines and the phase's accepted submissions whose
    files are unchanged since acceptance (a changed one is skipped and named)."""
    from harness.submission import load_submission, submission_sha256

    phase = phase_for_suite(cfg.contest, cfg.suite.name)
    if phase is None:
        raise ConfigError(f"suite {cfg.suite.name} is scored by no phase of contest {cfg.contest.name} "
                          f"({schedule(cfg.contest)})")
    ledger = read_ledger(cfg)
    shas = {e["name"]: e["sha256"] for e in accepted(ledger, phase.name)}
    out, skipped = [], []
    for folder in folders:
        try:
            name = load_submission(folder).name
        except SubmissionError:
            continue
        if name in cfg.contest.baselines:
            out.append(folder)
        elif name in shas:
            (out if submission_sha256(folder) == shas[name] else skipped).append(folder)
    if skipped:
        import sys

        print(f"skipped (files changed since acceptance): {', '.join(str(f) for f in skipped)}", file=sys.stderr)
    return out
