"""Resume and atomicity: a run killed at any moment (kill -9) leaves no record that looks complete without being
so, and no model process behind; the next run does only what is missing and writes the board an uninterrupted
run writes. Two runs at once leave valid files and run each model once."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from tiny_models import write_entries

from harness import store
from harness.cli import main

TASKS = ("demo_translation", "demo_summarization", "demo_qa", "demo_classification", "demo_language_modeling")
BOARD_FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.json")


def entries(subs: Path, models: dict) -> Path:
    """A baseline, a predictions entry and the given tiny models ({name: (kind, folder)})."""
    return write_entries(subs, models, shipped=("baseline-lead-1", "rules-predictions"))


def run_args(subs: Path, out: Path) -> list:
    args = ["suite=demo", f"paths.submissions={subs}", f"paths.results={out / 'store'}",
            f"paths.leaderboards={out / 'boards'}", "progress=false", "batch_size=4"]
    args += [f"tasks.{t}.data.limit=6" for t in TASKS]
    return args + [f"tasks.{t}.generation.max_new_tokens=4" for t in ("demo_translation", "demo_summarization",
                                                                      "demo_qa")]


def start(args: list, tmp: Path) -> subprocess.Popen:
    """`harness run` in its own process; its model jobs' folders go under `tmp` (so they can be found)."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple:
    out, err = process.communicate(timeout=600)
    return process.returncode, err


def board(out: Path) -> dict:
    return {name: (out / "boards" / "demo" / name).read_text(encoding="utf-8") for name in BOARD_FILES}


def check_store(results: Path) -> dict:
    """Every record parses and every ok record's predictions are the ones it was scored from. Returns the complete
    cells' files, {path: bytes}."""
    cells = {}
    for path in sorted(results.glob("*/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))  # a partial file would not parse
        assert store.complete(results, record), f"{path}: its predictions are not the ones it was scored from"
        cells[path] = path.read_bytes()
        predictions = store.predictions_path(results, record["submission"], record["task"])
        if predictions.exists():
            cells[predictions] = predictions.read_bytes()
    return cells


def model_processes(tmp: Path) -> list:
    """Model processes whose job folder is under `tmp` (this test's), still alive."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if "harness.execution.worker" in command and str(tmp) in command:
            found.append(int(proc.name))
    return found


def wait_gone(tmp: Path, seconds: float = 10.0) -> list:
    deadline = time.monotonic() + seconds
    while (left := model_processes(tmp)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


# ---------------------------------------------------------------- fast: an interrupted write, in process


def test_interrupted_cell_write_is_redone_and_nothing_else(tmp_path, monkeypatch):
    """A run that dies between a cell's predictions and its record: the next run redoes that cell only."""
    subs = entries(tmp_path / "subs", {})
    args = run_args(subs, tmp_path)
    real_write = store.atomic_write_text
    target = store.record_path(tmp_path / "store", "baseline-lead-1", "demo_summarization")

    def dies_before_the_record(path, text):
        if Path(path) == target:
            raise KeyboardInterrupt  # as if killed between the two renames
        real_write(path, text)

    monkeypatch.setattr(store, "atomic_write_text", dies_before_the_record)
    assert main(["run"] + args) == 130
    monkeypatch.setattr(store, "atomic_write_text", real_write)
    assert not target.exists() and store.predictions_path(tmp_path / "store", "baseline-lead-1",
                                                          "demo_summarization").exists()
    done = check_store(tmp_path / "store")
    assert main(["run"] + args) == 0
    after = check_store(tmp_path / "store")
    assert target in after
    assert {p: b for p, b in after.items() if p in done} == done, "cells finished before are not redone"
    reference = tmp_path / "reference"
    assert main(["run"] + run_args(subs, reference)) == 0
    assert board(tmp_path) == board(reference)


@pytest.mark.slow  # two whole runs racing, ~20 s
def test_two_runs_at_once_leave_valid_files_and_the_same_board(tmp_path):
    subs = entries(tmp_path / "subs", {})
    shared = run_args(subs, tmp_path / "shared")
    runs = [start(shared, tmp_path / f"tmp{i}") for i in range(2)]
    results = [finish(run) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    check_store(tmp_path / "shared" / "store")
    assert main(["run"] + run_args(subs, tmp_path / "alone")) == 0
    assert board(tmp_path / "shared") == board(tmp_path / "alone")
    pd.read_csv(tmp_path / "shared" / "boards" / "demo" / "leaderboard.csv")
    assert not list((tmp_path / "shared").rglob("*.tmp")), "no temporary file is left behind"


# ---------------------------------------------------------------- slow: real processes killed with SIGKILL


@pytest.fixture(scope="module")
def model_entries(tmp_path_factory, tiny_gpt2_dir, tiny_t5_dir):
    work = tmp_path_factory.mktemp("resume")
    subs = entries(work / "subs", {"gpt2": ("hf-causal", tiny_gpt2_dir), "t5": ("hf-seq2seq", tiny_t5_dir)})
    reference = work / "reference"
    started = time.monotonic()
    code, err = finish(start(run_args(subs, reference), work / "tmp-reference"))
    assert code == 0, err
    return work, subs, reference, time.monotonic() - started


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_board(model_entries, tmp_path):
    work, subs, reference, full_seconds = model_entries
    out, tmp = tmp_path / "killed", tmp_path / "tmp"
    args = run_args(subs, out)
    rng = random.Random(4)
    for round_ in range(4):
        run = start(args, tmp)
        time.sleep(rng.uniform(0.3, full_seconds * 0.8))
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert wait_gone(tmp) == [], f"round {round_}: a model process outlived the killed run"
        check_store(out / "store")
    done = check_store(out / "store")
    code, err = finish(start(args, tmp))
    assert code == 0, err
    after = check_store(out / "store")
    assert {p: b for p, b in after.items() if p in done} == done, "cells finished before are not redone"
    for line in err.splitlines():  # models run only on the cells still missing
        if line.startswith("running "):
            name, tasks = line[len("running "):].split(" on ")
            finished = {p.stem for p in done if p.parent.name == name and p.suffix == ".json"}
            assert not finished & set(tasks.split(", ")), line
    assert board(out) == board(reference)


@pytest.mark.slow
def test_two_runs_at_once_run_each_model_once(model_entries, tmp_path):
    work, subs, reference, _ = model_entries
    args = run_args(subs, tmp_path / "shared")
    runs = [start(args, tmp_path / f"tmp{i}") for i in range(2)]
    results = [finish(run) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    for name in ("gpt2", "t5"):
        assert sum(err.count(f"running {name} on") for _, err in results) == 1, "the second run waited and reused"
    check_store(tmp_path / "shared" / "store")
    assert board(tmp_path / "shared") == board(reference)
