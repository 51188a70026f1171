"""Run a model job in a child process that sees task inputs only, and check everything it hands back.

The child is a fresh interpreter (`python -m harness.execution.worker JOB_DIR`), not a fork, so it inherits no memory of the
parent (references, other entries' results). Its job folder holds the task configs stripped of their data
locations, metrics and field mappings, and one file of inputs per task. Where bubblewrap works it runs in the
sandbox of harness.execution.sandbox (own user, PID, mount and network namespaces; a read-only view of only what it
needs; a memory cgroup where the machine allows one); otherwise in its own session with no network where the OS
allows it (`unshare --net`). Either way: a scrubbed environment (hub offline, no tokens), a wall-clock
budget (the sum of its tasks' `budget_s`) and a cap on every file it writes. Its outputs are untrusted: the parent
reads them strictly (sizes, counts, ids, types, finite numbers) and turns every problem into a typed failure of
the (submission, task) cell. Scoring happens in the parent only.
"""
from __future__ import annotations

import functools
import getpass
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from harness.config import TaskConfig, as_dict
from harness.data import Example
from harness.errors import SubmissionError
from harness.execution import sandbox
from harness.models.engines import ENGINES
from harness.models.predictions import not_utf8
from harness.status import CHILD_STATUSES, LOG_CHARS, OUTPUT_BYTES, REASON_CHARS
from tasks import kind_of

MAX_OUTPUT_BYTES = OUTPUT_BYTES  # per example: one JSON line of the child's predictions
MIN_FILE_BYTES = 256 << 20  # floor of the cap on any file the child writes (logs and caches included)
_SMALL_JSON_BYTES = 1 << 20  # meta, failure and timing files the child writes
# Variables the child may inherit; everything else (tokens, cloud keys, CI secrets) is dropped.
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
             "MKL_NUM_THREADS", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "PYTHONPATH")
_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
# Statuses a child may report for a task; anything else it writes is read as a crash.


@dataclass
class JobOutcome:
    predictions: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # task -> id -> prediction
    meta: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # task -> {truncated, dropped_shots}
    prompts: Dict[str, Dict[str, str]] = field(default_factory=dict)  # task -> id -> rendered prompt (echo_prompts)
    failures: Dict[str, Tuple[str, str, str]] = field(default_factory=dict)  # task -> (status, reason, log excerpt)
    isolation: Dict[str, str] = field(default_factory=dict)  # what was enforced, for the records
    wall_s: float = 0.0
    peak_rss_bytes: Optional[int] = None  # the child's peak resident memory (getrusage of the child)
    timings: Dict[str, Any] = field(default_factory=dict)  # the child's own: startup_s, load_s, per request type
    log: str = ""  # the end of the child's log (FULL_LOG_CHARS, redacted): `harness validate` keeps it in a file


@dataclass(frozen=True)
class Remote:
    """A job whose model is a remote endpoint (`kind: endpoint`): it needs the network to `host`, and its API key
    (the value of environment variable `key_env`) is handed to the child in its environment only."""

    host: str
    key_env: Optional[str] = None


# Names of variables whose values are secrets though their names do not say so (an endpoint's API key variable).
_SECRET_VARIABLES: set = set()


@dataclass
class Launch:
    status: str  # ok, timeout, or a failure type
    reason: str
    log: str
    wall_s: float
    peak_rss_bytes: Optional[int]


# ---------------------------------------------------------------- what the child gets


def child_env(home: Path, key_env: Optional[str] = None) -> Dict[str, str]:
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    if key_env and key_env in os.environ:  # an endpoint's API key: the one secret a child may hold
        env[key_env] = os.environ[key_env]
    env.update(_OFFLINE)
    # Caches and home inside the job folder: nothing is read from or written to the organizer's hub cache, and
    # huggingface_hub finds no token file to send along.
    env.update(HOME=str(home), HF_HOME=str(home / "hf"), XDG_CACHE_HOME=str(home / "cache"), TMPDIR=str(home))
    return env


def child_task_config(task: TaskConfig) -> Dict[str, Any]:
    """The task config the child needs to build requests: everything but where the data (and references) live."""
    config = as_dict(task)
    # the language settings only steer scoring: a task that gains `language:` keeps its prediction key
    for key in ("data", "train", "fields", "metrics", "metric_options", "primary_metric", "count_on", "language",
                "source_language", "config_file"):
        config.pop(key, None)
    # Settings added later leave the config (and so every cell key) as it was where they do not apply.
    if config.get("transform") is None:
        config.pop("transform", None)
    if task.kind != "language_modeling":
        config.pop("last_window", None)
    return config


