"""`executor=ray` on one CPU machine with a real local Ray cluster (marker `ray`), and the executor's config checks
(default tier, no cluster).

The cluster tests share one `ray.init` (2 CPUs, 2 logical GPUs) and the tiny models of tests/conftest.py. What
runs inside a Ray worker is wrapped by closures defined here (cloudpickle ships closures by value), which record
what the worker saw or wait to be killed by the test: hooks of the tests, never anything a submission controls.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tiny_models import write_entries

from harness.cli import main
from harness.compose import compose
from harness.errors import ConfigError
from harness.execution import executors

ROOT = Path(__file__).resolve().parents[1]
# Two tasks (one generative, one scored by log-likelihood) keep each model job short on a 2-core machine.
SUITE = """# harness run suite=ray_pair hydra.searchpath=[file://conf]
defaults:
  - /task@_global_.tasks.demo_qa: demo_qa
  - /task@_global_.tasks.demo_classification: demo_classification
name: ray_pair
"""
TASKS = ("demo_classification", "demo_qa")
CHEAP = ["tasks.demo_qa.data.limit=6", "tasks.demo_classification.data.limit=6",
         "tasks.demo_qa.generation.max_new_tokens=6"]
# The model's child gets the thread count Ray gives a 1-CPU job, in both executors, so float sums agree bit for bit.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- default tier: the config group and its checks


def test_executor_group_defaults_to_local_and_ray_composes():
    assert compose(["suite=demo"]).executor.name == "local"
    cfg = compose(["suite=demo", "executor=ray", "executor.address=auto", "+executor.runtime_env.working_dir=."])
    assert (cfg.executor.name, cfg.executor.address, cfg.executor.num_gpus) == ("ray", "auto", 1)
    assert dict(cfg.executor.runtime_env) == {"working_dir": "."}


@pytest.mark.parametrize("override, named", [
    ("executor.name=slurm", "executor.name: 'slurm' is not valid; use one of local, ray"),
    ("executor.num_gpus=-1", "executor.num_gpus: -1.0 is not valid"),
    ("executor.max_retries=-2", "executor.max_retries: -2 is not valid"),
])
def test_bad_executor_values_name_the_key_and_what_is_valid(override, named):
    cfg = compose(["suite=demo", "executor=ray", override])
    with pytest.raises(ConfigError) as error:
        executors.executor_for(cfg.executor)
    assert named in str(error.value)


def test_local_cluster_sizes_with_an_address_are_refused():
    cfg = compose(["suite=demo", "executor=ray", "executor.address=auto", "executor.cluster_gpus=2"])
    with pytest.raises(ConfigError, match="executor.cluster_cpus / executor.cluster_gpus describe a local cluster"):
        executors.executor_for(cfg.executor)


def test_unknown_executor_lists_the_valid_ones(tmp_path, capsys):
    assert main(["run", "suite=demo", "executor=slurm", f"paths.results={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "executor/slurm" in err and "local" in err and "ray" in err


def test_ray_not_installed_is_a_config_error_saying_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = main(["run", "suite=demo", "executor=ray", f"paths.results={tmp_path / 'store'}",
                 f"paths.leaderboards={tmp_path / 'boards'}"])
    assert code == 2
    assert "pip install 'contest-harness[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "store").exists(), "nothing is evaluated when the executor cannot start"


# ---------------------------------------------------------------- shared fixtures of the cluster tests



@pytest.fixture(scope="module")
def conf(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ray-conf")
    (folder / "suite").mkdir()
    (folder / "suite" / "ray_pair.yaml").write_text(SUITE, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def submissions(tmp_path_factory, tiny_gpt2_dir, tiny_t5_dir) -> Path:
    """Three model entries (so two jobs hold the two logical GPUs and the third waits) and two that load none."""
    models = {"gpt2": ("hf-causal", tiny_gpt2_dir), "gpt2-b": ("hf-causal", tiny_gpt2_dir),
              "t5": ("hf-seq2seq", tiny_t5_dir)}
    return write_entries(tmp_path_factory.mktemp("ray-submissions"), models,
                         shipped=("baseline-majority-class", "rules-predictions"))


def _run(work: Path, submissions: Path, conf: Path) -> list:
    """`harness run` of the two-task suite, storing under `work`."""
    return ["run", "suite=ray_pair", f"hydra.searchpath=[file://{conf}]", f"paths.submissions={submissions}",
            f"paths.results={work / 'store'}", f"paths.leaderboards={work / 'boards'}", "progress=false",
            "batch_size=4"] + CHEAP


def _evaluate_qa(work: Path, entry: Path) -> list:
    """`harness evaluate` of one cell, with the settings `_run` gives the suite's demo_qa."""
    return ["evaluate", f"submission={entry}", "task=demo_qa", f"paths.results={work / 'store'}", "progress=false",
            "batch_size=4", "task.data.limit=6", "task.generation.max_new_tokens=6"]


