"""The inference child: `python -m harness.execution.worker JOB_DIR`.

It reads `JOB_DIR/job.json` and the task *inputs* (never references; few-shot examples, which are train data,
come with them), loads the model once, answers the pooled requests of all tasks one request type at a time, and
writes per task `out/<task>.jsonl` (id, prediction) and `<task>.meta.json` (truncated examples, dropped shots) as
soon as the task's answers are complete, so a job cut off by its budget keeps its finished tasks. For `harness
validate` it also writes `<task>.prompts.json`, the exact text the model is given for the first examples. A
failure is typed: `out/failure.json` for the whole job (the model did not load), `out/<task>.failure.json` for the
tasks of a request type that failed. The parent checks everything written here again; this process
holds submitted weights and is not trusted.
"""
from __future__ import annotations

import errno
import json
import math
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, cast

from omegaconf import OmegaConf

from harness.config import TaskConfig
from harness.models import DEFAULT_BACKEND, backend_module, load_backend
from harness.requests import (
    Backend,
    GenerateRequest,
    LoglikelihoodRequest,
    ModelSpec,
    NonFiniteOutput,
    RollingRequest,
    Unsupported,
    shown_with_choices,
)
from harness.status import LOG_CHARS
from harness.store import atomic_write_text
from tasks import kind_of


class ModelLoadError(Exception):
    """The model could not be loaded (missing files, bad config)."""


class PickleRefused(Exception):
    """Something tried to unpickle a file in the model process."""


class OutputTooLarge(Exception):
    """A prediction is larger than the per-example cap."""


def classify_failure(error: BaseException) -> str:
    if isinstance(error, MemoryError) or "OutOfMemory" in type(error).__name__:
        return "out-of-memory"
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        return "bad-output"  # a file over RLIMIT_FSIZE (Python ignores SIGXFSZ, so the write fails instead)
    if isinstance(error, ModelLoadError):
        return "load-error"
    if isinstance(error, PickleRefused):
        return "refused"
    if isinstance(error, (NonFiniteOutput, OutputTooLarge)):
        return "bad-output"
    if isinstance(error, TimeoutError):
        return "timeout"  # a serving engine or endpoint that did not answer in time (EndpointTimeout)
    if isinstance(error, NotImplementedError):
        return "n/a"  # the backend cannot answer this request type (a seq2seq model on perplexity)
    return "crashed"


def failure(error: BaseException) -> Dict[str, str]:
    reason = str(error) if isinstance(error, Unsupported) else f"{type(error).__name__}: {error}"
    return {"status": classify_failure(error), "reason": reason[:LOG_CHARS],
            "log": traceback.format_exc()[-LOG_CHARS:]}


# ---------------------------------------------------------------- guards set before any model code runs


