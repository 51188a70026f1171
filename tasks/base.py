"""The contract every task kind implements, and the pieces the kinds share.

A kind turns dataset rows into `Example`s (inputs for the model, a target for the scorer), inputs into
requests, answers into predictions, and predictions into metric inputs. It never loads a model or a file.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

import jinja2
from omegaconf import OmegaConf

from harness.config import TaskConfig, as_dict
from harness.data import Example, lookup
from harness.errors import ConfigError
from harness.requests import SIDES, GenerateRequest, PromptParts

_SENTINEL = "\x00CUT\x00"
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


Shot = Tuple[Mapping[str, Any], str]  # a few-shot example: its input fields and its answer text


class KindFields(Protocol):
    """What truncation needs to know of a kind (read-only, so a class attribute satisfies it)."""

    @property
    def name(self) -> str: ...
    @property
    def input_fields(self) -> Tuple[str, ...]:
        """The logical fields the model sees."""
    @property
    def default_truncate_field(self) -> Optional[str]: ...


class TaskKind(KindFields, Protocol):
    @property
    def prompted(self) -> bool:
        """The model sees a prompt (shots and truncation apply); False: whole documents, no prompt."""
    @property
    def stratified(self) -> bool:
        """The target is a label the public/private split keeps in proportion (harness.contest.splits)."""
    @property
    def fits_on_train(self) -> bool:
        """The kind's baselines fit on the task's train split (and cover none of its tasks without one)."""

    def answer_mode(self, task: TaskConfig) -> Optional[str]:
        """How answers are read where the task chooses it (classification: `classify_by`), else None; recorded
        in the prompt config (harness.prompting)."""

    def unsupported(self, submission_kind: str) -> Optional[str]:
        """Why entries of this submission kind are not scored on tasks of this kind (the cell shows n/a), or None."""

    def make_example(self, task: TaskConfig, example_id: str, fields: Mapping[str, Any], where: str) -> Example: ...

    def requests(self, task: TaskConfig, inputs: Sequence[Mapping[str, Any]],
                 shots: Optional[Sequence[Sequence[Shot]]] = None) -> List[Any]:
        """One request per example, or (classification) a list of requests per example. `shots[i]` are example
        i's few-shot examples (harness.prompting.select_shots); None: no shots."""

    def predictions(self, task: TaskConfig, answers: Sequence[Any]) -> List[Any]:
        """Answers (in the shape `requests` produced) -> one prediction per example."""
    def check_prediction(self, task: TaskConfig, value: Any) -> Optional[str]:
        """None when `value` is a valid prediction for this task, else what is wrong with it."""
    def missing_prediction(self, task: TaskConfig) -> Any:
        """What a missing id scores as (an empty text, no label); raise if the kind cannot score it."""
    def metric_inputs(self, task: TaskConfig, examples: Sequence[Example], predictions: Sequence[Any]) -> Tuple[list, list]:
        """(predictions, targets) in the form the task's metrics take."""
    def counts(self, task: TaskConfig, examples: Sequence[Example]) -> Dict[str, int]:
        """Counts the record carries besides examples/missing/unknown (e.g. blank documents); often none."""
    def default_metrics(self, language: str) -> List[str]:
        """The metrics of a task of this kind that names none, for its language (a primary subtag)."""


