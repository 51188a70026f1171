"""`harness COMMAND [OVERRIDE ...]`: a thin entry point. The work is in plain functions tests call directly.

Configs are composed with Hydra's compose API, so nothing is written to `outputs/` or `.hydra/`, paths stay
relative to the current directory, and overrides use Hydra's `key=value` grammar.
Exit codes: 0 ok; 1 a submission was rejected or (with fail_on_error=true) a cell failed; 2 usage or config error.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness.errors import ConfigError, HarnessError

COMMANDS = {
    "run": "evaluate every submission on every task of a suite, then write the leaderboard",
    "evaluate": "evaluate one submission on one task (submission=DIR task=NAME) and print its scores",
    "leaderboard": "rebuild a suite's leaderboard from stored records only (no model is loaded)",
    "validate": "check a submission folder (DIR [suite=NAME] [--json]) the way the organizer will",
    "submit": "enter a submission into a contest (DIR contest=NAME): validated, timed, counted against limits",
    "select": "record a team's final choice (NAME [NAME ...] contest=NAME), for selection rule 'chosen'",
    "reveal": "organizer: write the private board of a phase that has ended ([PHASE] contest=NAME)",
}
DEFAULT_SEARCHPATH = "pkg://tasks"


def _with_default_searchpath(overrides: Sequence[str]) -> List[str]:
    """A user's `hydra.searchpath=[...]` adds folders; the shipped tasks stay available."""
    out = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.lstrip("+") == "hydra.searchpath" and DEFAULT_SEARCHPATH not in value:
            inner = value.strip().removeprefix("[").removesuffix("]").strip()
            value = f"[{DEFAULT_SEARCHPATH}" + (f",{inner}]" if inner else "]")
            item = f"{key}={value}"
        out.append(item)
    return out


