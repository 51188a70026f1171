"""A contest's state on disk under `<paths.contests>/<name>/`: the lock (`lock.json`: the config's sha256 and
content, written by the first accepted submission) and the ledger (`ledger.json`: every submission attempt with the
time the harness accepted or refused it, never a time from the manifest; each team's final choice). It holds no
scores. Writes are atomic and the ledger is changed under a file lock, so two submissions at once both land.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

from filelock import FileLock
from omegaconf import OmegaConf

from harness import status
from harness.config import PhaseConfig, RunConfig, as_dict, contest_of, suite_of
from harness.contest.rules import check_contest, contest_hash, iso, phase_for_suite, schedule
from harness.data import data_files, sha256_file
from harness.errors import ConfigError, SubmissionError
from harness.store import atomic_write_text, dumps
from harness.submission import load_submission, submission_sha256

LEDGER = "ledger.json"
LOCK = "lock.json"

def check(cfg: RunConfig, overrides: Sequence[str]) -> None:
    """What `compose` checks when a contest is chosen: the config itself, its lock, and that the run does not
    override the contest's declared ranking."""
    check_contest(contest_of(cfg))
    for item in overrides:
        key = item.partition("=")[0].lstrip("+~")
        if key in ("ranking", "missing_cells"):
            raise ConfigError(f"{key}: contest {contest_of(cfg).name} declares its ranking (contest.ranking.policy="
                              f"{contest_of(cfg).ranking.policy}, contest.ranking.missing={contest_of(cfg).ranking.missing});"
                              f" drop the {key}= override")
        if key.startswith("generation_caps"):
            raise ConfigError(f"{key}: contest {contest_of(cfg).name} declares its own generation caps "
                              f"(contest.generation_caps.max_new_tokens={contest_of(cfg).generation_caps.max_new_tokens}); "
                              f"drop the {key}= override")
    check_lock(cfg)


def state_dir(cfg: RunConfig) -> Path:
    return Path(cfg.paths.contests) / contest_of(cfg).name


def _flatten(data: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(data, dict):
        out: Dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(data, sort_keys=True)}


def check_lock(cfg: RunConfig) -> None:
    path = state_dir(cfg) / LOCK
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    if lock["sha256"] == contest_hash(cfg):
        if cfg.suite is not None:
            _check_suite_lock(cfg, path, lock)
        return
    old, new = _flatten(lock["config"]), _flatten(OmegaConf.to_container(cfg.contest, resolve=True))
    changed = [f"{k}: {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}" for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)]
    raise ConfigError(f"contest {contest_of(cfg).name} is locked ({path}, sha256 {lock['sha256'][:12]}…, locked at "
                      f"{lock['locked_at']} by its first accepted submission); the composed config differs: "
                      f"{'; '.join(changed)}. A locked contest cannot change; restore the locked values")


def write_lock(cfg: RunConfig, now: datetime) -> None:
    path = state_dir(cfg) / LOCK
    if not path.exists():
        atomic_write_text(path, dumps({"contest": contest_of(cfg).name, "sha256": contest_hash(cfg), "locked_at": iso(now),
                                       "config": OmegaConf.to_container(cfg.contest, resolve=True),
                                       "suites": {cfg.suite.name: suite_lock(cfg)} if cfg.suite is not None else {}}))


def suite_lock(cfg: RunConfig) -> Dict[str, Any]:
    """What the lock keeps of a suite the contest scores: the suite config, every composed task config, and the
    sha256 of each task's local data files."""
    tasks = {}
    for name, task in sorted(cfg.tasks.items()):
        config = as_dict(task)
        config["data_sha256"] = {p: sha256_file(f) if f.is_file() else None for p, f in data_files(task.data).items()}
        tasks[name] = config
    return {"suite": OmegaConf.to_container(cfg.suite, resolve=True), "tasks": tasks}


def _check_suite_lock(cfg: RunConfig, path: Path, lock: Dict[str, Any]) -> None:
    """The composed suite and its tasks against the lock; a suite the lock does not hold yet (a lock written
    before tasks were locked, a phase not yet composed since) is added to it, saying so."""
    suite, contest = suite_of(cfg).name, contest_of(cfg)
    if phase_for_suite(contest, suite) is None:
        return  # not scored by the contest: refused elsewhere with the schedule
    now = suite_lock(cfg)
    kept = lock.get("suites", {}).get(suite)
    if kept is None:
        lock.setdefault("suites", {})[suite] = now
        atomic_write_text(path, dumps(lock))
        print(f"contest {contest.name}: upgraded its lock ({path}) to hold suite {suite}'s config, its tasks' "
              f"composed configs and their data sha256; a later change to them is refused", file=sys.stderr)
        return
    problems = []
    for name in sorted(set(kept["tasks"]) | set(now["tasks"])):
        old, new = _flatten(kept["tasks"].get(name, {})), _flatten(now["tasks"].get(name, {}))
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if keys:
            problems.append(f"task {name}: {', '.join(keys)}")
    old, new = _flatten(kept["suite"]), _flatten(now["suite"])
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if keys:
        problems.append(f"suite {suite}: {', '.join(keys)}")
    if problems:
        raise ConfigError(f"contest {contest.name} is locked ({path}, locked at {lock['locked_at']}): what it "
                          f"scores differs from the locked configs and data: {'; '.join(problems)}. Restore the "
                          f"locked task configs and data files (a board must never mix cells scored both ways)")


def read_ledger(cfg: RunConfig) -> Dict[str, Any]:
    path = state_dir(cfg) / LEDGER
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"contest": contest_of(cfg).name, "entries": [], "selections": {}}


