"""The run config, composed with Hydra's compose API (nothing is written to `outputs/` or `.hydra/`; paths stay
relative to the current directory), and what the config groups offer across the search path.

Overrides use Hydra's `key=value` grammar; a misspelled key is answered with the closest valid key.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, cast

import yaml

from harness import config
from harness.config import RunConfig, parse_batch_size, register_configs
from harness.contest import ledger
from harness.errors import ConfigError
from harness.language import DEFAULT_LANGUAGE, task_language
from harness.models import check_backend
from harness.scoring import check_task
from tasks import KINDS, kind_of

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


def compose(overrides: Sequence[str]) -> RunConfig:
    """The run config for these overrides. Raises ConfigError with Hydra's message (key and value named)."""
    # Hydra is imported here: `harness --help` and the usage text start without it.
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from omegaconf import open_dict

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("harness.conf", version_base="1.3"):
            cfg = hydra_compose("config", overrides=_with_default_searchpath(overrides), return_hydra_config=True)
            choices = dict(cfg.hydra.runtime.choices)
            with open_dict(cfg):
                del cfg["hydra"]
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        cause = f"\n  {e.__cause__}" if e.__cause__ and str(e.__cause__) not in str(e) else ""
        raise ConfigError(f"config error: {_explain(str(e) + cause, overrides)}") from e
    _check_complete(cfg, overrides)
    _anchor_task_files(cfg, choices, overrides)
    try:
        parse_batch_size(cfg.batch_size)
    except ValueError as e:
        raise ConfigError(f"config error: {e}") from e
    check_backend(cfg.backend.name, config.plain(cfg.backend.options))
    if cfg.retries < 1:
        raise ConfigError(f"config error: retries: {cfg.retries} is not valid; use a whole number >= 1 (the attempts "
                          f"a timeout, out-of-memory or crashed cell gets)")
    _prepare_tasks(cfg, overrides)
    run_cfg = cast(RunConfig, cfg)  # a DictConfig over the RunConfig schema: read as one
    if run_cfg.contest is not None:  # checked beyond its types, and against its lock
        ledger.check(run_cfg, overrides)
    return run_cfg


def _unknown_key(name: str, schema_name: str, first: Sequence[str] = ()) -> Optional[str]:
    """"unknown key 'x' (did you mean 'y'?); valid keys here: ..." for a key of a config dataclass. `first`: the
    keys that fit this file best (a task kind's fields), among which the closest is sought first."""
    schema = getattr(config, schema_name, None)
    if schema is None or not dataclasses.is_dataclass(schema):
        return None
    valid = [f.name for f in dataclasses.fields(schema)]
    close = difflib.get_close_matches(name, valid, n=1) or difflib.get_close_matches(name, first or valid, n=1,
                                                                                     cutoff=0.0)
    valid = list(first) + [v for v in valid if v not in first]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {name!r}{hint}; valid keys here: {', '.join(valid)}"


