"""A hostile suite: one organizer run over a good entry and an entry per attack.

Each test asserts the attack's typed failure, that nothing of the attack took effect (a marker file a payload
would create does not exist, no model process started for a rejected entry, a secret or planted reference
appears nowhere), and that the good entry of the same run is scored. The run goes through `harness run`
in-process, with the child processes real; only observation is patched in (what `Popen` was given, and a
copy of each job folder before it is deleted).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hostile import builders
from openai_fake import FakeOpenAI

from harness import status
from harness.cli import main
from harness.compose import compose
from harness.errors import SubmissionError
from harness.execution import isolation, sandbox
from harness.execution.executors import evaluate_all

# The slow tier: one full run of every hostile entry in child processes (~45 s of CPU); the fast tier's
# hostile-entry checks are in tests/test_hostile_entries.py
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tasks" / "data" / "demo"
TASKS = ("demo_classification", "demo_language_modeling", "demo_qa")
ENV_SECRET = "hf_envSecretValue_7f3a9c"
FILE_SECRET = "ORGANIZER-FILE-SECRET-5b1e"
CANARY_QA = "CANARY-REFERENCE-qa-91d4e2"
CANARY_TRAIN = "CANARY-TRAIN-cls-4c8a17"
CANARY_UNMAPPED = "CANARY-UNMAPPED-qa-0b6f33"
MODEL_ENTRIES = ("good", "nan", "huge")  # the crashing model runs in a slow test of its own
SUITE = """# harness run suite=hostile hydra.searchpath=[file://conf]
defaults:
  - /task@_global_.tasks.demo_qa: demo_qa
  - /task@_global_.tasks.demo_classification: demo_classification
  - /task@_global_.tasks.demo_language_modeling: demo_language_modeling
