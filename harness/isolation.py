"""Run a model job in a child process that sees task inputs only.

The child is a fresh interpreter (`python -m harness.worker`), not a fork: it inherits no memory of the parent
(references, other entries' results). It gets a job folder with the task configs stripped of their data
locations and a file of inputs per task, a scrubbed environment with the hub offline, and a wall-clock budget.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from harness.data import Example

# Variables the child may inherit; everything else (tokens, cloud keys, CI secrets) is dropped.
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "HF_HOME", "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "VIRTUAL_ENV", "PYTHONPATH")
_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"}
LOG_EXCERPT_CHARS = 2000


@dataclass
class JobOutcome:
    predictions: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # task -> id -> prediction
    meta: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # task -> {truncated, model}
    failures: Dict[str, Tuple[str, str, str]] = field(default_factory=dict)  # task -> (status, reason, log excerpt)


def child_env(home: Path) -> Dict[str, str]:
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.update(_OFFLINE)
    env["HOME"] = str(home)
    return env


def child_task_config(task: Any) -> Dict[str, Any]:
    """The task config the child needs to build requests: everything but where the data (and references) live."""
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(task, resolve=True)
    for key in ("data", "train", "fields", "metrics", "metric_options", "primary_metric"):
        config.pop(key, None)
    return config


def run_job(model: Dict[str, Any], tasks: Sequence[Tuple[Any, List[Example]]], *, device: str, batch_size: Any,
            progress: bool) -> JobOutcome:
    budget = sum(float(task.budget_s) for task, _ in tasks)
    with tempfile.TemporaryDirectory(prefix="harness-job-") as tmp:
        job_dir = Path(tmp)
        specs = []
        for task, examples in tasks:
            name = f"inputs-{len(specs)}.jsonl"
            rows = (json.dumps({"id": e.id, "inputs": e.inputs}, ensure_ascii=False) + "\n" for e in examples)
            (job_dir / name).write_text("".join(rows), encoding="utf-8")
            specs.append({"inputs": name, "config": child_task_config(task)})
        job = {"model": model, "device": device, "batch_size": batch_size, "progress": progress, "tasks": specs}
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        (job_dir / "home").mkdir()
        status, reason, log = _launch(job_dir, budget, progress)
        return _collect(job_dir, [task for task, _ in tasks], status, reason, log)


def _launch(job_dir: Path, budget: float, progress: bool) -> Tuple[str, str, str]:
    log_path = job_dir / "child.log"
    with open(log_path, "wb") as log:
        child = subprocess.Popen([sys.executable, "-m", "harness.worker", str(job_dir)], cwd=job_dir,
                                 env=child_env(job_dir / "home"), stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=None if progress else log, start_new_session=True)
        try:
            code = child.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return "timeout", f"the model did not finish within its budget of {budget:g} s", _tail(log_path)
    if code == 0:
        return "ok", "", ""
    failure = job_dir / "out" / "failure.json"
    if failure.is_file():
        data = json.loads(failure.read_text(encoding="utf-8"))
        return data["status"], data["reason"], data.get("log") or _tail(log_path)
    if code == -signal.SIGKILL:
        return "out-of-memory", "the model process was killed (SIGKILL), most likely out of memory", _tail(log_path)
    return "crashed", f"the model process exited with code {code}", _tail(log_path)


def _tail(path: Path) -> str:
    text = path.read_bytes()[-LOG_EXCERPT_CHARS:].decode("utf-8", errors="replace")
    return text


def _collect(job_dir: Path, tasks: List[Any], status: str, reason: str, log: str) -> JobOutcome:
    outcome = JobOutcome()
    for task in tasks:
        out = job_dir / "out" / f"{task.name}.jsonl"
        meta = job_dir / "out" / f"{task.name}.meta.json"
        task_failure = job_dir / "out" / f"{task.name}.failure.json"
        if status == "ok" and task_failure.is_file():
            data = json.loads(task_failure.read_text(encoding="utf-8"))
            outcome.failures[task.name] = (data["status"], data["reason"], data.get("log", ""))
            continue
        if status != "ok" or not out.is_file() or not meta.is_file():
            outcome.failures[task.name] = (status if status != "ok" else "crashed",
                                           reason or "the model process wrote no predictions", log)
            continue
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        outcome.predictions[task.name] = {row["id"]: row["prediction"] for row in rows}
        outcome.meta[task.name] = json.loads(meta.read_text(encoding="utf-8"))
    return outcome
