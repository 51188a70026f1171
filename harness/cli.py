"""`harness COMMAND [OVERRIDE ...]`: a thin entry point. The work is in plain functions tests call directly.

Configs are composed with Hydra's compose API, so nothing is written to `outputs/` or `.hydra/`, paths stay
relative to the current directory, and overrides use Hydra's `key=value` grammar.
Exit codes: 0 ok; 1 a submission was rejected or (with fail_on_error=true) a cell failed; 2 usage or config error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from harness import __version__, app, status
from harness.board.policies import MISSING_RULES, POLICIES
from harness.compose import available, compose
from harness.config import contest_of
from harness.contest import rules
from harness.errors import ConfigError, HarnessError
from harness.models import BACKENDS
from harness.validate import print_report

COMMANDS = {
    "run": "evaluate every submission on every task of a suite, then write the leaderboard",
    "evaluate": "evaluate one submission on one task (submission=DIR task=NAME) and print its scores",
    "leaderboard": "rebuild a suite's leaderboard from stored records only (no model is loaded)",
    "validate": "check a submission folder (DIR [suite=NAME] [--json]) the way the organizer will",
    "submit": "enter a submission into a contest (DIR contest=NAME): validated, timed, counted against limits",
    "select": "record a team's final choice (NAME [NAME ...] contest=NAME), for selection rule 'chosen'",
    "reveal": "organizer: write the private board of a phase that has ended ([PHASE] contest=NAME)",
    "withdraw": "take an accepted entry off the boards at its team's wish (NAME contest=NAME --reason TEXT)",
    "disqualify": "organizer: take an accepted entry off the boards (NAME contest=NAME --reason TEXT)",
}


# Each command's own arguments (before or after its KEY=VALUE overrides): (name, argparse keywords).
ARGUMENTS: Dict[str, List[tuple]] = {
    "validate": [("DIR", {"help": "the submission folder to check"}),
                 ("--json", {"action": "store_true", "help": "print the report as JSON"})],
    "submit": [("DIR", {"help": "the submission folder to enter (contest=NAME is required)"})],
    "select": [("NAME", {"nargs": "+", "help": "up to selection.max accepted submissions of one team"})],
    "reveal": [("PHASE", {"nargs": "?", "help": "the phase whose private board to write (default: the one with a "
                                                "private part)"})],
    "withdraw": [("NAME", {"help": "an accepted submission of the contest"}),
                 ("--reason", {"required": True, "metavar": "TEXT", "help": "why (shown on the boards)"})],
    "disqualify": [("NAME", {"help": "an accepted submission of the contest"}),
                   ("--reason", {"required": True, "metavar": "TEXT", "help": "why (shown on the boards)"})],
}


def command_parser(command: str, overrides: Sequence[str] = ()) -> argparse.ArgumentParser:
    """`harness COMMAND --help`: the command's arguments and options, then the settings overrides can change."""
    parser = argparse.ArgumentParser(prog=f"harness {command}", description=COMMANDS[command],
                                     epilog=usage(command, overrides).split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, keywords in ARGUMENTS.get(command, []):
        parser.add_argument(name, **keywords)
    parser.add_argument("--cfg", choices=["job"], help="print the composed config (Hydra's --cfg job) and exit")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="Hydra overrides: suite=NAME, task=NAME, contest=NAME, paths.results=DIR, "
                             "retries=N, retry_failed=true, tasks.NAME.FIELD=..., ... (see below)")
    return parser


def print_cfg(args: Sequence[str]) -> int:
    """`--cfg job`: the composed run config as YAML, as `python app.py --cfg job` prints it in a Hydra app."""
    from omegaconf import OmegaConf  # imported with hydra by compose

    at = list(args).index("--cfg")
    if at + 1 >= len(args) or args[at + 1] != "job":
        raise ConfigError("--cfg takes `job` (the composed run config); hydra's own config is not composed here")
    print(OmegaConf.to_yaml(compose([a for a in args if "=" in a])), end="")
    return 0


