"""The Evaluator: decides, for each cell of a submission, whether to reuse, rescore or predict it, and does it.

A job is one submission on a set of tasks. The model (if any) runs once per job in an isolated child process
(harness.execution.isolation); scores are computed here, in the parent, which alone sees the references.
"""
from __future__ import annotations

import functools
import os
import re
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, cast

from harness import filehash, runtime, safety, status, store
from harness.config import RunConfig, TaskConfig, as_dict
from harness.contest.splits import public_view
from harness.errors import ConfigError, SubmissionError
from harness.execution.cells import Cell, Record, attempts, library_versions, make_record
from harness.execution.isolation import Remote, run_job
from harness.execution.statistics import cell_statistics
from harness.models import DEFAULT_BACKEND, ENDPOINT_BACKEND, backend_module, engine_facts, unsupported
from harness.models.baselines import BASELINES
from harness.models.engines import CLIENT_OPTIONS
from harness.models.predictions import file_limit, predictions_file, read_predictions
from harness.prompting import check_generation_request, prompt_sha256, select_shots, task_for_submission
from harness.scoring import score, time_budget
from harness.status import LOG_CHARS
from harness.submission import Manifest, Submission, endpoint_host, load_submission, submission_sha256
from tasks import kind_of
from tasks.examples import Example, load_examples

# (submission, its sha256, the cells that need its model) -> their records
ModelCells = Callable[[Submission, str, List[Cell]], List[Record]]
Sink = Callable[[Record, Optional[List[Dict[str, Any]]], Optional[Dict[str, Any]]], None]  # record, prediction rows, stats


def relative_paths(text: str, folder: Path) -> str:
    """`text` with the submission's own paths written relative to it (`submission.yaml`, `model/config.json`):
    its folder, as given, absolute or resolved, where it starts a path (not inside a longer name)."""
    for form in sorted({str(folder), os.path.abspath(folder), os.path.realpath(folder)}, key=len, reverse=True):
        start = r"(?<![\w.\-/])" + re.escape(form)
        text = re.sub(start + re.escape(os.sep), "", text)
        if os.path.isabs(form):
            text = re.sub(start + r"(?![\w.\-/])", ".", text)
    return text


def check_sizes(folder: Path, cfg: Any) -> None:
    """The organizer's caps on a submission's size (`max_submission_bytes`) and on any one file (`max_file_bytes`),
    from stat alone."""
    files = filehash.sizes(folder)
    big = [(rel, size) for rel, size in files if size > cfg.max_file_bytes]
    if big:
        shown = ", ".join(f"{rel} ({size} bytes)" for rel, size in big[:3]) + (" ..." if len(big) > 3 else "")
        raise SubmissionError(f"files larger than the organizer's limit of {cfg.max_file_bytes} bytes "
                              f"(max_file_bytes): {shown}")
    total = sum(size for _, size in files)
    if total > cfg.max_submission_bytes:
        raise SubmissionError(f"the submission's files add up to {total} bytes, more than the organizer's limit of "
                              f"{cfg.max_submission_bytes} bytes (max_submission_bytes)")


