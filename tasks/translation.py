"""Translation: generate a translation of `source`; BLEU, chrF and TER (sacrebleu), corpus level, multi-reference."""
from __future__ import annotations

from typing import Any, List, Mapping

from harness.config import TaskConfig
from harness.data import Example
from tasks.base import GenerationKind, as_references, mapped_inputs, require_fields


class Translation(GenerationKind):
    name = "translation"
    input_fields = ("source",)
    default_truncate_field = "source"

    def make_example(self, task: TaskConfig, example_id: str, fields: Mapping[str, Any], where: str) -> Example:
        require_fields(self.name, fields, ["references"], where, example_id)
        inputs = mapped_inputs(fields, self.input_fields)
        return Example(example_id, inputs, as_references(fields["references"], example_id, where))

    def default_metrics(self, language: str) -> List[str]:
        return ["bleu", "chrf", "ter"]
