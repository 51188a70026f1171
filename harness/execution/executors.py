"""Where jobs run: `executor=local` (one after another, in this process) or `executor=ray` (one Ray task per job).

A job is one submission on a set of tasks. With Ray, the driver (this process) first does everything that loads no
model, exactly as the local executor does: it reuses stored cells, rescores changed metrics, scores baselines and
`predictions` entries, records rejected entries. A submission with cells left for its model becomes one Ray task
that requests `executor.num_gpus` GPUs (Ray sets its CUDA_VISIBLE_DEVICES) and runs in a fresh worker process
(`max_calls=1`: whatever a job held, GPU memory included, leaves with its process). The worker evaluates those
cells with the same Evaluator, the model in its own child process as locally, and returns (record, predictions)
pairs; the driver writes them to the store and builds the board, so no filesystem is shared for results. Workers
do need the harness installed, and the submissions and task data at the paths the config names: a shared checkout,
or Ray's `runtime_env.working_dir` (relative paths then resolve in the shipped copy).

A worker or node lost mid-job is retried by Ray up to `executor.max_retries` times; after that, or when the job
raises, each of its cells fails with a typed status and a reason naming Ray, and the run goes on.
"""
from __future__ import annotations

import copy
import multiprocessing
import os
import re
import socket
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from omegaconf import OmegaConf

from harness import guard
from harness.config import ExecutorConfig, RunConfig, TaskConfig
from harness.errors import ConfigError, SubmissionError
from harness.execution.cells import Cell, Record
from harness.execution.evaluator import Evaluator
from harness.submission import Submission, load_submission
from tasks.examples import load_examples

EXECUTORS = ("local", "ray")
REASON_CHARS = 500
LOG_CHARS = 2000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# (record, prediction rows, statistics) per cell
Written = List[Tuple[Record, Optional[List[Dict[str, Any]]], Optional[Dict[str, Any]]]]
Job = Callable[[Any, Dict[str, Any], str], Written]


def check_executor(cfg: ExecutorConfig) -> None:
    """Values the schema's types cannot rule out, each error naming the key, the value and what is valid."""
    if cfg.name not in EXECUTORS:
        raise ConfigError(f"executor.name: {cfg.name!r} is not valid; use one of {', '.join(EXECUTORS)} "
                          f"(executor=local or executor=ray)")
    for key in ("num_gpus", "num_cpus", "max_retries", "cluster_cpus", "cluster_gpus"):
        value = getattr(cfg, key)
        if value is not None and value < 0:
            raise ConfigError(f"executor.{key}: {value!r} is not valid; use a number >= 0")
    if cfg.address is not None and (cfg.cluster_cpus is not None or cfg.cluster_gpus is not None):
        raise ConfigError(f"executor.cluster_cpus / executor.cluster_gpus describe a local cluster (executor.address="
                          f"null); the cluster at executor.address={cfg.address!r} declares its own resources")


def executor_for(cfg: ExecutorConfig) -> Any:
    check_executor(cfg)
    return LocalExecutor() if cfg.name == "local" else RayExecutor(cfg)


class LocalExecutor:
    """Jobs in this process, model entries one after another (each model still in its own child,
    harness.execution.isolation). Entries that load no model (predictions and baselines) are only scored: they
    are spread over `scoring_workers` processes (forked, so each inherits the loaded configs), each with its own
    Evaluator writing to the store under the same per-submission locks; the records are those a serial run
    writes, byte for byte."""
    def run(self, run_cfg: RunConfig, tasks: Dict[str, TaskConfig], folders: Sequence[Path],
            echo: Callable[[str], None]) -> List[Record]:
        evaluator = Evaluator(run_cfg, tasks, echo)
        scored_only = [folder for folder in folders if _loads_no_model(folder)]
        workers = scoring_workers(run_cfg, len(scored_only))
        done: Dict[Path, List[Record]] = {}
        if workers > 1:
            global _WORKER_JOB
            _WORKER_JOB = (run_cfg, tasks)
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                done = dict(zip(scored_only, pool.map(_score_entry, scored_only)))
            # each cell was scored or, unchanged, reused from the store: the records do not tell which
            echo(f"{len(scored_only)} entries that load no model: scored or reused in {workers} processes")
        return [record for folder in folders
                for record in (done[folder] if folder in done else evaluator.evaluate(folder))]


