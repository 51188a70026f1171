"""A board never mixes cells computed from another task config. Outside contests `run` re-runs a cell whose task
change reaches the model's inputs, re-scores one whose change is in the metrics, and ignores `description` and
`budget_s`; `leaderboard` (which runs no model) shows such cells as `stale`. In a contest the lock holds every
composed task and suite config and each data file's sha256, and refuses a later change naming the task and keys.
Model jobs are scripted (no model loads)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_contest import SEARCHPATH, cli, predictions_entry, qa_predictions
from tiny_models import write_entries

from harness import status
from harness.cli import main
from harness.compose import compose
from harness.execution.executors import evaluate_all

TASK = "demo_translation"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner(tmp_path, tiny_gpt2_dir, scripted_jobs):
    plan, calls = scripted_jobs
    plan += ["ok"] * 5
    folder = write_entries(tmp_path / "subs", {"gpt": ("hf-causal", tiny_gpt2_dir)}, shipped=()) / "gpt"

    def run(*overrides):
        cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false",
                       f"tasks.{TASK}.data.limit=3", *overrides])
        [record] = evaluate_all(cfg, {TASK: cfg.tasks[TASK]}, [folder], echo=lambda m: None)
        return record

    return run, calls


@pytest.fixture(scope="module")
def demo_examples():
    """The demo tasks' examples by task name."""
    from tasks.examples import load_examples

    return {name: load_examples(task) for name, task in compose(["suite=demo"]).tasks.items()}


def test_run_reruns_rescores_or_ignores_by_what_changed(runner):
    run, calls = runner
    first = run()
    assert len(calls) == 1
    same = run(f"tasks.{TASK}.description=another", f"tasks.{TASK}.budget_s=60")
    assert same["keys"] == first["keys"] and len(calls) == 1  # neither reaches the model nor the metrics
    rescored = run(f"tasks.{TASK}.primary_metric=chrf")
    assert len(calls) == 1 and rescored["keys"]["predictions"] == first["keys"]["predictions"]
    assert rescored["keys"]["scores"] != first["keys"]["scores"] and rescored["primary_metric"] == "chrf"
    rerun = run(f"tasks.{TASK}.prompt='German: {{{{ source }}}} English:'")
    assert len(calls) == 2 and rerun["keys"]["predictions"] != first["keys"]["predictions"]
    run(f"tasks.{TASK}.prompt='German: {{{{ source }}}} English:'", f"tasks.{TASK}.generation.max_new_tokens=5")
    assert len(calls) == 3


def test_leaderboard_shows_cells_of_another_task_config_as_stale(tmp_path, capsys):
    subs, out = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(ROOT / "submissions" / "rules-predictions", subs / "rules-predictions")
    args = ["suite=demo", f"paths.submissions={subs}", f"paths.results={out / 'store'}",
            f"paths.leaderboards={out / 'boards'}", "progress=false"]
    assert main(["run", *args]) == 0

    def cells(*extra):
        assert main(["leaderboard", *args, *extra]) == 0
        board = json.loads((out / "boards" / "demo" / "leaderboard.json").read_text(encoding="utf-8"))
        return board["rows"][0]["cells"]

    assert cells("tasks.demo_summarization.description=x")["demo_summarization"]["status"] == "ok"
    changed = cells("tasks.demo_summarization.generation.max_new_tokens=7", "tasks.demo_qa.metrics=[squad]",
                    "tasks.demo_translation.primary_metric=chrf")
    assert changed["demo_summarization"]["status"] == status.STALE
    assert "generation" in changed["demo_summarization"]["reason"]
    assert changed["demo_translation"]["status"] == status.STALE  # a metric change: `run` rescores it
    assert changed["demo_qa"]["status"] == "ok"  # the same metrics as before
    md = (out / "boards" / "demo" / "leaderboard.md").read_text(encoding="utf-8")
    assert "stale" in md


def test_the_contest_lock_covers_tasks_suites_and_data(tmp_path, capsys, monkeypatch, demo_examples):
    data = tmp_path / "qa_test.jsonl"
    shutil.copy(ROOT / "tasks" / "data" / "demo" / "qa_test.jsonl", data)
    subs = tmp_path / "submissions"
    subs.mkdir()
    common = [SEARCHPATH, "contest=test_contest", f"paths.submissions={subs}",
              f"paths.leaderboards={tmp_path / 'boards'}", f"paths.results={tmp_path / 'store'}",
              f"paths.contests={tmp_path / 'contests'}", "progress=false", "suite=contest_warmup",
              f"tasks.demo_qa.data.path={data}"]
    outputs: list = []
    answers = {"demo_qa": qa_predictions(demo_examples["demo_qa"], 2)}
    entry = predictions_entry(tmp_path / "in", "a-1", "team-a", answers)
    code, out = cli(capsys, monkeypatch, "2031-01-02T10:00:00Z", ["submit", str(entry), *common], outputs)
    assert code == 0, out
    lock = json.loads((tmp_path / "contests" / "test_contest" / "lock.json").read_text(encoding="utf-8"))
    assert "demo_qa" in lock["suites"]["contest_warmup"]["tasks"]
    code, out = cli(capsys, monkeypatch, "2031-01-02T11:00:00Z",
                    ["leaderboard", *common, "tasks.demo_qa.prompt='Q: {{ question }}'"],
                    outputs)
    assert code == 2 and "task demo_qa" in out and "prompt" in out and "locked" in out
    with data.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "extra", "context": "a b", "question": "a?", "answers": ["a"]}) + "\n")
    code, out = cli(capsys, monkeypatch, "2031-01-02T12:00:00Z", ["leaderboard", *common],
                    outputs)
    assert code == 2 and "task demo_qa" in out and "data" in out and "sha256" in out
    # a lock written before tasks were locked is upgraded on the next command, saying so
    shutil.copy(ROOT / "tasks" / "data" / "demo" / "qa_test.jsonl", data)
    path = tmp_path / "contests" / "test_contest" / "lock.json"
    path.write_text(json.dumps({k: v for k, v in lock.items() if k != "suites"}), encoding="utf-8")
    code, out = cli(capsys, monkeypatch, "2031-01-02T13:00:00Z", ["run", *common], outputs)
    assert code == 0, out
    assert "upgraded" in out and "contest_warmup" in out
    assert json.loads(path.read_text(encoding="utf-8"))["suites"] == lock["suites"]
