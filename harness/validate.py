"""`harness validate DIR`: the organizer's checks and code path, run by a participant on a few examples.

The same functions the organizer's run calls decide: the manifest check (`harness.submission`), the model folder
checks (`harness.safety`), then the runner's `Evaluator` on the first examples of each task, with the model in
the same isolated child process and its outputs read as strictly. On top it reports what a participant needs to
fix or plan: each check with how to fix it, the prompts exactly as the model's process renders them (chat template,
shots, truncation applied) and the predictions for the sample, measured
speed and peak memory, and an estimate of the full run's time on this machine.
"""
from __future__ import annotations

import copy
import difflib
import json
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from harness import guard, safety, store
from harness.compose import available
from harness.config import RunConfig, TaskConfig, suite_of
from harness.errors import SubmissionError
from harness.execution.cells import Record
from harness.execution.evaluator import Evaluator
from harness.models.predictions import predictions_file, read_predictions
from harness.requests import shown_with_choices
from harness.submission import MODEL_KINDS, Submission, load_submission
from tasks import kind_of
from tasks.examples import load_examples

SAMPLE_EXAMPLES = 3
MANIFEST_CHECK = "submission.yaml, paths and links are valid"
_SHOWN_CHARS = 300  # of a prompt or prediction in the text report (the --json report has them whole)
ACCEPTED_STATUSES = ("ok", "n/a", "not-submitted")
FIXES = {
    "invalid": "fix the field or file named above; see the README's 'Add a submission'",
    "load-error": "check that the folder loads with this transformers version: AutoTokenizer.from_pretrained(dir) "
                  "and {auto_class}.from_pretrained(dir, use_safetensors=True) (the class `kind: {kind}` uses; "
                  "decoder-only models such as GPT-2 or Llama are hf-causal, encoder-decoders such as T5 hf-seq2seq)",
    "refused": "ship safetensors weights only and no code (the model process refuses to unpickle anything)",
    "timeout": "make the model faster or smaller; its budget is the sum of the tasks' budget_s",
    "out-of-memory": "use a smaller model or a smaller dtype (`dtype: bfloat16` in submission.yaml)",
    "crashed": "read the log excerpt; try the model on the prompts shown with transformers directly",
    "bad-output": "outputs must be finite numbers, one per example, and at most 64 KiB of text each",
}
# A predictions entry's bad-output is a problem of its file, not of a model.
PREDICTIONS_FIX = ('each line of predictions/<task>.jsonl is one JSON object {"id": "<string>", "prediction": ...}, '
                   "each id once, UTF-8; see the README's 'Add a submission'")