class Evaluator:
    """Evaluates submissions on a set of tasks and hands each cell's record, predictions and statistics to `sink`:
    the store by default; on a Ray worker, a list the driver receives and writes (harness.execution.executors).

    `run_model` does the cells that need the submission's model: by default `run_model_job` (a child process, here
    and now); the Ray driver passes one that sets them aside for a Ray job (harness.execution.executors.Planner)."""

    def __init__(self, run_cfg: RunConfig, tasks: Dict[str, TaskConfig], echo: Callable[[str], None] = print,
                 sink: Optional[Sink] = None, echo_prompts: int = 0, run_model: Optional[ModelCells] = None,
                 inputs_only: bool = False):
        self.run_model: ModelCells = run_model or self.run_model_job
        self.cfg = run_cfg
        self.tasks = tasks
        self.results = Path(run_cfg.paths.results)
        self.echo = echo
        self._store = sink or functools.partial(store.write_cell, self.results)
        self.folder: Optional[Path] = None  # the submission being evaluated: reasons name paths relative to it
        self.models_loaded = 0
        self.jobs: Dict[str, Any] = {}  # submission name -> its model job's JobOutcome (timings, memory)
        self._examples: Dict[str, List[Example]] = {}
        self._pools: Dict[str, List[Example]] = {}  # task -> its few-shot train pool
        self.echo_prompts = echo_prompts  # ask model jobs for the rendered prompts of N examples (harness validate)
        # harness validate: data without references is read (inputs only) and its cells are checked, not scored
        self.inputs_only = inputs_only

    def examples(self, task: TaskConfig) -> List[Example]:
        if task.name not in self._examples:
            self._examples[task.name] = (load_examples(task, inputs_only=True) if self.inputs_only
                                         else load_examples(task))
        return self._examples[task.name]

    def shots(self, task: TaskConfig, examples: List[Example]) -> Any:
        """Each example's few-shot examples (None when the task takes none), drawn from the task's train pool,
        which is read once per run however many entries run the task."""
        def pool() -> List[Example]:
            if task.name not in self._pools:
                self._pools[task.name] = load_examples(task, task.train, "train")
            return self._pools[task.name]

        return select_shots(task, [e.id for e in examples], pool)

    def sink(self, record: Record, rows: Optional[List[Dict[str, Any]]],
             stats: Optional[Dict[str, Any]] = None) -> None:
        """Hands a record on, its reason and log excerpt showing paths relative to the submission: a public board
        never shows where the organizer keeps things."""
        if self.folder is not None:
            record["reason"] = relative_paths(record["reason"], self.folder)
            record["log"] = relative_paths(record["log"], self.folder)
        self._store(record, rows, stats)

    def evaluate(self, folder: Path) -> List[Record]:
        """Every task's record for the submission in `folder` (from the cache where its keys match). Whatever the
        entry provokes that no check foresaw fails this entry's cells as `crashed`, never the run; only the
        organizer's own config errors stop it."""
        self.folder = Path(folder)
        try:
            return self._evaluate(self.folder)
        except ConfigError:
            raise
        except Exception as e:  # the last line of defence: the run goes on with the other entries
            try:
                name = load_submission(folder).name
            except SubmissionError:
                name = self.folder.name
            error = SubmissionError(f"the harness failed on this entry: {type(e).__name__}: {str(e)[:300]}",
                                    status="crashed")
            return self._reject(name, error, log=traceback.format_exc()[-LOG_CHARS:])

    def _evaluate(self, folder: Path) -> List[Record]:
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
        refusal = endpoint_refusal(submission.manifest, self.cfg, str(folder / "submission.yaml"))
        if refusal is not None:
            return self._reject(submission.name, refusal, submission)
        try:  # by stat, before a byte is read: a 10 GB file is refused, not hashed
            check_sizes(folder, self.cfg)
        except SubmissionError as e:
            return self._reject(submission.name, e, submission)
        sub_sha = submission_sha256(folder, self.results / filehash.CACHE_NAME)
        backend = backend_of(submission.manifest, self.cfg)
        ran_as = self.runtime(submission)
        cells = {name: Cell(task, submission.name, sub_sha, self.cfg, backend=backend, runtime=ran_as)
                 for name, task in self.tasks.items()}
        # a remote model can change under its name: its cells are predicted again unless the organizer pins them
        reuse = submission.manifest.kind != "endpoint" or self.cfg.reuse_endpoint_predictions
        # Held while this run decides and does the submission's work: a second run at the same time waits, then
        # finds the cells done instead of running the same model again.
        with store.submission_lock(self.results, submission.name):
            records: Dict[str, Record] = {}
            to_predict: List[Cell] = []
            for name, cell in cells.items():
                cached = store.read_record(self.results, submission.name, name) if reuse else None
                if cached and not store.predictions_match(self.results, cached):
                    cached = None  # its predictions are not the ones it was scored from (an interrupted write)
                # an ok cell stored without its statistics (or beside other ones) is scored again, with no model
                stored_stats = cached and (cached["status"] != "ok" or (
                    "stats_sha256" in cached["provenance"] and store.stats_match(self.results, cached)))
                if cached is None or cached["keys"]["predictions"] != cell.prediction_key:
                    to_predict.append(cell)
                    continue
                if cached["keys"]["scores"] == cell.score_key and stored_stats and not self._retry(cached):
                    records[name] = cast(Record, cached)  # the stored JSON of a record make_record built
                elif cached["status"] == "ok":
                    records[name] = self._rescore(submission, sub_sha, cell, cached)
                elif self._retry(cached):
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

    def _reject(self, folder_name: str, error: SubmissionError, submission: Optional[Submission] = None,
                log: str = "") -> List[Record]:
        """Every task's failed record of an entry refused before anything ran (its team and kind kept when its
        manifest loaded)."""
        out = []
        for name, task in sorted(self.tasks.items()):
            cell = Cell(task, folder_name, "", self.cfg)
            record = make_record(cell, submission, error.status, submission_sha=None, run_cfg=self.cfg,
                                 reason=str(error), log=log)
            self.sink(record, None, None)
            out.append(record)
        return out

    def _rescore(self, submission: Submission, sub_sha: str, cell: Cell, cached: Dict[str, Any]) -> Record:
        """Scores the predictions stored with `cached` (an ok record) again, with no model. They are the ones made
        back then, so the new record keeps what made them: attempts, device and versions, sandbox, backend."""
        rows = store.read_predictions(self.results, submission.name, cell.task.name)
        ran = cached["provenance"]
        cell.attempts = attempts(cached)
        cell.prediction_facts = ran.get("prediction")
        extra = {k: v for k, v in cached["counts"].items() if k in ("truncated", "dropped_shots")}
        hashes = {r["id"]: r["prompt_sha256"] for r in rows if r.get("prompt_sha256")}
        return self._score_and_store(submission, sub_sha, cell, {r["id"]: r["prediction"] for r in rows if r["id"] is not None},
                                     extra, unknown=cached["counts"].get("unknown", 0),
                                     prompt_hashes=hashes or None, isolation=ran.get("isolation"),
                                     backend=ran.get("backend"))

    def _predict(self, submission: Submission, sub_sha: str, cells: List[Cell]) -> List[Record]:
        kind = submission.manifest.kind
        if kind == "predictions":
            return [self._from_file(submission, sub_sha, cell) for cell in cells]
        if kind == "baseline":
            return [self._from_baseline(submission, sub_sha, cell) for cell in cells]
        return self.run_model(submission, sub_sha, cells)

    def _score_and_store(self, submission: Submission, sub_sha: str, cell: Cell, predictions: Dict[str, Any],
                         extra_counts: Dict[str, int], unknown: Optional[int] = None,
                         isolation: Optional[Dict[str, str]] = None,
                         prompt_hashes: Optional[Dict[str, str]] = None,
                         backend: Optional[Dict[str, Any]] = None) -> Record:
        examples = self.examples(cell.task)
        if any(e.target is None for e in examples):  # inputs-only data (validate): every check but the score
            return self._store_unscored(submission, sub_sha, cell, predictions, extra_counts, isolation)
        try:
            # in a contest the record holds the public part's scores only; the private part is scored by `reveal`
            with time_budget(self.cfg.scoring_budget_s):
                full = score(cell.task, examples, predictions)
                scored = public_view(self.cfg, cell.task, examples, full)
        except SubmissionError as e:
            return self.fail(submission, sub_sha, cell, e.status, str(e))
        stats = cell_statistics(self.cfg, cell.task, examples, full)  # the board reads these, never scores again
        if unknown is not None:
            scored.counts["unknown"] = unknown
        record = make_record(cell, submission, "ok", submission_sha=sub_sha, run_cfg=self.cfg, scored=scored,
                             extra_counts=extra_counts, isolation=isolation, backend=backend)
        rows: List[Dict[str, Any]] = [{"id": e.id, "prediction": predictions.get(e.id)} for e in examples]
        if prompt_hashes:  # model entries: the sha256 of what each example asked the model (harness.prompting)
            for row in rows:
                row["prompt_sha256"] = prompt_hashes.get(row["id"])
        # ties the record to the exact predictions file written beside it (store.complete checks it)
        record["provenance"]["predictions_sha256"] = store.text_sha256(store.predictions_text(rows))
        if stats is not None:
            record["provenance"]["stats_sha256"] = store.text_sha256(store.stats_text(stats))
        self.sink(record, rows, stats)
        return record

    def _store_unscored(self, submission: Submission, sub_sha: str, cell: Cell, predictions: Dict[str, Any],
                        extra_counts: Dict[str, int], isolation: Optional[Dict[str, str]]) -> Record:
        """An ok cell of data without references: its predictions are checked and kept, nothing is scored."""
        examples = self.examples(cell.task)
        check = functools.partial(kind_of(cell.task).check_prediction, cell.task)
        for example in examples:
            problem = check(predictions[example.id]) if example.id in predictions else None
            if problem:
                return self.fail(submission, sub_sha, cell, "bad-output", f"example {example.id!r}: {problem}")
        known = {e.id for e in examples}
        counts = {"examples": len(examples), "missing": sum(1 for e in examples if e.id not in predictions),
                  "unknown": sum(1 for i in predictions if i not in known), **extra_counts}
        record = make_record(cell, submission, "ok", submission_sha=sub_sha, run_cfg=self.cfg,
                             reason="no references in this data: checked, not scored", isolation=isolation,
                             extra_counts=counts)
        rows = [{"id": e.id, "prediction": predictions.get(e.id)} for e in examples]
        record["provenance"]["predictions_sha256"] = store.text_sha256(store.predictions_text(rows))
        self.sink(record, rows, None)
        return record

    def fail(self, submission: Optional[Submission], sub_sha: str, cell: Cell, status: str, reason: str,
             log: str = "", isolation: Optional[Dict[str, str]] = None,
             backend: Optional[Dict[str, Any]] = None) -> Record:
        record = make_record(cell, submission, status, submission_sha=sub_sha, run_cfg=self.cfg, reason=reason, log=log,
                             isolation=isolation, backend=backend)
        self.sink(record, None, None)
        return record

    def _mark(self, submission: Submission, sub_sha: str, cell: Cell, status: str, reason: str) -> Record:
        """A cell that is not a failure and has no score: not-submitted, n/a."""
        return self.fail(submission, sub_sha, cell, status, reason)

    def _from_file(self, submission: Submission, sub_sha: str, cell: Cell) -> Record:
        path = predictions_file(submission.folder, cell.task.name)
        if not path.is_file():
            return self._mark(submission, sub_sha, cell, "not-submitted", f"no predictions/{cell.task.name}.jsonl")
        check = functools.partial(kind_of(cell.task).check_prediction, cell.task)
        try:
            predictions = read_predictions(path, check, file_limit(len(self.examples(cell.task))))
        except SubmissionError as e:
            return self.fail(submission, sub_sha, cell, e.status, str(e))
        return self._score_and_store(submission, sub_sha, cell, predictions, {})

    def _from_baseline(self, submission: Submission, sub_sha: str, cell: Cell) -> Record:
        task = cell.task
        examples = self.examples(task)
        train = functools.partial(load_examples, task, task.train, "train") if task.train is not None else (lambda: None)
        predictions = BASELINES[submission.manifest.baseline or ""](task, [e.inputs for e in examples], train)
        if predictions is None:
            return self._mark(submission, sub_sha, cell, "n/a",
                              f"baseline {submission.manifest.baseline} does not cover {task.kind} tasks"
                              + ("" if task.train is not None or not kind_of(task).fits_on_train
                                 else " without a train split"))
        return self._score_and_store(submission, sub_sha, cell, {e.id: p for e, p in zip(examples, predictions)}, {})

    def run_model_job(self, submission: Submission, sub_sha: str, cells: List[Cell]) -> List[Record]:
        """The cells that need the submission's model: n/a where it cannot be scored, else one model job for all."""
        records, runnable = [], []
        backend = backend_of(submission.manifest, self.cfg)
        kind = submission.manifest.kind
        cannot = unsupported(backend["name"], kind) if kind != "endpoint" else None
        for cell in cells:
            examples = self.examples(cell.task)
            if examples and not any(e.inputs for e in examples):
                records.append(self._mark(submission, sub_sha, cell, "n/a",
                                          "the task has references only; only predictions entries can be scored"))
            elif cannot:
                records.append(self._mark(submission, sub_sha, cell, "n/a", cannot))
            elif (why := kind_of(cell.task).unsupported(submission.manifest.kind)) is not None:
                records.append(self._mark(submission, sub_sha, cell, "n/a", why))
            else:
                runnable.append((cell, examples))
        if not runnable:
            return records
        manifest = submission.manifest
        trust = manifest.trust_remote_code and manifest.name in self.cfg.allow_remote_code
        ran_as = self.runtime(submission) or {}
        device = runtime.resolved_device(self.cfg.device)  # the child runs exactly what the key says
        model = {"backend": backend["name"], "backend_module": backend_module(backend["name"]),
                 "options": backend["options"], "kind": manifest.kind,
                 "location": self._location(submission), "dtype": ran_as.get("dtype", manifest.dtype),
                 "trust_remote_code": trust, "chat_template": manifest.chat_template, "reasoning": manifest.reasoning}
        remote = None
        if manifest.kind == "endpoint":  # the key's variable is named, never its value (that stays in the env)
            endpoint = manifest.endpoint or {}
            model["endpoint"] = {**endpoint, "api_key_env": self.cfg.endpoint_api_key_env}
            remote = Remote(endpoint_host(endpoint["base_url"]) or "", self.cfg.endpoint_api_key_env)
        prepared = {cell.task.name: self.prepare(cell.task, examples, manifest) for cell, examples in runnable}
        self.echo(f"running {manifest.name} on {', '.join(c.task.name for c, _ in runnable)}")
        self.models_loaded += 1
        outcome = run_job(model, [(prepared[c.task.name][0], ex) for c, ex in runnable], device=device,
                          batch_size=self.cfg.batch_size, progress=self.cfg.progress,
                          shots={name: shots for name, (_, shots, _) in prepared.items()},
                          echo_prompts=self.echo_prompts, remote=remote, memory_bytes=self.cfg.job_memory_bytes)
        self.jobs[manifest.name] = outcome
        backend_facts = backend_provenance(backend, manifest)
        facts = {"device_requested": self.cfg.device, "device": device, "dtype": ran_as.get("dtype", manifest.dtype),
                 "batch_size": self.cfg.batch_size, "libraries": library_versions(),
                 "n_parameters": (outcome.timings.get("model") or {}).get("n_parameters"),
                 "model_revision": ran_as.get("model_revision")}
        for cell, _ in runnable:
            cell.prediction_facts = facts  # provenance only: never part of a key (scores must not depend on it)
            name = cell.task.name
            if name in outcome.failures:
                status, reason, log = outcome.failures[name]
                records.append(self.fail(submission, sub_sha, cell, status, reason, log, outcome.isolation,
                                         backend_facts))
            else:
                meta = outcome.meta[name]
                records.append(self._score_and_store(submission, sub_sha, cell, outcome.predictions[name],
                                                     {"truncated": int(meta.get("truncated", 0)),
                                                      "dropped_shots": int(meta.get("dropped_shots", 0))},
                                                     isolation=outcome.isolation, prompt_hashes=prepared[name][2],
                                                     backend=backend_facts))
        return records

    @staticmethod
    def _location(submission: Submission) -> str:
        """The model folder (local kinds) or the endpoint's base URL."""
        if submission.manifest.kind == "endpoint":
            return str((submission.manifest.endpoint or {})["base_url"])
        return str(safety.model_folder(submission))

    def prepare(self, task: TaskConfig, examples: List[Example], manifest: Manifest) -> tuple:
        """(the task as this entry runs it, each example's shots, each example's prompt sha256), in the parent:
        shots come from the train pool (never the scored split); the hashes are of the requests the child will
        build from the same inputs and shots."""
        task = task_for_submission(task, manifest)
        shots = self.shots(task, examples)
        requests = kind_of(task).requests(task, [e.inputs for e in examples], shots)
        hashes = {e.id: prompt_sha256(r, manifest.chat_template) for e, r in zip(examples, requests)}
        return task, shots, hashes


