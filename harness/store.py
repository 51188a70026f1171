"""The result store: one record per (submission, task) cell, with its per-example predictions beside it.

Layout: `<results>/<submission>/<task>.json` (the record) and `<task>.predictions.jsonl`. Every file is written to
a temporary name and renamed into place, predictions before the record, so a reader (or a run killed at any
moment) never sees a partial file, and a record exists only once its predictions do.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(data: Any) -> str:
    """Canonical JSON: sorted keys, UTF-8, trailing newline — byte-identical for equal data."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n"


def record_path(results: Path, submission: str, task: str) -> Path:
    return Path(results) / submission / f"{task}.json"


def predictions_path(results: Path, submission: str, task: str) -> Path:
    return Path(results) / submission / f"{task}.predictions.jsonl"


def write_cell(results: Path, record: Dict[str, Any], rows: Optional[Iterable[Dict[str, Any]]]) -> None:
    submission, task = record["submission"], record["task"]
    pred_path = predictions_path(results, submission, task)
    if rows is not None:
        text = "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_text(pred_path, text)
    else:
        pred_path.unlink(missing_ok=True)
    atomic_write_text(record_path(results, submission, task), dumps(record))


def read_record(results: Path, submission: str, task: str) -> Optional[Dict[str, Any]]:
    path = record_path(results, submission, task)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_records(results: Path) -> List[Dict[str, Any]]:
    """Every complete record in the store, sorted by (submission, task)."""
    out = []
    for path in sorted(Path(results).glob("*/*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError:
            continue  # cannot happen with atomic writes; a hand-damaged file is skipped, not fatal
    return sorted(out, key=lambda r: (r["submission"], r["task"]))


def read_predictions(results: Path, submission: str, task: str) -> List[Dict[str, Any]]:
    with open(predictions_path(results, submission, task), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