def compose(overrides: Sequence[str]) -> Any:
    """The run config for these overrides. Raises ConfigError with Hydra's message (key and value named)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from harness.config import parse_batch_size, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("harness.conf", version_base="1.3"):
            cfg = hydra_compose("config", overrides=_with_default_searchpath(overrides))
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        cause = f"\n  {e.__cause__}" if e.__cause__ and str(e.__cause__) not in str(e) else ""
        raise ConfigError(f"config error: {_explain(str(e) + cause)}") from e
    try:
        parse_batch_size(cfg.batch_size)
    except ValueError as e:
        raise ConfigError(f"config error: {e}") from e
    if cfg.contest is not None:  # checked beyond its types, and against its lock
        from harness import contest

        contest.check(cfg, overrides)
    return cfg


def _explain(message: str) -> str:
    """Hydra's message, with a typo'd key answered by the closest valid keys instead of the advice to append it
    with `+`, and without the search-path listing (the options are already named)."""
    import dataclasses
    import difflib
    import re

    from harness import config

    message = message.split("\nConfig search path:")[0].rstrip()
    unknown = re.search(r"Could not override '([^']+)'.*?Key '([^']+)' not in '(\w+)'", message, re.S)
    schema = getattr(config, unknown.group(3), None) if unknown else None
    if schema is None or not dataclasses.is_dataclass(schema):
        return message
    key, name = unknown.group(1), unknown.group(2)
    valid = [f.name for f in dataclasses.fields(schema)]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{key}: unknown key {name!r}{hint}; valid keys here: {', '.join(valid)}"


def available(group: str, overrides: Sequence[str] = ()) -> List[str]:
    """Config names in a group (task, suite) across the search path: the shipped tasks plus user folders."""
    from importlib import resources

    roots = [DEFAULT_SEARCHPATH]
    for item in _with_default_searchpath(overrides):
        key, _, value = item.partition("=")
        if key.lstrip("+") == "hydra.searchpath":
            roots = [p.strip().strip("'\"") for p in value.strip().strip("[]").split(",") if p.strip()]
    roots.append("pkg://harness/conf")  # the primary config module (the contest group lives there)
    names = set()
    for root in roots:
        if root.startswith("pkg://"):
            package, _, sub = root[len("pkg://"):].partition("/")
            try:
                folder = resources.files(package.replace("/", "."))
            except ModuleNotFoundError:
                continue
            folder = folder.joinpath(sub, group) if sub else folder.joinpath(group)
        else:
            folder = Path(root.removeprefix("file://")) / group
        if folder.is_dir():
            names.update(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml"))
    return sorted(names)


def usage(command: Optional[str] = None, overrides: Sequence[str] = ()) -> str:
    lines = ["usage: harness COMMAND [OVERRIDE ...]", ""]
    commands = [command] if command in COMMANDS else list(COMMANDS)
    lines += [f"  {name:<12} {COMMANDS[name]}" for name in commands]
    lines += ["", "examples:",
              "  harness run suite=demo",
              "  harness evaluate submission=submissions/tiny-gpt2 task=demo_translation",
              "  harness leaderboard suite=demo",
              "  harness validate submissions/tiny-gpt2 suite=demo --json",
              "  harness submit my-entry contest=demo_contest; harness select my-entry contest=demo_contest",
              "  harness reveal contest=demo_contest", "",
              "config groups:",
              f"  suite  (suite=NAME): {', '.join(available('suite', overrides))}",
              f"  task   (task=NAME):  {', '.join(available('task', overrides))}",
              f"  contest (contest=NAME): {', '.join(available('contest', overrides)) or '(none)'}",
              f"  executor (executor=NAME): {', '.join(available('executor', overrides))}", "",
              "main settings (override with key=value): paths.submissions, paths.results, paths.leaderboards,",
              "  device (auto|cpu|cuda), batch_size (N|auto|auto:N), seed,",
              "  ranking (mean_normalized|mean_rank|borda|win_rate), missing_cells (worst|unranked), fail_on_error,",
              "  generation_caps.max_new_tokens (how far a submission may raise a task's token budget),",
              "  allow_remote_code, progress, readme=FILE (replace the board's marked block in FILE);",
              "  any task field: tasks.NAME.FIELD=... (suites) or task.FIELD=...;",
              "  more task folders: hydra.searchpath=[file://my_tasks]"]
    return "\n".join(lines)


def suite_tasks(cfg: Any) -> Dict[str, Any]:
    from tasks import kind_of

    if cfg.suite is None:
        raise ConfigError(f"choose a suite: suite=NAME (available: {', '.join(available('suite'))})")
    if not cfg.tasks:
        raise ConfigError(f"suite {cfg.suite.name!r} names no tasks")
    for task in cfg.tasks.values():
        kind_of(task)
    return dict(cfg.tasks)


def _write_board(cfg: Any, tasks: Dict[str, Any]) -> bool:
    """Writes the suite's public board unless it is already what these inputs give; True when it was written."""
    from harness import freshness

    folder = Path(cfg.paths.leaderboards) / cfg.suite.name
    key = freshness.board_key(cfg, tasks)
    written = not freshness.is_fresh(folder, key)  # a board built from these very inputs is left as it is
    if written:
        from harness import boards

        boards.write_public(cfg, tasks)  # intervals, tiers, the contest's part and entries, history
        freshness.remember(folder, key)
    if cfg.readme:
        from harness import publish

        markdown = (Path(cfg.paths.leaderboards) / cfg.suite.name / "leaderboard.md").read_text(encoding="utf-8")
        if publish.update_readme(Path(cfg.readme), cfg.suite.name, markdown):
            print(f"updated the {cfg.suite.name} board in {cfg.readme}", file=sys.stderr)
    return written


def _say_board(folder: Path, written: bool) -> None:
    if written:
        print(f"wrote {folder}/leaderboard.md, .csv, .json, index.html", file=sys.stderr)
    else:
        print(f"{folder}/ is up to date: its records, data and config did not change (no file rewritten)",
              file=sys.stderr)