def file_cap(tasks: Sequence[Tuple[Any, List[Example]]], max_output_bytes: int) -> int:
    return max(MIN_FILE_BYTES, 2 * max_output_bytes * sum(len(examples) for _, examples in tasks))


@functools.lru_cache(maxsize=None)
def network_isolation() -> Tuple[Tuple[str, ...], str]:
    """(command prefix, note): a new network namespace for the child where the OS allows one."""
    if not sys.platform.startswith("linux"):
        return (), f"not enforced (network namespaces need Linux; this is {sys.platform})"
    unshare = shutil.which("unshare")
    if unshare is None:
        return (), "not enforced (util-linux `unshare` is not installed)"
    why = ""
    # As root a plain network namespace; otherwise one inside a user namespace, where the kernel allows those.
    for flags in (("--net",), ("--user", "--map-root-user", "--net")):
        try:
            probe = subprocess.run((unshare, *flags, "true"), capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            why = str(e)
            continue
        if probe.returncode == 0:
            return (unshare, *flags, "--"), f"enforced: `unshare {' '.join(flags)}` (no interface but loopback)"
        why = probe.stderr.decode("utf-8", "replace").strip() or f"exit code {probe.returncode}"
    return (), f"not enforced (unshare failed: {why})"


DEFAULT_MEMORY_SHARE = 0.9  # job_memory_bytes=null: a job may take this share of the machine's memory


def memory_cap(memory_bytes: Optional[int], name: str) -> Tuple[Optional[sandbox.MemoryCap], str]:
    """(the job's memory cgroup, or None; the record's `memory` line)."""
    where, why = sandbox.memory_cgroups()
    limit = memory_bytes
    if limit is None:
        total = sandbox.physical_memory()
        limit = int(total * DEFAULT_MEMORY_SHARE) if total else None
    if where is None or limit is None:
        why = why or "the machine's memory size is unknown and job_memory_bytes is not set"
        return None, (f"not enforced ({why}); a job that exhausts memory is ended by the kernel's out-of-memory "
                      f"killer and recorded as out-of-memory")
    try:
        cap = sandbox.MemoryCap(where[0], where[1], limit, name)
    except OSError as e:
        return None, f"not enforced (the job's cgroup could not be made: {e})"
    return cap, f"enforced: a cgroup {where[1]} of its own, at most {limit} bytes (job_memory_bytes)"


def isolation_note(budget: float, max_output_bytes: int, max_file_bytes: int,
                   memory: str = "not enforced (no cgroup was made for this job)", remote: Optional[Remote] = None,
                   engine: Optional[str] = None) -> Dict[str, str]:
    """What this job's child runs under, recorded in every cell of the job."""
    bwrap, why = sandbox.sandbox()
    note = {
        "process": "fresh interpreter (python -m harness.execution.worker), own session; killed as a group when done",
        "inputs": "task inputs only: no references, field mappings, metrics or data locations",
        "environment": f"scrubbed: only {', '.join(_KEEP_ENV)} kept; hub offline; home and caches in the job folder",
        "network": network_isolation()[1],
        "limits": f"wall clock {budget:g} s; {max_output_bytes} bytes of output per example; files written by the "
                  f"child at most {max_file_bytes} bytes (RLIMIT_FSIZE); no core dumps",
        "weights": "safetensors only: pickle files refused before loading, torch.load disabled in the child",
        "memory": memory,
    }
    if bwrap:
        note.update(
            network="enforced: bubblewrap --unshare-net (no interface but loopback)",
            filesystem="enforced: bubblewrap; read-only system, Python environment, harness code (task data hidden), "
                       "model folder and job inputs; writable job folder and private /tmp; nothing else",
            parent_memory=f"enforced: own user and PID namespaces, uid {sandbox.NOBODY} without capabilities: no "
                          f"process of the organizer is visible, CAP_SYS_PTRACE is not held",
            processes="enforced: own PID namespace; every process of the job dies when it ends")
    else:
        note.update(filesystem=f"not enforced ({why}): the child runs as user {getpass.getuser()!r} and can read "
                               f"what that user can", parent_memory=f"not enforced ({why})",
                    processes="process group killed when the job ends; a setsid() grandchild can escape it")
    if engine is not None:
        note["network"] += f"; the serving engine ({engine}) runs inside it, listening on 127.0.0.1 only"
        note["weights"] += f" ({engine} loads them in a process of its own, which torch.load is not patched in)"
    if remote is not None:
        note["network"] = (f"not isolated: the entry is a remote endpoint on {remote.host} (on allow_endpoints); the "
                           f"job talks to that host only and nothing of the entry runs here")
        note["weights"] = "none here: a remote endpoint's answers carry no weights hash (the model may change)"
        note["environment"] += f"; the API key variable {remote.key_env!r} passed" if remote.key_env else ""
    return {key.replace("_", " "): value for key, value in note.items()}


def child_command(job_dir: Path, inputs: Sequence[Path] = (), model_location: Optional[str] = None,
                  isolate_network: bool = True) -> List[str]:
    """The child's argv: in the bubblewrap sandbox where there is one (harness.execution.sandbox), else behind
    `unshare --net` where that works. A remote endpoint's job keeps the network (isolate_network=False).
    -s: no user site-packages; the working folder is the empty job home."""
    bwrap, _ = sandbox.sandbox()
    if bwrap:
        prefix = sandbox.command(bwrap, job_dir, inputs, model_location, share_network=not isolate_network)
    else:
        prefix = list(network_isolation()[0]) if isolate_network else []
    return [*prefix, sys.executable, "-s", "-m", "harness.execution.worker", str(job_dir)]


# ---------------------------------------------------------------- running a job


def run_job(model: Dict[str, Any], tasks: Sequence[Tuple[Any, List[Example]]], *, device: str, batch_size: Any,
            progress: bool, max_output_bytes: int = MAX_OUTPUT_BYTES,
            shots: Optional[Dict[str, Optional[List[list]]]] = None, echo_prompts: int = 0,
            remote: Optional[Remote] = None, memory_bytes: Optional[int] = None) -> JobOutcome:
    """Run one model on the tasks' examples in a child process. `shots` (task -> per-example few-shot examples,
    train data only) go with the inputs; `echo_prompts` asks the child for the rendered prompts of each task's
    first N examples (`harness validate`); `remote`: the model is an endpoint on that host (network allowed)."""
    budget = sum(float(task.budget_s) for task, _ in tasks)
    max_file_bytes = file_cap(tasks, max_output_bytes)
    with tempfile.TemporaryDirectory(prefix="harness-job-") as tmp:
        job_dir = Path(tmp)
        specs: List[Dict[str, Any]] = []
        for task, examples in tasks:
            name = f"inputs-{len(specs)}.jsonl"
            task_shots = (shots or {}).get(task.name)
            rows = (json.dumps({"id": e.id, "inputs": e.inputs, **({"shots": task_shots[i]} if task_shots else {})},
                               ensure_ascii=False) + "\n" for i, e in enumerate(examples))
            (job_dir / name).write_text("".join(rows), encoding="utf-8")
            specs.append({"inputs": name, "config": child_task_config(task), "shots": bool(task_shots)})
        job = {"model": model, "device": device, "batch_size": batch_size, "progress": progress, "tasks": specs,
               "echo_prompts": echo_prompts,
               "limits": {"max_output_bytes": max_output_bytes, "max_file_bytes": max_file_bytes},
               # the child dies with this process (worker.die_with_parent); in the sandbox bwrap sees to that, and
               # the child's parent is the sandbox's own first process
               "parent_pid": None if sandbox.sandbox()[0] else os.getpid()}
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        (job_dir / "home").mkdir()
        if remote is not None and remote.key_env:
            _SECRET_VARIABLES.add(remote.key_env)
        (job_dir / "out").mkdir()
        location = None if remote is not None else model.get("location")  # an endpoint's location is its URL
        argv = child_command(job_dir, [job_dir / spec["inputs"] for spec in specs], location,
                             isolate_network=remote is None)
        cap, memory = memory_cap(memory_bytes, job_dir.name)
        try:
            launch = launch_child(argv, job_dir, budget, progress, cap, key_env=remote.key_env if remote else None)
        finally:
            if cap is not None:
                cap.remove()
        outcome = collect(job_dir, tasks, launch, max_output_bytes)
        outcome.log = tail(job_dir / "child.log", FULL_LOG_CHARS)
    engine = model.get("backend") if model.get("backend") in ENGINES else None
    outcome.isolation = isolation_note(budget, max_output_bytes, max_file_bytes, memory, remote, engine)
    return outcome


def launch_child(argv: Sequence[str], job_dir: Path, budget: float, progress: bool,
                 cap: Optional[sandbox.MemoryCap] = None, key_env: Optional[str] = None) -> Launch:
    """Run the child under its wall-clock budget (and in its memory cgroup); its exit becomes a typed status."""
    log_path = job_dir / "child.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            child = subprocess.Popen(list(argv), cwd=job_dir / "home", env=child_env(job_dir / "home", key_env),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=None if progress else log,
                                     start_new_session=True, preexec_fn=cap.join if cap else None)
        except OSError as e:
            return Launch("crashed", f"the model process could not start: {e}", "", 0.0, None)
        try:
            code, rusage, timed_out = _wait(child, started + budget)
        finally:
            _kill_group(child.pid)  # whatever the child started and left running
    wall = time.monotonic() - started
    peak = rusage.ru_maxrss * (1 if sys.platform == "darwin" else 1024) if rusage else None
    if timed_out:
        return Launch("timeout", f"the model did not finish within its budget of {budget:g} s (the sum of its "
                      f"tasks' budget_s)", tail(log_path), wall, peak)
    if cap is not None and cap.oom_killed() and not (job_dir / "out" / "failure.json").exists():
        return Launch("out-of-memory", f"the model process went over its memory cap of {cap.limit} bytes "
                      f"(job_memory_bytes) and was killed", tail(log_path), wall, peak)
    if os.path.basename(argv[0]) == "bwrap" and code > 128:  # bwrap exits 128+N for a command killed by signal N
        code = -(code - 128)
    status, reason = exit_status(code, job_dir / "out" / "failure.json")
    return Launch(status, reason, tail(log_path) if status != "ok" else "", wall, peak)


