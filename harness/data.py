"""Reading a task's data (I/O only): rows from local files or a hub dataset, through `datasets`; which files a data
config reads and their sha256. Mapping rows to examples is the task's business (tasks.examples).

Ids: the dataset's own id column where the task names one (SQuAD: the question id); otherwise the 0-based row
index (header excluded) for csv/tsv/jsonl/parquet/json, and the 0-based line number for line-aligned text.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional

from harness.config import DataConfig
from harness.errors import ConfigError

FORMATS = ("jsonl", "csv", "tsv", "parquet", "json", "squad", "text")
_EXTENSIONS = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".json": "json"}


@dataclass(frozen=True)
class Example:
    """One scored item. `inputs` is all a model may see; `target` (references, label) stays with the scorer."""

    id: str
    inputs: Dict[str, Any]
    target: Any


def resolve_path(path: str) -> Path:
    """A data path: `pkg://package/rel/path` inside an installed package, otherwise relative to the cwd."""
    if path.startswith("pkg://"):
        package, _, rel = path[len("pkg://"):].partition("/")
        try:
            return Path(str(resources.files(package).joinpath(rel)))
        except ModuleNotFoundError as e:
            raise ConfigError(f"data path {path!r}: no installed package {package!r}") from e
    return Path(path)


def data_files(data_cfg: DataConfig) -> Dict[str, Path]:
    """The local files a data config reads, as {path as configured: resolved path} (empty for hub datasets).

    Records name files as configured (`pkg://tasks/...`, a relative path), never by this machine's absolute path.
    """
    if data_cfg.source != "local":
        return {}
    paths = ([data_cfg.path] if data_cfg.path else []) + [data_cfg.files[k] for k in sorted(data_cfg.files)]
    return {p: resolve_path(p) for p in paths}


_SHA256_SEEN: Dict[tuple, str] = {}  # (path, inode, size, mtime) -> sha256, for this process


def sha256_file(path: Path) -> str:
    """The file's sha256. Memoised per process by (path, inode, size, mtime): every cell of a run hashes the same
    data files, and a replaced or rewritten file has a new inode or mtime."""
    with open(path, "rb") as f:
        stat = os.fstat(f.fileno())
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key not in _SHA256_SEEN:
            digest = hashlib.sha256()
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            _SHA256_SEEN[key] = digest.hexdigest()
    return _SHA256_SEEN[key]


def load_rows(data_cfg: DataConfig, where: str) -> List[Dict[str, Any]]:
    """Rows as dicts, each with `__index__` (row index or line number). `where` names the config for errors."""
    if data_cfg.source == "hub":
        rows = _load_hub(data_cfg, where)
    elif data_cfg.source == "local":
        rows = _load_local(data_cfg, where)
    else:
        raise ConfigError(f"{where}.source: {data_cfg.source!r} is not valid; use 'local' or 'hub'")
    for index, row in enumerate(rows):
        row["__index__"] = index
    if data_cfg.limit is not None:
        rows = rows[: data_cfg.limit]
    return rows


def _datasets() -> Any:
    import datasets

    datasets.disable_progress_bars()  # a progress bar per small file is noise; model runs have their own
    datasets.logging.set_verbosity_error()
    return datasets


def _load_hub(data_cfg: DataConfig, where: str) -> List[Dict[str, Any]]:
    if not data_cfg.path:
        raise ConfigError(f"{where}.path: a hub dataset id is required when source is 'hub'")
    datasets = _datasets()

    try:
        ds = datasets.load_dataset(data_cfg.path, data_cfg.name, split=data_cfg.split, revision=data_cfg.revision)
    except Exception as e:  # the hub, the network or the dataset id; say which dataset
        raise ConfigError(f"{where}: could not load hub dataset {data_cfg.path!r} "
                          f"(config {data_cfg.name!r}, split {data_cfg.split!r}): {e}") from e
    return ds.to_list()


def _local_format(data_cfg: DataConfig, where: str) -> str:
    if data_cfg.format != "auto":
        if data_cfg.format not in FORMATS:
            raise ConfigError(f"{where}.format: {data_cfg.format!r} is not valid; use one of auto, {', '.join(FORMATS)}")
        return data_cfg.format
    if data_cfg.files:
        return "text"
    if not data_cfg.path:
        raise ConfigError(f"{where}: set `path` (a data file) or `files` (field -> line-aligned text file)")
    suffix = Path(data_cfg.path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise ConfigError(f"{where}.format: cannot tell the format of {data_cfg.path!r} from its extension; "
                          f"set format to one of {', '.join(FORMATS)}")
    return _EXTENSIONS[suffix]


def _load_local(data_cfg: DataConfig, where: str) -> List[Dict[str, Any]]:
    fmt = _local_format(data_cfg, where)
    if fmt == "text":
        return _load_text_files(data_cfg, where)
    if not data_cfg.path:
        raise ConfigError(f"{where}.path: format {fmt} reads one data file; set `path`")
    path = resolve_path(data_cfg.path)
    if not path.is_file():
        raise ConfigError(f"{where}.path: data file {str(path)!r} does not exist")
    if fmt == "squad":
        return _load_squad(path)
    if fmt == "jsonl":
        rows = _load_uniform_jsonl(path)
        if rows is not None:
            return rows
    return _load_with_datasets(path, fmt, data_cfg.column_names, where)


_INT64 = range(-(1 << 63), 1 << 63)


def _shape(value: Any) -> Any:
    """A value's JSON type, recursively; None where Arrow might convert or reject it (a mixed list, a number
    that is not a finite float or an int64)."""
    if isinstance(value, dict):
        fields = {key: _shape(item) for key, item in value.items()}
        return None if None in fields.values() else tuple(sorted(fields.items()))
    if isinstance(value, list):
        shapes = {_shape(item) for item in value}
        return None if None in shapes or len(shapes) > 1 else ("list", next(iter(shapes), "empty"))
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return type(value).__name__
    if isinstance(value, int):
        return "int" if value in _INT64 else None
    if isinstance(value, float):
        return "float" if value == value and abs(value) != float("inf") else None
    return None


def _load_uniform_jsonl(path: Path) -> Optional[List[Dict[str, Any]]]:
    """The rows of a JSON Lines file read with `json`, when every row has exactly the first row's shape: then
    they equal what `datasets` returns (tests/test_fast_start.py checks the shipped data), without importing it.
    None (read it with `datasets`) for anything else: mixed types, which Arrow unifies; missing keys, which it
    fills with null; empty lines, bad JSON or an empty file, which it reports."""
    rows, shape = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                return None
            if not isinstance(row, dict) or not row:
                return None
            row_shape = _shape(row)
            if row_shape is None or (shape is not None and row_shape != shape):
                return None
            shape = row_shape
            rows.append(row)
    return rows or None


def _load_with_datasets(path: Path, fmt: str, column_names: Optional[List[str]], where: str) -> List[Dict[str, Any]]:
    datasets = _datasets()
    kwargs: Dict[str, Any] = {}
    builder = {"jsonl": "json", "tsv": "csv"}.get(fmt, fmt)
    if fmt in ("csv", "tsv"):
        kwargs["keep_default_na"] = False  # an empty field or the word "NA" is text, not a missing value
        if fmt == "tsv":
            kwargs.update(sep="\t", quoting=3)  # GLUE-style tsv: quotes are text
        if column_names:
            kwargs.update(column_names=list(column_names), header=None)
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as e:
        raise ConfigError(f"{where}: could not read {fmt} file {str(path)!r}: {e}") from e
    return ds.to_list()


def _load_squad(path: Path) -> List[Dict[str, Any]]:
    """Flatten SQuAD v1.1 json (data -> paragraphs -> qas) to one row per question."""
    with open(path, encoding="utf-8") as f:
        blob = json.load(f)
    rows = []
    for article in blob["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append({"id": qa["id"], "title": article.get("title", ""), "context": paragraph["context"],
                             "question": qa["question"], "answers": [a["text"] for a in qa["answers"]]})
    return rows


def _load_text_files(data_cfg: DataConfig, where: str) -> List[Dict[str, Any]]:
    """Line-aligned text files (WMT style): each named field is one file, row i is line i of every file."""
    columns: Dict[str, List[str]] = {}
    for field_name in sorted(data_cfg.files):
        path = resolve_path(data_cfg.files[field_name])
        if not path.is_file():
            raise ConfigError(f"{where}.files.{field_name}: text file {str(path)!r} does not exist")
        columns[field_name] = read_lines(path)
    lengths = {name: len(lines) for name, lines in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"{where}.files: line-aligned files differ in length: {lengths}")
    n = next(iter(lengths.values()), 0)
    return [{name: columns[name][i] for name in columns} for i in range(n)]


def read_lines(path: Path) -> List[str]:
    """The lines of a line-aligned text file, split on "\n" only: a "\r" or a Unicode line separator inside a
    line is text, as in sacrebleu's and the WMT files' own reading. The final newline ends the last line; it does
    not start a new one."""
    with open(path, encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def lookup(row: Dict[str, Any], column: str) -> Any:
    """A column, or a nested value by dotted path (`translation.de`, `answers.text`)."""
    value: Any = row
    for part in column.split("."):
        value = value[part]
    return value
