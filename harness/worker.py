"""The inference child: `python -m harness.worker JOB_DIR`.

It reads `JOB_DIR/job.json` and the task *inputs* (never references), runs the model once over the pooled
requests of all tasks, writes `JOB_DIR/out/<task>.jsonl` (id, prediction) and `<task>.meta.json`, and exits.
On a failure it writes `JOB_DIR/out/failure.json` with a typed status.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, List


def load_backend(model: Dict[str, Any], device: str, batch_size: Any, progress: bool) -> Any:
    from harness.models.hf import HFCausalBackend, HFSeq2SeqBackend

    backend_class = HFCausalBackend if model["kind"] == "hf-causal" else HFSeq2SeqBackend
    return backend_class(model["location"], device=device, dtype=model["dtype"], batch_size=batch_size,
                         trust_remote_code=model["trust_remote_code"], progress=progress)


def answer_all(backend: Any, per_task: Dict[str, List[Any]]) -> tuple[Dict[str, List[Any]], Dict[str, BaseException]]:
    """Pool every task's requests by type, answer each type in one backend call, and hand answers back.

    A request type whose backend call fails fails only the tasks that sent requests of that type.
    """
    from harness.requests import GenerateRequest, LoglikelihoodRequest, RollingRequest

    methods = {GenerateRequest: backend.generate, LoglikelihoodRequest: backend.loglikelihood,
               RollingRequest: backend.rolling_loglikelihood}
    slots: Dict[type, List[tuple]] = {t: [] for t in methods}
    answers: Dict[str, List[Any]] = {}
    errors: Dict[str, BaseException] = {}
    for task, requests in per_task.items():
        answers[task] = [None] * len(requests)
        for i, request in enumerate(requests):
            if isinstance(request, list):  # several requests for one example (classification choices)
                answers[task][i] = [None] * len(request)
                for j, sub in enumerate(request):
                    slots[type(sub)].append((task, i, j, sub))
            else:
                slots[type(request)].append((task, i, None, request))
    for request_type, pending in slots.items():
        if not pending:
            continue
        try:
            results = methods[request_type]([slot[3] for slot in pending])
        except Exception as error:  # noqa: BLE001 - recorded per task, typed by classify_failure
            if "OutOfMemory" in type(error).__name__:
                raise  # the whole job is out of memory; the parent records it for every task
            for task in {slot[0] for slot in pending}:
                errors.setdefault(task, error)
            continue
        for (task, i, j, _), result in zip(pending, results):
            if j is None:
                answers[task][i] = result
            else:
                answers[task][i][j] = result
    return answers, errors


def _truncated(answer: Any) -> bool:
    if isinstance(answer, list):
        return any(getattr(a, "truncated", False) for a in answer)
    return bool(getattr(answer, "truncated", False))


def run(job_dir: Path) -> None:
    from omegaconf import OmegaConf

    from harness.config import TaskConfig
    from tasks import kind_of

    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    out = job_dir / "out"
    out.mkdir(exist_ok=True)
    tasks, inputs, requests = {}, {}, {}
    for spec in job["tasks"]:
        task = OmegaConf.merge(OmegaConf.structured(TaskConfig), spec["config"])
        rows = [json.loads(line) for line in (job_dir / spec["inputs"]).read_text(encoding="utf-8").splitlines()]
        tasks[task.name], inputs[task.name] = task, rows
        requests[task.name] = kind_of(task).requests(task, [row["inputs"] for row in rows])
    try:
        backend = load_backend(job["model"], job["device"], job["batch_size"], job["progress"])
    except Exception as e:
        raise ModelLoadError(f"{type(e).__name__}: {e}") from e
    answers, errors = answer_all(backend, requests)
    for name, task in tasks.items():
        if name in errors:
            error = errors[name]
            failure = {"status": classify_failure(error), "reason": f"{type(error).__name__}: {error}"[:2000],
                       "log": "".join(traceback.format_exception(error))[-2000:]}
            (out / f"{name}.failure.json").write_text(json.dumps(failure), encoding="utf-8")
            continue
        predictions = kind_of(task).predictions(task, answers[name])
        lines = [json.dumps({"id": row["id"], "prediction": p}, ensure_ascii=False) for row, p in zip(inputs[name], predictions)]
        (out / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        meta = {"truncated": sum(_truncated(a) for a in answers[name]), "model": backend.model_info()}
        (out / f"{name}.meta.json").write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")


class ModelLoadError(Exception):
    """The model could not be loaded (missing files, bad config, refused weights)."""


def classify_failure(error: BaseException) -> str:
    if isinstance(error, MemoryError) or "OutOfMemory" in type(error).__name__:
        return "out-of-memory"
    if isinstance(error, ModelLoadError):
        return "load-error"
    return "crashed"


def main() -> int:
    job_dir = Path(sys.argv[1])
    try:
        run(job_dir)
        return 0
    except BaseException as error:  # report every failure typed, then exit non-zero
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        failure = {"status": classify_failure(error), "reason": f"{type(error).__name__}: {error}"[:2000],
                   "log": trace[-2000:]}
        (job_dir / "out").mkdir(exist_ok=True)
        (job_dir / "out" / "failure.json").write_text(json.dumps(failure), encoding="utf-8")
        return 1


if __name__ == "__main__":
    sys.exit(main())