def _update_ledger(cfg: RunConfig, change) -> Any:
    """Read, change and write the ledger under a file lock (two submissions at once both land)."""
    folder = state_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".ledger.lock")):
        ledger = read_ledger(cfg)
        result = change(ledger)
        atomic_write_text(folder / LEDGER, dumps(ledger))
    return result


REMOVED = ("withdrawn", "disqualified")  # states an accepted entry can be put in (harness withdraw / disqualify)


def accepted(ledger: Dict[str, Any], phase: Optional[str] = None) -> List[Dict[str, Any]]:
    """The entries on the boards: accepted and neither withdrawn nor disqualified."""
    return [e for e in ledger["entries"] if e["state"] == "accepted" and (phase is None or e["phase"] == phase)]


def admitted(ledger: Dict[str, Any], phase: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every entry ever accepted, removed later or not: they keep their names and count against the limits."""
    return [e for e in ledger["entries"] if e["state"] in ("accepted", *REMOVED)
            and (phase is None or e["phase"] == phase)]


def removed(ledger: Dict[str, Any], phase: str) -> List[Dict[str, Any]]:
    """The phase's withdrawn and disqualified entries, as a board lists them (time and reason of the removal)."""
    return [{"name": e["name"], "team": e["team"], "state": e["state"], "at": e["removed_at"],
             "reason": e["removed_reason"]} for e in admitted(ledger, phase) if e["state"] in REMOVED]


def remove(cfg: Any, name: str, state: str, reason: str, now: datetime) -> Dict[str, Any]:
    """Withdraw (the team's wish) or disqualify (the organizer's ruling) an accepted entry: it leaves every board
    and the final selection, is listed under the board with the time and the reason, and still counts against its
    team's limits. Its records stay in the store."""
    if state not in REMOVED:
        raise ConfigError(f"state {state!r} is not valid; use one of {', '.join(REMOVED)}")
    if not reason.strip():
        raise ConfigError(f"{state} needs a reason: --reason TEXT (it is shown on the boards)")

    def change(ledger: Dict[str, Any]) -> Dict[str, Any]:
        entry = next((e for e in accepted(ledger) if e["name"] == name), None)
        if entry is None:
            names = ", ".join(e["name"] for e in accepted(ledger)) or "none"
            raise ConfigError(f"{name!r} is no accepted entry of contest {cfg.contest.name} (accepted: {names})")
        entry.update(state=state, removed_at=iso(now), removed_reason=" ".join(reason.split()))
        return dict(entry)

    return _update_ledger(cfg, change)


def failed(results: Path, name: str) -> bool:
    """Whether a submission's evaluation failed: any of its stored cells has a failure status."""
    for path in (Path(results) / name).glob("*.json"):
        try:
            if json.loads(path.read_text(encoding="utf-8"))["status"] in status.FAILED:
                return True
        except (json.JSONDecodeError, KeyError):
            continue
    return False


def counted(ledger: Dict[str, Any], results: Path, team: str, phase: str) -> List[Dict[str, Any]]:
    """The team's submissions that count against its limits: accepted in the phase and not failed (a submission
    not yet evaluated counts until its evaluation fails). Refused and invalid attempts never count."""
    return [e for e in admitted(ledger, phase) if e["team"] == team and not failed(results, e["name"])]


def final_selection(cfg: RunConfig, ledger: Dict[str, Any], phase: PhaseConfig, public_rank: Dict[str, Optional[int]]) -> Dict[str, Any]:
    """team -> {"names": [...], "rule": ...}: the submissions that count on the private board. `public_rank`
    maps submissions to their rank on the public board (None when unranked)."""
    selection = contest_of(cfg).selection
    results = Path(cfg.paths.results)
    out: Dict[str, Any] = {}
    teams = sorted({e["team"] for e in accepted(ledger, phase.name)})
    for team in teams:
        candidates = [e for e in counted(ledger, results, team, phase.name) if e["state"] == "accepted"]
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


def board_entries(cfg: RunConfig, ledger: Dict[str, Any], phase: PhaseConfig) -> Iterable[str]:
    """The names on a phase's public board: the baselines and every accepted submission of the phase."""
    return sorted(set(contest_of(cfg).baselines) | {e["name"] for e in accepted(ledger, phase.name)})


def run_folders(cfg: RunConfig, folders: Sequence[Path]) -> List[Path]:
    """The folders `harness run` evaluates in a contest: baselines and the phase's accepted submissions whose
    files are unchanged since acceptance (a changed one is skipped and named)."""
    phase = phase_for_suite(contest_of(cfg), suite_of(cfg).name)
    if phase is None:
        raise ConfigError(f"suite {suite_of(cfg).name} is scored by no phase of contest {contest_of(cfg).name} "
                          f"({schedule(contest_of(cfg))})")
    ledger = read_ledger(cfg)
    shas = {e["name"]: e["sha256"] for e in accepted(ledger, phase.name)}
    out: List[Path] = []
    skipped: List[Path] = []
    found: Set[str] = set()
    for folder in folders:
        try:
            name = load_submission(folder).name
        except SubmissionError:
            continue
        found.add(name)
        if name in contest_of(cfg).baselines:
            out.append(folder)
        elif name in shas:
            (out if submission_sha256(folder) == shas[name] else skipped).append(folder)
    gone = sorted(set(shas) - found)
    if gone:
        raise ConfigError(f"accepted entries of phase {phase.name} have no folder under {cfg.paths.submissions}: "
                          f"{', '.join(gone)}; an accepted entry is never deleted, it is withdrawn: "
                          f"harness withdraw NAME contest={contest_of(cfg).name} --reason TEXT (or disqualify)")
    if skipped:
        print(f"skipped (files changed since acceptance): {', '.join(str(f) for f in skipped)}", file=sys.stderr)
    return out