def _check(name: str, ok: bool, detail: str = "", fix: str = "") -> Dict[str, Any]:
    return {"check": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


def validate(folder: Path, cfg: RunConfig, tasks: Dict[str, TaskConfig], n_examples: int = SAMPLE_EXAMPLES) -> Dict[str, Any]:

    checks: List[Dict[str, Any]] = []
    report: Dict[str, Any] = {"submission": str(folder), "suite": suite_of(cfg).name, "examples": n_examples,
                              "checks": checks, "tasks": {}, "run": None, "accepted": False}
    try:
        submission = load_submission(folder)
    except SubmissionError as e:
        checks.append(_check(MANIFEST_CHECK, False, str(e), FIXES["invalid"]))
        return report
    manifest = submission.manifest
    checks.append(_check(MANIFEST_CHECK, True, f"{manifest.kind} entry {manifest.name!r}"))
    findings = safety.vet(submission, cfg.allow_remote_code)
    checks.extend(_check(f.check, f.ok, f.detail, f.fix) for f in findings)
    if safety.verdict(findings) is None:  # the organizer runs nothing of a rejected entry; neither do we
        _sample_run(submission, cfg, tasks, n_examples, report)
    report["accepted"] = all(c["ok"] for c in checks)
    return report


def _sample_run(submission: Submission, cfg: RunConfig, tasks: Dict[str, TaskConfig], n_examples: int, report: Dict[str, Any]) -> None:
    """The organizer's Evaluator on the first examples (all of them for a predictions entry: reading is cheap)."""
    # the organizer's guard (data without references passes untouched)
    guard.check_tasks(tasks, lambda task: load_examples(task, inputs_only=True))
    sample = tasks if submission.manifest.kind == "predictions" else {n: _first(t, n_examples) for n, t in tasks.items()}
    with tempfile.TemporaryDirectory(prefix="harness-validate-") as tmp:
        run_cfg = copy.deepcopy(cfg)
        run_cfg.paths.results = tmp
        run_cfg.progress = False  # the child's output goes to its log (kept in a file the report names), never here
        # the child reports the exact text each sampled example gives the model (chat template, shots, cuts)
        evaluator = Evaluator(run_cfg, sample, echo=lambda message: None, echo_prompts=n_examples, inputs_only=True)
        records = evaluator.evaluate(submission.folder)
        for record in records:
            report["tasks"][record["task"]] = _task_report(record, evaluator, sample[record["task"]], Path(tmp))
        report["checks"].extend(_record_checks(records, submission.manifest.kind))
        if submission.manifest.kind == "predictions":
            report["checks"].extend(_id_checks(submission.folder, sample, evaluator))
        job = evaluator.jobs.get(submission.name)
    if job is not None:
        report["run"] = _run_report(job, report["tasks"], tasks)
        if job.log.strip():
            report["log_file"] = str(_keep_log(submission.name, job.log))


def _keep_log(name: str, text: str) -> Path:
    """The model process's log in a file of its own (the report shows an excerpt and names it)."""
    folder = Path(tempfile.gettempdir()) / "harness-validate"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.log"
    store.atomic_write_text(path, text)
    return path


def _some(ids: List[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _id_checks(folder: Path, tasks: Dict[str, Any], evaluator: Any) -> List[Dict[str, Any]]:
    """A predictions entry's ids against each task's examples (missing ids reject the file: `run` would score them
    0), and each file under predictions/ that is no task of the suite, with the closest task name."""
    checks = []
    for name, task in sorted(tasks.items()):
        path = predictions_file(folder, name)
        try:
            given = read_predictions(path, lambda prediction: None)
        except (SubmissionError, FileNotFoundError):
            continue  # no file (not submitted) or a broken one: reported by the task's own check
        ids = [e.id for e in evaluator.examples(task)]
        known = set(ids)
        missing = [i for i in ids if i not in given]
        unknown = sorted(i for i in given if i not in known)
        detail = (f"{len(given) - len(unknown)} of {len(ids)} ids; missing {len(missing)}"
                  + (f" ({_some(missing)})" if missing else "") + f", unknown {len(unknown)}"
                  + (f" ({_some(unknown)})" if unknown else ""))
        checks.append(_check(f"task {name}: predictions/{name}.jsonl has the test set's ids", not missing, detail,
                             "give one line for every example id of the task's test set (a missing id scores 0); "
                             "check the spelling of the ids named"))
    other_tasks = set(available("task"))  # a file for another suite's task (demo_zh) is no typo
    for path in sorted((folder / "predictions").glob("*.jsonl")):
        if path.stem not in tasks and path.stem not in other_tasks:
            close = difflib.get_close_matches(path.stem, list(tasks), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            checks.append(_check(f"predictions/{path.name} names a task of the suite", not close,
                                 f"{path.stem!r} is no task of this suite ({', '.join(sorted(tasks))}){hint}",
                                 f"rename it to predictions/{close[0] if close else '<task>'}.jsonl"))
    return checks


def _first(task: TaskConfig, n: int) -> Any:
    task = copy.deepcopy(task)
    task.data.limit = n if task.data.limit is None else min(n, task.data.limit)
    return task


def _record_checks(records: List[Record], kind: str) -> List[Dict[str, Any]]:
    """One check per task, except that tasks failing for one reason (a model that did not load) share a line."""
    auto_class = "AutoModelForSeq2SeqLM" if kind == "hf-seq2seq" else "AutoModelForCausalLM"
    groups: Dict[tuple, List[str]] = {}
    for record in records:
        key = (record["status"], record["reason"]) if record["status"] not in ACCEPTED_STATUSES else (record["task"],)
        groups.setdefault(key, []).append(record["task"])
    checks = []
    for key, names in groups.items():
        if len(key) == 1:  # accepted: status and reason of the one task
            record = next(r for r in records if r["task"] == key[0])
            detail = record["status"] + (f": {record['reason']}" if record["reason"] else "")
            checks.append(_check(f"task {key[0]} runs and its output is valid", True, detail))
            continue
        status, reason = key
        fix = FIXES.get(status, "").format(auto_class=auto_class, kind=kind)
        if kind == "predictions" and status == "bad-output":
            fix = PREDICTIONS_FIX
        what = f"task {names[0]} runs" if len(names) == 1 else f"tasks {', '.join(names)} run"
        checks.append(_check(f"{what} and {'its' if len(names) == 1 else 'their'} output is valid", False,
                             f"{status}: {reason}", fix))
    return checks


def _task_report(record: Record, evaluator: Evaluator, task: TaskConfig, store_dir: Path) -> Dict[str, Any]:

    examples = evaluator.examples(task)
    out: Dict[str, Any] = {"status": record["status"], "reason": record["reason"], "log": record["log"],
                           "examples": len(examples), "scores": record["scores"], "counts": record["counts"]}
    if record["submission_kind"] in MODEL_KINDS and record["status"] != "n/a":
        job = evaluator.jobs.get(record["submission"])
        from_model = job.prompts.get(record["task"], {}) if job is not None else {}
        if from_model:  # as the model's process laid them out, special tokens included
            out["prompts"] = {e.id: from_model[e.id] for e in examples if e.id in from_model}
        else:  # the model did not load: the prompts as plain text, before any chat template
            shots = evaluator.shots(task, examples)
            out["prompts"] = {e.id: p for e, p in zip(examples, rendered_prompts(task, [e.inputs for e in examples],
                                                                                 shots))}
    if record["status"] == "ok":
        rows = store.read_predictions(store_dir, record["submission"], record["task"])
        out["predictions"] = {row["id"]: row["prediction"] for row in rows}
    return out


def rendered_prompts(task: TaskConfig, inputs: List[Dict[str, Any]], shots: Any = None) -> List[str]:
    """What the model is asked, per example, as the task kind builds its requests (plain text, with shots)."""
    shown = []
    for request in kind_of(task).requests(task, inputs, shots):
        if isinstance(request, list):  # classification by log-likelihood: one context, a continuation per label
            shown.append(shown_with_choices(request[0].context, request))
        else:
            shown.append(str(getattr(request, "prompt", None) or getattr(request, "text", "")))
    return shown


def _run_report(job: Any, task_reports: Dict[str, Any], full_tasks: Dict[str, Any]) -> Dict[str, Any]:
    """Measured speed and memory of the sample, and the full run's time extrapolated from it."""
    timings = job.timings or {}
    types = timings.get("types", {})
    per_task: Dict[str, float] = {}
    for info in types.values():  # a request type's time, shared out by the tasks' number of requests
        for name, count in info.get("by_task", {}).items():
            per_task[name] = per_task.get(name, 0.0) + info["seconds"] * count / max(info["requests"], 1)
    inference = sum(info["seconds"] for info in types.values())
    sampled = sum(r["examples"] for name, r in task_reports.items() if name in per_task)
    estimate = timings.get("startup_s", 0.0) + timings.get("load_s", 0.0)
    full_examples = 0
    for name, seconds in per_task.items():
        n_full = len(load_examples(full_tasks[name], inputs_only=True))
        full_examples += n_full
        estimate += seconds * n_full / max(task_reports[name]["examples"], 1)
    budget = sum(float(full_tasks[name].budget_s) for name in per_task)
    return {"wall_s": job.wall_s, "startup_s": timings.get("startup_s"), "load_s": timings.get("load_s"),
            "inference_s": inference, "examples": sampled,
            "examples_per_s": sampled / inference if inference else None,
            "peak_rss_mib": job.peak_rss_bytes / 2**20 if job.peak_rss_bytes else None,
            "full_examples": full_examples, "estimate_s": estimate if per_task else None, "budget_s": budget,
            "model": timings.get("model", {}), "isolation": job.isolation}


# ---------------------------------------------------------------- printing


def print_report(report: Dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False, default=str))
        return
    print(f"validating {report['submission']} against suite {report['suite']} "
          f"(models run on the first {report['examples']} examples of each task)")
    print("checks:")
    for check in report["checks"]:
        print(f"  [{'ok' if check['ok'] else 'FAIL'}] {check['check']}" + (f": {check['detail']}" if check["detail"] else ""))
        if check["fix"]:
            print(f"         fix: {check['fix']}")
    shown_logs: set = set()
    for name, task in sorted(report["tasks"].items()):
        _print_task(name, task, shown_logs)
    if report["run"]:
        _print_run(report["run"])
    if report.get("log_file"):
        print(f"model process's full log: {report['log_file']}")
    print("accepted: the organizer's checks pass" if report["accepted"] else "rejected: fix the FAIL lines above")


def _short(value: Any) -> str:
    if not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a label or {"logprob", "n_tokens"}: short already
    return json.dumps(value[:_SHOWN_CHARS] + ("…" if len(value) > _SHOWN_CHARS else ""), ensure_ascii=False)


def _print_task(name: str, task: Dict[str, Any], shown_logs: set) -> None:
    scores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(task["scores"].items()))
    print(f"task {name}: {task['status']}" + (f" ({scores}, on {task['examples']} examples with local references)"
                                               if scores else f" ({task['reason']})" if task["reason"] else ""))
    if task["log"] and task["log"] not in shown_logs:  # a job's failure is every task's: show its end once
        shown_logs.add(task["log"])
        print("  log, last line: " + task["log"].strip().splitlines()[-1])
    cut = {k: task["counts"].get(k, 0) for k in ("truncated", "dropped_shots")}
    if any(cut.values()):  # never silent: prompts too long for the model's window
        print(f"  too long for the model: {cut['truncated']} example(s) cut, {cut['dropped_shots']} shot(s) dropped")
    for example_id, prompt in list(task.get("prompts", {}).items()):
        print(f"  [{example_id}] prompt: {_short(prompt)}")
        if example_id in task.get("predictions", {}):
            print(f"  [{example_id}] prediction: {_short(task['predictions'][example_id])}")


def _print_run(run: Dict[str, Any]) -> None:
    def seconds(value: Optional[float]) -> str:
        return "?" if value is None else f"{value:.1f} s"

    memory = f"{run['peak_rss_mib']:.0f} MiB" if run["peak_rss_mib"] else "?"
    if run["load_s"] is None:
        print(f"model process: {seconds(run['wall_s'])} wall; the model did not load; peak memory {memory}")
        return
    speed = f"{run['examples_per_s']:.1f} examples/s" if run["examples_per_s"] else "?"
    print(f"model process: {seconds(run['wall_s'])} wall (start {seconds(run['startup_s'])}, model load "
          f"{seconds(run['load_s'])}, inference {seconds(run['inference_s'])} for {run['examples']} examples: {speed}); "
          f"peak memory {memory}")
    if run["estimate_s"] is not None:
        fits = "within" if run["estimate_s"] <= run["budget_s"] else "OVER"
        print(f"estimated full run on this machine: {seconds(run['estimate_s'])} for {run['full_examples']} examples "
              f"({fits} the budget of {run['budget_s']:g} s; the organizer's hardware may differ)")
    print(f"network isolation: {run['isolation'].get('network', '?')}")
