"""The result store: one record per (submission, task) cell, with its per-example predictions beside it.

Layout: `<results>/<submission>/<task>.json` (the record), `<task>.predictions.jsonl` and `<task>.stats`
(canonical JSON: the cell's per-example statistics and bootstrap resamples, harness.execution.statistics). Every file is written to a
temporary name and renamed into place, predictions and statistics before the record, so a reader (or a run killed
at any moment) never sees a partial file, and a record exists only once its files do. A record of an ok cell
carries the sha256 of its predictions file (`provenance.predictions_sha256`) and of its statistics file
(`provenance.stats_sha256`), so a record whose files were replaced after it was written (a run killed between the
renames) is never taken for a complete cell. Writers of one
submission's cells hold its lock file (`<submission>/.lock`, filelock), so two runs at once leave matching pairs.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from filelock import FileLock

from harness.data import sha256_file

LOCK_NAME = ".lock"
_UMASK = os.umask(0o022)  # read once (there is no way to read it without setting it), then put back
os.umask(_UMASK)


def write_temp(path: Path, text: str) -> Path:
    """`text` written and synced to a temporary file beside `path` (returned); renaming it onto `path` is the
    caller's commit. Several files staged first and renamed after leave all or none of them changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a board or record is as readable as any new file
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = write_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dumps(data: Any) -> str:
    """Canonical JSON: sorted keys, UTF-8, trailing newline — byte-identical for equal data."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n"


def record_path(results: Path, submission: str, task: str) -> Path:
    return Path(results) / submission / f"{task}.json"


def predictions_path(results: Path, submission: str, task: str) -> Path:
    return Path(results) / submission / f"{task}.predictions.jsonl"


def stats_path(results: Path, submission: str, task: str) -> Path:
    return Path(results) / submission / f"{task}.stats"


def stats_text(stats: Dict[str, Any]) -> str:
    """The statistics file's exact text: compact canonical JSON (floats written so they read back exactly)."""
    return json.dumps(stats, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def predictions_text(rows: Iterable[Dict[str, Any]]) -> str:
    """The predictions file's exact text: one canonical JSON line per example."""
    return "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def submission_lock(results: Path, submission: str) -> Any:
    """The lock a writer of this submission's cells holds. One object per path (`is_singleton`), so a thread that
    holds it may take it again (the runner holds it around a job, the store around each write)."""

    folder = Path(results) / submission
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str((folder / LOCK_NAME).resolve()), is_singleton=True)


def write_cell(results: Path, record: Mapping[str, Any], rows: Optional[Iterable[Dict[str, Any]]],
               stats: Optional[Dict[str, Any]] = None) -> None:
    submission, task = record["submission"], record["task"]
    pred_path = predictions_path(results, submission, task)
    with submission_lock(results, submission):  # a cell's files are written by one run at a time
        for path, text in ((pred_path, None if rows is None else predictions_text(rows)),
                           (stats_path(results, submission, task), None if stats is None else stats_text(stats))):
            if text is not None:
                atomic_write_text(path, text)
            else:
                path.unlink(missing_ok=True)
        atomic_write_text(record_path(results, submission, task), dumps(record))


def complete(results: Path, record: Mapping[str, Any]) -> bool:
    """Whether a stored record is a finished cell: an ok record's predictions file is the one it was scored from
    (records written before the hash was kept are trusted when their file exists)."""
    return predictions_match(results, record) and stats_match(results, record)


def predictions_match(results: Path, record: Mapping[str, Any]) -> bool:
    """The cell's predictions file is the one its record was scored from (always true of a failed cell)."""
    if record.get("status") != "ok":
        return True
    path = predictions_path(results, record["submission"], record["task"])
    expected = record.get("provenance", {}).get("predictions_sha256")
    try:
        if expected is None:
            return path.is_file()
        return sha256_file(path) == expected
    except FileNotFoundError:
        return False


def stats_match(results: Path, record: Mapping[str, Any]) -> bool:
    """The cell's statistics file is the one its record was written with (True where the record names none)."""
    expected = record.get("provenance", {}).get("stats_sha256")
    if expected is None:
        return True
    try:
        return sha256_file(stats_path(results, record["submission"], record["task"])) == expected
    except FileNotFoundError:
        return False


def read_stats(results: Path, record: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The statistics a record was written with, or None: none kept, or the file is not the record's."""
    expected = record.get("provenance", {}).get("stats_sha256")
    if expected is None:
        return None
    try:
        text = stats_path(results, record["submission"], record["task"]).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return json.loads(text) if text_sha256(text) == expected else None


_REQUIRED = {"submission": str, "task": str, "status": str, "keys": dict, "reason": str, "log": str,
             "scores": dict, "counts": dict, "provenance": dict}


def _parse_record(path: Path) -> Optional[Dict[str, Any]]:
    """The record in `path`, or None when the file is damaged (not UTF-8, not JSON, not a record, or a record of
    another cell than its place says). FileNotFoundError when there is none."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both
        return None
    if not isinstance(data, dict) or any(not isinstance(data.get(k), t) for k, t in _REQUIRED.items()):
        return None
    if (data["submission"], data["task"]) != (path.parent.name, path.stem):
        return None
    return data


def read_record(results: Path, submission: str, task: str) -> Optional[Dict[str, Any]]:
    """The cell's record, or None when there is none or it is damaged (the cell is then computed again)."""
    try:
        return _parse_record(record_path(results, submission, task))
    except FileNotFoundError:
        return None


def read_store(results: Path) -> Tuple[List[Dict[str, Any]], List[str]]:
    """(every sound record sorted by (submission, task), the damaged ones as `<submission>/<task>.json`).
    Records are written atomically, so damage is the work of something else: it is reported, never skipped in
    silence (a board without the cell would rank differently)."""
    out, damaged = [], []
    for path in sorted(Path(results).glob("*/*.json")):
        try:
            record = _parse_record(path)
        except FileNotFoundError:
            continue  # removed while listed
        if record is None:
            damaged.append(path.relative_to(results).as_posix())
        else:
            out.append(record)
    return sorted(out, key=lambda r: (r["submission"], r["task"])), damaged


def read_records(results: Path) -> List[Dict[str, Any]]:
    """Every sound record in the store, sorted by (submission, task) (damaged ones: `read_store`)."""
    return read_store(results)[0]


def read_predictions(results: Path, submission: str, task: str) -> List[Dict[str, Any]]:
    with open(predictions_path(results, submission, task), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
