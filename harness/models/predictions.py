"""`predictions` entries: read `predictions/<task>.jsonl` strictly, naming the file and line of any problem."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from harness.errors import SubmissionError


def predictions_file(folder: Path, task_name: str) -> Path:
    return folder / "predictions" / f"{task_name}.jsonl"


def read_predictions(path: Path, check: Callable[[Any], Optional[str]]) -> Dict[str, Any]:
    """id -> prediction. Each line is exactly {"id": "<string>", "prediction": ...}; blank lines are skipped."""
    raw = path.read_bytes()
    out: Dict[str, Any] = {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SubmissionError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start} of the line)",
                                  status="bad-output") from e
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as e:
            raise SubmissionError(f"{where}: not a JSON object ({e.msg} at column {e.colno})", status="bad-output") from e
        if not isinstance(item, dict) or set(item) != {"id", "prediction"}:
            keys = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise SubmissionError(f'{where}: expected exactly {{"id": ..., "prediction": ...}}, got {keys}',
                                  status="bad-output")
        example_id = item["id"]
        if not isinstance(example_id, str):
            raise SubmissionError(f"{where}: field 'id' must be a string, got {example_id!r}", status="bad-output")
        if example_id in out:
            raise SubmissionError(f"{where}: duplicate id {example_id!r}", status="bad-output")
        problem = check(item["prediction"])
        if problem:
            raise SubmissionError(f"{where}: field 'prediction' for id {example_id!r}: {problem}", status="bad-output")
        out[example_id] = item["prediction"]
    return out
