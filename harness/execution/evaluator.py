"""The Evaluator: decides, for each cell of a submission, whether to reuse, rescore or predict it, and does it.

A job is one submission on a set of tasks. The model (if any) runs once per job in an isolated child process
(harness.execution.isolation); scores are computed here, in the parent, which alone sees the references.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from harness import runtime, safety, status, store
from harness.contest.splits import public_view
from harness.errors import SubmissionError
from harness.execution.cells import Cell, attempts, library_versions, make_record
from harness.execution.isolation import run_job
from harness.models.baselines import BASELINES
from harness.models.predictions import predictions_file, read_predictions
from harness.prompting import check_generation_request, prompt_sha256, select_shots, task_for_submission
from harness.scoring import score
from harness.submission import Submission, load_submission, submission_sha256
from tasks import kind_of
from tasks.examples import Example, load_examples


class Evaluator:
    """Evaluates submissions on a set of tasks and hands each cell's record and predictions to `sink`: the store by
    default; on a Ray worker, a list the driver receives and writes (harness.execution.executors)."""

    def __init__(self, run_cfg: Any, tasks: Dict[str, Any], echo: Callable[[str], None] = print,
                 sink: Optional[Callable[[Dict[str, Any], Optional[List[Dict[str, Any]]]], None]] = None,
                 echo_prompts: int = 0, inputs_only: bool = False):
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
        # harness validate: data without references is read (inputs only) and its cells are checked, not scored
        self.inputs_only = inputs_only

    def examples(self, task: Any) -> List[Example]:
        if task.name not in self._examples:
            self._examples[task.name] = (load_examples(task, inputs_only=True) if self.inputs_only
                                         else load_examples(task))
        return self._examples[task.name]

    def shots(self, task: Any, examples: List[Example]) -> Any:
        """Each example's few-shot examples (None when the task takes none), drawn from the task's train pool,
        which is read once per run however many entries run the task."""
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
        refusal = safety.verdict(safety.vet(submission, self.cfg.allow_remote_code))  # before anything loads it
        if refusal is not None:
            return self._reject(submission.name, refusal, submission)
        try:  # a raised token budget only up to the organizer's cap
            check_generation_request(submission.manifest, str(folder / "submission.yaml"), self.cfg)
        except SubmissionError as e:
            return self._reject(submission.name, e, submission)
        sub_sha = submission_sha256(folder)
        ran_as = self.runtime(submission)
        cells = {name: Cell(task, submission.name, sub_sha, self.cfg, ran_as) for name, task in self.tasks.items()}
        # Held while this run decides and does the submission's work: a second run at the same time waits, then
        # finds the cells done instead of running the same model again.
        with store.submission_lock(self.results, submission.name):
            records: Dict[str, Dict[str, Any]] = {}
            to_predict: List[Cell] = []
            for name, cell in cells.items():
                cached = store.read_record(self.results, submission.name, name)
                if cached and not store.complete(self.results, cached):
                    cached = None  # its predictions are not the ones it was scored from (an interrupted write)
                same = cached and cached["keys"]["predictions"] == cell.prediction_key
                if same and cached["keys"]["scores"] == cell.score_key and not self._retry(cached):
                    records[name] = cached
                elif same and cached["status"] == "ok":
                    cell.attempts = attempts(cached)
                    cell.prediction_facts = cached["provenance"].get("prediction")  # what ran, back then
                    records[name] = self._rescore(submission, sub_sha, cell)
                elif same and self._retry(cached):
                    cell.attempts = attempts(cached) + 1
                    to_predict.append(cell)
                else:
                    to_predict.append(cell)
            if to_predict:
                for record in self._predict(submission, sub_sha, to_predict):
                    records[record["task"]] = record
        return [records[name] for name in sorted(records)]

    def runtime(self, submission: Submission) -> Optional[Dict[str, Any]]:
        """A model entry's resolved device type and dtype, and its hub commit: part of its cells' prediction keys
        (harness.runtime resolves `auto` without importing torch). None for entries that run no model."""
        if submission.manifest.kind not in safety.HF_KINDS:
            return None
        device = runtime.device_type(self.cfg.device)
        out = {"device_type": device, "dtype": runtime.resolve_dtype(submission.manifest.dtype, device)}
        commit = safety.hub_revision(submission)
        if commit is not None:
            out["model_revision"] = commit
        return out

    def _retry(self, record: Dict[str, Any]) -> bool:
        """Whether a stored failed cell is attempted again: a transient failure while it has attempts left, any
        failure once with `retry_failed=true`."""
        if record["status"] not in status.FAILED:
            return False
        return self.cfg.retry_failed or (record["status"] in status.TRANSIENT and attempts(record) < self.cfg.retries)

    def _reject(self, folder_name: str, error: SubmissionError,
                submission: Optional[Submission] = None) -> List[Dict[str, Any]]:
        """Every task's failed record of an entry refused before anything ran (its team and kind kept when its
        manifest loaded)."""
        out = []
        for name, task in sorted(self.tasks.items()):
            cell = Cell(task, folder_name, "", self.cfg)
            record = make_record(cell, submission, error.status, submission_sha=None, run_cfg=self.cfg,
                                 reason=str(error))
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
        examples = self.examples(cell.task)
        if any(e.target is None for e in examples):  # inputs-only data (validate): every check but the score
            return self._store_unscored(submission, sub_sha, cell, predictions, extra_counts, isolation)
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

    def _store_unscored(self, submission: Submission, sub_sha: str, cell: Cell, predictions: Dict[str, Any],
                        extra_counts: Dict[str, int], isolation: Optional[Dict[str, str]]) -> Dict[str, Any]:
        """An ok cell of data without references: its predictions are checked and kept, nothing is scored."""
        examples = self.examples(cell.task)
        check = functools.partial(kind_of(cell.task).check_prediction, cell.task)
        for example in examples:
            problem = check(predictions[example.id]) if example.id in predictions else None
            if problem:
                return self._fail(submission, sub_sha, cell, "bad-output", f"example {example.id!r}: {problem}")
        known = {e.id for e in examples}
        counts = {"examples": len(examples), "missing": sum(1 for e in examples if e.id not in predictions),
                  "unknown": sum(1 for i in predictions if i not in known), **extra_counts}
        record = make_record(cell, submission, "ok", submission_sha=sub_sha, run_cfg=self.cfg,
                             reason="no references in this data: checked, not scored", isolation=isolation,
                             extra_counts=counts)
        rows = [{"id": e.id, "prediction": predictions.get(e.id)} for e in examples]
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
        ran_as = self.runtime(submission) or {}
        device = runtime.resolved_device(self.cfg.device)  # the child runs exactly what the key says
        model = {"backend": self.cfg.backend.name, "kind": manifest.kind,
                 "location": str(safety.model_folder(submission)), "dtype": ran_as["dtype"],
                 "trust_remote_code": trust, "chat_template": manifest.chat_template, "reasoning": manifest.reasoning}
        prepared = {cell.task.name: self.prepare(cell.task, examples, manifest) for cell, examples in runnable}
        self.echo(f"running {manifest.name} on {', '.join(c.task.name for c, _ in runnable)}")
        self.models_loaded += 1
        outcome = run_job(model, [(prepared[c.task.name][0], ex) for c, ex in runnable], device=device,
                          batch_size=self.cfg.batch_size, progress=self.cfg.progress,
                          shots={name: shots for name, (_, shots, _) in prepared.items()},
                          echo_prompts=self.echo_prompts)
        self.jobs[manifest.name] = outcome
        facts = {"device_requested": self.cfg.device, "device": device, "dtype": ran_as["dtype"],
                 "batch_size": self.cfg.batch_size, "libraries": library_versions(),
                 "n_parameters": (outcome.timings.get("model") or {}).get("n_parameters"),
                 "model_revision": ran_as.get("model_revision")}
        for cell, _ in runnable:
            cell.prediction_facts = facts  # provenance only: never part of a key (scores must not depend on it)
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
        task = task_for_submission(task, manifest)
        shots = self.shots(task, examples)
        requests = kind_of(task).requests(task, [e.inputs for e in examples], shots)
        hashes = {e.id: prompt_sha256(r, manifest.chat_template) for e, r in zip(examples, requests)}
        return task, shots, hashes