def render_prompt(task: TaskConfig, inputs: Mapping[str, Any],
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


def truncation_rule(task: TaskConfig, kind: KindFields) -> Tuple[Optional[str], str]:
    """(field cut, side) from `truncation` (or the older `truncate_field`), checked against the kind's fields."""
    legacy, field = task.truncate_field, task.truncation.field
    if legacy and field and legacy != field:
        raise ConfigError(f"task {task.name}: truncate_field {legacy!r} and truncation.field {field!r} disagree; "
                          f"set truncation.field only")
    field = field or legacy or kind.default_truncate_field
    if field is not None and field not in kind.input_fields:
        raise ConfigError(f"task {task.name}: truncation.field {field!r} is not an input field of a {kind.name} "
                          f"task; use one of {', '.join(kind.input_fields) or '(none)'}")
    if task.truncation.side not in SIDES:
        raise ConfigError(f"task {task.name}: truncation.side {task.truncation.side!r} is not valid; use one of "
                          f"{', '.join(SIDES)}")
    return field, task.truncation.side


def prompt_parts(task: TaskConfig, item: Mapping[str, Any], cut_field: Optional[str],
                 shots: Optional[Sequence[Shot]] = None) -> Any:
    """The query's prompt as parts (system, instruction, shots, user text, target prefix, cut span)."""
    user, cut = render_prompt(task, item, cut_field)
    shot_turns = tuple((render_prompt(task, inputs)[0], str(answer)) for inputs, answer in (shots or ()))
    return PromptParts(user=user, shots=shot_turns, system=task.system_prompt, instruction=task.instruction,
                       prefix=task.target_prefix, cut=cut, separator=task.fewshot.separator,
                       target_delimiter=task.fewshot.target_delimiter)


def generate_request(task: TaskConfig, parts: PromptParts, side: str) -> Any:

    text, cut = parts.plain()
    return GenerateRequest(text, task.generation.max_new_tokens, tuple(task.generation.stop), cut, side, parts)


def _render(task: TaskConfig, template: jinja2.Template, inputs: Mapping[str, Any]) -> str:
    try:
        return template.render(**inputs)
    except jinja2.UndefinedError as e:
        raise ConfigError(f"task {task.name}: prompt uses a field the task does not provide ({e}); "
                          f"available: {', '.join(sorted(inputs))}") from e


def require_fields(kind: str, fields: Mapping[str, Any], names: Sequence[str], where: str,
                   example_id: str) -> None:
    """Each of `names` is mapped to a column and holds a value in this row. A blank value ("", a blank document or
    an empty reference) is data, not a config error: the kind and its metrics score it."""
    unmapped = [n for n in names if n not in fields]
    if unmapped:
        raise ConfigError(f"{where}: example {example_id!r}: a {kind} task needs field(s) {', '.join(unmapped)} "
                          f"mapped to dataset columns")
    null = [n for n in names if fields[n] is None]
    if null:
        raise ConfigError(f"{where}: example {example_id!r}: field(s) {', '.join(null)} hold no value (null)")


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
    prompted = True
    stratified = False
    fits_on_train = False

    def answer_mode(self, task: TaskConfig) -> Optional[str]:
        return None

    def unsupported(self, submission_kind: str) -> Optional[str]:
        return None

    def requests(self, task: TaskConfig, inputs: Sequence[Mapping[str, Any]],
                 shots: Optional[Sequence[Sequence[Shot]]] = None) -> List[Any]:
        field, side = truncation_rule(task, self)
        return [generate_request(task, prompt_parts(task, item, field, shots[i] if shots else None), side)
                for i, item in enumerate(inputs)]

    def predictions(self, task: TaskConfig, answers: Sequence[Any]) -> List[Any]:
        return [answer.text.strip() for answer in answers]

    def check_prediction(self, task: TaskConfig, value: Any) -> Optional[str]:
        return None if isinstance(value, str) else f"expected a text, got {type(value).__name__}"

    def missing_prediction(self, task: TaskConfig) -> Any:
        return ""

    def metric_inputs(self, task: TaskConfig, examples: Sequence[Example], predictions: Sequence[Any]) -> Tuple[list, list]:
        return list(predictions), [example.target for example in examples]

    def counts(self, task: Any, examples: Sequence[Example]) -> Dict[str, int]:
        return {}


def example_references(fields: Mapping[str, Any], row: Mapping[str, Any]) -> Any:
    """The reference columns of a row: one list column, or one column per reference."""
    columns = fields["references"]
    if len(columns) == 1:
        return lookup(dict(row), columns[0])
    values = [lookup(dict(row), c) for c in columns]
    kept = [v for v in values if v not in (None, "")]
    # a row whose every reference is blank keeps one empty reference, which sacrebleu and rouge-score score
    return kept or ([""] if "" in values else [])


def field_map(task: TaskConfig) -> Dict[str, Any]:

    return as_dict(task.fields, resolve=False) if OmegaConf.is_config(task.fields) else dict(vars(task.fields))


def mapped_inputs(fields: Mapping[str, Any], names: Sequence[str]) -> Dict[str, Any]:
    """The model-visible fields the task maps; none at all makes a references-only task (predictions entries only)."""
    return {name: fields[name] for name in names if fields.get(name) is not None}
