"""Language modeling: rolling log-likelihood of each document; token-, word- and byte-normalised perplexity."""
from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from harness.data import Example
from harness.errors import SubmissionError
from harness.requests import RollingRequest
from tasks.base import require_fields

# Beyond any document's token count; a larger integer (JSON allows 10^400) would overflow the float sums.
MAX_TOKENS = 10**12


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
        if (isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or abs(logprob) > 1e300
                or not math.isfinite(logprob) or logprob > 0):
            shown = repr(logprob) if len(repr(logprob)) <= 40 else repr(logprob)[:40] + "..."
            return f"logprob must be a finite number <= 0, got {shown}"
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or not 0 <= n_tokens <= MAX_TOKENS:
            shown = repr(n_tokens) if len(repr(n_tokens)) <= 40 else f"an integer of {len(str(n_tokens))} digits"
            return f"n_tokens must be an integer from 0 to {MAX_TOKENS}, got {shown}"
        return None

    def missing_prediction(self, task: Any) -> Any:
        # A missing document has no log-likelihood; scoring the rest would flatter the entry, so the cell fails.
        raise SubmissionError("a language-modeling entry must score every document; perplexity over a subset "
                              "is not comparable", status="bad-output")

    def metric_inputs(self, task: Any, examples: Sequence[Example], predictions: Sequence[Any]) -> Tuple[list, list]:
        return list(predictions), [example.target for example in examples]