def scoring_workers(run_cfg: RunConfig, entries: int) -> int:
    """Processes for `entries` model-free entries: `scoring_workers` (0: one per CPU this process may use), never
    more than the entries; fork is needed (spawn would re-import everything per process)."""
    if entries < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if run_cfg.scoring_workers < 0:
        raise ConfigError(f"scoring_workers: {run_cfg.scoring_workers!r} is not valid; use 0 (one per CPU), 1 "
                          f"(serial) or more")
    wanted = run_cfg.scoring_workers or len(os.sched_getaffinity(0))
    return max(1, min(wanted, entries))


def _loads_no_model(folder: Path) -> bool:
    try:
        return load_submission(folder).manifest.kind in ("predictions", "baseline")
    except SubmissionError:
        return False  # rejected by the serial path, with its reason


_WORKER_JOB: Optional[Tuple[RunConfig, Dict[str, TaskConfig]]] = None  # (run config, tasks), inherited by forks
_WORKER_EVALUATOR: Optional[Evaluator] = None


def _score_entry(folder: Path) -> List[Record]:
    """In a scoring worker: one model-free entry's records (the worker's Evaluator keeps each task's examples)."""
    global _WORKER_EVALUATOR
    if _WORKER_EVALUATOR is None:
        assert _WORKER_JOB is not None, "set by LocalExecutor.run before the workers fork"
        run_cfg, tasks = _WORKER_JOB
        _WORKER_EVALUATOR = Evaluator(run_cfg, tasks, echo=lambda message: None)
    return _WORKER_EVALUATOR.evaluate(folder)


# ---------------------------------------------------------------- the driver's side of a Ray run


@dataclass
class Deferred:
    """A submission's cells left for its model, as the driver found them (to build failure records from)."""
    submission: Submission
    sub_sha: str
    cells: List[Cell]


class Planner:
    """The driver's side of a Ray run: the local Evaluator for everything, given a model runner that sets the cells
    which need the submission's model aside for a Ray job instead of running them here."""

    def __init__(self, run_cfg: RunConfig, tasks: Dict[str, TaskConfig], echo: Callable[[str], None]):
        self.deferred: List[Deferred] = []
        self.evaluator = Evaluator(run_cfg, tasks, echo, run_model=self._defer)

    def _defer(self, submission: Submission, sub_sha: str, cells: List[Cell]) -> List[Record]:
        self.deferred.append(Deferred(submission, sub_sha, cells))
        return []

    def evaluate(self, folder: Path) -> List[Record]:
        """The folder's records, except the cells deferred for its model (take_deferred)."""
        return self.evaluator.evaluate(folder)

    def take_deferred(self) -> Optional[Deferred]:
        return self.deferred.pop() if self.deferred else None

    def write(self, record: Record, rows: Optional[List[Dict[str, Any]]], stats: Optional[Dict[str, Any]] = None) -> None:
        """A record a Ray job brought back, to the store."""
        self.evaluator.sink(record, rows, stats)

    def fail(self, deferred: Deferred, cells: List[Cell], status: str, reason: str,
             log: str = "") -> List[Record]:
        """Failure records (through the store sink) for cells whose Ray job did not bring them back."""
        self.evaluator.folder = deferred.submission.folder
        return [self.evaluator.fail(deferred.submission, deferred.sub_sha, cell, status, reason[:REASON_CHARS],
                                    log[-LOG_CHARS:]) for cell in cells]