name: hostile
"""


def plant_canaries(folder: Path) -> dict:
    """Task data whose references (and train split, and an unmapped column) hold strings no model may see."""
    folder.mkdir()
    rows = [json.loads(line) for line in (DEMO / "qa_test.jsonl").read_text(encoding="utf-8").splitlines()]
    rows[0]["answers"] = [CANARY_QA]
    for row in rows:
        row["organizer_note"] = CANARY_UNMAPPED
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    train = [json.loads(line) for line in (DEMO / "classification_train.jsonl").read_text(encoding="utf-8").splitlines()]
    train[0]["text"] += " " + CANARY_TRAIN
    (folder / "cls_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train), encoding="utf-8")
    return {"qa": folder / "qa.jsonl", "train": folder / "cls_train.jsonl", "first_question": rows[0]["question"]}


def run_overrides(work: Path, data: dict) -> list:
    return [f"hydra.searchpath=[file://{work / 'conf'}]", "suite=hostile", f"paths.submissions={work / 'submissions'}",
            f"paths.results={work / 'store'}", f"paths.leaderboards={work / 'boards'}", "progress=false",
            f"tasks.demo_qa.data.path={data['qa']}", f"tasks.demo_classification.train.path={data['train']}",
            "tasks.demo_qa.generation.max_new_tokens=4"] + [f"tasks.{t}.data.limit=2" for t in TASKS]


def build_entries(subs: Path, work: Path, model_dir: str) -> None:
    markers = work / "markers"
    builders.good(subs, "good", model_dir)
    for variant in ("bin", "zip", "disguised"):
        builders.pickle_entry(subs, f"pickle-{variant}", model_dir, markers / f"pickle-{variant}", variant)
    builders.remote_code_entry(subs, "remote-code", model_dir, markers / "remote-code")
    builders.symlinked_weights_entry(subs, "link-weights", model_dir, subs / "good" / "model" / "model.safetensors")
    builders.symlinked_manifest_entry(subs, "link-manifest", work / "organizer_secret.txt")
    builders.symlinked_predictions_entry(subs, "link-predictions", work / "store" / "good" / "demo_qa.predictions.jsonl",
                                         "demo_qa")
    builders.model_entry(subs, "traversal-up", "../good/model")
    builders.model_entry(subs, "traversal-absolute", str(subs / "good" / "model"))
    builders.interpolation_entry(subs, "interpolation", "HARNESS_TEST_SECRET")
    builders.nan_entry(subs, "nan", model_dir)
    builders.huge_output_entry(subs, "huge", model_dir)


class Observer:
    """Records what each child process was given and keeps a copy of each job folder."""

    def __init__(self, jobs: Path):
        self.jobs, self.launches = jobs, []

    def popen(self):
        observer, real = self, subprocess.Popen

        class Recording(real):
            def __init__(self, args, *rest, **kwargs):
                if "harness.execution.worker" in list(args):
                    observer.launches.append({"argv": list(args), "env": dict(kwargs.get("env") or {})})
                super().__init__(args, *rest, **kwargs)

        return Recording

    def collect(self):
        real = isolation.collect

        def snapshot(job_dir, *args, **kwargs):
            shutil.copytree(job_dir, self.jobs / f"job-{len(list(self.jobs.iterdir()))}", symlinks=True)
            return real(job_dir, *args, **kwargs)

        return snapshot


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, tiny_gpt2_dir):
    work = tmp_path_factory.mktemp("hostile")
    for name in ("submissions", "markers", "jobs", "conf/suite"):
        (work / name).mkdir(parents=True)
    (work / "conf" / "suite" / "hostile.yaml").write_text(SUITE, encoding="utf-8")
    (work / "organizer_secret.txt").write_text(f"{FILE_SECRET}: 1\n", encoding="utf-8")
    build_entries(work / "submissions", work, tiny_gpt2_dir)
    data = plant_canaries(work / "data")
    observer = Observer(work / "jobs")
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        mp.setenv("HF_TOKEN", ENV_SECRET)
        mp.setenv("HARNESS_TEST_SECRET", ENV_SECRET)
        mp.setattr(subprocess, "Popen", observer.popen())
        mp.setattr(isolation, "collect", observer.collect())
        code = main(["run"] + run_overrides(work, data))
    records = {}
    for path in (work / "store").glob("*/*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        records[(record["submission"], record["task"])] = record
    return SimpleNamespace(work=work, code=code, records=records, stdout=stdout.getvalue(), stderr=stderr.getvalue(),
                           observer=observer, data=data)


def test_the_run_goes_on_and_the_good_entry_is_scored(hostile):
    assert hostile.code == 0, hostile.stderr  # failures are cells' results; only fail_on_error makes them fatal
    for task in TASKS:
        record = hostile.records[("good", task)]
        assert record["status"] == "ok" and record["primary"] is not None, record["reason"]
    board = json.loads((hostile.work / "boards" / "hostile" / "leaderboard.json").read_text(encoding="utf-8"))
    assert "good" in json.dumps(board) and "refused" in json.dumps(board)


REJECTED = {  # entry -> (typed failure, words its reason must contain)
    "pickle-bin": ("refused", ["pytorch_model.bin", "pickle"]),
    "pickle-zip": ("refused", ["extra_state.data", "archive/data.pkl"]),
    "pickle-disguised": ("refused", ["vocab_extra.dat", "pickle protocol 4"]),
    "remote-code": ("refused", ["modeling_evil.py", "auto_map in config.json", "trust_remote_code", "allow_remote_code"]),
    "link-weights": ("invalid", ["symlinks that leave the submission folder", "model/model.safetensors"]),
    "link-manifest": ("invalid", ["symlinks that leave the submission folder", "submission.yaml"]),
    "link-predictions": ("invalid", ["symlinks that leave the submission folder", "predictions/demo_qa.jsonl"]),
    "traversal-up": ("invalid", ["'../good/model'", "leaves the submission folder"]),
    "traversal-absolute": ("invalid", ["leaves the submission folder"]),
    "interpolation": ("invalid", ["interpolation is not allowed", "unknown field 'note'"]),
}


@pytest.mark.parametrize("entry", sorted(REJECTED))
def test_rejected_before_anything_loads(hostile, entry):
    status, words = REJECTED[entry]
    for task in TASKS:
        record = hostile.records[(entry, task)]
        assert record["status"] == status
        for word in words:
            assert word in record["reason"]
    started = [json.loads((job / "job.json").read_text())["model"]["location"] for job in hostile.work.joinpath("jobs").iterdir()]
    assert not any(f"/{entry}/" in location for location in started)  # no model process for a rejected entry


def test_pickle_payloads_were_never_unpickled(hostile, tmp_path):
    for variant in ("bin", "zip", "disguised"):
        assert not (hostile.work / "markers" / f"pickle-{variant}").exists()
    control = tmp_path / "control"  # the same payload, unpickled, does create its file
    pickle.loads(builders.pickle_payload(control))
    assert control.exists()


def test_shipped_model_code_never_ran(hostile):
    assert not (hostile.work / "markers" / "remote-code").exists()


def test_nan_logits_fail_every_task_as_bad_output(hostile):
    for task in TASKS:
        record = hostile.records[("nan", task)]
        assert record["status"] == "bad-output" and "NaN" in record["reason"]
        assert not (hostile.work / "store" / "nan" / f"{task}.predictions.jsonl").exists()


@pytest.mark.slow
def test_a_crashing_model_fails_as_crashed_with_a_log_excerpt(tmp_path, tiny_gpt2_dir):
    builders.crash_entry(tmp_path, "crash", tiny_gpt2_dir)
    shutil.copytree(ROOT / "submissions" / "baseline-lead-1", tmp_path / "baseline-lead-1")
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false",
                   "tasks.demo_qa.generation.max_new_tokens=4"] + [f"tasks.{t}.data.limit=2" for t in TASKS]
                  + ["tasks.demo_summarization.data.limit=2"])
    tasks = {t: cfg.tasks[t] for t in TASKS + ("demo_summarization",)}
    records = evaluate_all(cfg, tasks, [tmp_path / "baseline-lead-1", tmp_path / "crash"], echo=lambda m: None)
    by = {(r["submission"], r["task"]): r for r in records}
    for task in TASKS:
        record = by[("crash", task)]
        assert record["status"] == "crashed" and "IndexError" in record["reason"]
        assert "modeling_gpt2.py" in record["log"] and len(record["log"]) <= status.LOG_CHARS
    assert by[("baseline-lead-1", "demo_summarization")]["status"] == "ok"


def test_a_huge_output_fails_only_the_generation_task(hostile):
    qa = hostile.records[("huge", "demo_qa")]
    assert qa["status"] == "bad-output"
    assert f"the limit is {isolation.MAX_OUTPUT_BYTES} bytes per example" in qa["reason"]
    assert hostile.records[("huge", "demo_classification")]["status"] == "ok"  # scoring requests emit no text
    assert all(len(r["reason"]) < 2000 and len(r["log"]) <= status.LOG_CHARS
               for r in hostile.records.values())
    for path in (hostile.work / "store").rglob("*"):
        assert path.stat().st_size < builders.HUGE_TOKEN_CHARS


def _everything_written(hostile) -> list:
    texts = [hostile.stdout, hostile.stderr]
    for launch in hostile.observer.launches:
        texts += launch["argv"] + [f"{k}={v}" for k, v in launch["env"].items()]
    for path in hostile.work.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.parent.name != "data" and path.name != "organizer_secret.txt":
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return texts


def test_secrets_appear_in_no_output(hostile):
    texts = _everything_written(hostile)
    assert any("interpolation" in text for text in texts)  # the entry's rejection was written
    for secret in (ENV_SECRET, FILE_SECRET):
        assert not any(secret in text for text in texts), secret


def test_the_child_never_sees_references_train_data_or_unmapped_columns(hostile):
    jobs = sorted(hostile.work.joinpath("jobs").iterdir())
    assert len(jobs) == len(MODEL_ENTRIES) == len(hostile.observer.launches)
    child_side = []
    for job in jobs:
        child_side += [p.read_text(encoding="utf-8", errors="replace") for p in job.rglob("*") if p.is_file()]
    for launch in hostile.observer.launches:
        child_side += launch["argv"] + [f"{k}={v}" for k, v in launch["env"].items()]
    assert any(hostile.data["first_question"] in text for text in child_side)  # the inputs did reach the child
    planted = hostile.data["qa"].read_text(encoding="utf-8") + hostile.data["train"].read_text(encoding="utf-8")
    for canary in (CANARY_QA, CANARY_TRAIN, CANARY_UNMAPPED):
        assert canary in planted
        assert not any(canary in text for text in child_side), canary


def test_references_never_reach_a_serving_endpoint(tmp_path):
    """The canary test over HTTP: a test server records every request body an endpoint entry's job sends."""
    (tmp_path / "conf" / "suite").mkdir(parents=True)
    (tmp_path / "conf" / "suite" / "hostile.yaml").write_text(SUITE, encoding="utf-8")
    data = plant_canaries(tmp_path / "data")
    with FakeOpenAI(logprobs=True) as server:
        builders.endpoint_entry(tmp_path / "submissions", "remote", server.base_url)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = main(["run"] + run_overrides(tmp_path, data) + [f"allow_endpoints=[127.0.0.1:{server.port}]"])
    assert code == 0
    statuses = {t: json.loads((tmp_path / "store" / "remote" / f"{t}.json").read_text())["status"] for t in TASKS}
    assert statuses == {"demo_qa": "ok", "demo_classification": "ok", "demo_language_modeling": "n/a"}
    bodies = server.bodies()
    assert any(data["first_question"] in body for body in bodies)  # the inputs did reach the server
    for canary in (CANARY_QA, CANARY_TRAIN, CANARY_UNMAPPED):
        assert not any(canary in body for body in bodies), canary


