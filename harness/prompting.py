"""How prompts are formed, on the parent's side: few-shot pools and shots, submission generation overrides, and
what is recorded (a hash per example's prompt, a hash of the whole prompt config).

The organizer decides (the task YAML and the run config), the participant declares (submission.yaml:
`chat_template`, `reasoning`, `max_new_tokens` up to the organizer's cap), and every choice is recorded. Shots
come from the task's `train` data or a fixed list in its YAML, never from the scored split, so they may go to the
model's process with the inputs. The layout itself (plain text or chat turns, dropping shots, cutting a field)
happens in the backend, which holds the tokenizer (harness.models.hf).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import random
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from omegaconf import OmegaConf

from harness.config import DataConfig, RunConfig, TaskConfig, as_dict, config_hash
from harness.data import data_files
from harness.errors import ConfigError, SubmissionError
from harness.submission import Manifest
from tasks import kind_of
from tasks.base import truncation_rule

FEWSHOT_SOURCES = ("train", "fixed")
Shot = Tuple[Dict[str, Any], str]  # (input fields, answer text)


# ---------------------------------------------------------------- few-shot


def fewshot_pool_config(task: TaskConfig) -> Optional[DataConfig]:
    """The data config shots are sampled from, or None where the task uses no pool (no shots, or a fixed list).
    Raises ConfigError naming the task and key when the settings cannot work."""
    fewshot = task.fewshot
    where = f"task {task.name}: fewshot"
    if fewshot.num_fewshot < 0:
        raise ConfigError(f"{where}.num_fewshot must be >= 0, got {fewshot.num_fewshot}")
    if fewshot.source not in FEWSHOT_SOURCES:
        raise ConfigError(f"{where}.source {fewshot.source!r} is not valid; use one of {', '.join(FEWSHOT_SOURCES)}")
    if fewshot.num_fewshot == 0:
        return None
    if not kind_of(task).prompted:
        raise ConfigError(f"{where}.num_fewshot is {fewshot.num_fewshot}, but {task.kind} tasks score whole "
                          f"documents and take no shots; set it to 0")
    if fewshot.source == "fixed":
        if fewshot.num_fewshot > len(fewshot.fixed):
            raise ConfigError(f"{where}.num_fewshot is {fewshot.num_fewshot}, but fewshot.fixed lists only "
                              f"{len(fewshot.fixed)} example(s)")
        return None
    if task.train is None:
        raise ConfigError(f"{where}.num_fewshot is {fewshot.num_fewshot}, but the task has no pool to draw shots "
                          f"from: set `train` (a train/dev split) or use fewshot.source: fixed with fewshot.fixed")
    if same_data(task.data, task.train):
        raise ConfigError(f"task {task.name}: train is the scored data itself ({_describe(task.data)}); shots must "
                          f"come from another split (fewshot.num_fewshot is {fewshot.num_fewshot})")
    return task.train


def same_data(a: DataConfig, b: DataConfig) -> bool:
    """Whether two data configs read the same examples (same files, or the same hub dataset, config and split)."""
    if a.source != b.source:
        return False
    if a.source == "local":
        files_a = {str(p.resolve()) for p in data_files(a).values()}
        return bool(files_a) and files_a == {str(p.resolve()) for p in data_files(b).values()}
    return (a.path, a.name, a.split, a.revision) == (b.path, b.name, b.split, b.revision)


def _describe(data: DataConfig) -> str:
    if data.source == "local":
        return ", ".join([data.path] if data.path else list(data.files.values()))
    return f"{data.path} ({data.name or 'default'}, split {data.split})"


def shot_answer(target: Any) -> str:
    """A solved example's answer text: a label, or the first of several references."""
    if isinstance(target, str):
        return target
    if isinstance(target, (list, tuple)) and target and isinstance(target[0], str):
        return target[0]
    raise ConfigError(f"a few-shot example needs a text answer, got {target!r}")


