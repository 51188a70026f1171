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
import re
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from omegaconf import OmegaConf

from harness import guard
from harness.errors import ConfigError
from harness.execution.cells import Cell
from harness.execution.evaluator import Evaluator
from tasks.examples import load_examples

EXECUTORS = ("local", "ray")
REASON_CHARS = 500
LOG_CHARS = 2000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
Written = List[Tuple[Dict[str, Any], Optional[List[Dict[str, Any]]]]]  # (record, prediction rows) per cell
Job = Callable[[Any, Dict[str, Any], str], Written]


def check_executor(cfg: Any) -> None:
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


def executor_for(cfg: Any) -> Any:
    check_executor(cfg)
    return LocalExecutor() if cfg.name == "local" else RayExecutor(cfg)


class LocalExecutor:
    """Jobs one after another in this process (each model still in its own child, harness.execution.isolation)."""
    def run(self, run_cfg: Any, tasks: Dict[str, Any], folders: Sequence[Path],
            echo: Callable[[str], None]) -> List[Dict[str, Any]]:
        evaluator = Evaluator(run_cfg, tasks, echo)
        return [record for folder in folders for record in evaluator.evaluate(folder)]


# ---------------------------------------------------------------- the driver's side of a Ray run


@dataclass
class Deferred:
    """A submission's cells left for its model, as the driver found them (to build failure records from)."""
    submission: Any
    sub_sha: str
    cells: List[Cell]


class Planner(Evaluator):
    """The driver's Evaluator: the local code path for everything, except that cells which need the submission's
    model are set aside for a Ray job instead of run here."""

    def __init__(self, run_cfg: Any, tasks: Dict[str, Any], echo: Callable[[str], None]):
        super().__init__(run_cfg, tasks, echo)
        self.deferred: List[Deferred] = []

    def _from_model(self, submission: Any, sub_sha: str, cells: List[Cell]) -> List[Dict[str, Any]]:
        self.deferred.append(Deferred(submission, sub_sha, cells))
        return []

    def take_deferred(self) -> Optional[Deferred]:
        return self.deferred.pop() if self.deferred else None

    def fail(self, deferred: Deferred, cells: List[Cell], status: str, reason: str,
             log: str = "") -> List[Dict[str, Any]]:
        """Failure records (through the store sink) for cells whose Ray job did not bring them back."""
        return [self._fail(deferred.submission, deferred.sub_sha, cell, status, reason[:REASON_CHARS], log[-LOG_CHARS:])
                for cell in cells]


class RayExecutor:
    """One Ray task per job; the driver writes every record. `job` is what a worker runs (tests wrap it)."""
    def __init__(self, cfg: Any, job: Optional[Job] = None):
        self.cfg = cfg
        self.job = job or evaluate_job

    def run(self, run_cfg: Any, tasks: Dict[str, Any], folders: Sequence[Path],
            echo: Callable[[str], None]) -> List[Dict[str, Any]]:
        ray = import_ray()
        started = connect(ray, self.cfg)
        try:
            check_resources(ray, self.cfg)
            return self._run(ray, run_cfg, tasks, folders, echo)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, run_cfg: Any, tasks: Dict[str, Any], folders: Sequence[Path],
             echo: Callable[[str], None]) -> List[Dict[str, Any]]:
        planner = Planner(run_cfg, tasks, echo)
        remote = ray.remote(max_calls=1)(self.job)  # max_calls=1: a fresh worker process for every job
        by_folder: List[List[Dict[str, Any]]] = []
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

    def _submit(self, remote: Any, run_cfg: Any, folder: Path, deferred: Deferred, echo: Callable[[str], None]) -> Any:
        job_tasks = {cell.task.name: cell.task for cell in deferred.cells}
        echo(f"dispatching {deferred.submission.name} on {', '.join(job_tasks)} to Ray "
             f"({self.cfg.num_gpus:g} GPU, {self.cfg.num_cpus:g} CPU)")
        options = remote.options(num_gpus=self.cfg.num_gpus, num_cpus=self.cfg.num_cpus,
                                 max_retries=self.cfg.max_retries, retry_exceptions=False,
                                 name=f"harness:{deferred.submission.name}")
        return options.remote(run_cfg, job_tasks, str(folder))

    def _receive(self, ray: Any, ref: Any, planner: Planner, deferred: Deferred,
                 echo: Callable[[str], None]) -> List[Dict[str, Any]]:
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
        for record, rows in written:
            planner.sink(record, rows)
            records.append(record)
        returned = {record["task"] for record in records}
        missing = [cell for cell in deferred.cells if cell.task.name not in returned]
        echo(f"{name}: {len(records)} cells back from Ray")
        return records + planner.fail(deferred, missing, "crashed", "the Ray job returned no record for this cell")


# ---------------------------------------------------------------- the worker's side


def evaluate_job(run_cfg: Any, tasks: Dict[str, Any], folder: str) -> Written:
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
        evaluator = Evaluator(cfg, tasks, echo=print,
                              sink=lambda record, rows: written.append((record, None if rows is None else list(rows))))
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


def connect(ray: Any, cfg: Any) -> bool:
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


def check_resources(ray: Any, cfg: Any) -> None:
    """A job asking for more than any node offers would wait forever; say so before anything is dispatched."""
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if any(r.get("GPU", 0) >= cfg.num_gpus and r.get("CPU", 0) >= cfg.num_cpus for r in nodes):
        return
    offered = "; ".join(f"{r.get('CPU', 0):g} CPU and {r.get('GPU', 0):g} GPU" for r in nodes) or "no live node"
    raise ConfigError(f"executor.num_gpus={cfg.num_gpus:g} and executor.num_cpus={cfg.num_cpus:g} per job: no node of "
                      f"the Ray cluster offers that ({offered}); lower them (executor.num_gpus=0 runs jobs on CPUs) "
                      f"or add a node that has them")
def evaluate_all(run_cfg: Any, tasks: Dict[str, Any], folders: Sequence[Path],
                 echo: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Every cell's record, folder by folder (tasks sorted); the jobs run through `run_cfg.executor`. A task whose
    references do not fit its language stops the run first (harness.guard): nothing runs, nothing is written."""
    executor = executor_for(run_cfg.executor)
    guard.check_tasks(tasks, load_examples)
    return executor.run(run_cfg, tasks, folders, echo)
