"""Evaluate submissions on tasks: one record per (submission, task) cell.

A job is one submission on a set of tasks. Predictions are keyed by the submission's files, the task's inputs and
its prompt/generation settings; scores by that plus the metric settings. A cell whose keys match its stored
record is not evaluated again; a cell whose predictions match but whose metrics changed is rescored from the
stored predictions without loading a model.
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from harness import __version__, store
from harness.config import config_hash
from harness.data import Example, data_files, load_examples, sha256_file
from harness.errors import SubmissionError
from harness.submission import Submission, load_submission, submission_sha256

FAILED = ("invalid", "refused", "load-error", "timeout", "out-of-memory", "crashed", "bad-output")
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


def _data_content(data_cfg: Any, files: Dict[str, Optional[str]]) -> Dict[str, Any]:
    """A data config with each local file named by its content (sha256), not its location: data checked out or
    copied elsewhere keeps its cells' keys, and a changed line changes them."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(data_cfg, resolve=True)
    if data_cfg.source == "local":  # the suffix stays: with format auto it decides how the file is read
        data["path"] = [files[data_cfg.path], Path(data_cfg.path).suffix.lower()] if data_cfg.path else None
        data["files"] = {name: files[path] for name, path in sorted(data["files"].items())}
    return data


class Cell:
    """What is known about one (submission, task) cell while it is evaluated."""

    def __init__(self, task: Any, submission_name: str, submission_sha: str, run_cfg: Any):
        from omegaconf import OmegaConf

        from harness.isolation import child_task_config
        from harness.prompting import fewshot_pool_config

        self.task = task
        self.submission = submission_name
        files = {name: sha256_file(p) if p.is_file() else None for name, p in data_files(task.data).items()}
        self.data_sha256 = files
        self.task_hash = config_hash(task)
        inputs_key = {"data": _data_content(task.data, files), "fields": OmegaConf.to_container(task.fields, resolve=True),
                      "model_side": child_task_config(task)}
        pool = fewshot_pool_config(task)  # checks the few-shot settings (a ConfigError names the task and key)
        if pool is not None:  # the shots are part of what the model is asked: their data is part of the key
            pool_files = {name: sha256_file(p) if p.is_file() else None for name, p in data_files(pool).items()}
            inputs_key["fewshot_pool"] = _data_content(pool, pool_files)
        self.prediction_key = _sha({"submission": submission_sha, "inputs": inputs_key, "device": run_cfg.device})
        metric_side = {"metrics": list(task.metrics), "options": OmegaConf.to_container(task.metric_options, resolve=True),
                       "primary": task.primary_metric, "versions": library_versions()}
        if run_cfg.contest is not None:  # a contest's partition decides what a record scores (harness.splits)
            from harness.contest import contest_hash
            from harness.splits import board_part

            metric_side["contest"] = {"sha256": contest_hash(run_cfg), "part": board_part(run_cfg)}
        self.score_key = _sha({"predictions": self.prediction_key, "metrics": metric_side, "harness": __version__})


def provenance(cell: Cell, submission_sha: Optional[str], run_cfg: Any) -> Dict[str, Any]:
    return {"harness": __version__, "python": platform.python_version(), "libraries": library_versions(),
            "task_config_sha256": cell.task_hash, "data_sha256": cell.data_sha256,
            "submission_sha256": submission_sha,
            "run_config_sha256": config_hash({"device": run_cfg.device, "seed": run_cfg.seed}),
            "contest_sha256": None if run_cfg.contest is None else config_hash(run_cfg.contest)}


def _prompt_provenance(task: Any, submission: Optional[Submission]) -> Dict[str, Any]:
    """The whole prompt config (task side and what the submission declared) and its sha256."""
    from harness.prompting import prompt_config

    config = prompt_config(task, submission.manifest if submission else None)
    return {"prompt_config": config, "prompt_config_sha256": config_hash(config)}