def usage(command: Optional[str] = None, overrides: Sequence[str] = ()) -> str:
    lines = ["usage: harness [--version] COMMAND [--help] [ARGUMENTS] [--cfg job] [KEY=VALUE ...]", ""]
    commands = [command] if command in COMMANDS else list(COMMANDS)
    lines += [f"  {name:<12} {COMMANDS[name]}" for name in commands]
    lines += ["", "examples:",
              "  harness run suite=demo",
              "  harness run suite=demo_zh            # the Chinese demo (tasks declare `language:`)",
              "  harness evaluate submission=submissions/tiny-gpt2 task=demo_translation",
              "  harness leaderboard suite=demo",
              "  harness validate submissions/tiny-gpt2 suite=demo --json",
              "  harness submit my-entry contest=demo_contest; harness select my-entry contest=demo_contest",
              "  harness reveal contest=demo_contest", "",
              "config groups:",
              f"  suite  (suite=NAME): {', '.join(available('suite', overrides))}",
              f"  task   (task=NAME):  {', '.join(available('task', overrides))}",
              f"  contest (contest=NAME): {', '.join(available('contest', overrides)) or '(none)'}",
              f"  executor (executor=NAME): {', '.join(available('executor', overrides))}",
              f"  backend (backend=NAME): {', '.join(BACKENDS)}", "",
              "main settings (override with key=value): paths.submissions, paths.results, paths.leaderboards,",
              "  device (auto|cpu|cuda), batch_size (N|auto|auto:N), seed,",
              f"  ranking ({'|'.join(POLICIES)}), missing_cells ({'|'.join(MISSING_RULES)}), fail_on_error,",
              "  generation_caps.max_new_tokens (how far a submission may raise a task's token budget),",
              "  allow_remote_code, progress, readme=FILE (replace the board's marked block in FILE),",
              "  retries (attempts for timeout / out-of-memory / crashed cells, default 2), retry_failed=true;",
              "  limits: max_submission_bytes, max_file_bytes, scoring_budget_s, job_memory_bytes;",
              "  allow_damaged (publish a board with damaged stored records shown as missing);",
              "  any task field: tasks.NAME.FIELD=... (suites) or task.FIELD=...;",
              "  more task folders: hydra.searchpath=[file://my_tasks]"]
    return "\n".join(lines)


def _say_board(board: app.BoardResult) -> None:
    print(board.markdown)
    for line in board.stale:
        print(line, file=sys.stderr)
    if board.readme_updated:
        print(f"updated the {board.folder.name} board in {board.readme_updated}", file=sys.stderr)
    if board.written:
        print(f"wrote {board.folder}/leaderboard.md, .csv, .json, index.html", file=sys.stderr)
    else:
        print(f"{board.folder}/ is up to date: its records, data and config did not change (no file rewritten)",
              file=sys.stderr)


