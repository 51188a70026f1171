"""A task's examples: its data's rows (harness.data reads them) mapped through the task's fields by its kind,
with stable, unique string ids."""
from __future__ import annotations

from typing import Any, List, Optional

from harness.config import DataConfig, TaskConfig
from harness.data import Example, load_rows, lookup
from harness.errors import ConfigError
from tasks import kind_of
from tasks.base import example_references, field_map

__all__ = ["Example", "load_examples"]

TARGET_FIELDS = ("references", "label")  # the fields that hold what the scorer compares with (never inputs)


def _targets_absent(fields: dict, row: dict) -> bool:
    columns = [c for k in TARGET_FIELDS for c in ([fields.get(k)] if k == "label" else fields.get(k) or []) if c]
    return bool(columns) and not any(c.split(".")[0] in row for c in columns)


def load_examples(task: TaskConfig, data_cfg: Optional[DataConfig] = None, part: str = "data", inputs_only: bool = False) -> List[Example]:
    """The task's examples (or, with `data_cfg=task.train`, its training rows) with stable, unique string ids.
    `inputs_only`: data without any of the reference columns (a hidden-test contest's participant data) gives
    examples whose target is None (`harness validate` checks everything but the scores on them)."""
    kind = kind_of(task)
    where = f"task {task.name}: {part}"
    rows = load_rows(data_cfg if data_cfg is not None else task.data, where)
    fields = field_map(task)
    if inputs_only and rows and _targets_absent(fields, rows[0]):
        return _inputs_examples(task, kind, fields, rows, where)
    columns = [c for k, c in fields.items() if k != "references" and c] + list(fields["references"])
    if rows:
        absent = sorted({c for c in columns if c.split(".")[0] not in rows[0]})
        if absent:
            available = ", ".join(sorted(k for k in rows[0] if k != "__index__"))
            raise ConfigError(f"task {task.name}: fields map to column(s) {', '.join(absent)}, which the data does "
                              f"not have; available columns: {available}")
    examples, seen = [], set()
    for row in rows:
        example_id = str(lookup(row, fields["id"])) if fields["id"] else str(row["__index__"])
        if example_id in seen:
            raise ConfigError(f"{where}: id {example_id!r} occurs twice (column {fields['id']!r})")
        seen.add(example_id)
        mapped = {k: lookup(row, c) for k, c in fields.items() if k not in ("id", "references") and c}
        if fields["references"]:
            mapped["references"] = example_references(fields, row)
        examples.append(kind.make_example(task, example_id, mapped, where))
    return examples


def _inputs_examples(task: Any, kind: Any, fields: dict, rows: List[dict], where: str) -> List[Example]:
    """Examples of data without references: the model-visible fields only, target None."""
    examples, seen = [], set()
    names = [n for n in kind.input_fields if fields.get(n)]
    for row in rows:
        example_id = str(lookup(row, fields["id"])) if fields["id"] else str(row["__index__"])
        if example_id in seen:
            raise ConfigError(f"{where}: id {example_id!r} occurs twice (column {fields['id']!r})")
        seen.add(example_id)
        try:
            inputs = {n: lookup(row, fields[n]) for n in names}
        except KeyError as e:
            raise ConfigError(f"{where}: example {example_id!r} has no column {e} (an input of the task)") from e
        examples.append(Example(example_id, inputs, None))
    return examples