def _kind_fields(path: Optional[str]) -> List[str]:
    """The fields a task file's kind maps (id, its inputs, its references or label), read from the file itself."""
    if path is None:
        return []
    try:
        kind = KINDS.get(str((yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("kind")))
    except (OSError, TypeError, AttributeError, yaml.YAMLError):
        return []
    if kind is None:
        return []
    return ["id", *kind.input_fields] + (["label"] if kind.name == "classification" else
                                         [] if kind.name == "language_modeling" else ["references"])


def _explain(message: str, overrides: Sequence[str] = ()) -> str:
    """Hydra's message, with a typo'd key answered by the closest valid keys instead of the advice to append it
    with `+`, and without the search-path listing (the options are already named). A key of a config file is
    named with the file."""
    message = message.split("\nConfig search path:")[0].rstrip()
    unknown = re.search(r"Could not override '([^']+)'.*?Key '([^']+)' not in '(\w+)'", message, re.S)
    if unknown:
        text = _unknown_key(unknown.group(2), unknown.group(3))
        return f"{unknown.group(1)}: {text}" if text else message
    in_file = re.search(r"In '([^']+)'.*?Key '([^']+)' not in '(\w+)'.*?full_key: (\S+)", message, re.S)
    if in_file:
        group, _, name = in_file.group(1).partition("/")
        where = config_file(group, name, overrides)
        first = _kind_fields(where) if in_file.group(3) == "FieldsConfig" else []
        text = _unknown_key(in_file.group(2), in_file.group(3), first)
        where = where or in_file.group(1)
        key = in_file.group(4).split(".", 1)[1] if "." in in_file.group(4) else in_file.group(4)
        return f"{where}: {key}: {text}" if text else message
    return message


def _anchor_task_files(cfg: Any, choices: Dict[str, Any], overrides: Sequence[str]) -> None:
    """Each composed task against the file it came from: its name is the file's name, and the local data paths
    the file itself wrote are resolved against the file's folder (so a task folder works from any directory;
    absolute, `pkg://` and command-line paths are kept as they are)."""
    for choice, option in choices.items():
        group, _, target = choice.partition("@")
        if group != "task" or option is None:
            continue
        task = cfg.task if not target else cfg.tasks[target.split(".", 1)[1]]
        path = config_file("task", option, overrides)
        if task is None or path is None:
            continue
        if task.name != option:
            raise ConfigError(f"{path}: name {task.name!r} differs from the file's name {option!r}; a task file is "
                              f"named after its task (set `name: {option}` or rename the file to {task.name}.yaml)")
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for part in ("data", "train"):
            data, written = task[part], raw.get(part) or {}
            if data is None or data.source != "local" or not isinstance(written, dict):
                continue
            if data.path and data.path == written.get("path"):
                data.path = _beside(path, f"{part}.path", data.path)
            for key, value in list(data.files.items()):
                if value == (written.get("files") or {}).get(key):
                    data.files[key] = _beside(path, f"{part}.files.{key}", value)


def _beside(task_file: str, key: str, value: str) -> str:
    """A path a task file wrote, resolved against the file's folder."""
    if value.startswith("pkg://") or Path(value).is_absolute():
        return value
    folder = Path(task_file).parent
    resolved = Path(os.path.normpath(folder / value))
    if not resolved.exists() and Path(value).exists():
        here = Path(value).resolve()
        raise ConfigError(f"{task_file}: {key}: {value!r} is resolved against the task file's folder ({folder}), "
                          f"where it does not exist; it exists relative to the current directory ({here}). Write "
                          f"it relative to the task file: {os.path.relpath(here, folder)!r} (or give an absolute "
                          f"path)")
    return str(resolved)


def _prepare_tasks(cfg: Any, overrides: Sequence[str]) -> None:
    """Each task's YAML file (for messages), its kind's default metrics for its language where it names none, and
    the checks that need no data (harness.scoring.check_task)."""
    chosen = [item.partition("=")[2] for item in overrides if item.partition("=")[0].lstrip("+") == "task"]
    tasks = [(key, task) for key, task in (cfg.tasks or {}).items()]
    if cfg.task is not None:
        tasks.append((chosen[-1] if chosen else cfg.task.name, cfg.task))
    for key, task in tasks:
        if task.config_file is None:
            task.config_file = config_file("task", key, overrides) or config_file("task", task.name, overrides)
        if not task.metrics:
            try:
                language = task_language(task)
            except ValueError:
                language = DEFAULT_LANGUAGE  # check_task names the malformed tag
            task.metrics = kind_of(task).default_metrics(language)
        check_task(task)


def config_file(group: str, name: str, overrides: Sequence[str] = ()) -> Optional[str]:
    """Where the config `group/name.yaml` is found on the search path (the first folder holding it)."""
    for folder in _group_folders(group, overrides):
        candidate = folder.joinpath(f"{name}.yaml")
        if candidate.is_file():
            return str(candidate)
    return None


def _check_complete(cfg: Any, overrides: Sequence[str]) -> None:
    """Every mandatory value is set, before anything runs: each missing one named with its file and key."""
    from omegaconf import OmegaConf  # imported with hydra above, never at `harness --help`

    problems = []
    for key in sorted(OmegaConf.missing_keys(cfg)):
        head, _, rest = key.partition(".")
        if head == "tasks" and "." in rest:
            name, _, field = rest.partition(".")
            where = config_file("task", name, overrides) or f"task {name}"
        elif head in ("suite", "task", "contest") and cfg[head] is not None:
            chosen = next((o.split("=", 1)[1] for o in overrides if o.startswith(f"{head}=")), head)
            where, field = config_file(head, chosen, overrides) or f"{head} {chosen}", rest
        else:
            where, field = "the run config", key
        problems.append(f"{where}: key {field!r} needs a value (it is required)")
    if problems:
        raise ConfigError("config error: " + "; ".join(problems))


def _group_folders(group: str, overrides: Sequence[str] = ()) -> List[Any]:
    """The folders of a config group (task, suite, ...) across the search path, in search order."""
    roots = [DEFAULT_SEARCHPATH]
    for item in _with_default_searchpath(overrides):
        key, _, value = item.partition("=")
        if key.lstrip("+") == "hydra.searchpath":
            roots = [p.strip().strip("'\"") for p in value.strip().strip("[]").split(",") if p.strip()]
    roots.append("pkg://harness/conf")  # the primary config module (the contest group lives there)
    folders: List[Any] = []
    for root in roots:
        if root.startswith("pkg://"):
            package, _, sub = root[len("pkg://"):].partition("/")
            try:
                folder = resources.files(package.replace("/", "."))
            except ModuleNotFoundError:
                continue
            folder = folder.joinpath(sub).joinpath(group) if sub else folder.joinpath(group)
        else:
            folder = Path(root.removeprefix("file://")) / group
        if folder.is_dir():
            folders.append(folder)
    return folders


def available(group: str, overrides: Sequence[str] = ()) -> List[str]:
    """Config names in a group (task, suite) across the search path: the shipped tasks plus user folders."""
    return sorted({entry.name[:-5] for folder in _group_folders(group, overrides) for entry in folder.iterdir()
                   if entry.name.endswith(".yaml")})


def suite_tasks(cfg: RunConfig) -> Dict[str, Any]:
    if cfg.suite is None:
        raise ConfigError(f"choose a suite: suite=NAME (available: {', '.join(available('suite'))})")
    if not cfg.tasks:
        raise ConfigError(f"suite {cfg.suite.name!r} names no tasks")
    for task in cfg.tasks.values():
        kind_of(task)
    return dict(cfg.tasks)
