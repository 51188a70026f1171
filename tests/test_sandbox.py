"""The sandbox holds even when an entry runs code: an entry whose shipped model code the organizer allowed
(`allow_remote_code`) tries every read, write and escape below while it loads; each fails, and the good entry beside
it is scored. A control run without the sandbox shows the same attacks succeed there, so the test can fail.

Needs bubblewrap and unprivileged namespaces (CI installs bubblewrap); elsewhere the tests skip, saying why.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from hostile import builders

from harness.compose import compose
from harness.execution import isolation, sandbox
from harness.execution.executors import evaluate_all

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_sandboxSecret_" + "3c9e71"
TASK = "demo_classification"


def _holders(token: str) -> list:
    """Pids of processes whose command line holds `token` (the attack's grandchild)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if token.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def attack(tmp_path: Path, model_dir: str, monkeypatch, sandboxed: bool) -> SimpleNamespace:
    if not sandboxed:  # the control: the same job behind `unshare --net` only, as before the sandbox
        monkeypatch.setattr(sandbox, "sandbox", lambda: (None, "switched off for the control run"))
    token = f"GRANDCHILD-{uuid.uuid4().hex}"
    secret_file = tmp_path / "organizer_secret.txt"
    secret_file.write_text(SECRET)
    subs = tmp_path / "subs"
    server = socket.create_server(("127.0.0.1", 0))
    organizer = subprocess.Popen(["sleep", "300"], env={"HF_TOKEN": SECRET})  # a process holding a token
    jobs = []
    real_collect = isolation.collect

    def keep(job_dir, *args, **kwargs):  # the job folder is deleted after the job: keep its report
        report = job_dir / "home" / "attack.json"
        jobs.append(json.loads(report.read_text()) if report.is_file() else None)
        return real_collect(job_dir, *args, **kwargs)

    monkeypatch.setattr(isolation, "collect", keep)
    try:
        builders.good(subs, "good", model_dir)
        builders.attack_entry(
            subs, "attacker", model_dir, parent=os.getpid(), secret=SECRET, port=server.getsockname()[1],
            token=token, reads={"package references": str(ROOT / "tasks/data/demo/qa_test.jsonl"),
                                "organizer file": str(secret_file), "results store": str(tmp_path / "store")},
            writes={"outside the job folder": str(tmp_path / "planted"),
                    "into the model folder": str(subs / "attacker" / "model" / "planted"),
                    "into the harness": str(ROOT / "harness" / "planted.py")})
        cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false",
                       f"tasks.{TASK}.data.limit=2", "allow_remote_code=[attacker]"])
        records = evaluate_all(cfg, {TASK: cfg.tasks[TASK]}, [subs / "good", subs / "attacker"], echo=lambda m: None)
        survivors = [pid for pid in _holders(token) if _alive(pid)]
    finally:
        server.close()
        organizer.kill()
        organizer.wait()
    for pid in _holders(token):  # the control's escaped grandchild: ended here, by its id
        os.kill(pid, signal.SIGKILL)
    planted = [p for p in (tmp_path / "planted", subs / "attacker" / "model" / "planted",
                           ROOT / "harness" / "planted.py") if p.exists()]
    for path in planted:
        path.unlink()
    report = next(job for job in jobs if job is not None)
    return SimpleNamespace(records={r["submission"]: r for r in records}, report=report, survivors=survivors,
                           planted=planted)


ATTACKS = ("parent environ", "any environ", "parent memory", "read package references", "read organizer file",
           "read results store", "write into the model folder", "write into the harness", "network")


@pytest.fixture
def needs_sandbox():
    bwrap, why = sandbox.sandbox()
    if bwrap is None:
        pytest.skip(f"no sandbox on this machine: {why}")


@pytest.mark.slow  # a model job per attack, ~15 s
def test_every_attack_fails_in_the_sandbox_and_the_good_entry_is_scored(tmp_path, tiny_gpt2_dir, monkeypatch,
                                                                        needs_sandbox):
    run = attack(tmp_path, tiny_gpt2_dir, monkeypatch, sandboxed=True)
    assert run.records["good"]["status"] == "ok", run.records["good"]["reason"]
    assert run.records["attacker"]["status"] == "ok", run.records["attacker"]["reason"]  # its code did run
    for name in ATTACKS:
        assert run.report[name].startswith("blocked"), (name, run.report[name])
    assert run.report["grandchild started"] == "succeeded" and run.survivors == []  # died with the job
    assert run.planted == []  # nothing written reached the machine (a write under /tmp lands in the job's own tmpfs)
    note = run.records["attacker"]["provenance"]["isolation"]
    assert note["filesystem"].startswith("enforced") and note["parent memory"].startswith("enforced")
    assert note["memory"].startswith("enforced" if sandbox.memory_cgroups()[0] else "not enforced")


