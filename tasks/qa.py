"""Extractive question answering (SQuAD v1.1 style): generate an answer from context + question; EM and F1."""
from __future__ import annotations

from typing import Any, List, Mapping

from harness.config import TaskConfig
from harness.data import Example
from tasks.base import GenerationKind, as_references, mapped_inputs, require_fields


class QuestionAnswering(GenerationKind):
    name = "qa"
    input_fields = ("context", "question")
    default_truncate_field = "context"  # keep the instruction and the question, cut the passage

    def make_example(self, task: TaskConfig, example_id: str, fields: Mapping[str, Any], where: str) -> Example:
        require_fields(self.name, fields, ["answers"], where, example_id)
        inputs = mapped_inputs(fields, self.input_fields)
        return Example(example_id, inputs, as_references(fields["answers"], example_id, where))

    def missing_prediction(self, task: Any) -> Any:
        return None  # unanswered: 0 in both official scripts, even against a gold answer that normalises to ""

    def default_metrics(self, language: str) -> List[str]:
        return ["cmrc2018"] if language == "zh" else ["squad"]  # SQuAD's normalisation splits on spaces