@pytest.fixture
def one_model_entry(tmp_path, submissions) -> Path:
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copytree(submissions / "gpt2", subs / "gpt2")
    shutil.copytree(submissions / "rules-predictions", subs / "rules-predictions")
    return subs


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, submissions, conf) -> Path:
    work = tmp_path_factory.mktemp("local-run")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in ONE_THREAD.items():
            mp.setenv(key, value)
        assert main(_run(work, submissions, conf)) == 0
    return work


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _files(folder: Path) -> dict:
    """Every output file's bytes; hidden files are caches keyed by this run's own paths (harness.freshness)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


# ---------------------------------------------------------------- hooks that run inside a Ray worker


def _recording(real, log_dir: Path):
    """The real job, plus what the worker saw: its GPUs, its process id, when it started and ended."""

    def job(run_cfg, tasks, folder):
        import json
        import os
        import time

        import ray

        started = time.time()
        written = real(run_cfg, tasks, folder)
        seen = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "gpu_ids": ray.get_gpu_ids(),
                "pid": os.getpid(), "start": started, "end": time.time()}
        (log_dir / f"{os.path.basename(folder)}.json").write_text(json.dumps(seen), encoding="utf-8")
        return written

    return job


def _killable(real, marker: Path, doomed_attempts: int):
    """Writes its process id to `marker`; the first `doomed_attempts` attempts then wait for the test to kill them."""

    def job(run_cfg, tasks, folder):
        import os
        import time

        with open(marker, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        with open(marker, encoding="utf-8") as f:
            attempt = len(f.read().split())
        if attempt <= doomed_attempts:
            time.sleep(120)  # killed meanwhile
        return real(run_cfg, tasks, folder)

    return job


def _raising(marker: Path):
    def job(run_cfg, tasks, folder):
        with open(marker, "a", encoding="utf-8") as f:
            f.write("attempt\n")
        raise RuntimeError("the harness broke on this node")

    return job


class Killer(threading.Thread):
    """SIGKILLs each process id that appears in `marker`, up to `kills` of them, as a lost worker would die."""

    def __init__(self, marker: Path, kills: int):
        super().__init__(daemon=True)
        self.marker, self.kills, self.killed = marker, kills, []

    def run(self) -> None:
        deadline = time.monotonic() + 90
        while len(self.killed) < self.kills and time.monotonic() < deadline:
            text = self.marker.read_text(encoding="utf-8") if self.marker.exists() else ""
            for line in text.splitlines(keepends=True)[:self.kills]:
                pid = int(line) if line.endswith("\n") else None
                if pid is not None and pid not in self.killed:
                    time.sleep(0.3)  # let the job get going: the worker dies mid-job, not on arrival
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
            time.sleep(0.05)


# ---------------------------------------------------------------- the cluster tests


@pytest.mark.ray
def test_cli_run_starts_its_own_local_cluster_and_stores_what_local_stores(tmp_path, submissions, conf, local_run):
    """`harness run executor=ray` as a real process: it starts a local cluster (two logical GPUs on this CPU
    machine), runs the model job there, shuts the cluster down, and stores what the local executor stored."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    subs = tmp_path / "subs"
    for name in ("gpt2", "rules-predictions"):
        shutil.copytree(submissions / name, subs / name)
    argv = [sys.executable, "-m", "harness.cli", *_run(tmp_path, subs, conf), "executor=ray", "executor.num_gpus=1",
            "executor.cluster_cpus=2", "executor.cluster_gpus=2"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, **ONE_THREAD})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "dispatching gpt2 on demo_qa, demo_classification to Ray (1 GPU, 1 CPU)" in done.stderr
    for name in ("gpt2", "rules-predictions"):
        assert _files(tmp_path / "store" / name) == _files(local_run / "store" / name)


@pytest.mark.ray
def test_two_logical_gpus_run_two_jobs_at_once_and_the_third_waits(ray_cluster, submissions, conf, tmp_path,
                                                                  monkeypatch, local_run):
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setattr(executors, "evaluate_job", _recording(executors.evaluate_job, seen))
    code = main(_run(tmp_path, submissions, conf) + ["executor=ray", "executor.num_gpus=1"])
    assert code == 0
    jobs = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in seen.iterdir()}
    assert sorted(jobs) == ["gpt2", "gpt2-b", "t5"], "one Ray job per model entry; the others need no model"
    assert all(len(job["gpu_ids"]) == 1 for job in jobs.values())
    assert all(job["cuda_visible_devices"] == str(job["gpu_ids"][0]) for job in jobs.values())
    assert len({job["pid"] for job in jobs.values()}) == 3, "every job gets a fresh worker process"
    first, second, third = sorted(jobs.values(), key=lambda job: job["start"])
    assert second["start"] < first["end"], "the first two jobs run at the same time"
    assert {first["cuda_visible_devices"], second["cuda_visible_devices"]} == {"0", "1"}
    assert third["start"] >= min(first["end"], second["end"]), "the third job waits for a GPU"
    freed = [job["cuda_visible_devices"] for job in (first, second) if job["end"] <= third["start"]]
    assert third["cuda_visible_devices"] in freed, "the third job gets the GPU a finished job gave back"
    # The board (md, csv, json, html) and every stored file equal the local executor's, bit for bit.
    assert _files(tmp_path / "boards") == _files(local_run / "boards")
    assert _files(tmp_path / "store") == _files(local_run / "store")