def apply_limits(max_file_bytes: int) -> None:
    """No core dumps; no file written by this process (outputs, logs, caches) larger than `max_file_bytes`.
    Soft and hard limits are both set: a process without CAP_SYS_RESOURCE (not root) cannot raise them again."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = max_file_bytes if hard == resource.RLIM_INFINITY else min(max_file_bytes, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def refuse_unpickling() -> None:
    """Weights are safetensors only; should anything call torch.load anyway, it fails instead of unpickling."""
    import torch
    import torch.serialization

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PickleRefused("torch.load (unpickling) is disabled in the model process; weights must be safetensors")

    torch.load = refuse
    torch.serialization.load = refuse


# ---------------------------------------------------------------- the job


def model_spec(model: Dict[str, Any]) -> ModelSpec:
    reasoning = model.get("reasoning")
    return ModelSpec(kind=model["kind"], location=model["location"], dtype=model["dtype"],
                     trust_remote_code=model["trust_remote_code"],
                     chat_template=bool(model.get("chat_template", False)),
                     reasoning=(reasoning["start"], reasoning["end"]) if reasoning else None,
                     backend=model.get("backend", DEFAULT_BACKEND), options=dict(model.get("options") or {}),
                     endpoint=model.get("endpoint"))


def read_tasks(job_dir: Path, job: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, List[str]], Dict[str, list]]:
    """Task configs, example ids and requests, from the job's config and input files (with each example's
    few-shot examples, drawn by the parent from train data)."""
    tasks, ids, requests = {}, {}, {}
    for spec in job["tasks"]:
        task = cast(TaskConfig, OmegaConf.merge(OmegaConf.structured(TaskConfig), spec["config"]))
        rows = [json.loads(line) for line in (job_dir / spec["inputs"]).read_text(encoding="utf-8").splitlines()]
        tasks[task.name], ids[task.name] = task, [row["id"] for row in rows]
        shots = [[(shot[0], shot[1]) for shot in row["shots"]] for row in rows] if spec.get("shots") else None
        requests[task.name] = kind_of(task).requests(task, [row["inputs"] for row in rows], shots)
    return tasks, ids, requests


def pool(requests: Dict[str, List[Any]]) -> Dict[type, List[tuple]]:
    """(task, example index, choice index or None, request) slots, by request type."""
    slots: Dict[type, List[tuple]] = {}
    for task, items in requests.items():
        for i, item in enumerate(items):
            for j, request in (enumerate(item) if isinstance(item, list) else [(None, item)]):
                slots.setdefault(type(request), []).append((task, i, j, request))
    return slots


def check_finite(results: List[Any]) -> None:
    bad = sum(1 for r in results if isinstance(getattr(r, "logprob", None), float) and math.isnan(r.logprob))
    if bad:
        raise NonFiniteOutput(f"the model produced NaN log-likelihoods for {bad} of {len(results)} requests")


class Writer:
    """Writes a task's predictions (or its failure) once every request type it uses has been answered."""

    def __init__(self, out: Path, tasks: Dict[str, TaskConfig], ids: Dict[str, List[str]], requests: Dict[str, list],
                 max_output_bytes: int):
        self.out, self.tasks, self.ids, self.max_output_bytes = out, tasks, ids, max_output_bytes
        self.answers = {name: [[None] * len(r) if isinstance(r, list) else None for r in items]
                        for name, items in requests.items()}
        self.pending = {name: {type(r) for item in items for r in (item if isinstance(item, list) else [item])}
                        for name, items in requests.items()}
        self.failed: Dict[str, Dict[str, str]] = {}

    def fill(self, request_type: type, slots: List[tuple], results: List[Any]) -> None:
        for (task, i, j, _), result in zip(slots, results):
            if j is None:
                self.answers[task][i] = result
            else:
                self.answers[task][i][j] = result
        self.done(request_type)

    def fail(self, request_type: type, slots: List[tuple], error: Dict[str, str]) -> None:
        for task in {slot[0] for slot in slots}:
            self.failed.setdefault(task, error)
        self.done(request_type)

    def done(self, request_type: type) -> None:
        for name, types in self.pending.items():
            if request_type in types:
                types.discard(request_type)
                if not types:
                    self.flush(name)

    def flush_all(self) -> None:
        """Tasks with no requests at all (no examples) are complete from the start."""
        for name, types in self.pending.items():
            if not types:
                self.flush(name)

    def flush(self, name: str) -> None:
        if name in self.failed:
            atomic_write_text(self.out / f"{name}.failure.json", json.dumps(self.failed[name]))
            return
        try:
            lines = self.lines(name)
        except Exception as error:  # a bad prediction fails this task only
            atomic_write_text(self.out / f"{name}.failure.json", json.dumps(failure(error)))
            return
        atomic_write_text(self.out / f"{name}.jsonl", "".join(lines))
        truncated = sum(_truncated(a) for a in self.answers[name])
        dropped = sum(_dropped_shots(a) for a in self.answers[name])
        atomic_write_text(self.out / f"{name}.meta.json", json.dumps({"truncated": truncated,
                                                                      "dropped_shots": dropped}))

    def lines(self, name: str) -> List[str]:
        task = self.tasks[name]
        predictions = kind_of(task).predictions(task, self.answers[name])
        lines = []
        for example_id, prediction in zip(self.ids[name], predictions):
            try:
                line = json.dumps({"id": example_id, "prediction": prediction}, ensure_ascii=False, allow_nan=False)
            except ValueError as e:
                raise NonFiniteOutput(f"the prediction for example {example_id!r} is not a finite number") from e
            size = len(line.encode("utf-8"))
            if size > self.max_output_bytes:
                raise OutputTooLarge(f"the output for example {example_id!r} is {size} bytes; the limit is "
                                     f"{self.max_output_bytes} bytes per example")
            lines.append(line + "\n")
        return lines


def _truncated(answer: Any) -> bool:
    if isinstance(answer, list):
        return any(getattr(a, "truncated", False) for a in answer)
    return bool(getattr(answer, "truncated", False))