def backend_of(manifest: Any, run_cfg: Any) -> Dict[str, Any]:
    """{name, options} of the backend that runs this entry: the run's, except that an endpoint entry always goes
    through the OpenAI client (taking the run's client options, if any)."""
    name, options = run_cfg.backend.name, as_dict(run_cfg.backend.options) or {}
    if manifest.kind != "endpoint":
        return {"name": name, "options": options}
    return {"name": ENDPOINT_BACKEND, "options": {k: v for k, v in options.items() if k in CLIENT_OPTIONS}}


def backend_provenance(backend: Dict[str, Any], manifest: Any) -> Optional[Dict[str, Any]]:
    """What a record says about a non-default backend: its name and options, the engine and its version, the served
    model id; for an endpoint, that its answers carry no weights hash. None for the default backend."""
    if backend["name"] == DEFAULT_BACKEND and not backend["options"]:
        return None
    facts = {**backend, **engine_facts(backend["name"]), "served_model": manifest.model}
    if manifest.kind == "endpoint":
        facts.update(served_model=manifest.endpoint["model"], base_url=manifest.endpoint["base_url"],
                     engine="remote endpoint", weights_sha256="unknown: a remote endpoint's answers carry no weights "
                     "hash; its cells are predicted again every run unless reuse_endpoint_predictions=true")
    return facts


def endpoint_refusal(manifest: Any, run_cfg: Any, where: str) -> Optional[SubmissionError]:
    """An endpoint entry whose host is not on the organizer's allow_endpoints (empty by default: all refused)."""
    if manifest.kind != "endpoint":
        return None
    host = endpoint_host((manifest.endpoint or {})["base_url"]) or ""  # a manifest check refused a bad URL
    allowed = {str(h).strip().lower() for h in run_cfg.allow_endpoints}
    if host in allowed or host.split(":")[0] in allowed:
        return None
    return SubmissionError(f"{where}: field 'endpoint.base_url': host {host!r} is not on the run config's "
                           f"allow_endpoints ({', '.join(sorted(allowed)) or 'empty: no endpoint is allowed'}); the "
                           f"organizer adds it with allow_endpoints=[{host}]", status="refused")
