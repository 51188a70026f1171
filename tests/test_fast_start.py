"""Fast start: a second `harness run` with nothing changed, and a board rebuild, load no model and import neither
torch, transformers nor datasets; the board is not rebuilt when its inputs did not change, and is when they did."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.data import _load_uniform_jsonl

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HEAVY = ("torch", "transformers", "datasets")
# the metric libraries and the harness modules that wrap them: a board over stored cells needs none of them
METRIC_LIBRARIES = ("sacrebleu", "rouge_score", "nltk", "harness.metrics.sacrebleu_metrics", "harness.metrics.rouge",
                    "harness.metrics.squad", "harness.metrics.classification", "harness.metrics.perplexity")
TASKS = ("demo_translation", "demo_summarization", "demo_qa", "demo_classification", "demo_language_modeling")
BOARD_FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "index.html")

# Runs the CLI in a fresh interpreter and reports which heavy modules it imported.
PROBE = """
import json, sys
from harness.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": sorted(m for m in %r if m in sys.modules)}), file=sys.stderr)
""" % (HEAVY + METRIC_LIBRARIES,)


def cli_in_fresh_process(args, cwd: Path) -> tuple:
    """(exit code, heavy modules imported, stderr, seconds) of `harness ARGS` in a new interpreter."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"), timeout=300)
    seconds = time.perf_counter() - started
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["heavy"], done.stderr, seconds


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory, tiny_gpt2_dir):
    """A demo run with a model entry, a baseline and a predictions entry, done once."""
    work = tmp_path_factory.mktemp("fast_start")
    subs = work / "submissions"
    shutil.copytree(tiny_gpt2_dir, subs / "gpt2" / "model")
    (subs / "gpt2" / "submission.yaml").write_text("team: t\nname: gpt2\nkind: hf-causal\nmodel: model\n",
                                                   encoding="utf-8")
    for name in ("baseline-lead-1", "rules-predictions"):
        shutil.copytree(ROOT / "submissions" / name, subs / name)
    args = ["suite=demo", f"paths.submissions={subs}", f"paths.results={work / 'store'}",
            f"paths.leaderboards={work / 'boards'}", "progress=false", "batch_size=8"]
    args += [f"tasks.{t}.data.limit=6" for t in TASKS]
    args += [f"tasks.{t}.generation.max_new_tokens=4" for t in TASKS if t not in ("demo_classification",
                                                                                  "demo_language_modeling")]
    assert main(["run"] + args) == 0
    return work, args


def board_state(work: Path) -> dict:
    folder = work / "boards" / "demo"
    return {name: ((folder / name).read_bytes(), (folder / name).stat().st_mtime_ns) for name in BOARD_FILES}


def test_noop_run_imports_no_heavy_library_and_loads_no_model(demo_store):
    work, args = demo_store
    before = board_state(work)
    code, heavy, stderr, seconds = cli_in_fresh_process(["run"] + args, work)
    assert code == 0, stderr
    # `run` builds each task's metrics once before anything runs (the data guard, harness.guard): the metric
    # libraries load, never torch, transformers or datasets
    assert [m for m in heavy if m in HEAVY] == [], f"a no-op run imported {heavy}"
    assert "running" not in stderr, "a no-op run started a model"
    assert board_state(work) == before, "an unchanged board is not rewritten"
    print(f"no-op `harness run suite=demo` in a fresh interpreter: {seconds:.2f} s")


def test_noop_board_rebuild_imports_no_heavy_library(demo_store):
    work, args = demo_store
    board_args = [a for a in args if a.startswith(("suite", "paths", "tasks"))]
    code, heavy, stderr, _ = cli_in_fresh_process(["leaderboard"] + board_args, work)
    assert (code, heavy) == (0, []), stderr


def test_changed_board_setting_rebuilds_without_a_model_library(demo_store, tmp_path):
    """A board rebuilt for real (another ranking rule) reads every cell's stored statistics: no torch,
    transformers or datasets, and no metric library either."""
    work, args = demo_store
    boards = tmp_path / "boards"
    shutil.copytree(work / "boards", boards)
    board_args = [a for a in args if a.startswith(("suite", "paths.results", "tasks"))]
    board_args += [f"paths.leaderboards={boards}", "ranking=mean_rank"]
    code, heavy, stderr, _ = cli_in_fresh_process(["leaderboard"] + board_args, work)
    assert (code, heavy) == (0, []), stderr  # no model library, and no metric library: nothing is scored again
    markdown = (boards / "demo" / "leaderboard.md").read_text(encoding="utf-8")
    assert "Mean rank" in markdown
    assert markdown != (work / "boards" / "demo" / "leaderboard.md").read_text(encoding="utf-8")


