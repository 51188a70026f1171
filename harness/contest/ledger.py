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
from typing import Any, Dict, Iterable, List, Optional, Sequence

from filelock import FileLock
from omegaconf import OmegaConf

from harness import status
from harness.config import PhaseConfig, RunConfig, contest_of, suite_of
from harness.contest.rules import (
    check_contest,
    contest_hash,
    iso,
    phase_for_suite,
    schedule,
)
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
                                       "config": OmegaConf.to_container(cfg.contest, resolve=True)}))


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


def accepted(ledger: Dict[str, Any], phase: Optional[str] = None) -> List[Dict[str, Any]]:
    return [e for e in ledger["entries"] if e["state"] == "accepted" and (phase is None or e["phase"] == phase)]


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
    return [e for e in accepted(ledger, phase) if e["team"] == team and not failed(results, e["name"])]


def final_selection(cfg: RunConfig, ledger: Dict[str, Any], phase: PhaseConfig, public_rank: Dict[str, Optional[int]]) -> Dict[str, Any]:
    """team -> {"names": [...], "rule": ...}: the submissions that count on the private board. `public_rank`
    maps submissions to their rank on the public board (None when unranked)."""
    selection = contest_of(cfg).selection
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
    for folder in folders:
        try:
            name = load_submission(folder).name
        except SubmissionError:
            continue
        if name in contest_of(cfg).baselines:
            out.append(folder)
        elif name in shas:
            (out if submission_sha256(folder) == shas[name] else skipped).append(folder)
    if skipped:
        print(f"skipped (files changed since acceptance): {', '.join(str(f) for f in skipped)}", file=sys.stderr)
    return out
