"""The two-level content-addressed cache: predictions keyed by the submission's files and the task's inputs, scores
by that plus the metric settings. A changed weight or data line reruns the model; a changed metric setting
rescores the stored predictions with no model loaded; a record whose predictions file was replaced is not
trusted."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import store
from harness.compose import compose
from harness.execution import isolation
from harness.execution.cells import Cell
from harness.execution.evaluator import Evaluator
from harness.submission import submission_sha256

# The slow tier: model runs repeated with one byte changed (~30 s of CPU); the fast tier's reuse checks are
# in tests/test_fast_start.py
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "tasks" / "data" / "demo"
TASKS = ("demo_summarization", "demo_qa")


def hf_entry(folder: Path, name: str, kind: str, model_dir: str) -> Path:
    shutil.copytree(model_dir, folder / name / "model")
    (folder / name / "submission.yaml").write_text(f"team: t-{name}\nname: {name}\nkind: {kind}\nmodel: model\n",
                                                   encoding="utf-8")
    return folder / name


def make_work(root: Path, model_dir: str) -> Path:
    """Submissions (a tiny GPT-2 and a baseline) and a private copy of two tasks' data, under `root`."""
    subs = root / "submissions"
    hf_entry(subs, "gpt2", "hf-causal", model_dir)
    shutil.copytree(ROOT / "submissions" / "baseline-lead-1", subs / "baseline-lead-1")
    (root / "data").mkdir()
    for name in ("summarization_test.jsonl", "qa_test.jsonl"):
        shutil.copy(DEMO_DATA / name, root / "data" / name)
    return root


def config(work: Path, *extra: str):
    overrides = [f"paths.submissions={work / 'submissions'}", f"paths.results={work / 'store'}",
                 f"paths.leaderboards={work / 'boards'}", "progress=false", "batch_size=8", "suite=demo",
                 f"tasks.demo_summarization.data.path={work / 'data' / 'summarization_test.jsonl'}",
                 f"tasks.demo_qa.data.path={work / 'data' / 'qa_test.jsonl'}"]
    overrides += [f"tasks.{t}.data.limit=4" for t in TASKS] + [f"tasks.{t}.generation.max_new_tokens=4" for t in TASKS]
    return compose(overrides + list(extra))


def evaluate(work: Path, entry: str, *extra: str) -> tuple:
    """(records by task, the evaluator) of one entry on the two tasks."""
    cfg = config(work, *extra)
    evaluator = Evaluator(cfg, {t: cfg.tasks[t] for t in TASKS}, echo=lambda message: None)
    records = evaluator.evaluate(work / "submissions" / entry)
    return {r["task"]: r for r in records}, evaluator


def stored_bytes(work: Path, entry: str) -> dict:
    return {p.name: p.read_bytes() for p in sorted((work / "store" / entry).glob("*.json*"))}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_gpt2_dir):
    """A store with the tiny GPT-2 and the baseline evaluated once (one model job)."""
    work = make_work(tmp_path_factory.mktemp("cache"), tiny_gpt2_dir)
    records, evaluator = evaluate(work, "gpt2")
    assert evaluator.models_loaded == 1 and all(r["status"] == "ok" for r in records.values())
    evaluate(work, "baseline-lead-1")
    return work


@pytest.fixture
def work(first_run, tmp_path):
    """A private copy of the first run's folder, so each test starts from the same store."""
    copy = tmp_path / "work"
    shutil.copytree(first_run, copy)
    return copy


@pytest.fixture
def launches(monkeypatch):
    """Every model process started (the real one still runs)."""
    started = []
    real = isolation.launch_child

    def spy(*args, **kwargs):
        started.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(isolation, "launch_child", spy)
    return started


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the lowest mantissa bits of the last weight: still finite, no longer the same model
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- nothing changed


def test_unchanged_cells_are_reused_without_writing(work, launches):
    before = stored_bytes(work, "gpt2")
    records, evaluator = evaluate(work, "gpt2")
    assert evaluator.models_loaded == 0 and launches == []
    assert stored_bytes(work, "gpt2") == before


def test_batch_size_is_not_part_of_the_prediction_key(work, launches):
    """Results do not depend on the batch size, so changing it reruns nothing."""
    _, evaluator = evaluate(work, "gpt2", "batch_size=1")
    assert evaluator.models_loaded == 0 and launches == []


# ---------------------------------------------------------------- a metric setting: rescored, no model


def test_metric_setting_change_rescores_from_stored_predictions_without_a_model(work, launches):
    predictions = store.predictions_path(work / "store", "gpt2", "demo_summarization")
    before = predictions.read_bytes()
    old = store.read_record(work / "store", "gpt2", "demo_summarization")
    records, evaluator = evaluate(work, "gpt2", "tasks.demo_summarization.metric_options.rouge.use_stemmer=false")
    assert evaluator.models_loaded == 0 and launches == [], "a metric change must not load the model"
    new = records["demo_summarization"]
    assert new["keys"]["predictions"] == old["keys"]["predictions"]
    assert new["keys"]["scores"] != old["keys"]["scores"]
    assert "stem" in old["signatures"]["rouge"] and old["signatures"]["rouge"] != new["signatures"]["rouge"]
    assert predictions.read_bytes() == before
    assert store.read_record(work / "store", "gpt2", "demo_summarization") == new
    # the predictions are the ones made back then, and the record still says what that model process ran under
    assert new["provenance"]["isolation"] == old["provenance"]["isolation"]
    assert new["provenance"]["prediction"] == old["provenance"]["prediction"]
    assert records["demo_qa"] == store.read_record(work / "store", "gpt2", "demo_qa")  # untouched task: reused


# ---------------------------------------------------------------- weights and data: the model reruns


