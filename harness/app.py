"""The commands as plain functions (the library API): each composes nothing and prints nothing itself; it takes a
composed run config and returns what the command reports. `harness.cli` turns argv into these calls, prints their
results and maps errors to exit codes; tests and scripts call these directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from harness import status, store
from harness.board import freshness
from harness.compose import available, suite_tasks
from harness.config import PhaseConfig, RunConfig, TaskConfig, suite_of
from harness.contest import entries, ledger, rules
from harness.errors import ConfigError, SubmissionError
from harness.execution.cells import Record
from harness.execution.executors import evaluate_all
from harness.publish import readme
from harness.submission import discover, load_submission
from harness.validate import validate
from tasks import kind_of

Echo = Callable[[str], None]


@dataclass(frozen=True)
class BoardResult:
    folder: Path  # <paths.leaderboards>/<suite> (or its private/ part)
    written: bool  # False: the board was already what its inputs give, no file was rewritten
    readme_updated: Optional[str] = None  # the markdown file whose board block was replaced
    stale: Tuple[str, ...] = ()  # one line per stored record of an entry that no longer exists (never shown)

    @property
    def markdown(self) -> str:
        return (self.folder / "leaderboard.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class RunResult:
    records: List[Record]
    board: BoardResult
    refused: Sequence[Tuple[Path, str]] = ()  # folders not evaluated at all (a name already taken), with why

    @property
    def failed(self) -> List[Record]:
        return [r for r in self.records if r["status"] in status.FAILED]


def present_entries(cfg: RunConfig) -> Set[str]:
    """The entries a board outside a contest shows: every submission folder under paths.submissions (by its
    manifest's name; a folder whose manifest does not load, by the folder's name, as its records are)."""
    names = set()
    for folder in discover(cfg.paths.submissions):
        try:
            names.add(load_submission(folder).name)
        except SubmissionError:
            names.add(folder.name)
    return names


def stale_records(cfg: RunConfig, tasks: Dict[str, TaskConfig], entries: Set[str]) -> Tuple[str, ...]:
    """A line for each stored record of the suite's tasks whose entry does not exist (`entries`)."""
    results = Path(cfg.paths.results)
    return tuple(f"stale record (no entry {path.parent.name!r} under {cfg.paths.submissions}; not shown, not "
                 f"deleted): {path}" for path in sorted(results.glob("*/*.json"))
                 if path.stem in tasks and path.parent.name not in entries)


def _board_entries(cfg: RunConfig) -> Tuple[Optional[Set[str]], Set[str]]:
    """(the entries to show, None in a contest: its ledger decides; the entries whose records are not stale)."""
    if cfg.contest is None:
        present = present_entries(cfg)
        return present, present
    phase = rules.phase_for_suite(cfg.contest, suite_of(cfg).name)
    entries = ledger.read_ledger(cfg)
    known = set(cfg.contest.baselines) | {e["name"] for e in ledger.admitted(entries)}
    return None, known if phase is not None else set()


def check_store(cfg: RunConfig, tasks: Dict[str, TaskConfig]) -> None:
    """A board is built from sound records only: damaged ones (of the suite's tasks) stop it, named, unless the
    organizer publishes with them shown as missing (`allow_damaged=true`)."""
    _, damaged = store.read_store(Path(cfg.paths.results))
    damaged = [name for name in damaged if Path(name).stem in tasks]
    if damaged and not cfg.allow_damaged:
        shown = ", ".join(damaged[:10]) + (f" and {len(damaged) - 10} more" if len(damaged) > 10 else "")
        raise ConfigError(f"paths.results: {len(damaged)} damaged record(s) in {cfg.paths.results}: {shown}; "
                          f"`harness run` computes them again, or publish with allow_damaged=true to show them as "
                          f"missing")


def _board_writer() -> Any:
    """harness.board.write, imported on first use: pandas, numpy and matplotlib load only when a board is really
    written (a no-op run and `harness --help` never need them)."""
    from harness.board import write

    return write


def write_board(cfg: RunConfig, tasks: Dict[str, TaskConfig]) -> BoardResult:
    """Writes the suite's public board unless it is already what these inputs give; refreshes `cfg.readme`.
    A board or README that cannot be written is a ConfigError (exit 2) naming it; what was there is left whole."""
    check_store(cfg, tasks)
    try:
        return _write_board(cfg, tasks)
    except OSError as e:
        where = e.filename or cfg.paths.leaderboards
        raise ConfigError(f"paths.leaderboards: cannot write the {suite_of(cfg).name} board ({where}): "
                          f"{e.strerror or e}; nothing was replaced") from e