def _echo(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_run(overrides: Sequence[str]) -> int:
    cfg = compose(overrides)
    result = app.run(cfg, _echo)
    _say_board(result.board)
    for record in result.failed:
        print(f"failed: {record['submission']} on {record['task']}: {record['status']}: {record['reason']}",
              file=sys.stderr)
    for folder, why in result.refused:
        print(f"refused folder: {folder}: {why}", file=sys.stderr)
    return 1 if (result.failed or result.refused) and cfg.fail_on_error else 0


def cmd_evaluate(overrides: Sequence[str]) -> int:
    record = app.evaluate(compose(overrides), _echo)
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
    return 0 if record["status"] in status.ACCEPTED else 1


def cmd_leaderboard(overrides: Sequence[str]) -> int:
    _say_board(app.leaderboard(compose(overrides)))
    return 0


def cmd_validate(args: Sequence[str]) -> int:
    as_json = "--json" in args
    rest = [a for a in args if a != "--json"]
    positional = [a for a in rest if "=" not in a]
    if len(positional) != 1:
        raise ConfigError("validate needs exactly one submission folder: harness validate DIR [suite=NAME] [--json]")
    overrides = [a for a in rest if "=" in a]
    if not any(o.startswith("suite=") for o in overrides):
        overrides.append(_validate_suite(overrides))
    cfg = compose(overrides)
    report = app.validate_entry(Path(positional[0]), cfg)
    print_report(report, as_json)
    return 0 if report["accepted"] else 1


def _validate_suite(overrides: List[str]) -> str:
    """The suite `validate` checks against when none is named: a contest's open phase's, else demo."""
    if not any(o.startswith("contest=") for o in overrides):
        return "suite=demo"
    contest = contest_of(compose(overrides))
    phase = rules.open_phase(contest, rules.utc_now())
    if phase is None:
        raise ConfigError(f"no phase of contest {contest.name} is open now ({rules.schedule(contest)}); "
                          f"name the suite to validate against: suite=NAME")
    return f"suite={phase.suite}"


def _contest_overrides(args: Sequence[str], command: str, shape: str) -> tuple:
    """(positional arguments, overrides) of a contest command; a contest must be named."""
    overrides = [a for a in args if "=" in a]
    if not any(o.startswith("contest=") for o in overrides):
        raise ConfigError(f"{command} needs a contest: harness {command} {shape} contest=NAME "
                          f"(contests: {', '.join(available('contest', overrides)) or 'none'})")
    return [a for a in args if "=" not in a], overrides


def cmd_submit(args: Sequence[str]) -> int:
    positional, overrides = _contest_overrides(args, "submit", "DIR")
    if len(positional) != 1 or not Path(positional[0]).is_dir():
        raise ConfigError(f"submit needs exactly one submission folder: harness submit DIR contest=NAME (got "
                          f"{' '.join(positional) or 'none'})")
    now = rules.utc_now()  # the harness's clock, never a time from the manifest
    cfg = compose(overrides)
    phase = rules.open_phase(contest_of(cfg), now)
    if phase is not None and not any(o.startswith("suite=") for o in overrides):
        cfg = compose(overrides + [f"suite={phase.suite}"])
    if cfg.suite is None:
        cfg = compose(overrides + [f"suite={contest_of(cfg).phases[0].suite}"])  # closed: refused below, and recorded
    outcome = app.submit(Path(positional[0]), cfg, now)
    if outcome["report"] is not None and outcome["state"] == "invalid":
        print_report(outcome["report"], False)
    if outcome["state"] != "accepted":
        print(f"harness submit: {outcome['state']}: {outcome['reason']} (not counted against the team's limits)",
              file=sys.stderr)
        return 1
    contest = contest_of(cfg)
    phase = rules.phase_named(contest, outcome["phase"])  # the phase that accepted it
    limits = phase.limits
    print(f"accepted {outcome['name']} (team {outcome['team']}) in phase {outcome['phase']} at {outcome['at']}; "
          f"{outcome['counted']} counted submission(s) in the phase (limits: {limits.per_day or 'no limit'} a day, "
          f"{limits.total or 'no limit'} in total); it is scored by the next `harness run suite={phase.suite} "
          f"contest={contest.name}`")
    return 0


def cmd_select(args: Sequence[str]) -> int:
    names, overrides = _contest_overrides(args, "select", "NAME [NAME ...]")
    cfg = compose(overrides)
    choice = app.select(cfg, names, rules.utc_now())
    print(f"team {choice['team']} chose {', '.join(choice['names'])} for phase {choice['phase']} at {choice['at']}")
    return 0


def cmd_reveal(args: Sequence[str]) -> int:
    positional, overrides = _contest_overrides(args, "reveal", "[PHASE]")
    cfg = compose(overrides)
    contest = contest_of(cfg)
    hidden = [p for p in contest.phases if p.split == "public"]
    if len(positional) > 1 or (not positional and len(hidden) != 1):
        raise ConfigError(f"reveal needs the phase: harness reveal PHASE contest={contest.name} (phases with a "
                          f"private part: {', '.join(p.name for p in hidden) or 'none'})")
    phase = rules.phase_named(contest, positional[0]) if positional else hidden[0]
    cfg = compose([o for o in overrides if not o.startswith("suite=")] + [f"suite={phase.suite}"])
    selection = app.reveal(cfg, phase, rules.utc_now())
    out = Path(cfg.paths.leaderboards) / phase.suite / "private"
    print((out / "leaderboard.md").read_text(encoding="utf-8"))
    print(f"wrote {out}/leaderboard.md, .csv, .json, index.html ({len(selection)} team(s) selected)", file=sys.stderr)
    return 0


def _remove(args: Sequence[str], state: str) -> int:
    args = list(args)
    reason = ""
    if "--reason" in args:
        at = args.index("--reason")
        if at + 1 >= len(args):
            raise ConfigError(f"--reason needs a text: harness {COMMAND_OF[state]} NAME contest=NAME --reason TEXT")
        reason = args[at + 1]
        del args[at:at + 2]
    names, overrides = _contest_overrides(args, COMMAND_OF[state], "NAME --reason TEXT")
    if len(names) != 1:
        raise ConfigError(f"{COMMAND_OF[state]} takes exactly one entry name (got {' '.join(names) or 'none'})")
    entry = app.remove(compose(overrides), names[0], state, reason, rules.utc_now())
    print(f"{'withdrew' if state == 'withdrawn' else 'disqualified'} {entry['name']} (team {entry['team']}) "
          f"at {entry['removed_at']}: {entry['removed_reason']}; it leaves every board of the contest at its next "
          f"build and still counts against the team's limits")
    return 0


COMMAND_OF = {"withdrawn": "withdraw", "disqualified": "disqualify"}


def cmd_withdraw(args: Sequence[str]) -> int:
    return _remove(args, "withdrawn")


def cmd_disqualify(args: Sequence[str]) -> int:
    return _remove(args, "disqualified")


HANDLERS = {"run": cmd_run, "evaluate": cmd_evaluate, "leaderboard": cmd_leaderboard, "validate": cmd_validate,
            "submit": cmd_submit, "select": cmd_select, "reveal": cmd_reveal, "withdraw": cmd_withdraw,
            "disqualify": cmd_disqualify}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("--version", "-V"):
        print(f"harness {__version__}")
        return 0
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in HANDLERS:
        print(f"harness: unknown command {command!r}; use one of {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr)
        return 2
    if "-h" in rest or "--help" in rest:
        command_parser(command, [a for a in rest if "=" in a]).print_help()
        return 0
    try:
        if "--cfg" in rest:
            return print_cfg(rest)
        return HANDLERS[command](rest)
    except HarnessError as e:
        print(f"harness {command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; finished cells are stored, the next run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
