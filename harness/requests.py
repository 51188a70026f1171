"""The contract between tasks and models: three request types and the Backend protocol.

Tasks turn examples into requests; a backend answers a batch of one request type; tasks turn the answers
into predictions. A backend never sees references.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence, Tuple


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    max_new_tokens: int
    stop: Tuple[str, ...] = ()
    # Character span [start, end) of the prompt that may be cut (from its end) when prompt + generation exceed
    # the model's window; None means the prompt is never cut (the left end is dropped as a last resort).
    cut: Optional[Tuple[int, int]] = None


@dataclass(frozen=True)
class LoglikelihoodRequest:
    context: str
    continuation: str
    cut: Optional[Tuple[int, int]] = None  # span of `context` that may be cut, as for GenerateRequest


@dataclass(frozen=True)
class RollingRequest:
    text: str
    window: Optional[int] = None  # tokens per window; None: the model's maximum length
    stride: Optional[int] = None  # tokens the window advances; None: the window


@dataclass(frozen=True)
class Generation:
    text: str
    truncated: bool = False


@dataclass(frozen=True)
class Loglikelihood:
    logprob: float  # sum of log-probabilities of the continuation's tokens
    is_greedy: bool  # every continuation token was the argmax
    truncated: bool = False


@dataclass(frozen=True)
class RollingLoglikelihood:
    logprob: float  # sum over every token of the text, each scored once
    n_tokens: int


class Backend(Protocol):
    """A model that answers batches of requests. Results come back in request order."""

    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]: ...

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Loglikelihood]: ...

    def rolling_loglikelihood(self, requests: Sequence[RollingRequest]) -> list[RollingLoglikelihood]: ...
