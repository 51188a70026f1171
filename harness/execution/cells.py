"""One (submission, task) cell: its content-addressed keys, its provenance and the record it ends in.

Predictions are keyed by the submission's files, the task's inputs and its prompt/generation settings; scores by
that plus the metric settings. A cell whose keys match its stored record is not evaluated again; a cell whose
predictions match but whose metrics changed is rescored from the stored predictions without loading a model.
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Optional, TypedDict

from omegaconf import OmegaConf

from harness import __version__
from harness.config import DataConfig, RunConfig, TaskConfig, as_dict, config_hash
from harness.contest.rules import contest_hash
from harness.contest.splits import board_part
from harness.data import data_files, sha256_file
from harness.execution.isolation import child_task_config
from harness.models import DEFAULT_BACKEND, engine_facts
from harness.prompting import fewshot_pool_config, prompt_config
from harness.scoring import Scored, metric_options
from harness.submission import Submission


class CellKeys(TypedDict):
    predictions: str  # sha256 of what the model is asked (submission files, task inputs, prompt, generation)
    scores: str  # sha256 of that plus the references, the metric settings and versions


class Record(TypedDict):
    """One (submission, task) cell as stored in `<results>/<submission>/<task>.json` (a plain JSON object; this
    is its schema). `status` is one of harness.status; a failed cell has a `reason` and a `log` excerpt."""

    submission: str
    team: Optional[str]
    submission_kind: Optional[str]
    task: str
    task_kind: str
    status: str
    reason: str
    log: str
    primary_metric: str
    primary: Optional[float]
    scores: Dict[str, float]
    higher_is_better: Dict[str, bool]
    signatures: Dict[str, str]
    counts: Dict[str, int]
    keys: CellKeys
    provenance: Dict[str, Any]
    attempts: int  # how many times this cell (these keys) has been evaluated; a record without it made 1


LIBRARIES = ("torch", "transformers", "datasets", "tokenizers", "sacrebleu", "rouge-score", "numpy", "pandas",
             "hydra-core", "omegaconf")


@functools.lru_cache(maxsize=None)
def library_versions() -> Dict[str, Optional[str]]:
    versions: Dict[str, Optional[str]] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _data_content(data_cfg: DataConfig, files: Dict[str, Optional[str]]) -> Dict[str, Any]:
    """A data config with each local file named by its content (sha256), not its location: data checked out or
    copied elsewhere keeps its cells' keys, and a changed line changes them."""

    data = as_dict(data_cfg)
    if data_cfg.source == "local":  # the suffix stays: with format auto it decides how the file is read
        data["path"] = [files[data_cfg.path], Path(data_cfg.path).suffix.lower()] if data_cfg.path else None
        data["files"] = {name: files[path] for name, path in sorted(data["files"].items())}
    return data


# Task keys that reach neither the model nor the metrics: changing them re-runs and re-scores nothing
# (`config_file` is where the task's YAML was found: another checkout has another path).
INERT_TASK_KEYS = ("description", "budget_s", "config_file")


def _model_side(task: Any) -> Dict[str, Any]:
    config = child_task_config(task)
    for key in INERT_TASK_KEYS:
        config.pop(key, None)
    return config


def _files(data_cfg: Any) -> Dict[str, Optional[str]]:
    return {name: sha256_file(p) if p.is_file() else None for name, p in data_files(data_cfg).items()}


def task_parts(task: Any) -> Dict[str, str]:
    """The sha256 of each top-level key of a task config that reaches the model or the metrics (local data by its
    content): a record keeps them, so a board can tell a cell computed from another config and name the keys."""
    config = as_dict(task)
    for key in INERT_TASK_KEYS:
        config.pop(key, None)
    config["data"] = _data_content(task.data, _files(task.data))
    if task.train is not None:
        config["train"] = _data_content(task.train, _files(task.train))
    return {key: _sha(value) for key, value in sorted(config.items())}


def changed_task_keys(record: Dict[str, Any], parts: Dict[str, str]) -> list:
    """The task keys whose config differs from the one `record` was computed with ([] for a record that predates
    task_parts: nothing to compare)."""
    kept = (record.get("provenance") or {}).get("task_parts")
    if not kept:
        return []
    return sorted(key for key in set(kept) | set(parts)
                  if key not in INERT_TASK_KEYS and kept.get(key) != parts.get(key))


