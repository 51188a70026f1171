"""Helpers for the real-data parity tests (tests/test_parity_real_data.py).

The data lives outside the repository, in the sibling folder `shared/data` (override: HARNESS_SHARED_DATA).
Where it is absent the parity tests skip, saying so; where it is present nothing in them may skip.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

import pytest

from harness.data import read_lines  # noqa: F401  the parity tests read text files exactly as the harness does

ENV_VAR = "HARNESS_SHARED_DATA"
PARITY_TASKS = Path(__file__).resolve().parent / "parity_tasks"
SEARCHPATH = f"hydra.searchpath=[file://{PARITY_TASKS}]"


def shared_data_dir() -> Path:
    """`$HARNESS_SHARED_DATA`, else `<repo>/../shared/data`."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def require_shared_data() -> Path:
    """The shared data folder; skips the test (the only reason a parity test may skip) when it is absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real evaluation data not found at {root} (the repo's sibling folder shared/data; "
                    f"set {ENV_VAR} to its location to run the parity tests)")
    return root


def data_file(root: Path, *parts: str) -> Path:
    """A file of the shared data. With the data folder present, a missing file is a failure, never a skip."""
    path = root.joinpath(*parts)
    assert path.is_file(), (f"{path} is missing: the shared data folder is present, so a missing file is a "
                            f"failure, not a skip")
    return path


def hydra_value(value: Any) -> str:
    """A value for a Hydra `key=value` override: quoted, so paths with any characters survive the grammar."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def make_submission(root: Path, name: str, predictions: Mapping[str, Mapping[str, Any]],
                    team: str = "parity-tests") -> Path:
    """A `predictions` submission folder: submission.yaml + predictions/<task>.jsonl (one {"id", "prediction"} a line).

    `predictions` maps task name -> {example id: prediction}.
    """
    folder = root / name
    (folder / "predictions").mkdir(parents=True, exist_ok=True)
    (folder / "submission.yaml").write_text(
        f"team: {json.dumps(team)}\nname: {json.dumps(name)}\nkind: predictions\n", encoding="utf-8")
    for task, by_id in predictions.items():
        lines = [json.dumps({"id": str(i), "prediction": p}, ensure_ascii=False) for i, p in by_id.items()]
        (folder / "predictions" / f"{task}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def overrides(task: str, results: Path, data: Mapping[str, Any] = ()) -> List[str]:
    """Overrides selecting one parity task, pointing its data at absolute paths, and the store at `results`.

    `data` maps a key under `task.data` (`path`, `files.ref_A`, ...) to its value.
    """
    out = [SEARCHPATH, f"task={task}", f"paths.results={hydra_value(results)}", "progress=false", "device=cpu"]
    out += [f"task.data.{key}={hydra_value(value)}" for key, value in dict(data).items()]
    return out


def evaluate_cli(submission: Path, task: str, results: Path, data: Mapping[str, Any] = ()) -> Dict[str, Any]:
    """`harness evaluate submission=... task=...` through `harness.cli.main`; returns the stored record."""
    from harness.cli import main

    code = main(["evaluate", f"submission={hydra_value(submission)}"] + overrides(task, results, data))
    record = read_record(results, submission.name, task)
    assert code == 0, f"harness evaluate exited {code}: {record.get('status')}: {record.get('reason')}"
    return record


def evaluate_many(submissions: Sequence[Path], task: str, results: Path,
                  data: Mapping[str, Any] = ()) -> Dict[str, Dict[str, Any]]:
    """Several submissions on one task with one composed config (`compose` + `evaluate_all`, as `harness run`
    does); returns submission name -> the stored record."""
    from harness.compose import compose
    from harness.execution.executors import evaluate_all

    cfg = compose(overrides(task, results, data))
    returned = evaluate_all(cfg, {cfg.task.name: cfg.task}, list(submissions), echo=lambda message: None)
    assert len(returned) == len(submissions)
    out = {}
    for folder in submissions:
        record = read_record(results, folder.name, task)
        out[folder.name] = record
    return out


def read_record(results: Path, submission: str, task: str) -> Dict[str, Any]:
    """The record JSON the store wrote at `<results>/<submission>/<task>.json`."""
    path = Path(results) / submission / f"{task}.json"
    assert path.is_file(), f"no stored record at {path}"
    return json.loads(path.read_text(encoding="utf-8"))


def assert_ok(record: Mapping[str, Any]) -> None:
    assert record["status"] == "ok", f"{record['submission']} on {record['task']}: {record['status']}: {record['reason']}"


def read_tsv_rows(path: Path) -> Tuple[List[str], List[List[str]]]:
    """Header and rows of a plain tab-separated file (no quoting)."""
    lines = read_lines(path)
    header = lines[0].split("\t")
    return header, [line.split("\t") for line in lines[1:] if line]


def every_nth_missing(ids: Iterable[str], n: int) -> set:
    """Ids dropped from a generated prediction file: every n-th one."""
    return {i for k, i in enumerate(ids) if k % n == n - 1}