def test_the_child_environment_is_scrubbed_and_offline(hostile):
    for launch in hostile.observer.launches:
        env = launch["env"]
        assert "HF_TOKEN" not in env and "HARNESS_TEST_SECRET" not in env
        assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
        assert set(env) <= set(isolation._KEEP_ENV) | set(isolation._OFFLINE) | {"HOME", "HF_HOME", "XDG_CACHE_HOME",
                                                                                  "TMPDIR"}
        job_dir = launch["argv"][-1]
        assert env["HOME"].startswith(job_dir) and env["HF_HOME"].startswith(job_dir)


def test_records_say_what_isolation_was_enforced(hostile):
    provenance = hostile.records[("good", "demo_qa")]["provenance"]["isolation"]
    assert provenance == isolation.isolation_note(float(provenance["limits"].split()[2]), isolation.MAX_OUTPUT_BYTES,
                                                  int(provenance["limits"].split("at most ")[1].split()[0]),
                                                  provenance["memory"])
    assert provenance["memory"].startswith("enforced" if sandbox.memory_cgroups()[0] else "not enforced")
    enforced = sandbox.sandbox()[0] is not None
    assert provenance["filesystem"].startswith("enforced" if enforced else "not enforced")
    assert provenance["network"].startswith("enforced" if enforced or isolation.network_isolation()[0] else "not")
    assert f"{isolation.MAX_OUTPUT_BYTES} bytes of output per example" in provenance["limits"]