class RayExecutor:
    """One Ray task per job; the driver writes every record. `job` is what a worker runs (tests wrap it)."""
    def __init__(self, cfg: ExecutorConfig, job: Optional[Job] = None):
        self.cfg = cfg
        self.job = job or evaluate_job

    def run(self, run_cfg: RunConfig, tasks: Dict[str, TaskConfig], folders: Sequence[Path],
            echo: Callable[[str], None]) -> List[Record]:
        ray = import_ray()
        started = connect(ray, self.cfg)
        try:
            check_resources(ray, self.cfg)
            return self._run(ray, run_cfg, tasks, folders, echo)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, run_cfg: RunConfig, tasks: Dict[str, TaskConfig], folders: Sequence[Path],
             echo: Callable[[str], None]) -> List[Record]:
        planner = Planner(run_cfg, tasks, echo)
        remote = ray.remote(max_calls=1)(self.job)  # max_calls=1: a fresh worker process for every job
        by_folder: List[List[Record]] = []
        pending: Dict[Any, Tuple[int, Deferred]] = {}
        try:
            for i, folder in enumerate(folders):
                by_folder.append(planner.evaluate(folder))  # no model runs here; the cells for one are deferred
                deferred = planner.take_deferred()
                if deferred is not None:
                    pending[self._submit(remote, run_cfg, folder, deferred, echo)] = (i, deferred)
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                i, deferred = pending.pop(ref)
                by_folder[i].extend(self._receive(ray, ref, planner, deferred, echo))
        except BaseException:  # interrupted: stop the jobs still out; the cells already written stay
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return [record for records in by_folder for record in sorted(records, key=lambda r: r["task"])]

    def _submit(self, remote: Any, run_cfg: RunConfig, folder: Path, deferred: Deferred, echo: Callable[[str], None]) -> Any:
        job_tasks = {cell.task.name: cell.task for cell in deferred.cells}
        echo(f"dispatching {deferred.submission.name} on {', '.join(job_tasks)} to Ray "
             f"({self.cfg.num_gpus:g} GPU, {self.cfg.num_cpus:g} CPU)")
        options = remote.options(num_gpus=self.cfg.num_gpus, num_cpus=self.cfg.num_cpus,
                                 max_retries=self.cfg.max_retries, retry_exceptions=False,
                                 name=f"harness:{deferred.submission.name}")
        return options.remote(run_cfg, job_tasks, str(folder))

    def _receive(self, ray: Any, ref: Any, planner: Planner, deferred: Deferred,
                 echo: Callable[[str], None]) -> List[Record]:
        """The job's records, written to the store; a job that did not come back fails each of its cells."""
        name = deferred.submission.name
        try:
            written = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the job itself raised: not retried, it would raise again
            cause = e.cause if getattr(e, "cause", None) is not None else e
            echo(f"{name}: the Ray job raised {type(cause).__name__}")
            log = _ANSI.sub("", getattr(e, "traceback_str", None) or str(e))  # Ray colours the task's name
            return planner.fail(deferred, deferred.cells, "crashed",
                                f"the job raised on its Ray worker: {type(cause).__name__}: {cause}", log)
        except ray.exceptions.RayError as e:  # the worker or its node was lost on every attempt
            status = "out-of-memory" if isinstance(e, ray.exceptions.OutOfMemoryError) else "crashed"
            echo(f"{name}: the Ray job was lost ({type(e).__name__})")
            return planner.fail(deferred, deferred.cells, status,
                                f"the Ray worker running this job was lost on each of its {self.cfg.max_retries + 1} "
                                f"attempts (executor.max_retries={self.cfg.max_retries}): {type(e).__name__}: {e}")
        records = []
        for record, rows, stats in written:
            planner.write(record, rows, stats)  # made (and its paths made relative) by the worker's Evaluator
            records.append(record)
        returned = {record["task"] for record in records}
        missing = [cell for cell in deferred.cells if cell.task.name not in returned]
        echo(f"{name}: {len(records)} cells back from Ray")
        return records + planner.fail(deferred, missing, "crashed", "the Ray job returned no record for this cell")