@pytest.mark.ray
def test_a_worker_killed_mid_job_is_retried(ray_cluster, submissions, tmp_path, monkeypatch, local_run):
    marker = tmp_path / "pids"
    monkeypatch.setattr(executors, "evaluate_job", _killable(executors.evaluate_job, marker, doomed_attempts=1))
    killer = Killer(marker, kills=1)
    killer.start()
    code = main(_evaluate_qa(tmp_path, submissions / "gpt2") + ["executor=ray", "executor.num_gpus=1",
                                                                 "executor.max_retries=1"])
    killer.join(timeout=5)
    pids = [int(line) for line in marker.read_text(encoding="utf-8").split()]
    assert len(killer.killed) == 1 and len(pids) == 2 and pids[0] == killer.killed[0] != pids[1]
    assert code == 0
    record = json.loads((tmp_path / "store" / "gpt2" / "demo_qa.json").read_text(encoding="utf-8"))
    local = json.loads((local_run / "store" / "gpt2" / "demo_qa.json").read_text(encoding="utf-8"))
    assert record["status"] == "ok" and record["scores"] == local["scores"]
    assert (tmp_path / "store" / "gpt2" / "demo_qa.predictions.jsonl").read_bytes() == \
        (local_run / "store" / "gpt2" / "demo_qa.predictions.jsonl").read_bytes()


@pytest.mark.ray
def test_a_job_lost_on_every_attempt_fails_its_cells_typed(ray_cluster, one_model_entry, conf, tmp_path,
                                                           monkeypatch, capsys):
    marker = tmp_path / "pids"
    monkeypatch.setattr(executors, "evaluate_job", _killable(executors.evaluate_job, marker, doomed_attempts=99))
    killer = Killer(marker, kills=2)
    killer.start()
    code = main(_run(tmp_path, one_model_entry, conf) + ["executor=ray", "executor.num_gpus=1",
                                                         "executor.max_retries=1"])
    killer.join(timeout=5)
    assert len(killer.killed) == 2, "one attempt plus max_retries=1"
    assert code == 0, "a lost job fails its cells; the run goes on (fail_on_error=false)"
    for task in TASKS:
        record = json.loads((tmp_path / "store" / "gpt2" / f"{task}.json").read_text(encoding="utf-8"))
        assert record["status"] == "crashed"
        assert "lost on each of its 2 attempts (executor.max_retries=1)" in record["reason"]
        assert "WorkerCrashedError" in record["reason"]
    baseline = json.loads((tmp_path / "store" / "rules-predictions" / "demo_qa.json").read_text("utf-8"))
    assert baseline["status"] == "ok", "entries that need no model are scored by the driver"
    assert "failed: gpt2 on demo_qa: crashed" in capsys.readouterr().err


@pytest.mark.ray
def test_a_job_that_raises_is_not_retried_and_fails_its_cells(ray_cluster, submissions, tmp_path, monkeypatch):
    marker = tmp_path / "attempts"
    monkeypatch.setattr(executors, "evaluate_job", _raising(marker))
    code = main(_evaluate_qa(tmp_path, submissions / "gpt2") + ["executor=ray", "executor.num_gpus=1",
                                                                 "executor.max_retries=3"])
    assert code == 1
    assert marker.read_text(encoding="utf-8").split() == ["attempt"], "an exception is not a lost worker"
    record = json.loads((tmp_path / "store" / "gpt2" / "demo_qa.json").read_text(encoding="utf-8"))
    assert record["status"] == "crashed"
    assert record["reason"] == "the job raised on its Ray worker: RuntimeError: the harness broke on this node"
    assert "RuntimeError: the harness broke on this node" in record["log"] and "\x1b" not in record["log"]


@pytest.mark.ray
def test_more_gpus_per_job_than_any_node_has_is_a_config_error(ray_cluster, submissions, conf, tmp_path, capsys):
    code = main(_run(tmp_path, submissions, conf) + ["executor=ray", "executor.num_gpus=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "executor.num_gpus=3" in err and "2 CPU and 2 GPU" in err and "executor.num_gpus=0" in err