def fixed_shots(task: TaskConfig) -> List[Shot]:
    """The YAML's fixed shots, each `{<input fields>..., target: <answer>}`, checked against the kind's fields."""


    fields = set(kind_of(task).input_fields)
    shots = []
    for i, entry in enumerate(task.fewshot.fixed[:task.fewshot.num_fewshot]):
        entry = as_dict(entry, resolve=False)
        where = f"task {task.name}: fewshot.fixed[{i}]"
        if "target" not in entry:
            raise ConfigError(f"{where} has no `target` (the answer the shot shows)")
        unknown = sorted(set(entry) - fields - {"target"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; use the input fields "
                              f"{', '.join(sorted(fields))} and `target`")
        shots.append(({k: v for k, v in entry.items() if k != "target"}, shot_answer(entry["target"])))
    return shots


def example_seed(seed: int, task_name: str, example_id: str) -> int:
    """A per-example seed that depends on nothing else (not the order, not the other examples, not PYTHONHASHSEED)."""
    digest = hashlib.sha256(f"{seed}\0{task_name}\0{example_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def select_shots(task: TaskConfig, example_ids: Sequence[str],
                 load_pool: Callable[[], Sequence[Any]]) -> Optional[List[List[Shot]]]:
    """Each example's shots, in example order; None when the task uses none. `load_pool` gives the train pool's
    examples (called only when shots are sampled from it)."""
    pool_cfg = fewshot_pool_config(task)
    k = task.fewshot.num_fewshot
    if k == 0:
        return None
    if pool_cfg is None:  # fixed: the same shots for every example
        shots = fixed_shots(task)
        return [list(shots) for _ in example_ids]
    pool = [(dict(e.inputs), shot_answer(e.target)) for e in load_pool()]
    if k > len(pool):
        raise ConfigError(f"task {task.name}: fewshot.num_fewshot is {k}, but the train pool has only {len(pool)} "
                          f"example(s)")
    return [[pool[i] for i in random.Random(example_seed(task.fewshot.seed, task.name, example_id)).sample(
        range(len(pool)), k)] for example_id in example_ids]


# ---------------------------------------------------------------- what a submission may choose


def generation_caps(run_cfg: RunConfig) -> Tuple[Any, str]:
    """(the caps that apply, where they are set): a contest's own, locked with it, or else the run config's."""
    contest = getattr(run_cfg, "contest", None)
    if contest is not None:
        return contest.generation_caps, f"contest {contest.name}: generation_caps.max_new_tokens"
    return run_cfg.generation_caps, "run config generation_caps.max_new_tokens"


def check_generation_request(manifest: Manifest, where: str, run_cfg: RunConfig) -> None:
    """A manifest's `max_new_tokens` is allowed only up to the organizer's cap (none set: not at all)."""
    asked = manifest.max_new_tokens
    if asked is None:
        return
    caps, source = generation_caps(run_cfg)
    cap = caps.max_new_tokens
    if cap is None:
        raise SubmissionError(f"{where}: field 'max_new_tokens': {asked} is not allowed; the organizer allows no "
                              f"raise of the tasks' token budgets ({source} is not set)")
    if asked > cap:
        raise SubmissionError(f"{where}: field 'max_new_tokens': {asked} exceeds the organizer's cap of {cap} "
                              f"({source})")


def task_for_submission(task: TaskConfig, manifest: Manifest) -> Any:
    """The task as this submission's model runs it: a manifest's max_new_tokens raises (never lowers) the task's."""
    asked = getattr(manifest, "max_new_tokens", None)
    if asked is None or asked <= task.generation.max_new_tokens:
        return task
    task = copy.deepcopy(task)
    task.generation.max_new_tokens = asked
    return task


# ---------------------------------------------------------------- what is recorded


def prompt_config(task: TaskConfig, manifest: Optional[Manifest] = None) -> Dict[str, Any]:
    """Everything that decides the text a model is given and how its answer is read, as plain data."""


    kind = kind_of(task)
    field, side = truncation_rule(task, kind) if kind.prompted else (None, None)
    effective = task_for_submission(task, manifest) if manifest is not None else task
    config = {
        "prompt": task.prompt, "instruction": task.instruction, "system_prompt": task.system_prompt,
        "target_prefix": task.target_prefix, "fewshot": OmegaConf.to_container(task.fewshot, resolve=True),
        "fewshot_pool": None if task.train is None or task.fewshot.num_fewshot == 0 or task.fewshot.source != "train"
        else OmegaConf.to_container(task.train, resolve=True),
        "truncation": {"field": field, "side": side},
        "generation": OmegaConf.to_container(effective.generation, resolve=True),
        "classify_by": kind.answer_mode(task),
    }
    if manifest is not None:
        config["chat_template"] = bool(getattr(manifest, "chat_template", False))
        config["reasoning"] = getattr(manifest, "reasoning", None)
    return config


def prompt_config_sha256(task: TaskConfig, manifest: Optional[Manifest] = None) -> str:

    return config_hash(prompt_config(task, manifest))


def prompt_sha256(request: Any, chat_template: bool = False) -> str:
    """sha256 of what one example asks the model: its prompt's parts (or text), the continuations scored, and
    whether the entry's chat template lays it out. The model's own template is covered by submission_sha256."""
    items = request if isinstance(request, list) else [request]
    data = {"chat_template": bool(chat_template), "requests": [_request_data(r) for r in items]}
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _request_data(request: Any) -> Dict[str, Any]:

    data = {k: v for k, v in dataclasses.asdict(request).items() if k not in ("max_new_tokens", "stop")}
    data["type"] = type(request).__name__
    return data


# ---------------------------------------------------------------- reading answers
