"""`predictions` entries: read `predictions/<task>.jsonl` strictly, naming the file and line of any problem."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from harness.errors import SubmissionError
from harness.status import OUTPUT_BYTES


def predictions_file(folder: Path, task_name: str) -> Path:
    return folder / "predictions" / f"{task_name}.jsonl"


def not_utf8(item: Any) -> Optional[str]:
    """Why a parsed JSON value cannot be written back as UTF-8 (a lone surrogate such as "\\ud800" parses, then
    fails every hash and write), or None."""
    try:
        json.dumps(item, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        return f"holds {e.object[e.start:e.end]!r}, a lone surrogate, which is not UTF-8 text"
    return None


def file_limit(n_examples: int) -> int:
    """The size a predictions file may have: every example's line at its cap, twice over (blank lines, ids the
    task does not have)."""
    return 2 * max(1, n_examples) * (OUTPUT_BYTES + 1)


def read_predictions(path: Path, check: Callable[[Any], Optional[str]],
                     max_file_bytes: Optional[int] = None) -> Dict[str, Any]:
    """id -> prediction. Each line is exactly {"id": "<string>", "prediction": ...}; blank lines are skipped. No
    line may be longer than a model's output may be (OUTPUT_BYTES), nor the file larger than `max_file_bytes`:
    both are checked before the bytes are parsed."""
    size = path.stat().st_size
    if max_file_bytes is not None and size > max_file_bytes:
        raise SubmissionError(f"{path}: {size} bytes; the limit for this task's predictions is {max_file_bytes} "
                              f"bytes ({OUTPUT_BYTES} bytes per example)", status="bad-output")
    raw = path.read_bytes()
    out: Dict[str, Any] = {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}:{number}"
        if len(line) > OUTPUT_BYTES:
            raise SubmissionError(f"{where}: {len(line)} bytes; the limit is {OUTPUT_BYTES} bytes per example",
                                  status="bad-output")
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
        problem = not_utf8(item)
        if problem:
            raise SubmissionError(f"{where}: not valid UTF-8 text: the line {problem}", status="bad-output")
        if not isinstance(item, dict) or set(item) != {"id", "prediction"}:
            keys = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise SubmissionError(f'{where}: expected exactly {{"id": ..., "prediction": ...}}, got {keys}',
                                  status="bad-output")
        example_id = item["id"]
        if not isinstance(example_id, str):
            raise SubmissionError(f"{where}: field 'id' must be a string, got {str(example_id)[:80]!r}",
                                  status="bad-output")
        if example_id in out:
            raise SubmissionError(f"{where}: duplicate id {example_id[:80]!r}", status="bad-output")
        problem = check(item["prediction"])
        if problem:
            raise SubmissionError(f"{where}: field 'prediction' for id {example_id[:80]!r}: {problem[:300]}",
                                  status="bad-output")
        out[example_id] = item["prediction"]
    return out
