"""The contract between tasks and models: three request types and the Backend protocol.

Tasks turn examples into requests; a backend answers a batch of one request type; tasks turn the answers
into predictions. A backend never sees references.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple, Union

Span = Optional[Tuple[int, int]]
SIDES = ("right", "left")  # which end of the cut span loses tokens first


@dataclass(frozen=True)
class PromptParts:
    """A prompt as its parts, so a backend can lay it out as plain text or as chat turns, and drop shots.

    `user` is the query's rendered template (instruction, input fields, and often a trailing cue such as
    "Answer:"); `prefix` is the target prefix the answer follows (after the chat template's assistant header for
    chat entries). Shots are (user text, answer) pairs from the task's train pool or a fixed list, oldest first.
    """

    user: str
    shots: Tuple[Tuple[str, str], ...] = ()
    system: str = ""
    instruction: str = ""  # said once: before the first shot (plain) / at the start of the first user turn (chat)
    prefix: str = ""
    cut: Span = None  # span of `user` that may be cut
    separator: str = "\n\n"  # between blocks (system, instruction, each shot, the query) in plain text
    target_delimiter: str = " "  # between a shot's cue and its answer

    def shot_answer(self, answer: str) -> str:
        """A shot's assistant turn: the answer after the same target prefix the query ends with."""
        return self.prefix + self.target_delimiter + answer if self.prefix else answer

    def plain(self, n_shots: Optional[int] = None) -> Tuple[str, Span]:
        """The text a non-chat model reads, keeping the first `n_shots` shots (all by default), and where the cut
        span lies in it. Without system, instruction and shots it is `user + prefix`: the text of a plain prompt."""
        shots = self.shots if n_shots is None else self.shots[:n_shots]
        blocks = [b for b in (self.system, self.instruction) if b]
        blocks += [user + self.prefix + self.target_delimiter + answer for user, answer in shots]
        head = "".join(block + self.separator for block in blocks)
        cut = None if self.cut is None else (len(head) + self.cut[0], len(head) + self.cut[1])
        return head + self.user + self.prefix, cut

    def messages(self, n_shots: Optional[int] = None) -> List[Dict[str, str]]:
        """Chat turns for `apply_chat_template`: system, then each shot as a user/assistant pair, then the query."""
        shots = self.shots if n_shots is None else self.shots[:n_shots]
        turns: List[Dict[str, str]] = [{"role": "system", "content": self.system}] if self.system else []
        for user, answer in shots:
            turns += [{"role": "user", "content": user}, {"role": "assistant", "content": self.shot_answer(answer)}]
        turns.append({"role": "user", "content": self.user})
        if self.instruction:
            first = next(t for t in turns if t["role"] == "user")
            first["content"] = self.instruction + self.separator + first["content"]
        return turns


