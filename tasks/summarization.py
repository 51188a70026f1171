"""Summarization: generate a summary of `document`; ROUGE-1/2/L/Lsum F-measure (rouge-score, stemming)."""
from __future__ import annotations

from typing import Any, List, Mapping

from harness.config import TaskConfig
from harness.data import Example
from tasks.base import GenerationKind, as_references, mapped_inputs, require_fields


class Summarization(GenerationKind):
    name = "summarization"
    input_fields = ("document",)
    default_truncate_field = "document"

    def make_example(self, task: TaskConfig, example_id: str, fields: Mapping[str, Any], where: str) -> Example:
        require_fields(self.name, fields, ["references"], where, example_id)
        inputs = mapped_inputs(fields, self.input_fields)
        return Example(example_id, inputs, as_references(fields["references"], example_id, where))

    def default_metrics(self, language: str) -> List[str]:
        return ["rouge"]