def _write_board(cfg: RunConfig, tasks: Dict[str, TaskConfig]) -> BoardResult:
    folder = Path(cfg.paths.leaderboards) / suite_of(cfg).name
    shown, known = _board_entries(cfg)
    key = freshness.board_key(cfg, tasks, folder, shown)
    written = not freshness.is_fresh(folder, key)  # a board built from these very inputs is left as it is
    if written:
        _board_writer().write_public(cfg, tasks, shown)  # intervals, tiers, the contest's part and entries, history
        freshness.remember(folder, key)
    freshness.keep_index(folder)
    updated = None
    if cfg.readme:
        markdown = (folder / "leaderboard.md").read_text(encoding="utf-8")
        updated = cfg.readme if readme.update_readme(Path(cfg.readme), suite_of(cfg).name, markdown) else None
    return BoardResult(folder, written, updated, stale_records(cfg, tasks, known))


def unique_names(folders: Sequence[Path]) -> Tuple[List[Path], List[Tuple[Path, str]]]:
    """(the folders to evaluate, the refused ones with why): of folders whose manifests share a name, the first
    by path is kept; a later one is refused and gets no record (under the shared name it would replace the kept
    entry's cells)."""
    seen: Dict[str, Path] = {}
    kept, refused = [], []
    for folder in sorted(folders):
        try:
            name = load_submission(folder).name
        except SubmissionError:
            kept.append(folder)  # reported as the entry's invalid cells
            continue
        if name in seen:
            refused.append((folder, f"{folder}/submission.yaml: name {name!r} is already used by {seen[name]}; "
                                    f"submission names must be unique (this folder is not evaluated)"))
            continue
        seen[name] = folder
        kept.append(folder)
    return kept, refused


def run(cfg: RunConfig, echo: Echo) -> RunResult:
    """`harness run`: every submission on every task of the suite, then the board."""
    tasks = suite_tasks(cfg)
    folders = discover(cfg.paths.submissions)
    if not folders:
        raise ConfigError(f"paths.submissions: no submission folders (with submission.yaml) under "
                          f"{cfg.paths.submissions!r}")
    folders, refused = unique_names(folders)
    for _, why in refused:
        echo(f"refused: {why}")
    if cfg.contest is not None:  # a contest scores its baselines and accepted submissions only
        folders = ledger.run_folders(cfg, folders)
    records = evaluate_all(cfg, tasks, folders, echo=echo)
    return RunResult(records, write_board(cfg, tasks), refused)


def evaluate(cfg: RunConfig, echo: Echo) -> Record:
    """`harness evaluate`: one submission on one task; its record (stored)."""
    if cfg.submission is None or cfg.task is None:
        raise ConfigError("evaluate needs submission=DIR and task=NAME "
                          f"(tasks: {', '.join(available('task'))})")
    folder = Path(cfg.submission)
    if not folder.is_dir():
        raise ConfigError(f"submission: {cfg.submission!r} is not a folder")
    kind_of(cfg.task)  # an unknown kind is a config error before anything runs
    [record] = evaluate_all(cfg, {cfg.task.name: cfg.task}, [folder], echo=echo)
    return record


def leaderboard(cfg: RunConfig) -> BoardResult:
    """`harness leaderboard`: the suite's board from stored records only (no model is loaded)."""
    return write_board(cfg, suite_tasks(cfg))


def validate_entry(folder: Path, cfg: RunConfig) -> Dict[str, Any]:
    """`harness validate`: the organizer's checks and a sample run; the report."""
    return validate(folder, cfg, suite_tasks(cfg))


def submit(folder: Path, cfg: RunConfig, now: datetime) -> Dict[str, Any]:
    """`harness submit`: validated, timed with the harness's clock, counted against the team's limits."""
    return entries.submit(folder, cfg, suite_tasks(cfg), now)


def select(cfg: RunConfig, names: Sequence[str], now: datetime) -> Dict[str, Any]:
    return entries.select(cfg, names, now)


def remove(cfg: RunConfig, name: str, state: str, reason: str, now: datetime) -> Dict[str, Any]:
    """`harness withdraw` / `harness disqualify`: the ledger puts an accepted entry in that state."""
    return ledger.remove(cfg, name, state, reason, now)


def reveal(cfg: RunConfig, phase: PhaseConfig, now: datetime) -> Dict[str, Any]:
    """`harness reveal`: the private board of a phase that has ended; returns the final selection."""
    return _board_writer().reveal(cfg, suite_tasks(cfg), phase, now)
