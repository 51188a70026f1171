"""The run config, composed with Hydra's compose API (nothing is written to `outputs/` or `.hydra/`; paths stay
relative to the current directory), and what the config groups offer across the search path.

Overrides use Hydra's `key=value` grammar; a misspelled key is answered with the closest valid key.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import config
from harness.config import RunConfig, TaskConfig, parse_batch_size, register_configs
from harness.contest import ledger
from harness.errors import ConfigError
from harness.language import DEFAULT_LANGUAGE, task_language
from harness.models import check_backend
from harness.scoring import check_task
from tasks import kind_of

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
    # Hydra is imported here: `harness --help` and the usage text start without it.
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

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
    check_backend(cfg.backend.name)
    _prepare_tasks(cfg, overrides)
    if cfg.contest is not None:  # checked beyond its types, and against its lock
        ledger.check(cfg, overrides)
    return cfg


def _explain(message: str) -> str:
    """Hydra's message, with a typo'd key answered by the closest valid keys instead of the advice to append it
    with `+`, and without the search-path listing (the options are already named)."""
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
    """Where the config `name` of `group` is read from: the first search-path root that has it (as Hydra picks),
    written `pkg://package/group/name.yaml` or as the folder was given."""
    for root, folder in _group_folders(group, overrides):
        if (folder / f"{name}.yaml").is_file():
            return f"{root.rstrip('/')}/{group}/{name}.yaml" if root.startswith("pkg://") else \
                str(Path(root.removeprefix("file://")) / group / f"{name}.yaml")
    return None


def _group_folders(group: str, overrides: Sequence[str]) -> List[Any]:
    """(root, folder of `group` under it) for each search-path root, in Hydra's order."""
    roots = [DEFAULT_SEARCHPATH]
    for item in _with_default_searchpath(overrides):
        key, _, value = item.partition("=")
        if key.lstrip("+") == "hydra.searchpath":
            roots = [p.strip().strip("'\"") for p in value.strip().strip("[]").split(",") if p.strip()]
    roots.append("pkg://harness/conf")  # the primary config module (the contest group lives there)
    out = []
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
            out.append((root, folder))
    return out


def available(group: str, overrides: Sequence[str] = ()) -> List[str]:
    """Config names in a group (task, suite) across the search path: the shipped tasks plus user folders."""
    names = set()
    for _root, folder in _group_folders(group, overrides):
        names.update(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml"))
    return sorted(names)


def suite_tasks(cfg: Any) -> Dict[str, Any]:
    if cfg.suite is None:
        raise ConfigError(f"choose a suite: suite=NAME (available: {', '.join(available('suite'))})")
    if not cfg.tasks:
        raise ConfigError(f"suite {cfg.suite.name!r} names no tasks")
    for task in cfg.tasks.values():
        kind_of(task)
    return dict(cfg.tasks)