def cmd_run(overrides: Sequence[str]) -> int:
    from harness.runner import FAILED, evaluate_all
    from harness.submission import discover

    cfg = compose(overrides)
    tasks = suite_tasks(cfg)
    folders = discover(cfg.paths.submissions)
    if not folders:
        raise ConfigError(f"paths.submissions: no submission folders (with submission.yaml) under "
                          f"{cfg.paths.submissions!r}")
    _check_unique_names(folders)
    if cfg.contest is not None:  # a contest scores its baselines and accepted submissions only
        from harness.contest import run_folders

        folders = run_folders(cfg, folders)
    records = evaluate_all(cfg, tasks, folders, echo=lambda m: print(m, file=sys.stderr))
    written = _write_board(cfg, tasks)
    out = Path(cfg.paths.leaderboards) / cfg.suite.name
    print((out / "leaderboard.md").read_text(encoding="utf-8"))
    _say_board(out, written)
    failed = [r for r in records if r["status"] in FAILED]
    for record in failed:
        print(f"failed: {record['submission']} on {record['task']}: {record['status']}: {record['reason']}",
              file=sys.stderr)
    return 1 if failed and cfg.fail_on_error else 0


def _check_unique_names(folders: Sequence[Path]) -> None:
    from harness.errors import SubmissionError
    from harness.submission import load_submission

    seen: Dict[str, Path] = {}
    for folder in folders:
        try:
            name = load_submission(folder).name
        except SubmissionError:
            continue  # reported as the entry's invalid cells
        if name in seen:
            raise ConfigError(f"{folder}/submission.yaml: name {name!r} is already used by {seen[name]}; "
                              f"submission names must be unique")
        seen[name] = folder


def cmd_evaluate(overrides: Sequence[str]) -> int:
    from harness.runner import evaluate_all

    cfg = compose(overrides)
    if cfg.submission is None or cfg.task is None:
        raise ConfigError("evaluate needs submission=DIR and task=NAME "
                          f"(tasks: {', '.join(available('task'))})")
    folder = Path(cfg.submission)
    if not folder.is_dir():
        raise ConfigError(f"submission: {cfg.submission!r} is not a folder")
    from tasks import kind_of

    kind_of(cfg.task)
    [record] = evaluate_all(cfg, {cfg.task.name: cfg.task}, [folder], echo=lambda m: print(m, file=sys.stderr))
    print(f"{record['submission']} on {record['task']}: {record['status']}"
          + (f" ({record['reason']})" if record["reason"] else ""))
    for name, value in sorted(record["scores"].items()):
        arrow = "↑" if record["higher_is_better"][name] else "↓"
        print(f"  {name:<16} {value:10.4f} {arrow}")
    for metric, signature in sorted(record["signatures"].items()):
        print(f"  signature {metric}: {signature}")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(record["counts"].items()))
    if counts:
        print(f"  counts: {counts}")
    return 0 if record["status"] in ("ok", "n/a", "not-submitted") else 1


def cmd_leaderboard(overrides: Sequence[str]) -> int:
    cfg = compose(overrides)
    tasks = suite_tasks(cfg)
    written = _write_board(cfg, tasks)
    out = Path(cfg.paths.leaderboards) / cfg.suite.name
    print((out / "leaderboard.md").read_text(encoding="utf-8"))
    _say_board(out, written)
    return 0


def cmd_validate(args: Sequence[str]) -> int:
    from harness.validate import print_report, validate

    as_json = "--json" in args
    rest = [a for a in args if a != "--json"]
    positional = [a for a in rest if "=" not in a]
    if len(positional) != 1:
        raise ConfigError("validate needs exactly one submission folder: harness validate DIR [suite=NAME] [--json]")
    overrides = [a for a in rest if "=" in a]
    if not any(o.startswith("suite=") for o in overrides):
        overrides.append("suite=demo")
    cfg = compose(overrides)
    report = validate(Path(positional[0]), cfg, suite_tasks(cfg))
    print_report(report, as_json)
    return 0 if report["accepted"] else 1


def _contest_overrides(args: Sequence[str], command: str, shape: str) -> tuple:
    """(positional arguments, overrides) of a contest command; a contest must be named."""
    overrides = [a for a in args if "=" in a]
    if not any(o.startswith("contest=") for o in overrides):
        raise ConfigError(f"{command} needs a contest: harness {command} {shape} contest=NAME "
                          f"(contests: {', '.join(available('contest', overrides)) or 'none'})")
    return [a for a in args if "=" not in a], overrides