def _wait(child: subprocess.Popen, deadline: float) -> Tuple[int, Any, bool]:
    """(exit code, resource usage, timed out). os.wait4 gives the child's own peak memory."""
    try:
        while True:
            pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                return child.returncode, rusage, False
            if time.monotonic() >= deadline:
                _kill_group(child.pid)
                _, status, rusage = os.wait4(child.pid, 0)
                child.returncode = os.waitstatus_to_exitcode(status)
                return child.returncode, rusage, True
            time.sleep(0.02)
    except BaseException:  # interrupted: never leave the child running
        _kill_group(child.pid)
        child.wait()
        raise


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def exit_status(code: int, failure_file: Path) -> Tuple[str, str]:
    if code == 0:
        return "ok", ""
    reported = _child_failure(failure_file)
    if reported:
        return reported[0], reported[1]
    if code == -signal.SIGKILL:
        return "out-of-memory", "the model process was killed (SIGKILL), most likely by the out-of-memory killer"
    if code == -signal.SIGXFSZ:
        return "bad-output", "the model process tried to write a file larger than its limit (SIGXFSZ)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return "crashed", f"the model process died from signal {name}"
    return "crashed", f"the model process exited with code {code}"


FULL_LOG_CHARS = 256 * 1024


def tail(path: Path, chars: int = LOG_CHARS) -> str:
    """The end of a log, read without loading the whole file."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4 * chars))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return redact(text[-chars:])


def redact(text: str) -> str:
    """Remove the values of this process's secret-looking variables (the child never had them; a log might
    still quote a file that holds one)."""
    for name, value in os.environ.items():
        if len(value) >= 8 and (_SECRET_NAME.search(name) or name in _SECRET_VARIABLES):
            text = text.replace(value, "[redacted]")
    return text


# ---------------------------------------------------------------- reading what the child wrote


def collect(job_dir: Path, tasks: Sequence[Tuple[Any, List[Example]]], launch: Launch,
            max_output_bytes: int) -> JobOutcome:
    """Per task: its checked predictions, or a typed failure. Tasks the child finished before a timeout count."""
    out = job_dir / "out"
    outcome = JobOutcome(wall_s=launch.wall_s, peak_rss_bytes=launch.peak_rss_bytes,
                         timings=_read_small_json(out / "timings.json") or {})
    for task, examples in tasks:
        name = task.name
        reported = _child_failure(out / f"{name}.failure.json")
        if reported:
            outcome.failures[name] = (reported[0], reported[1], reported[2] or launch.log)
        elif (out / f"{name}.jsonl").exists() and (out / f"{name}.meta.json").exists():
            try:
                outcome.predictions[name] = read_outputs(out / f"{name}.jsonl", task, [e.id for e in examples],
                                                         max_output_bytes)
                outcome.meta[name] = read_meta(out / f"{name}.meta.json", name)
                outcome.prompts[name] = read_prompts(out / f"{name}.prompts.json", [e.id for e in examples])
            except SubmissionError as e:
                outcome.predictions.pop(name, None)
                outcome.failures[name] = (e.status, str(e), launch.log)
        elif launch.status != "ok":
            outcome.failures[name] = (launch.status, launch.reason, launch.log)
        else:
            outcome.failures[name] = ("crashed", f"the model process wrote no predictions for task {name}", launch.log)
    return outcome


def _child_failure(path: Path) -> Optional[Tuple[str, str, str]]:
    data = _read_small_json(path)
    if data is None:
        return None
    status = str(data["status"]) if data.get("status") in CHILD_STATUSES else "crashed"
    return status, redact(str(data.get("reason", ""))[:REASON_CHARS]), redact(str(data.get("log", ""))[-LOG_CHARS:])


def _read_small_json(path: Path) -> Optional[Dict[str, Any]]:
    """A small JSON object the child wrote, or None (missing, a link, too large, not an object)."""
    try:
        if not _regular(path) or path.stat().st_size > _SMALL_JSON_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _regular(path: Path) -> bool:
    """A plain file, not a link: the child could link its output to a file of the organizer's."""
    return path.exists() and not path.is_symlink() and path.is_file()