def make_record(cell: Cell, submission: Optional[Submission], status: str, *, submission_sha: Optional[str],
                run_cfg: Any, scored: Any = None, reason: str = "", log: str = "", extra_counts=None,
                isolation: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    manifest = submission.manifest if submission else None
    record: Dict[str, Any] = {
        "submission": cell.submission, "team": manifest.team if manifest else None,
        "submission_kind": manifest.kind if manifest else None, "task": cell.task.name, "task_kind": cell.task.kind,
        "status": status, "reason": reason, "log": log, "primary_metric": cell.task.primary_metric,
        "primary": None, "scores": {}, "higher_is_better": {}, "signatures": {}, "counts": {},
        "keys": {"predictions": cell.prediction_key, "scores": cell.score_key},
        "provenance": {**provenance(cell, submission_sha, run_cfg), **_prompt_provenance(cell.task, submission)},
    }
    if scored is not None:
        record.update(scores=scored.scores, higher_is_better=scored.higher_is_better, signatures=scored.signatures,
                      primary=scored.scores[cell.task.primary_metric], counts=dict(scored.counts))
    record["counts"].update(extra_counts or {})
    if isolation:  # what the model's process ran under (harness.isolation)
        record["provenance"]["isolation"] = isolation
    return record


class Evaluator:
    """Evaluates submissions on a set of tasks and hands each cell's record and predictions to `sink`: the store by
    default; on a Ray worker, a list the driver receives and writes (harness.executors)."""

    def __init__(self, run_cfg: Any, tasks: Dict[str, Any], echo: Callable[[str], None] = print,
                 sink: Optional[Callable[[Dict[str, Any], Optional[List[Dict[str, Any]]]], None]] = None,
                 echo_prompts: int = 0):
        self.cfg = run_cfg
        self.tasks = tasks
        self.results = Path(run_cfg.paths.results)
        self.echo = echo
        self.sink = sink or functools.partial(store.write_cell, self.results)
        self.models_loaded = 0
        self.jobs: Dict[str, Any] = {}  # submission name -> its model job's JobOutcome (timings, memory)
        self._examples: Dict[str, List[Example]] = {}
        self._pools: Dict[str, List[Example]] = {}  # task -> its few-shot train pool
        self.echo_prompts = echo_prompts  # ask model jobs for the rendered prompts of N examples (harness validate)

    def examples(self, task: Any) -> List[Example]:
        if task.name not in self._examples:
            self._examples[task.name] = load_examples(task)
        return self._examples[task.name]

    def shots(self, task: Any, examples: List[Example]) -> Any:
        """Each example's few-shot examples (None when the task takes none), drawn from the task's train pool,
        which is read once per run however many entries run the task."""
        from harness.prompting import select_shots

        def pool() -> List[Example]:
            if task.name not in self._pools:
                self._pools[task.name] = load_examples(task, task.train, "train")
            return self._pools[task.name]

        return select_shots(task, [e.id for e in examples], pool)

    def evaluate(self, folder: Path) -> List[Dict[str, Any]]:
        """Every task's record for the submission in `folder` (from the cache where its keys match)."""
        try:
            submission = load_submission(folder)
        except SubmissionError as e:
            return self._reject(folder.name, e)
        from harness import safety

        refusal = safety.verdict(safety.vet(submission, self.cfg.allow_remote_code))  # before anything loads it
        if refusal is not None:
            return self._reject(submission.name, refusal)
        from harness.prompting import check_generation_request

        try:  # a raised token budget only up to the organizer's cap
            check_generation_request(submission.manifest, str(folder / "submission.yaml"), self.cfg)
        except SubmissionError as e:
            return self._reject(submission.name, e)
        sub_sha = submission_sha256(folder)
        cells = {name: Cell(task, submission.name, sub_sha, self.cfg) for name, task in self.tasks.items()}
        # Held while this run decides and does the submission's work: a second run at the same time waits, then
        # finds the cells done instead of running the same model again.
        with store.submission_lock(self.results, submission.name):
            records: Dict[str, Dict[str, Any]] = {}
            to_predict: List[Cell] = []
            for name, cell in cells.items():
                cached = store.read_record(self.results, submission.name, name)
                if cached and not store.complete(self.results, cached):
                    cached = None  # its predictions are not the ones it was scored from (an interrupted write)
                if cached and cached["keys"] == {"predictions": cell.prediction_key, "scores": cell.score_key}:
                    records[name] = cached
                elif cached and cached["keys"]["predictions"] == cell.prediction_key and cached["status"] == "ok":
                    records[name] = self._rescore(submission, sub_sha, cell)
                else:
                    to_predict.append(cell)
            if to_predict:
                for record in self._predict(submission, sub_sha, to_predict):
                    records[record["task"]] = record
        return [records[name] for name in sorted(records)]

    def _reject(self, folder_name: str, error: SubmissionError) -> List[Dict[str, Any]]:
        out = []
        for name, task in sorted(self.tasks.items()):
            cell = Cell(task, folder_name, "", self.cfg)
            record = make_record(cell, None, error.status, submission_sha=None, run_cfg=self.cfg, reason=str(error))
            self.sink(record, None)
            out.append(record)
        return out

    def _rescore(self, submission: Submission, sub_sha: str, cell: Cell) -> Dict[str, Any]:
        rows = store.read_predictions(self.results, submission.name, cell.task.name)
        cached = store.read_record(self.results, submission.name, cell.task.name) or {}
        extra = {k: v for k, v in cached.get("counts", {}).items() if k in ("truncated", "dropped_shots")}
        hashes = {r["id"]: r["prompt_sha256"] for r in rows if r.get("prompt_sha256")}
        return self._score_and_store(submission, sub_sha, cell, {r["id"]: r["prediction"] for r in rows if r["id"] is not None},
                                     extra, unknown=cached.get("counts", {}).get("unknown", 0),
                                     prompt_hashes=hashes or None)

    def _predict(self, submission: Submission, sub_sha: str, cells: List[Cell]) -> List[Dict[str, Any]]:
        kind = submission.manifest.kind
        if kind == "predictions":
            return [self._from_file(submission, sub_sha, cell) for cell in cells]
        if kind == "baseline":
            return [self._from_baseline(submission, sub_sha, cell) for cell in cells]
        return self._from_model(submission, sub_sha, cells)

    def _score_and_store(self, submission: Submission, sub_sha: str, cell: Cell, predictions: Dict[str, Any],
                         extra_counts: Dict[str, int], unknown: Optional[int] = None,
                         isolation: Optional[Dict[str, str]] = None,
                         prompt_hashes: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        from harness.scoring import score
        from harness.splits import public_view

        examples = self.examples(cell.task)
        try:
            # in a contest the record holds the public part's scores only; the private part is scored by `reveal`
            scored = public_view(self.cfg, cell.task, examples, score(cell.task, examples, predictions))
        except SubmissionError as e:
            return self._fail(submission, sub_sha, cell, e.status, str(e))
        if unknown is not None:
            scored.counts["unknown"] = unknown
        record = make_record(cell, submission, "ok", submission_sha=sub_sha, run_cfg=self.cfg, scored=scored,
                             extra_counts=extra_counts, isolation=isolation)
        rows = [{"id": e.id, "prediction": predictions.get(e.id)} for e in examples]
        if prompt_hashes:  # model entries: the sha256 of what each example asked the model (harness.prompting)
            for row in rows:
                row["prompt_sha256"] = prompt_hashes.get(row["id"])
        # ties the record to the exact predictions file written beside it (store.complete checks it)
        record["provenance"]["predictions_sha256"] = store.text_sha256(store.predictions_text(rows))
        self.sink(record, rows)
        return record

    def _fail(self, submission: Optional[Submission], sub_sha: str, cell: Cell, status: str, reason: str,
              log: str = "", isolation: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        record = make_record(cell, submission, status, submission_sha=sub_sha, run_cfg=self.cfg, reason=reason, log=log,
                             isolation=isolation)
        self.sink(record, None)
        return record

    def _mark(self, submission: Submission, sub_sha: str, cell: Cell, status: str, reason: str) -> Dict[str, Any]:
        """A cell that is not a failure and has no score: not-submitted, n/a."""
        return self._fail(submission, sub_sha, cell, status, reason)

    def _from_file(self, submission: Submission, sub_sha: str, cell: Cell) -> Dict[str, Any]:
        from harness.models.predictions import predictions_file, read_predictions
        from tasks import kind_of

        path = predictions_file(submission.folder, cell.task.name)
        if not path.is_file():
            return self._mark(submission, sub_sha, cell, "not-submitted", f"no predictions/{cell.task.name}.jsonl")
        check = functools.partial(kind_of(cell.task).check_prediction, cell.task)
        try:
            predictions = read_predictions(path, check)
        except SubmissionError as e:
            return self._fail(submission, sub_sha, cell, e.status, str(e))
        return self._score_and_store(submission, sub_sha, cell, predictions, {})

    def _from_baseline(self, submission: Submission, sub_sha: str, cell: Cell) -> Dict[str, Any]:
        from harness.models.baselines import BASELINES

        task = cell.task
        examples = self.examples(task)
        train = functools.partial(load_examples, task, task.train, "train") if task.train is not None else (lambda: None)
        predictions = BASELINES[submission.manifest.baseline](task, [e.inputs for e in examples], train)
        if predictions is None:
            return self._mark(submission, sub_sha, cell, "n/a",
                              f"baseline {submission.manifest.baseline} does not cover {task.kind} tasks"
                              + ("" if task.train is not None or task.kind not in ("classification", "language_modeling")
                                 else " without a train split"))
        return self._score_and_store(submission, sub_sha, cell, {e.id: p for e, p in zip(examples, predictions)}, {})

    def _from_model(self, submission: Submission, sub_sha: str, cells: List[Cell]) -> List[Dict[str, Any]]:
        from harness.isolation import run_job
        from harness.safety import model_folder

        records, runnable = [], []
        for cell in cells:
            examples = self.examples(cell.task)
            if examples and not any(e.inputs for e in examples):
                records.append(self._mark(submission, sub_sha, cell, "n/a",
                                          "the task has references only; only predictions entries can be scored"))
            elif cell.task.kind == "language_modeling" and submission.manifest.kind == "hf-seq2seq":
                records.append(self._mark(submission, sub_sha, cell, "n/a",
                                          "perplexity needs a decoder-only model; seq2seq entries are not scored on it"))
            else:
                runnable.append((cell, examples))
        if not runnable:
            return records
        manifest = submission.manifest
        trust = manifest.trust_remote_code and manifest.name in self.cfg.allow_remote_code
        model = {"kind": manifest.kind, "location": str(model_folder(submission)), "dtype": manifest.dtype,
                 "trust_remote_code": trust, "chat_template": manifest.chat_template, "reasoning": manifest.reasoning}
        prepared = {cell.task.name: self.prepare(cell.task, examples, manifest) for cell, examples in runnable}
        self.echo(f"running {manifest.name} on {', '.join(c.task.name for c, _ in runnable)}")
        self.models_loaded += 1
        outcome = run_job(model, [(prepared[c.task.name][0], ex) for c, ex in runnable], device=self.cfg.device,
                          batch_size=self.cfg.batch_size, progress=self.cfg.progress,
                          shots={name: shots for name, (_, shots, _) in prepared.items()},
                          echo_prompts=self.echo_prompts)
        self.jobs[manifest.name] = outcome
        for cell, _ in runnable:
            name = cell.task.name
            if name in outcome.failures:
                status, reason, log = outcome.failures[name]
                records.append(self._fail(submission, sub_sha, cell, status, reason, log, outcome.isolation))
            else:
                meta = outcome.meta[name]
                records.append(self._score_and_store(submission, sub_sha, cell, outcome.predictions[name],
                                                     {"truncated": int(meta.get("truncated", 0)),
                                                      "dropped_shots": int(meta.get("dropped_shots", 0))},
                                                     isolation=outcome.isolation, prompt_hashes=prepared[name][2]))
        return records

    def prepare(self, task: Any, examples: List[Example], manifest: Any) -> tuple:
        """(the task as this entry runs it, each example's shots, each example's prompt sha256), in the parent:
        shots come from the train pool (never the scored split); the hashes are of the requests the child will
        build from the same inputs and shots."""
        from harness.prompting import prompt_sha256, task_for_submission
        from tasks import kind_of

        task = task_for_submission(task, manifest)
        shots = self.shots(task, examples)
        requests = kind_of(task).requests(task, [e.inputs for e in examples], shots)
        hashes = {e.id: prompt_sha256(r, manifest.chat_template) for e, r in zip(examples, requests)}
        return task, shots, hashes


def evaluate_all(run_cfg: Any, tasks: Dict[str, Any], folders: Sequence[Path],
                 echo: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Every cell's record, folder by folder (tasks sorted); the jobs run through `run_cfg.executor`."""
    from harness.executors import executor_for

    return executor_for(run_cfg.executor).run(run_cfg, tasks, folders, echo)
