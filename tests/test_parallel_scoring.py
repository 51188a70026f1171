"""Scoring in worker processes: entries that load no model are scored in parallel, and the store they leave is
byte for byte the one a serial run leaves."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.compose import compose, suite_tasks
from harness.execution import executors
from harness.execution.executors import evaluate_all

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ("baseline-copy-source", "baseline-lead-1", "baseline-majority-class", "baseline-unigram-lm",
           "rules-predictions")


def stored(results: Path) -> dict:
    return {p.relative_to(results).as_posix(): p.read_bytes() for p in sorted(results.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def run(results: Path, workers: int, monkeypatch) -> list:
    cfg = compose(["suite=demo", f"paths.results={results}", "progress=false", f"scoring_workers={workers}"])
    messages = []
    records = evaluate_all(cfg, suite_tasks(cfg), [ROOT / "submissions" / name for name in ENTRIES],
                           echo=messages.append)
    return records, messages


def test_parallel_scoring_writes_what_serial_scoring_writes(tmp_path, monkeypatch):
    serial, serial_messages = run(tmp_path / "serial", 1, monkeypatch)
    parallel, messages = run(tmp_path / "parallel", 2, monkeypatch)
    assert any("in 2 processes" in m for m in messages) and not any("processes" in m for m in serial_messages)
    assert parallel == serial and len(serial) == len(ENTRIES) * 5
    files = stored(tmp_path / "serial")
    assert any(name.endswith(".stats") for name in files)
    assert stored(tmp_path / "parallel") == files


def test_scoring_workers_never_exceed_the_entries_and_reject_negatives():
    cfg = compose(["suite=demo", "scoring_workers=8"])
    assert executors.scoring_workers(cfg, 3) == 3 and executors.scoring_workers(cfg, 1) == 1
    cfg = compose(["suite=demo", "scoring_workers=-1"])
    with pytest.raises(Exception, match="scoring_workers: -1 is not valid"):
        executors.scoring_workers(cfg, 5)
