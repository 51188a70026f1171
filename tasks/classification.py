"""Classification: pick the label whose verbaliser the model finds most likely (or generate it); accuracy, macro-F1."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from harness.config import TaskConfig
from harness.data import Example
from harness.errors import ConfigError
from harness.requests import LoglikelihoodRequest
from tasks.base import (
    Shot,
    generate_request,
    mapped_inputs,
    prompt_parts,
    require_fields,
    truncation_rule,
)


class Classification:
    name = "classification"
    input_fields = ("text",)
    default_truncate_field = "text"
    prompted = True
    stratified = True
    fits_on_train = True  # majority-class counts the train split's labels

    def answer_mode(self, task: TaskConfig) -> Optional[str]:
        return task.classify_by

    def unsupported(self, submission_kind: str) -> Optional[str]:
        return None

    def label_names(self, task: TaskConfig) -> List[str]:
        if not task.labels:
            raise ConfigError(f"task {task.name}: a classification task needs `labels` (dataset value -> label text)")
        return list(task.labels.values())

    def make_example(self, task: TaskConfig, example_id: str, fields: Mapping[str, Any], where: str) -> Example:
        require_fields(self.name, fields, ["label"], where, example_id)
        raw = str(fields["label"])
        if raw not in task.labels:
            raise ConfigError(f"{where}: example {example_id!r} has label {raw!r}, which is not in the task's "
                              f"labels ({', '.join(map(repr, task.labels))})")
        return Example(example_id, mapped_inputs(fields, self.input_fields), task.labels[raw])

    def requests(self, task: TaskConfig, inputs: Sequence[Mapping[str, Any]],
                 shots: Optional[Sequence[Sequence[Shot]]] = None) -> List[Any]:

        cut_field, side = truncation_rule(task, self)
        out: List[Any] = []
        for i, item in enumerate(inputs):
            parts = prompt_parts(task, item, cut_field, shots[i] if shots else None)
            if task.classify_by == "generate":
                out.append(generate_request(task, parts, side))
            else:  # one request per label, sharing the context; the label follows as a shot's answer would
                context, cut = parts.plain()
                out.append([LoglikelihoodRequest(context, task.fewshot.target_delimiter + label, cut, side, parts)
                            for label in self.label_names(task)])
        return out

    def predictions(self, task: TaskConfig, answers: Sequence[Any]) -> List[Any]:
        labels = self.label_names(task)
        if task.classify_by == "generate":
            return [_match_label(answer.text, labels) for answer in answers]
        # argmax of the verbaliser log-likelihoods; the first label wins an exact tie (deterministic)
        return [labels[max(range(len(labels)), key=lambda i: (choice[i].logprob, -i))] for choice in answers]

    def check_prediction(self, task: TaskConfig, value: Any) -> Optional[str]:
        labels = self.label_names(task)
        if value in labels:
            return None
        return f"{value!r} is not one of the task's labels ({', '.join(map(repr, labels))})"

    def default_metrics(self, language: str) -> List[str]:
        return ["classification"]

    def missing_prediction(self, task: TaskConfig) -> Any:
        return None  # no label: wrong for accuracy, in no class for F1

    def counts(self, task: TaskConfig, examples: Sequence[Example]) -> Dict[str, int]:
        return {}

    def metric_inputs(self, task: TaskConfig, examples: Sequence[Example], predictions: Sequence[Any]) -> Tuple[list, list]:
        return list(predictions), [example.target for example in examples]


def _match_label(text: str, labels: Sequence[str]) -> Optional[str]:
    """A generated answer names a label when, stripped and case-folded, it starts with exactly that label."""
    answer = text.strip().casefold()
    hits = [label for label in labels if answer.startswith(label.casefold())]
    return max(hits, key=len) if hits else None
