"""Language modeling: rolling log-likelihood of each document; token-, word- and byte-normalised perplexity.

A task's `transform` (tasks.transforms) changes the text the model reads; `count_on` says whether words and bytes
are counted on the original text (lm-evaluation-harness's WikiText recipe) or on the transformed one: the
example's target is the counted text. A blank document is scored like any other (it has no tokens, words or
bytes, so it adds nothing to any sum); the record counts them under `blank_documents`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from harness.config import TaskConfig
from harness.data import Example
from harness.errors import SubmissionError
from harness.requests import RollingRequest
from harness.errors import ConfigError
from tasks.base import require_fields
from tasks.transforms import COUNT_ON, text_transform


LAST_WINDOW = ("full", "own")  # the context of a long document's last window (harness.models.hf.rolling_windows)

# Beyond any document's token count; a larger integer (JSON allows 10^400) would overflow the float sums.
MAX_TOKENS = 10**12


class LanguageModeling:
    name = "language_modeling"
    input_fields = ("text",)
    default_truncate_field = None
    prompted = False  # whole documents: no prompt, no shots, nothing cut
    stratified = False
    fits_on_train = True  # unigram-lm fits on the train split

    def answer_mode(self, task: TaskConfig) -> Optional[str]:
        return None

    def unsupported(self, submission_kind: str) -> Optional[str]:
        if submission_kind == "hf-seq2seq":
            return "perplexity needs a decoder-only model; seq2seq entries are not scored on it"
        return None

    def make_example(self, task: TaskConfig, example_id: str, fields: Mapping[str, Any], where: str) -> Example:
        require_fields(self.name, fields, ["text"], where, example_id)
        original = fields["text"]
        if not isinstance(original, str):
            raise ConfigError(f"{where}: example {example_id!r}: text is {type(original).__name__}, expected a "
                              f"string (got {original!r})")
        text = original if task.transform is None else text_transform(task.name, task.transform)(original)
        if task.count_on not in COUNT_ON:
            raise ConfigError(f"task {task.name}: count_on {task.count_on!r} is not valid; use one of "
                              f"{', '.join(COUNT_ON)}")
        return Example(example_id, {"text": text}, original if task.count_on == "original" else text)

    def requests(self, task: TaskConfig, inputs: Sequence[Mapping[str, Any]], shots: Any = None) -> List[Any]:
        """Whole documents, no prompt: few-shot settings do not apply (harness.prompting rejects them)."""
        if task.last_window not in LAST_WINDOW:
            raise ConfigError(f"task {task.name}: last_window {task.last_window!r} is not valid; use one of "
                              f"{', '.join(LAST_WINDOW)}")
        full = task.last_window == "full"
        return [RollingRequest(item["text"], task.window, task.stride, full) for item in inputs]

    def counts(self, task: Any, examples: Sequence[Example]) -> Dict[str, int]:
        """Extra counts for the record: documents with no text at all (they contribute nothing to perplexity)."""
        return {"blank_documents": sum(1 for e in examples if not e.inputs["text"])}

    def predictions(self, task: TaskConfig, answers: Sequence[Any]) -> List[Any]:
        return [{"logprob": float(a.logprob), "n_tokens": int(a.n_tokens)} for a in answers]

    def check_prediction(self, task: TaskConfig, value: Any) -> Optional[str]:
        if not isinstance(value, dict) or set(value) != {"logprob", "n_tokens"}:
            return 'expected {"logprob": <float>, "n_tokens": <int>}'
        logprob, n_tokens = value["logprob"], value["n_tokens"]
        if (isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or abs(logprob) > 1e300
                or not math.isfinite(logprob) or logprob > 0):
            shown = repr(logprob) if len(repr(logprob)) <= 40 else repr(logprob)[:40] + "..."
            return f"logprob must be a finite number <= 0, got {shown}"
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or not 0 <= n_tokens <= MAX_TOKENS:
            shown = repr(n_tokens) if len(repr(n_tokens)) <= 40 else f"an integer of {len(str(n_tokens))} digits"
            return f"n_tokens must be an integer from 0 to {MAX_TOKENS}, got {shown}"
        return None

    def default_metrics(self, language: str) -> List[str]:
        return ["perplexity"]

    def missing_prediction(self, task: TaskConfig) -> Any:
        # A missing document has no log-likelihood; scoring the rest would flatter the entry, so the cell fails.
        raise SubmissionError("a language-modeling entry must score every document; perplexity over a subset "
                              "is not comparable", status="bad-output")

    def metric_inputs(self, task: TaskConfig, examples: Sequence[Example], predictions: Sequence[Any]) -> Tuple[list, list]:
        return list(predictions), [example.target for example in examples]