def test_one_weight_byte_changes_the_prediction_key(work):
    cfg = config(work)
    folder = work / "submissions" / "gpt2"
    before = Cell(cfg.tasks["demo_qa"], "gpt2", submission_sha256(folder), cfg)
    flip_last_byte(folder / "model" / "model.safetensors")
    after = Cell(cfg.tasks["demo_qa"], "gpt2", submission_sha256(folder), cfg)
    assert before.prediction_key != after.prediction_key and before.score_key != after.score_key
    flip_last_byte(folder / "model" / "model.safetensors")
    assert Cell(cfg.tasks["demo_qa"], "gpt2", submission_sha256(folder), cfg).prediction_key == before.prediction_key


def test_one_data_line_reruns_only_that_task(work):
    """A baseline shows it without a model: only the task whose data changed is predicted again."""
    before = stored_bytes(work, "baseline-lead-1")["demo_summarization.json"]
    data = work / "data" / "summarization_test.jsonl"
    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = lines[0].replace("Friday", "Saturday", 1)
    assert lines[0] != data.read_text(encoding="utf-8").splitlines(keepends=True)[0]
    data.write_text("".join(lines), encoding="utf-8")
    predicted = []

    class Spy(Evaluator):
        def _predict(self, submission, sub_sha, cells):
            predicted.extend(cell.task.name for cell in cells)
            return super()._predict(submission, sub_sha, cells)

    cfg = config(work)
    Spy(cfg, {t: cfg.tasks[t] for t in TASKS}, echo=lambda m: None).evaluate(work / "submissions" / "baseline-lead-1")
    assert predicted == ["demo_summarization"]
    assert stored_bytes(work, "baseline-lead-1")["demo_summarization.json"] != before
    rows = store.read_predictions(work / "store", "baseline-lead-1", "demo_summarization")
    assert "Saturday" in rows[0]["prediction"]  # lead-1 copies the changed first sentence


@pytest.mark.slow
def test_one_weight_byte_reruns_the_model(work, launches):
    flip_last_byte(work / "submissions" / "gpt2" / "model" / "model.safetensors")
    old = store.read_record(work / "store", "gpt2", "demo_qa")
    records, evaluator = evaluate(work, "gpt2")
    assert evaluator.models_loaded == 1 and len(launches) == 1
    assert all(r["status"] == "ok" for r in records.values())
    assert records["demo_qa"]["keys"]["predictions"] != old["keys"]["predictions"]
    assert records["demo_qa"]["provenance"]["submission_sha256"] != old["provenance"]["submission_sha256"]


@pytest.mark.slow
def test_one_data_line_reruns_the_model_on_that_task_only(work, launches):
    data = work / "data" / "qa_test.jsonl"
    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(lines[1])
    row["question"] = row["question"].rstrip("?") + " exactly?"
    lines[1] = json.dumps(row) + "\n"
    data.write_text("".join(lines), encoding="utf-8")
    summarization = stored_bytes(work, "gpt2")["demo_summarization.json"]
    records, evaluator = evaluate(work, "gpt2")
    assert evaluator.models_loaded == 1 and len(launches) == 1
    assert evaluator.jobs["gpt2"].predictions.keys() == {"demo_qa"}
    assert stored_bytes(work, "gpt2")["demo_summarization.json"] == summarization


# ---------------------------------------------------------------- a record and its predictions belong together


def test_a_record_whose_predictions_were_replaced_is_not_trusted(work):
    """A run killed between writing a cell's new predictions and its record leaves the old record beside new
    predictions: that cell is predicted again, not reused."""
    path = store.predictions_path(work / "store", "baseline-lead-1", "demo_summarization")
    rows = store.read_predictions(work / "store", "baseline-lead-1", "demo_summarization")
    rows[0]["prediction"] = "something else entirely"
    path.write_text(store.predictions_text(rows), encoding="utf-8")
    record = store.read_record(work / "store", "baseline-lead-1", "demo_summarization")
    assert not store.complete(work / "store", record)
    records, _ = evaluate(work, "baseline-lead-1")
    assert store.complete(work / "store", records["demo_summarization"])
    assert store.read_predictions(work / "store", "baseline-lead-1", "demo_summarization")[0]["prediction"] != \
        "something else entirely"


def test_a_record_whose_statistics_were_replaced_is_not_trusted(work, launches):
    """A cell's statistics file is checked like its predictions: one changed byte and the cell is scored again from
    its stored predictions (no model), which writes the statistics back as they were."""
    path = store.stats_path(work / "store", "gpt2", "demo_summarization")
    original = path.read_bytes()
    stats = json.loads(original)
    stats["primary"]["resampled"][0] += 1.0
    path.write_text(store.stats_text(stats), encoding="utf-8")
    record = store.read_record(work / "store", "gpt2", "demo_summarization")
    assert not store.complete(work / "store", record) and store.read_stats(work / "store", record) is None
    records, _ = evaluate(work, "gpt2")
    assert launches == [] and store.complete(work / "store", records["demo_summarization"])
    assert path.read_bytes() == original


def test_a_record_stored_before_statistics_were_kept_gains_them_without_a_model(work, launches):
    path = store.stats_path(work / "store", "gpt2", "demo_qa")
    original = path.read_bytes()
    record_path = store.record_path(work / "store", "gpt2", "demo_qa")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    del record["provenance"]["stats_sha256"]
    record_path.write_text(store.dumps(record), encoding="utf-8")
    path.unlink()
    records, _ = evaluate(work, "gpt2")
    assert launches == [] and path.read_bytes() == original
    assert records["demo_qa"]["provenance"]["stats_sha256"] == store.text_sha256(original.decode("utf-8"))
