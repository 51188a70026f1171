"""The participant's contest commands as plain functions: `submit` (validate, check the team's limits, record in
the ledger with the harness's clock, install the entry) and `select` (a team's final choice)."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness.config import PhaseConfig, RunConfig, TaskConfig, contest_of, suite_of
from harness.contest.ledger import _update_ledger, accepted, admitted, counted, failed, read_ledger, write_lock
from harness.contest.rules import iso, open_phase, parse_time, phase_for_suite, phase_named, schedule
from harness.errors import SubmissionError
from harness.submission import Submission, load_submission, submission_sha256
from harness.validate import validate


def _limit_refusal(phase: PhaseConfig, entries: List[Dict[str, Any]], now: datetime) -> Optional[str]:
    today = [e for e in entries if parse_time(e["at"], "at").date() == now.date()]
    if phase.limits.per_day is not None and len(today) >= phase.limits.per_day:
        resets = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
        return (f"daily limit reached: {len(today)} of {phase.limits.per_day} counted submissions today (UTC); "
                f"the next is possible from {iso(resets)}")
    if phase.limits.total is not None and len(entries) >= phase.limits.total:
        return f"total limit reached: {len(entries)} of {phase.limits.total} counted submissions in phase {phase.name}"
    return None


def _refusal(cfg: RunConfig, ledger: Dict[str, Any], phase: PhaseConfig, submission: Submission, sha: str, now: datetime) -> Optional[str]:
    contest, manifest = contest_of(cfg), submission.manifest
    if contest.teams and manifest.team not in contest.teams:
        return f"team {manifest.team!r} is not registered in contest {contest.name} (teams: {', '.join(contest.teams)})"
    if manifest.name in contest.baselines or any(e["name"] == manifest.name for e in admitted(ledger)):
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


def submit(folder: Path, cfg: RunConfig, tasks: Dict[str, TaskConfig], now: datetime) -> Dict[str, Any]:
    """Validate the entry in `folder` for the phase open at `now` and, when it passes and the team is within its
    limits, accept it: the ledger records it with `now` as its acceptance time and the entry is copied into
    paths.submissions. Returns the outcome (state accepted | refused | invalid, reason, report)."""
    phase = phase_for_suite(contest_of(cfg), suite_of(cfg).name)
    outcome: Dict[str, Any] = {"name": Path(folder).name, "team": None, "phase": phase.name if phase else None,
                               "at": iso(now), "state": "refused", "reason": "", "sha256": None}
    report = None
    if phase is None or open_phase(contest_of(cfg), now) is not phase:
        outcome["reason"] = f"no phase of contest {contest_of(cfg).name} is open for suite {suite_of(cfg).name} at " \
                            f"{iso(now)} ({schedule(contest_of(cfg))})"
    else:
        report = validate(Path(folder), cfg, tasks)
        if not report["accepted"]:
            outcome.update(state="invalid", reason="; ".join(c["detail"] or c["check"] for c in report["checks"]
                                                             if not c["ok"]))
    if phase is not None and report is not None and report["accepted"]:  # a report exists only in an open phase
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


def select(cfg: RunConfig, names: Sequence[str], now: datetime) -> Dict[str, Any]:
    """Record a team's final choice of up to `selection.max` of its accepted submissions (rule `chosen`)."""
    contest = contest_of(cfg)
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