def test_fail_on_error_makes_failed_cells_fatal(hostile):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["run", "fail_on_error=true"] + run_overrides(hostile.work, hostile.data))
    assert code == 1  # every model cell comes from the store this time: nothing is run again


# ---------------------------------------------------------------- timeouts and crashes of the process itself


def test_a_job_over_its_budget_is_killed_and_the_run_goes_on(tmp_path, tiny_gpt2_dir, monkeypatch):
    builders.good(tmp_path, "slowpoke", tiny_gpt2_dir)
    shutil.copytree(ROOT / "submissions" / "baseline-lead-1", tmp_path / "baseline-lead-1")
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false"]
                  + [f"tasks.{t}.budget_s=0.1" for t in ("demo_translation", "demo_summarization", "demo_qa",
                                                          "demo_classification", "demo_language_modeling")]
                  + [f"tasks.{t}.data.limit=2" for t in ("demo_summarization", "demo_qa")])
    pids = []
    real = subprocess.Popen

    class Recording(real):
        def __init__(self, args, *rest, **kwargs):
            super().__init__(args, *rest, **kwargs)
            pids.append(self.pid)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    records = evaluate_all(cfg, {t: cfg.tasks[t] for t in ("demo_qa", "demo_summarization")},
                           [tmp_path / "baseline-lead-1", tmp_path / "slowpoke"], echo=lambda m: None)
    by = {(r["submission"], r["task"]): r for r in records}
    assert by[("slowpoke", "demo_qa")]["status"] == "timeout"
    assert "budget of 0.2 s" in by[("slowpoke", "demo_qa")]["reason"]
    assert by[("baseline-lead-1", "demo_summarization")]["status"] == "ok"
    assert pids and not any(Path(f"/proc/{pid}").exists() for pid in pids)  # killed and reaped


@pytest.mark.slow
def test_a_generation_that_outlives_its_budget_times_out(tmp_path, tiny_gpt2_dir):
    builders.slow_entry(tmp_path, "endless", tiny_gpt2_dir)
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false", "tasks.demo_qa.budget_s=12",
                   "tasks.demo_qa.data.limit=1", "tasks.demo_qa.generation.max_new_tokens=60000"])
    [record] = evaluate_all(cfg, {"demo_qa": cfg.tasks.demo_qa}, [tmp_path / "endless"], echo=lambda m: None)
    assert record["status"] == "timeout" and "budget of 12 s" in record["reason"]