def test_board_is_rebuilt_when_a_record_or_a_board_file_changes(demo_store, tmp_path):
    work, args = demo_store
    copy = tmp_path / "work"
    shutil.copytree(work, copy)
    args = [a.replace(str(work), str(copy)) for a in args]
    board_md = copy / "boards" / "demo" / "leaderboard.md"
    original = board_md.read_text(encoding="utf-8")
    board_md.write_text("edited by hand\n", encoding="utf-8")
    assert main(["leaderboard"] + args) == 0  # the same entries (paths.submissions) as the run
    assert board_md.read_text(encoding="utf-8") == original, "a hand-edited board file is rewritten"
    for record_path in (copy / "store" / "baseline-lead-1").glob("*.json"):
        record = json.loads(record_path.read_text(encoding="utf-8"))
        record["team"] = "renamed-team"
        record_path.write_text(json.dumps(record), encoding="utf-8")
    assert main(["leaderboard"] + args) == 0
    assert "renamed-team" in (copy / "boards" / "demo" / "leaderboard.json").read_text(encoding="utf-8")


# ---------------------------------------------------------------- JSON Lines without `datasets`


def _jsonl_files():
    files = sorted((ROOT / "tasks" / "data").rglob("*.jsonl"))
    if SHARED_DATA.is_dir():
        files += sorted(SHARED_DATA.rglob("*.jsonl"))
    return files


def _with_datasets(path: Path) -> list:
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset("json", data_files=str(path), split="train").to_list()


def _canonical(rows: list) -> str:
    return json.dumps(rows, sort_keys=True)  # tells 1 from 1.0, unlike ==


@pytest.mark.parametrize("path", _jsonl_files(), ids=lambda p: p.name)
def test_plain_jsonl_rows_equal_what_datasets_reads(path):
    plain = _load_uniform_jsonl(path)
    assert plain is not None, f"{path.name}: the shipped data should take the fast path"
    assert _canonical(plain) == _canonical(_with_datasets(path))


@pytest.mark.parametrize("lines", [
    ['{"id": 1, "x": 1}', '{"id": 2, "x": 2.5}'],  # Arrow makes x a float column: 1 -> 1.0
    ['{"id": 1, "x": "a"}', '{"id": 2}'],  # Arrow fills the missing key with null
    ['{"id": 1, "x": [1, 2.5]}'],  # a mixed list
    ['{"id": 1, "x": {"a": 1}}', '{"id": 2, "x": {"b": 1}}'],  # struct fields unified
    ['{"id": 1}', '', '{"id": 2}'],  # an empty line
])
def test_jsonl_that_arrow_would_convert_goes_through_datasets(tmp_path, lines):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _load_uniform_jsonl(path) is None


def test_stored_statistics_give_the_board_that_scoring_again_gives(demo_store, tmp_path):
    """The board from the stored resamples equals the board built by scoring every cell again from its predictions
    (the path a store without statistics files takes), file for file."""
    work, args = demo_store
    store = tmp_path / "store"
    shutil.copytree(work / "store", store)
    board_args = [a for a in args if a.startswith(("suite", "tasks"))] + [f"paths.results={store}"]
    assert main(["leaderboard"] + board_args + [f"paths.leaderboards={tmp_path / 'stored'}"]) == 0
    removed = [p for p in store.glob("*/*.stats") if p.unlink() is None]
    assert len(removed) >= 10
    assert main(["leaderboard"] + board_args + [f"paths.leaderboards={tmp_path / 'rescored'}"]) == 0
    for name in BOARD_FILES:
        stored = (tmp_path / "stored" / "demo" / name).read_text(encoding="utf-8")
        assert stored == (tmp_path / "rescored" / "demo" / name).read_text(encoding="utf-8"), name
    assert "95%" in (tmp_path / "stored" / "demo" / "leaderboard.md").read_text(encoding="utf-8")


def test_noop_check_reads_no_unchanged_stored_file_and_notices_a_changed_one(demo_store, tmp_path, monkeypatch):
    """The content index spares re-reading stored files whose size, mtime and inode are unchanged; a file edited in
    place to the same size still changes the key (its mtime moved)."""
    from harness.board import freshness
    from harness.compose import compose, suite_tasks

    work, args = demo_store
    store = tmp_path / "store"
    shutil.copytree(work / "store", store)
    cfg = compose([a for a in args if not a.startswith("paths.results")] + [f"paths.results={store}"])
    tasks, folder = suite_tasks(cfg), tmp_path / "board"
    folder.mkdir()
    first = freshness.board_key(cfg, tasks, folder)
    freshness.keep_index(folder)  # what a written (or fresh) board does
    read = []
    real = freshness._sha_bytes
    monkeypatch.setattr(freshness, "_sha_bytes", lambda path: read.append(path) or real(path))
    assert freshness.board_key(cfg, tasks, folder) == first and not [p for p in read if p.is_relative_to(store)]
    path = store / "rules-predictions" / "demo_translation.predictions.jsonl"
    text = path.read_bytes()
    time.sleep(0.01)
    with open(path, "r+b") as f:  # same inode, same size, one byte changed
        f.write(bytes([text[0] ^ 1]))
    assert freshness.board_key(cfg, tasks, folder) != first and path in read
