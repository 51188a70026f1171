"""Language modeling: rolling log-likelihood of each document; token-, word- and byte-normalised perplexity."""
from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from harness.data import Example
from harness.errors import SubmissionError
from harness.requests import RollingRequest
from tasks.base import require_fields


class LanguageModeling:
    name = "language_modeling"
    input_fields = ("text",)
    default_truncate_field = None

    def make_example(self, task: Any, example_id: str, fields: Mapping[str, Any], where: str) -> Example:
        require_fields(self.name, fields, ["text"], where)
        return Example(example_id, {"text": fields["text"]}, fields["text"])

    def requests(self, task: Any, inputs: Sequence[Mapping[str, Any]], shots: Any = None) -> List[Any]:
        """Whole documents, no prompt: few-shot settings do not apply (harness.prompting rejects them)."""
        return [RollingRequest(item["text"], task.window, task.stride) for item in inputs]

    def predictions(self, task: Any, answers: Sequence[Any]) -> List[Any]:
        return [{"logprob": float(a.logprob), "n_tokens": int(a.n_tokens)} for a in answers]

    def check_prediction(self, task: Any, value: Any) -> Optional[str]:
        if not isinstance(value, dict) or set(value) != {"logprob", "n_tokens"}:
            return 'expected {"logprob": <float>, "n_tokens": <int>}'
        logprob, n_tokens = value["logprob"], value["n_tokens"]
        if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or not math.isfinite(logprob) or logprob > 0:
            return f"logprob must be a finite number <= 0, got {logprob!r}"
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
            return f"n_tokens must be an integer >= 0, got {n_tokens!r}"
        return None

    def default_metrics(self, language: str) -> List[str]:
        return ["perplexity"]

    def missing_prediction(self, task: Any) -> Any:
        # A missing document has no log-likelihood; scoring the rest would flatter the entry, so the cell fails.
        raise SubmissionError("a language-modeling entry must score every document; perplexity over a subset "
                              "is not comparable", status="bad-output")

    def metric_inputs(self, task: Any, examples: Sequence[Example], predictions: Sequence[Any]) -> Tuple[list, list]:
        return list(predictions), [example.target for example in examples]