def _launch(tmp_path: Path, code: str, budget: float = 30) -> isolation.Launch:
    (tmp_path / "home").mkdir(exist_ok=True)
    return isolation.launch_child([sys.executable, "-c", code], tmp_path, budget, progress=False)


@pytest.mark.parametrize("code, status, words", [
    ("import ctypes; ctypes.string_at(0)", "crashed", "SIGSEGV"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "out-of-memory", "SIGKILL"),
    ("import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_DFL); "
     "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000)); open('big', 'wb').write(b'x' * 5000)",
     "bad-output", "larger than its limit"),
    ("import sys; print('oops', file=sys.stderr); sys.exit(3)", "crashed", "exited with code 3"),
    ("import time; time.sleep(60)", "timeout", "budget of 0.5 s"),
])
def test_a_dying_process_is_typed(tmp_path, code, status, words):
    launch = _launch(tmp_path, code, budget=0.5 if "sleep" in code else 30)
    assert (launch.status, words in launch.reason) == (status, True), launch.reason


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a killed orphan stays a zombie until init reaps it


def test_the_child_process_group_is_killed_with_it(tmp_path):
    # The child starts a grandchild that would outlive it; the group kill takes both.
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "open('grandchild.pid', 'w').write(str(p.pid))")
    launch = _launch(tmp_path, code)
    assert launch.status == "ok"
    pid = int((tmp_path / "home" / "grandchild.pid").read_text())
    for _ in range(100):  # SIGKILL is delivered at once; the state may take a moment to change
        if not _alive(pid):
            break
        time.sleep(0.02)
    assert not _alive(pid)


# ---------------------------------------------------------------- reading the child's outputs strictly


@pytest.fixture
def qa_task():
    return compose(["suite=demo"]).tasks.demo_qa


@pytest.mark.parametrize("lines, words", [
    (['{"id": "a", "prediction": "x"}'], "1 predictions for 2 examples"),
    (['{"id": "a", "prediction": "x"}', '{"id": "a", "prediction": "y"}'], "unknown or repeated id"),
    (['{"id": "a", "prediction": "x"}', '{"id": "zzz", "prediction": "y"}'], "unknown or repeated id"),
    (['{"id": "a", "prediction": 3}', '{"id": "b", "prediction": "y"}'], "expected a text"),
    (['{"id": "a", "prediction": NaN}', '{"id": "b", "prediction": "y"}'], "non-finite number NaN"),
    (['{"id": "a", "prediction": "x", "extra": 1}', '{"id": "b", "prediction": "y"}'], 'not {"id"'),
    (['{"id": "a", "prediction": "' + "x" * 2000 + '"}', '{"id": "b", "prediction": "y"}'], "bytes per example"),
    (["not json", '{"id": "b", "prediction": "y"}'], "not valid JSON"),
])
def test_child_outputs_are_read_strictly(tmp_path, qa_task, lines, words):
    path = tmp_path / "out.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SubmissionError) as info:
        isolation.read_outputs(path, qa_task, ["a", "b"], max_output_bytes=1000)
    assert info.value.status == "bad-output" and words in str(info.value)
    assert str(tmp_path) not in str(info.value)  # reasons are deterministic: no temporary paths


def test_valid_child_outputs_are_read(tmp_path, qa_task):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "b", "prediction": "y"}\n{"id": "a", "prediction": "x"}\n', encoding="utf-8")
    assert isolation.read_outputs(path, qa_task, ["a", "b"], max_output_bytes=1000) == {"a": "x", "b": "y"}


def test_a_child_output_linked_to_an_organizer_file_is_not_read(tmp_path, qa_task):
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"id": "a", "prediction": "x"}\n{"id": "b", "prediction": "y"}\n', encoding="utf-8")
    os.symlink(secret, tmp_path / "out.jsonl")
    with pytest.raises(SubmissionError, match="not a regular file"):
        isolation.read_outputs(tmp_path / "out.jsonl", qa_task, ["a", "b"], max_output_bytes=1000)


def test_a_child_cannot_claim_an_unknown_status(tmp_path):
    (tmp_path / "failure.json").write_text(json.dumps({"status": "ok", "reason": "all fine"}), encoding="utf-8")
    assert isolation.exit_status(1, tmp_path / "failure.json") == ("crashed", "all fine")


# ---------------------------------------------------------------- network