@pytest.mark.slow  # a second model job; the sandboxed run above is the default tier's check
def test_the_control_without_the_sandbox_lets_the_same_attacks_through(tmp_path, tiny_gpt2_dir, monkeypatch,
                                                                      needs_sandbox):
    run = attack(tmp_path, tiny_gpt2_dir, monkeypatch, sandboxed=False)
    assert run.records["good"]["status"] == "ok"
    for name in ("parent environ", "any environ", "read package references", "read organizer file",
                 "write outside the job folder"):
        assert run.report[name].startswith("succeeded"), (name, run.report[name])
    assert tmp_path / "planted" in run.planted
    assert run.survivors  # the setsid() grandchild outlived the job (ended by the test)
    note = run.records["attacker"]["provenance"]["isolation"]
    assert note["filesystem"].startswith("not enforced") and note["parent memory"].startswith("not enforced")


def test_without_bubblewrap_the_records_say_not_enforced(monkeypatch):
    sandbox.sandbox.cache_clear()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    try:
        note = isolation.isolation_note(10, 100, 1000)
    finally:
        sandbox.sandbox.cache_clear()
    assert note["filesystem"].startswith("not enforced (bubblewrap (`bwrap`")
    assert note["parent memory"].startswith("not enforced") and note["memory"].startswith("not enforced")


def test_a_job_over_its_memory_cap_is_out_of_memory(tmp_path):
    where, why = sandbox.memory_cgroups()
    if where is None:
        pytest.skip(f"no memory cap on this machine: {why}")
    (tmp_path / "home").mkdir()
    fill = "import sys; b = b'x' * (400 << 20); print(len(b))"  # 400 MB, every page written
    cap = sandbox.MemoryCap(where[0], where[1], 100 << 20, f"harness-test-{uuid.uuid4().hex[:8]}")
    try:
        launch = isolation.launch_child([sys.executable, "-c", fill], tmp_path, 60, False, cap)
    finally:
        cap.remove()
    assert not cap.folder.exists()
    assert launch.status == "out-of-memory" and "memory cap of 104857600 bytes" in launch.reason
    assert isolation.launch_child([sys.executable, "-c", fill], tmp_path, 60, False).status == "ok"


def test_the_memory_line_says_not_enforced_where_no_cgroup_can_be_made(monkeypatch):
    monkeypatch.setattr(sandbox, "memory_cgroups", lambda: (None, "no writable cgroup (test)"))
    cap, note = isolation.memory_cap(1 << 30, "job")
    assert cap is None and note.startswith("not enforced (no writable cgroup (test))")


def test_the_sandbox_shows_the_child_only_what_it_needs(tmp_path, needs_sandbox):
    """Without a model: the sandbox's own view, checked from inside it."""
    job = tmp_path / "job"
    (job / "home").mkdir(parents=True)
    (job / "job.json").write_text("{}")
    probe = ("import os, sys; "
             "print(os.getuid(), os.getpid(), sorted(os.listdir('/')), os.path.exists(sys.argv[1]), "
             "os.listdir(sys.argv[2]), os.path.exists(sys.argv[3]))")
    argv = sandbox.command(sandbox.sandbox()[0], job, [], None) + [
        sys.executable, "-c", probe, str(tmp_path / "elsewhere"), str(ROOT / "tasks" / "data"),
        str(ROOT / "README.md")]
    (tmp_path / "elsewhere").write_text("x")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    uid, pid, rest = out.stdout.split(" ", 2)
    assert uid == str(sandbox.NOBODY) and int(pid) <= 3  # its own PID namespace
    assert rest.strip().endswith("False [] False")  # another tmp file, the package's task data, the checkout: absent
    assert shutil.which("bwrap")


@pytest.mark.parametrize("code, status, words", [
    ("import ctypes; ctypes.string_at(0)", "crashed", "SIGSEGV"),
    ("import sys; sys.exit(3)", "crashed", "exited with code 3"),
])
def test_a_process_dying_in_the_sandbox_is_typed_as_outside_it(tmp_path, needs_sandbox, code, status, words):
    (tmp_path / "home").mkdir()
    (tmp_path / "job.json").write_text("{}")
    argv = sandbox.command(sandbox.sandbox()[0], tmp_path, [], None) + [sys.executable, "-c", code]
    launch = isolation.launch_child(argv, tmp_path, 60, False)
    assert (launch.status, words in launch.reason) == (status, True), launch.reason