class Cell:
    """What is known about one (submission, task) cell while it is evaluated."""
    def __init__(self, task: TaskConfig, submission_name: str, submission_sha: str, run_cfg: RunConfig,
                 backend: Optional[Dict[str, Any]] = None, runtime: Optional[Dict[str, Any]] = None):
        """`backend`: {name, options} of what runs the entry (an endpoint entry's differs from the run's);
        `runtime`: a model entry's resolved device type, dtype and hub commit (Evaluator.runtime), part of the
        prediction key; None for entries that run no model."""

        self.task = task
        self.submission = submission_name
        self.attempts = 1  # the attempt this evaluation is (the evaluator raises it when it retries a failed cell)
        files = {name: sha256_file(p) if p.is_file() else None for name, p in data_files(task.data).items()}
        self.data_sha256 = files
        self.task_hash = config_hash(task)
        inputs_key = {"data": _data_content(task.data, files), "fields": OmegaConf.to_container(task.fields, resolve=True),
                      "model_side": _model_side(task)}
        if task.train is not None:  # baselines learn from it (majority class, unigram LM)
            inputs_key["train"] = _data_content(task.train, _files(task.train))
        self.task_parts = task_parts(task)
        pool = fewshot_pool_config(task)  # checks the few-shot settings (a ConfigError names the task and key)
        if pool is not None:  # the shots are part of what the model is asked: their data is part of the key
            pool_files = {name: sha256_file(p) if p.is_file() else None for name, p in data_files(pool).items()}
            inputs_key["fewshot_pool"] = _data_content(pool, pool_files)
        asked: Dict[str, Any] = {"submission": submission_sha, "inputs": inputs_key, "device": run_cfg.device}
        if runtime is not None:
            asked["runtime"] = runtime
        self.prediction_facts: Optional[Dict[str, Any]] = None  # provenance["prediction"] of a model cell
        backend = backend or as_dict(run_cfg.backend)  # {name, options}: an endpoint entry's differs from the run's
        if backend["name"] != DEFAULT_BACKEND or backend["options"]:  # the default keeps earlier keys
            asked["backend"] = {**backend, **engine_facts(backend["name"])}  # the engine's version included
        self.prediction_key = _sha(asked)
        metric_side = {"metrics": list(task.metrics), "options": OmegaConf.to_container(task.metric_options, resolve=True),
                       "primary": task.primary_metric, "versions": library_versions(),
                       # what the metrics really run with: the task's language and the options it implies
                       "language": task.language, "resolved": resolved_options(task)}
        if task.transform is not None:  # which text the counts are taken on (the model-side key has the transform)
            metric_side["count_on"] = task.count_on
        if run_cfg.contest is not None:  # a contest's partition decides what a record scores (harness.contest.splits)
            metric_side["contest"] = {"sha256": contest_hash(run_cfg), "part": board_part(run_cfg)}
        self.score_key = _sha({"predictions": self.prediction_key, "metrics": metric_side, "harness": __version__})


def attempts(record: Dict[str, Any]) -> int:
    return int(record.get("attempts", 1))


def resolved_options(task: TaskConfig) -> Dict[str, Any]:
    """Each metric's options as built (harness.scoring.metric_options); a metric that cannot be built shows why."""
    out: Dict[str, Any] = {}
    for name in task.metrics:
        try:
            out[name] = metric_options(task, name)
        except ValueError as e:
            out[name] = f"error: {e}"
    return out


def provenance(cell: Cell, submission_sha: Optional[str], run_cfg: RunConfig) -> Dict[str, Any]:
    return {"harness": __version__, "python": platform.python_version(), "libraries": library_versions(),
            "task_config_sha256": cell.task_hash, "task_parts": cell.task_parts, "data_sha256": cell.data_sha256,
            "submission_sha256": submission_sha,
            "run_config_sha256": config_hash({"device": run_cfg.device, "seed": run_cfg.seed}),
            "contest_sha256": None if run_cfg.contest is None else config_hash(run_cfg.contest)}


def _prompt_provenance(task: TaskConfig, submission: Optional[Submission]) -> Dict[str, Any]:
    """The whole prompt config (task side and what the submission declared) and its sha256."""
    config = prompt_config(task, submission.manifest if submission else None)
    return {"prompt_config": config, "prompt_config_sha256": config_hash(config)}


def make_record(cell: Cell, submission: Optional[Submission], status: str, *, submission_sha: Optional[str],
                run_cfg: RunConfig, scored: Optional[Scored] = None, reason: str = "", log: str = "",
                extra_counts: Optional[Dict[str, int]] = None, isolation: Optional[Dict[str, str]] = None,
                backend: Optional[Dict[str, Any]] = None) -> Record:
    manifest = submission.manifest if submission else None
    record: Record = {
        "submission": cell.submission, "team": manifest.team if manifest else None,
        "submission_kind": manifest.kind if manifest else None, "task": cell.task.name, "task_kind": cell.task.kind,
        "status": status, "reason": reason, "log": log, "primary_metric": cell.task.primary_metric,
        "primary": None, "scores": {}, "higher_is_better": {}, "signatures": {}, "counts": {},
        "keys": {"predictions": cell.prediction_key, "scores": cell.score_key},
        "provenance": {**provenance(cell, submission_sha, run_cfg), **_prompt_provenance(cell.task, submission)},
        "attempts": cell.attempts,
    }
    if scored is not None:
        record["scores"], record["higher_is_better"] = scored.scores, scored.higher_is_better
        record["signatures"], record["counts"] = scored.signatures, dict(scored.counts)
        record["primary"] = scored.scores[cell.task.primary_metric]
    record["counts"].update(extra_counts or {})
    if cell.prediction_facts is not None:  # what ran: device, dtype, batch size, parameters, versions
        record["provenance"]["prediction"] = cell.prediction_facts
    if isolation:  # what the model's process ran under (harness.execution.isolation)
        record["provenance"]["isolation"] = isolation
    if backend:  # a serving engine or endpoint: name, options, engine and version, served model
        record["provenance"]["backend"] = backend
    return record
