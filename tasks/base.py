"""The contract every task kind implements, and the pieces the kinds share.

A kind turns dataset rows into `Example`s (inputs for the model, a target for the scorer), inputs into
requests, answers into predictions, and predictions into metric inputs. It never loads a model or a file.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

import jinja2

from harness.data import Example
from harness.errors import ConfigError

_SENTINEL = "\x00CUT\x00"
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


class TaskKind(Protocol):
    name: str
    input_fields: Tuple[str, ...]  # logical fields the model sees
    default_truncate_field: Optional[str]

    def make_example(self, task: Any, example_id: str, fields: Mapping[str, Any], where: str) -> Example: ...

    def requests(self, task: Any, inputs: Sequence[Mapping[str, Any]]) -> List[Any]:
        """One request per example, or (classification) a list of requests per example."""

    def predictions(self, task: Any, answers: Sequence[Any]) -> List[Any]:
        """Answers (in the shape `requests` produced) -> one prediction per example."""

    def check_prediction(self, task: Any, value: Any) -> Optional[str]:
        """None when `value` is a valid prediction for this task, else what is wrong with it."""

    def missing_prediction(self, task: Any) -> Any:
        """What a missing id scores as (an empty text, no label); raise if the kind cannot score it."""

    def metric_inputs(self, task: Any, examples: Sequence[Example], predictions: Sequence[Any]) -> Tuple[list, list]:
        """(predictions, targets) in the form the task's metrics take."""


def render_prompt(task: Any, inputs: Mapping[str, Any],
                  cut_field: Optional[str] = None) -> Tuple[str, Optional[Tuple[int, int]]]:
    """Render the task's prompt; return it and the character span of `cut_field` (the part that may be cut)."""
    try:
        template = _JINJA.from_string(task.prompt)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"task {task.name}: prompt is not a valid jinja2 template: {e}") from e
    if cut_field is None or cut_field not in inputs:
        return _render(task, template, inputs), None
    marked = dict(inputs)
    marked[cut_field] = _SENTINEL + str(inputs[cut_field]) + _SENTINEL
    text = _render(task, template, marked)
    if text.count(_SENTINEL) != 2:  # the field is used zero or several times: nothing can be cut cleanly
        return _render(task, template, inputs), None
    start = text.index(_SENTINEL)
    end = text.index(_SENTINEL, start + 1) - len(_SENTINEL)
    return text.replace(_SENTINEL, ""), (start, end)


def _render(task: Any, template: jinja2.Template, inputs: Mapping[str, Any]) -> str:
    try:
        return template.render(**inputs)
    except jinja2.UndefinedError as e:
        raise ConfigError(f"task {task.name}: prompt uses a field the task does not provide ({e}); "
                          f"available: {', '.join(sorted(inputs))}") from e


def require_fields(kind: str, fields: Mapping[str, Any], names: Sequence[str], where: str) -> None:
    missing = [n for n in names if fields.get(n) in (None, "", [])]
    if missing:
        raise ConfigError(f"{where}: a {kind} task needs field(s) {', '.join(missing)} mapped to dataset columns")


def as_references(value: Any, example_id: str, where: str) -> List[str]:
    """References as a list of strings, from one text column or a list column."""
    refs = [value] if isinstance(value, str) else list(value or [])
    if not refs or not all(isinstance(r, str) for r in refs):
        raise ConfigError(f"{where}: example {example_id!r} has no text reference (got {value!r})")
    return refs


class GenerationKind:
    """Shared behaviour of the kinds scored on generated text (translation, summarization, qa)."""

    name = ""
    input_fields: Tuple[str, ...] = ()
    default_truncate_field: Optional[str] = None

    def requests(self, task: Any, inputs: Sequence[Mapping[str, Any]]) -> List[Any]:
        from harness.requests import GenerateRequest

        out = []
        for item in inputs:
            prompt, cut = render_prompt(task, item, task.truncate_field or self.default_truncate_field)
            out.append(GenerateRequest(prompt, task.generation.max_new_tokens, tuple(task.generation.stop), cut))
        return out

    def predictions(self, task: Any, answers: Sequence[Any]) -> List[Any]:
        return [answer.text.strip() for answer in answers]

    def check_prediction(self, task: Any, value: Any) -> Optional[str]:
        return None if isinstance(value, str) else f"expected a text, got {type(value).__name__}"

    def missing_prediction(self, task: Any) -> Any:
        return ""

    def metric_inputs(self, task: Any, examples: Sequence[Example], predictions: Sequence[Any]) -> Tuple[list, list]:
        return list(predictions), [example.target for example in examples]


def example_references(fields: Mapping[str, Any], row: Mapping[str, Any]) -> Any:
    """The reference columns of a row: one list column, or one column per reference."""
    from harness.data import lookup

    columns = fields["references"]
    if len(columns) == 1:
        return lookup(dict(row), columns[0])
    return [lookup(dict(row), c) for c in columns if lookup(dict(row), c) not in (None, "")]


def field_map(task: Any) -> Dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(task.fields) if OmegaConf.is_config(task.fields) else dict(vars(task.fields))


def mapped_inputs(fields: Mapping[str, Any], names: Sequence[str]) -> Dict[str, Any]:
    """The model-visible fields the task maps; none at all makes a references-only task (predictions entries only)."""
    return {name: fields[name] for name in names if fields.get(name) is not None}