def cmd_submit(args: Sequence[str]) -> int:
    from harness import contest
    from harness.validate import print_report

    positional, overrides = _contest_overrides(args, "submit", "DIR")
    if len(positional) != 1 or not Path(positional[0]).is_dir():
        raise ConfigError(f"submit needs exactly one submission folder: harness submit DIR contest=NAME (got "
                          f"{' '.join(positional) or 'none'})")
    now = contest.utc_now()  # the harness's clock, never a time from the manifest
    cfg = compose(overrides)
    phase = contest.open_phase(cfg.contest, now)
    if phase is not None and not any(o.startswith("suite=") for o in overrides):
        cfg = compose(overrides + [f"suite={phase.suite}"])
    if cfg.suite is None:
        cfg = compose(overrides + [f"suite={cfg.contest.phases[0].suite}"])  # closed: refused below, and recorded
    outcome = contest.submit(Path(positional[0]), cfg, suite_tasks(cfg), now)
    if outcome["report"] is not None and outcome["state"] == "invalid":
        print_report(outcome["report"], False)
    if outcome["state"] != "accepted":
        print(f"harness submit: {outcome['state']}: {outcome['reason']} (not counted against the team's limits)",
              file=sys.stderr)
        return 1
    limits = phase.limits
    print(f"accepted {outcome['name']} (team {outcome['team']}) in phase {outcome['phase']} at {outcome['at']}; "
          f"{outcome['counted']} counted submission(s) in the phase (limits: {limits.per_day or 'no limit'} a day, "
          f"{limits.total or 'no limit'} in total); it is scored by the next `harness run suite={phase.suite} "
          f"contest={cfg.contest.name}`")
    return 0


def cmd_select(args: Sequence[str]) -> int:
    from harness import contest

    names, overrides = _contest_overrides(args, "select", "NAME [NAME ...]")
    cfg = compose(overrides)
    choice = contest.select(cfg, names, contest.utc_now())
    print(f"team {choice['team']} chose {', '.join(choice['names'])} for phase {choice['phase']} at {choice['at']}")
    return 0


def cmd_reveal(args: Sequence[str]) -> int:
    from harness import boards, contest

    positional, overrides = _contest_overrides(args, "reveal", "[PHASE]")
    cfg = compose(overrides)
    hidden = [p for p in cfg.contest.phases if p.split == "public"]
    if len(positional) > 1 or (not positional and len(hidden) != 1):
        raise ConfigError(f"reveal needs the phase: harness reveal PHASE contest={cfg.contest.name} (phases with a "
                          f"private part: {', '.join(p.name for p in hidden) or 'none'})")
    phase = contest.phase_named(cfg.contest, positional[0]) if positional else hidden[0]
    cfg = compose([o for o in overrides if not o.startswith("suite=")] + [f"suite={phase.suite}"])
    selection = boards.reveal(cfg, suite_tasks(cfg), phase, contest.utc_now())
    out = Path(cfg.paths.leaderboards) / phase.suite / "private"
    print((out / "leaderboard.md").read_text(encoding="utf-8"))
    print(f"wrote {out}/leaderboard.md, .csv, .json, index.html ({len(selection)} team(s) selected)", file=sys.stderr)
    return 0


HANDLERS = {"run": cmd_run, "evaluate": cmd_evaluate, "leaderboard": cmd_leaderboard, "validate": cmd_validate,
            "submit": cmd_submit, "select": cmd_select, "reveal": cmd_reveal}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in HANDLERS:
        print(f"harness: unknown command {command!r}; use one of {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr)
        return 2
    if "-h" in rest or "--help" in rest:
        print(usage(command, [a for a in rest if "=" in a]))
        return 0
    try:
        return HANDLERS[command](rest)
    except HarnessError as e:
        print(f"harness {command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; finished cells are stored, the next run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