# ---------------------------------------------------------------- the worker's side


def evaluate_job(run_cfg: RunConfig, tasks: Dict[str, TaskConfig], folder: str) -> Written:
    """On a Ray worker: evaluate the submission in `folder` on `tasks` and return what the store would get.

    The driver already decided which cells need the model, so this reads no store (an empty one stands in) and
    writes none: every cell comes back to the driver."""
    if not (Path(folder) / "submission.yaml").is_file():  # not the entry's fault: say where it is missing
        raise FileNotFoundError(f"the submission folder {folder!r} is not on Ray node {socket.gethostname()!r}; "
                                f"share it at the same path or ship it with executor.runtime_env.working_dir")
    written: Written = []
    with tempfile.TemporaryDirectory(prefix="harness-ray-job-") as empty:
        cfg = copy.deepcopy(run_cfg)
        cfg.paths.results = empty
        def keep(record: Record, rows: Optional[List[Dict[str, Any]]], stats: Optional[Dict[str, Any]]) -> None:
            written.append((record, None if rows is None else list(rows), stats))

        evaluator = Evaluator(cfg, tasks, echo=print, sink=keep)
        evaluator.evaluate(Path(folder))
    return written


# ---------------------------------------------------------------- Ray itself


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ConfigError("executor=ray needs Ray, an optional extra: pip install 'contest-harness[ray]' "
                          "(or pip install -e '.[ray]' in a checkout)") from e
    return ray


def connect(ray: Any, cfg: ExecutorConfig) -> bool:
    """Join the cluster at `executor.address`, or start a local one. True when this call started the connection
    (the caller then shuts it down); a connection this process already holds (a notebook, a test) is used as is."""
    if ray.is_initialized():
        return False

    runtime_env = OmegaConf.to_container(cfg.runtime_env, resolve=True) or None
    try:
        if cfg.address is None:  # "local" never joins a cluster `ray start` left running on this machine
            ray.init(address="local", num_cpus=cfg.cluster_cpus, num_gpus=cfg.cluster_gpus, runtime_env=runtime_env,
                     include_dashboard=False)
        else:
            ray.init(address=cfg.address, runtime_env=runtime_env)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = "start a local Ray cluster" if cfg.address is None else f"connect to executor.address={cfg.address!r}"
        raise ConfigError(f"executor: could not {where}: {type(e).__name__}: {e}".rstrip()
                          + " (a cluster is started with `ray start --head`; join it with executor.address=auto on "
                            "one of its nodes, HOST:6379 elsewhere, or ray://HOST:10001 through Ray Client)") from e
    return True


def check_resources(ray: Any, cfg: ExecutorConfig) -> None:
    """A job asking for more than any node offers would wait forever; say so before anything is dispatched."""
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if any(r.get("GPU", 0) >= cfg.num_gpus and r.get("CPU", 0) >= cfg.num_cpus for r in nodes):
        return
    offered = "; ".join(f"{r.get('CPU', 0):g} CPU and {r.get('GPU', 0):g} GPU" for r in nodes) or "no live node"
    raise ConfigError(f"executor.num_gpus={cfg.num_gpus:g} and executor.num_cpus={cfg.num_cpus:g} per job: no node of "
                      f"the Ray cluster offers that ({offered}); lower them (executor.num_gpus=0 runs jobs on CPUs) "
                      f"or add a node that has them")
def evaluate_all(run_cfg: RunConfig, tasks: Dict[str, TaskConfig], folders: Sequence[Path],
                 echo: Callable[[str], None] = print) -> List[Record]:
    """Every cell's record, folder by folder (tasks sorted); the jobs run through `run_cfg.executor`. A task whose
    references do not fit its language stops the run first (harness.guard): nothing runs, nothing is written."""
    executor = executor_for(run_cfg.executor)
    guard.check_tasks(tasks, load_examples)
    return executor.run(run_cfg, tasks, folders, echo)