def _bad(name: str, message: str) -> SubmissionError:
    return SubmissionError(f"task {name}: the model's output {message}", status="bad-output")


def _no_constants(constant: str) -> Any:
    raise ValueError(f"non-finite number {constant}")


def read_outputs(path: Path, task: TaskConfig, ids: List[str], max_output_bytes: int) -> Dict[str, Any]:
    """id -> prediction, one JSON line per example: every id once, every value a valid prediction for the task."""
    name = task.name
    if not _regular(path):
        raise _bad(name, "is not a regular file")
    size = path.stat().st_size
    if size > len(ids) * (max_output_bytes + 1):
        raise _bad(name, f"is {size} bytes for {len(ids)} examples; the limit is {max_output_bytes} bytes per example")
    expected, predictions = set(ids), {}
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines[:-1] if lines and not lines[-1] else lines, start=1):
        item = _parse_line(name, number, line, max_output_bytes)
        example_id = item["id"]
        if example_id not in expected or example_id in predictions:
            raise _bad(name, f"line {number} has an unknown or repeated id {str(example_id)[:80]!r}")
        problem = kind_of(task).check_prediction(task, item["prediction"])
        if problem:
            raise _bad(name, f"for example {example_id!r} is not a valid prediction: {problem[:REASON_CHARS]}")
        predictions[example_id] = item["prediction"]
    if len(predictions) != len(ids):
        missing = [i for i in ids if i not in predictions]
        raise _bad(name, f"has {len(predictions)} predictions for {len(ids)} examples (missing ids: "
                   f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    return predictions


def _parse_line(name: str, number: int, line: bytes, max_output_bytes: int) -> Dict[str, Any]:
    if len(line) > max_output_bytes:
        raise _bad(name, f"line {number} is {len(line)} bytes; the limit is {max_output_bytes} bytes per example")
    try:
        item = json.loads(line.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as e:
        raise _bad(name, f"line {number} is not valid JSON text ({str(e)[:200]})") from e
    if not isinstance(item, dict) or set(item) != {"id", "prediction"} or not isinstance(item["id"], str):
        raise _bad(name, f'line {number} is not {{"id": "<string>", "prediction": ...}}')
    problem = not_utf8(item)
    if problem:
        raise _bad(name, f"line {number} is not valid UTF-8 text: it {problem}")
    return item


def read_meta(path: Path, name: str) -> Dict[str, Any]:
    data = _read_small_json(path) or {}
    counts = {"truncated": data.get("truncated"), "dropped_shots": data.get("dropped_shots", 0)}
    for value in counts.values():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(name, "metadata is malformed (expected {\"truncated\": <count>, \"dropped_shots\": <count>})")
    return counts


def read_prompts(path: Path, ids: List[str]) -> Dict[str, str]:
    """Rendered prompts the child wrote for `harness validate` (text to show, nothing scored): known ids only."""
    data = _read_small_json(path) or {}
    known = set(ids)
    return {k: v[:LOG_CHARS * 4] for k, v in data.items() if k in known and isinstance(v, str)}