def test_the_child_has_no_network_where_the_os_allows_it(tmp_path):
    prefix, note = isolation.network_isolation()
    if not prefix:
        pytest.skip(f"network isolation on this machine: {note}")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)"
    try:
        assert subprocess.run([sys.executable, "-c", connect]).returncode == 0  # control: reachable without it
        isolated = subprocess.run([*prefix, sys.executable, "-c", connect], capture_output=True)
    finally:
        server.close()
    assert isolated.returncode != 0 and b"Error" in isolated.stderr


def test_without_unshare_the_note_says_network_is_not_enforced(monkeypatch):
    isolation.network_isolation.cache_clear()
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)
    try:
        prefix, note = isolation.network_isolation()
        assert prefix == () and note.startswith("not enforced") and "unshare" in note
    finally:
        isolation.network_isolation.cache_clear()


def test_the_child_environment_drops_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", ENV_SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", ENV_SECRET)
    env = isolation.child_env(tmp_path)
    assert ENV_SECRET not in json.dumps(env)
    assert env["HF_HUB_OFFLINE"] == "1" and env["HOME"] == str(tmp_path)
    assert isolation.redact(f"token={ENV_SECRET}") == "token=[redacted]"


# ---------------------------------------------------------------- the organizer may allow shipped code by name


@pytest.mark.slow
def test_shipped_code_runs_only_where_the_organizer_allows_it(tmp_path, tiny_gpt2_dir, monkeypatch):
    marker = tmp_path / "ran"
    builders.remote_code_entry(tmp_path, "allowed-code", tiny_gpt2_dir, marker)
    overrides = ["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false", "tasks.demo_classification.data.limit=2"]
    cfg = compose(overrides)
    [refused] = evaluate_all(cfg, {"demo_classification": cfg.tasks.demo_classification}, [tmp_path / "allowed-code"],
                             echo=lambda m: None)
    assert refused["status"] == "refused" and not marker.exists()
    cfg = compose(overrides + ["allow_remote_code=[allowed-code]"])
    ran, real = [], isolation.collect

    def look(job_dir, *args, **kwargs):  # in the sandbox the code can only write into its job folder
        ran.append((job_dir / "home" / "shipped-code-ran").exists())
        return real(job_dir, *args, **kwargs)

    monkeypatch.setattr(isolation, "collect", look)
    [record] = evaluate_all(cfg, {"demo_classification": cfg.tasks.demo_classification}, [tmp_path / "allowed-code"],
                            echo=lambda m: None)
    assert record["status"] == "ok", record["reason"]
    assert ran == [True] or marker.exists()  # the control: the code is real, the refusal kept it from running


# ---------------------------------------------------------------- hub ids: checked in the local cache, loaded from it


def _hub_cache(cache: Path, repo: str, model_dir: str, extra: dict) -> Path:
    """The layout huggingface_hub writes: snapshot files are links into blobs/."""
    base = cache / f"models--{repo.replace('/', '--')}"
    snapshot = base / "snapshots" / ("0" * 40)
    (base / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text("0" * 40)
    files = {p.name: p.read_bytes() for p in Path(model_dir).iterdir()} | extra
    for i, (name, data) in enumerate(sorted(files.items())):
        (base / "blobs" / f"blob{i}").write_bytes(data)
        os.symlink(f"../../blobs/blob{i}", snapshot / name)
    return snapshot


@pytest.mark.parametrize("extra, status", [({}, None), ({"pytorch_model.bin": b"\x80\x04payload"}, "refused")])
def test_a_hub_model_is_checked_in_the_local_cache(tmp_path, tiny_gpt2_dir, monkeypatch, extra, status):
    import huggingface_hub.constants

    from harness import safety
    from harness.submission import load_submission

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = _hub_cache(tmp_path / "hub", "org/tiny", tiny_gpt2_dir, extra)
    entry = load_submission(builders.model_entry(tmp_path / "subs", "from-hub", "org/tiny"))
    refusal = safety.verdict(safety.vet(entry, []))
    assert (refusal.status if refusal else None) == status
    assert safety.model_folder(entry) == snapshot  # the child is given exactly the files that were checked


def test_a_hub_model_missing_from_the_cache_is_a_load_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from harness import safety
    from harness.submission import load_submission

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    entry = load_submission(builders.model_entry(tmp_path / "subs", "from-hub", "org/absent"))
    refusal = safety.verdict(safety.vet(entry, []))
    assert refusal.status == "load-error" and "hub cache" in str(refusal)