def _check_request(text: str, cut: Span, side: str, parts: Optional[PromptParts], what: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    if parts is not None and parts.plain() != (text, cut):
        raise ValueError(f"{what} must be the plain text of its parts (use {what}=parts.plain()[0], cut=...[1])")


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    max_new_tokens: int
    stop: Tuple[str, ...] = ()
    # Character span [start, end) of the prompt that may be cut when prompt + generation exceed the model's
    # window (from its end with side "right", its start with "left"); None means the prompt is never cut (the
    # left end is dropped as a last resort).
    cut: Span = None
    side: str = "right"
    # The prompt's parts; None: `prompt` is all there is. With parts, `prompt`/`cut` are `parts.plain()` (what a
    # non-chat model reads with every shot); a backend drops shots (last first) before cutting the span, and lays
    # the parts out through the tokenizer's chat template for chat entries.
    parts: Optional[PromptParts] = None

    def __post_init__(self) -> None:
        _check_request(self.prompt, self.cut, self.side, self.parts, "prompt")


@dataclass(frozen=True)
class LoglikelihoodRequest:
    context: str
    continuation: str
    cut: Span = None  # span of `context` that may be cut, as for GenerateRequest
    side: str = "right"
    parts: Optional[PromptParts] = None  # as for GenerateRequest; the continuation is scored after them

    def __post_init__(self) -> None:
        _check_request(self.context, self.cut, self.side, self.parts, "context")


def shown_with_choices(context_text: str, choices: Sequence[LoglikelihoodRequest]) -> str:
    """How a prompt scored by choices is shown to people: the context, then each continuation scored after it."""
    return f"{context_text}  [scored continuations: {' | '.join(repr(r.continuation) for r in choices)}]"


@dataclass(frozen=True)
class RollingRequest:
    text: str
    window: Optional[int] = None  # tokens per window; None: the model's maximum length
    stride: Optional[int] = None  # tokens the window advances; None: the window
    full_last_window: bool = True  # the last window moves back to read a whole window (else: only its own part)


@dataclass(frozen=True)
class Generation:
    text: str
    truncated: bool = False
    dropped_shots: int = 0  # few-shot examples left out so the prompt fits


@dataclass(frozen=True)
class Loglikelihood:
    logprob: float  # sum of log-probabilities of the continuation's tokens
    is_greedy: bool  # every continuation token was the argmax
    truncated: bool = False
    dropped_shots: int = 0


@dataclass(frozen=True)
class RollingLoglikelihood:
    logprob: float  # sum over every token of the text, each scored once
    n_tokens: int


class NonFiniteOutput(Exception):
    """The model produced NaN logits or log-likelihoods (a backend raises it; the cell is `bad-output`)."""


class Unsupported(NotImplementedError):
    """The backend cannot answer this request type at all (the cell is `n/a`, with this message as its reason)."""


class EndpointTimeout(TimeoutError):
    """A serving engine or endpoint did not answer in time, retries included (the cell is `timeout`)."""


class EndpointUnavailable(ConnectionError):
    """A serving engine or endpoint could not be reached or kept failing, retries included (the cell is `crashed`)."""


@dataclass(frozen=True)
class ModelSpec:
    """What the child process is told about the model it runs (never a reference, never a task's data source)."""

    kind: str  # the submission's kind: hf-causal | hf-seq2seq
    location: str  # a folder inside the submission, or a hub id
    dtype: str = "auto"
    trust_remote_code: bool = False
    chat_template: bool = False
    reasoning: Optional[Tuple[str, str]] = None  # (start, end) of a reasoning block stripped before scoring
    backend: str = "hf"  # the registered backend that runs it (harness.models.BACKENDS)
    options: Dict[str, Any] = field(default_factory=dict)  # the run config's backend.options
    # kind endpoint: {base_url, model, api_key_env}; the key itself is in that environment variable only
    endpoint: Optional[Dict[str, str]] = None


class Backend(Protocol):
    """A model that answers batches of requests; results come back in request order. This is everything the
    model's process (harness.execution.worker) calls: a new backend implements exactly this, registers one line in
    `harness.models.BACKENDS`, and tests/test_backends.py runs its conformance test."""

    def generate(self, requests: Sequence[GenerateRequest]) -> List[Generation]: ...

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> List[Loglikelihood]: ...

    def rolling_loglikelihood(self, requests: Sequence[RollingRequest]) -> List[RollingLoglikelihood]: ...

    def model_info(self) -> Dict[str, object]:
        """Facts for the record's provenance (class, dtype, device, window, parameter count, ...)."""
        ...

    def rendered_prompt(self, request: Union[GenerateRequest, LoglikelihoodRequest, RollingRequest]) -> str:
        """The exact text the model is given for `request` (templates, shots and truncation applied), for
        `harness validate`."""
        ...

    def guard_nonfinite(self) -> None:
        """From now on, a NaN in the model's outputs raises NonFiniteOutput instead of scoring garbage."""
        ...


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any stop string."""
    positions = [text.find(stop) for stop in stops]
    found = [p for p in positions if p >= 0]
    return text[:min(found)] if found else text


def strip_reasoning(text: str, start: str, end: str) -> str:
    """The answer after a reasoning block: the text after the last `end`; "" for a block that never closed
    (`start` without `end`: the model ran out of tokens while thinking); the text itself when it has no block."""
    if end in text:
        return text[text.rindex(end) + len(end):]
    if start in text:
        return ""
    return text