def _dropped_shots(answer: Any) -> int:
    """Shots an example lost to fit (its choices share one context: the most any of them lost)."""
    if isinstance(answer, list):
        return max((int(getattr(a, "dropped_shots", 0)) for a in answer), default=0)
    return int(getattr(answer, "dropped_shots", 0))


def write_rendered_prompts(backend: Backend, out: Path, ids: Dict[str, List[str]], requests: Dict[str, list],
                           n: int) -> None:
    """`harness validate`: the exact text the model is given for each task's first `n` examples."""
    for name, items in requests.items():
        shown = {}
        try:
            for example_id, item in list(zip(ids[name], items))[:n]:
                if isinstance(item, list):  # one context, a continuation per label
                    text = shown_with_choices(backend.rendered_prompt(item[0]), item)
                else:
                    text = backend.rendered_prompt(item)
                shown[example_id] = text[:LOG_CHARS * 4]
        except Exception:  # showing prompts never fails the job; answering the same requests reports the error
            traceback.print_exc()
            continue
        atomic_write_text(out / f"{name}.prompts.json", json.dumps(shown, ensure_ascii=False))


def answer(backend: Backend, writer: Writer, slots: Dict[type, List[tuple]], timings: Dict[str, Any]) -> None:
    """One backend call per request type: the cheap scoring types first, so a job cut off by its budget has
    finished as many tasks as it could. A type that fails fails only the tasks that use it."""
    methods: Dict[type, Callable[[List[Any]], List[Any]]] = {
        LoglikelihoodRequest: backend.loglikelihood, RollingRequest: backend.rolling_loglikelihood,
        GenerateRequest: backend.generate}
    for request_type, method in methods.items():
        pending = slots.get(request_type, [])
        if not pending:
            continue
        started = time.monotonic()
        try:
            results = method([slot[3] for slot in pending])
            check_finite(results)
        except Exception as error:
            traceback.print_exc()
            writer.fail(request_type, pending, failure(error))
        else:
            writer.fill(request_type, pending, results)
        timings["types"][request_type.__name__] = {"seconds": time.monotonic() - started, "requests": len(pending),
                                                   "by_task": _count_by_task(pending)}


def _count_by_task(slots: List[tuple]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for slot in slots:
        counts[slot[0]] = counts.get(slot[0], 0) + 1
    return counts


def run(job_dir: Path, job: Dict[str, Any], started: float) -> None:
    out = job_dir / "out"
    tasks, ids, requests = read_tasks(job_dir, job)
    writer = Writer(out, tasks, ids, requests, job["limits"]["max_output_bytes"])
    timings: Dict[str, Any] = {"types": {}}
    loading = time.monotonic()
    try:
        module = job["model"].get("backend_module") or backend_module(job["model"].get("backend", DEFAULT_BACKEND))
        backend = load_backend(module, model_spec(job["model"]), device=job["device"],
                               batch_size=job["batch_size"], progress=job["progress"])
    except PickleRefused:
        raise
    except Exception as e:
        raise ModelLoadError(f"{type(e).__name__}: {e}") from e
    timings.update(startup_s=loading - started, load_s=time.monotonic() - loading, model=backend.model_info())
    backend.guard_nonfinite()
    if job.get("echo_prompts"):
        write_rendered_prompts(backend, out, ids, requests, int(job["echo_prompts"]))
    writer.flush_all()
    answer(backend, writer, pool(requests), timings)
    atomic_write_text(out / "timings.json", json.dumps(timings, sort_keys=True))
    close = getattr(backend, "close", None)  # a serving engine this process started (harness.models.served)
    if close is not None:
        close()


def die_with_parent(parent_pid: Any) -> None:
    """Linux: end this process when the harness that started it dies (even by kill -9), so an interrupted run
    leaves no model job behind. Set here, after `unshare` may have changed credentials (which clears it)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the harness died before the line above ran


def main() -> int:
    started = time.monotonic()
    job_dir = Path(sys.argv[1])
    (job_dir / "out").mkdir(exist_ok=True)
    try:
        job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
        die_with_parent(job.get("parent_pid"))
        apply_limits(job["limits"]["max_file_bytes"])
        refuse_unpickling()
        run(job_dir, job, started)
        return 0
    except BaseException as error:  # report every failure typed, then exit non-zero
        traceback.print_exc()
        (job_dir / "out" / "failure.json").write_text(json.dumps(failure(error)), encoding="utf-8")
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown (about a second with torch loaded): every output is on disk
