"""Whether a suite's board is already what its inputs would produce, so a no-op run rebuilds nothing.

Rebuilding a board rescores every stored cell from its predictions and the task's references to bootstrap its
intervals: that loads the data (through `datasets`) and every metric library, seconds of work for files that come
out byte-identical when nothing changed. So after a board is written, `<board>/.inputs.json` keeps the sha256 of
everything it was built from and of every file written:

* the bytes of each stored record of the suite's tasks and of its predictions and statistics files,
* the sha256 of each task's local data files (the references),
* the composed config, except the settings that only steer model runs (batch size, device, progress, executor),
* the harness's own source files and templates, and the library versions records carry.

A board whose inputs hash to the kept key and whose files still hash to the kept values is left alone. Contest
boards are always rebuilt (their entries also depend on the ledger and the clock), as are hub datasets (no local
file to hash).

Hashing every stored file on each run grows with the store (three files per cell), so `<board>/.content-index.json`
keeps each stored file's sha256 with its size, modification time (ns) and inode: a file whose three are unchanged
is not read again. The store replaces files by rename (a new inode), and any other edit changes the size or the
modification time, so a changed file is still noticed.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

from harness import __version__
from harness.config import RunConfig, TaskConfig, as_dict
from harness.execution.cells import library_versions, task_parts
from harness.store import atomic_write_text, dumps

KEY_FILE = ".inputs.json"
INDEX_FILE = ".content-index.json"
_RUN_ONLY = ("batch_size", "device", "progress", "executor", "fail_on_error", "readme", "submission", "task",
             "scoring_workers", "retries", "retry_failed")


def _sha_bytes(path: Path) -> Optional[str]:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _code_sha() -> str:
    """The harness's source and templates: a changed renderer or ranking rule rebuilds the board."""
    root = Path(__file__).resolve().parents[1]  # the harness package
    digest = hashlib.sha256()
    for path in sorted([*root.rglob("*.py"), *(root / "templates").glob("*")]):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class _ContentIndex:
    """sha256 of stored files, reused while a file's (size, mtime_ns, inode) are those it was hashed at."""

    def __init__(self, path: Optional[Path]):
        self.path = path
        self.kept: Dict[str, Any] = {}
        self.now: Dict[str, Any] = {}
        try:
            self.kept = json.loads(path.read_text(encoding="utf-8")) if path is not None else {}
        except (FileNotFoundError, NotADirectoryError, ValueError):
            self.kept = {}

    def sha(self, path: Path, name: str) -> Optional[str]:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        identity = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        kept = self.kept.get(name)
        digest = kept[3] if isinstance(kept, list) and kept[:3] == identity else _sha_bytes(path)
        if digest is not None:
            self.now[name] = identity + [digest]
        return digest

    def save(self) -> None:
        if self.path is not None and self.now != self.kept and self.path.parent.is_dir():
            atomic_write_text(self.path, json.dumps(self.now, sort_keys=True) + "\n")


_PENDING: Dict[str, "_ContentIndex"] = {}  # board folder -> the content index its latest key was computed with


def keep_index(folder: Path) -> None:
    """Save the content index `board_key` used for `folder`: after the board was written, or found fresh."""
    index = _PENDING.pop(str(folder), None)
    if index is not None:
        index.save()


def board_key(cfg: RunConfig, tasks: Dict[str, TaskConfig], folder: Optional[Path] = None,
              entries: Optional[Iterable[str]] = None) -> Optional[str]:
    """The sha256 of everything the suite's board is built from (with the entries it shows), or None where it
    cannot be told cheaply. `folder`: the board's folder, whose content index spares reading unchanged files."""
    if cfg.contest is not None or any(task.data.source != "local" for task in tasks.values()):
        return None
    config = as_dict(cfg)
    for key in _RUN_ONLY + ("tasks",):
        config.pop(key, None)
    # each task by what reaches the model and the metrics, its data by content: a checkout elsewhere (whose task
    # files and data resolve to other absolute paths) keeps its key
    data = {name: task_parts(task) for name, task in sorted(tasks.items())}
    results = Path(cfg.paths.results)
    index = _ContentIndex(None if folder is None else Path(folder) / INDEX_FILE)
    cells = {}
    for record in sorted(results.glob("*/*.json")):
        if record.stem in tasks:
            name = record.relative_to(results).as_posix()
            cells[name] = [index.sha(record.with_name(f"{record.stem}{suffix}"), f"{name[:-5]}{suffix}")
                           for suffix in (".json", ".predictions.jsonl", ".stats")]
    if folder is not None:  # saved once the board is known good (keep_index): a failed write leaves nothing behind
        _PENDING[str(folder)] = index
    inputs = {"harness": __version__, "code": _code_sha(), "libraries": library_versions(), "config": config,
              "data": data, "cells": cells, "entries": None if entries is None else sorted(entries)}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _outputs(folder: Path) -> Dict[str, Optional[str]]:
    return {p.name: _sha_bytes(p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def is_fresh(folder: Path, key: Optional[str]) -> bool:
    """The board in `folder` was built from inputs hashing to `key` and its files are as they were written."""
    if key is None:
        return False
    try:
        kept = json.loads((folder / KEY_FILE).read_text(encoding="utf-8"))
        return kept["key"] == key and bool(kept["outputs"]) and _outputs(folder) == kept["outputs"]
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError):
        return False


def remember(folder: Path, key: Optional[str]) -> None:
    if key is not None:
        atomic_write_text(folder / KEY_FILE, dumps({"key": key, "outputs": _outputs(folder)}))
