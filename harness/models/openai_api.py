"""The `openai` backend: a model behind an OpenAI-compatible server (vLLM, SGLang, TGI, `transformers serve`, or a
hosted endpoint), spoken to with the `openai` client library.

Decisions that change numbers, in one place:

* Generation is greedy (`temperature: 0`) with the task's stop strings and token budget. Plain prompts go to
  `/v1/completions` as the text a non-chat model reads (`parts.plain()`, every shot); chat entries go to
  `/v1/chat/completions` as turns (`parts.messages()`), laid out by the server's chat template. The stop strings
  are applied again here (a server may return the text past them), and a declared reasoning block is removed
  first, as the HF backend does (for such entries the stops are applied here only, after the block). A chat
  entry's target prefix cannot be put after the assistant header through the chat API: it is left out.
* The server tokenizes and holds the window: prompts are not cut here, so a prompt longer than the server's
  window is the server's error (the task fails and says so), never a silent cut.
* Log-likelihood reads the prompt's log-probabilities: `/v1/completions` with `echo` and `logprobs` on the text
  context + continuation (vLLM's way). The continuation is the tokens whose text offset is at or after the end of
  the context with its trailing whitespace removed (the whitespace moves to the continuation, as in the HF
  backend). A server that returns no prompt log-probabilities (`transformers serve`, most hosted chat APIs)
  makes these cells `n/a` with the reason "the endpoint returns no prompt log-probabilities": never a guess.
* Perplexity (rolling log-likelihood) needs the server's windows and start token: not offered here (`n/a`).
* Requests go concurrently (up to `concurrency`); the client retries connection errors, 408, 409, 429 and 5xx
  up to `max_retries` times with exponential backoff; each attempt waits at most `request_timeout_s`. The job's
  wall-clock budget (the sum of its tasks' `budget_s`) still applies on top, as for local models.
"""
from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar, Union

import openai

from harness.models.engines import CLIENT_OPTIONS
from harness.requests import (
    EndpointTimeout,
    EndpointUnavailable,
    GenerateRequest,
    Generation,
    Loglikelihood,
    LoglikelihoodRequest,
    ModelSpec,
    PromptParts,
    RollingLoglikelihood,
    RollingRequest,
    Unsupported,
    cut_at_stop,
    strip_reasoning,
)

logger = logging.getLogger(__name__)

NO_PROMPT_LOGPROBS = "the endpoint returns no prompt log-probabilities"
T = TypeVar("T")


def client_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """The client options in `options` (the rest belong to an engine), defaults filled in and checked."""
    chosen = {**CLIENT_OPTIONS, **{k: v for k, v in options.items() if k in CLIENT_OPTIONS}}
    if not isinstance(chosen["concurrency"], int) or chosen["concurrency"] < 1:
        raise ValueError(f"backend.options.concurrency must be a positive integer, got {chosen['concurrency']!r}")
    if not isinstance(chosen["max_retries"], int) or chosen["max_retries"] < 0:
        raise ValueError(f"backend.options.max_retries must be an integer >= 0, got {chosen['max_retries']!r}")
    if not isinstance(chosen["request_timeout_s"], (int, float)) or chosen["request_timeout_s"] <= 0:
        raise ValueError(f"backend.options.request_timeout_s must be a positive number, got "
                         f"{chosen['request_timeout_s']!r}")
    return chosen


class OpenAIBackend:
    """Answers the three request types through an OpenAI-compatible server; results in request order."""

    def __init__(self, base_url: str, model: str, *, api_key: str = "EMPTY", chat: bool = False,
                 reasoning: Optional[tuple] = None, options: Optional[Dict[str, Any]] = None,
                 info: Optional[Dict[str, Any]] = None, alive: Callable[[], Optional[str]] = lambda: None):
        self.base_url, self.model, self.chat = base_url, model, chat
        self.reasoning = tuple(reasoning) if reasoning else None
        self.options = client_options(options or {})
        self.info = dict(info or {})
        self.alive = alive  # None while the server can answer; else why it cannot (an engine that exited)
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=self.options["max_retries"],
                                    timeout=float(self.options["request_timeout_s"]))

    # -- the Protocol

    def generate(self, requests: Sequence[GenerateRequest]) -> List[Generation]:
        return self._map(self._generate_one, requests)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> List[Loglikelihood]:
        if self.chat:
            raise Unsupported(f"{NO_PROMPT_LOGPROBS} for chat entries (chat completions echo no prompt)")
        if not requests:
            return []
        # one probe first: a server without prompt log-probabilities fails here, before the rest is sent
        first = self._typed(self._score_one, requests[0])
        return [first] + self._map(self._score_one, requests[1:])

    def rolling_loglikelihood(self, requests: Sequence[RollingRequest]) -> List[RollingLoglikelihood]:
        if requests and not self.chat:
            self._typed(self._echo, requests[0].text[:200])  # n/a for the same reason as log-likelihood, if so
        raise Unsupported("perplexity through an OpenAI-compatible server is not supported (its windows need the "
                          "server's tokenizer and start token); use backend=hf")

    def model_info(self) -> Dict[str, object]:
        return {"backend": "openai", "base_url": self.base_url, "served_model": self.model, "chat": self.chat,
                "client_options": dict(self.options), **self.info}

    def rendered_prompt(self, request: Union[GenerateRequest, LoglikelihoodRequest, RollingRequest]) -> str:
        if isinstance(request, RollingRequest):
            return request.text
        if isinstance(request, LoglikelihoodRequest):
            return request.context
        if self.chat:
            return json.dumps(_parts(request).messages(), ensure_ascii=False)
        return request.prompt

    def guard_nonfinite(self) -> None:
        """Nothing to hook: the server's numbers are checked as they arrive (worker.check_finite)."""

    # -- one request each

    def _generate_one(self, request: GenerateRequest) -> Generation:
        # No stop strings: the field is left out, not null. With a reasoning block they apply after it only, so
        # they are not sent (a stop inside the block would end the answer before it began).
        stop: Any = list(request.stop) if request.stop and not self.reasoning else openai.NOT_GIVEN
        if self.chat:
            parts = _parts(request)
            messages: Any = parts.messages()  # role/content dicts, as the API takes them
            chat = self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=0, max_tokens=request.max_new_tokens, stop=stop)
            text = chat.choices[0].message.content or ""
        else:
            completion = self.client.completions.create(
                model=self.model, prompt=request.prompt, temperature=0, max_tokens=request.max_new_tokens, stop=stop)
            text = completion.choices[0].text or ""
        if self.reasoning:
            text = strip_reasoning(text, *self.reasoning)
        return Generation(text=cut_at_stop(text, request.stop))

    def _score_one(self, request: LoglikelihoodRequest) -> Loglikelihood:
        context = request.context.rstrip()  # its trailing whitespace moves to the continuation (module doc)
        response = self._echo(request.context + request.continuation)
        return continuation_logprob(response, len(context), len(request.context + request.continuation))

    def _echo(self, text: str) -> Any:
        """The server's answer with `text`'s own token log-probabilities (raises Unsupported where it gives none)."""
        response = self.client.completions.create(model=self.model, prompt=text, temperature=0, max_tokens=1,
                                                  echo=True, logprobs=1)
        if not response.choices or not _has_prompt_logprobs(getattr(response.choices[0], "logprobs", None)):
            raise Unsupported(NO_PROMPT_LOGPROBS)
        return response

    def _map(self, one: Callable[[Any], T], requests: Sequence[Any]) -> List[T]:
        """`one` over the requests, `concurrency` at a time, in request order; client errors become typed."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=self.options["concurrency"]) as pool:
            futures = [pool.submit(self._typed, one, request) for request in requests]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _typed(self, one: Callable[[Any], T], request: Any) -> T:
        retries, wait = self.options["max_retries"], self.options["request_timeout_s"]
        try:
            return one(request)
        except openai.APITimeoutError as e:
            raise EndpointTimeout(f"{self.base_url} did not answer within {wait:g} s ({retries} retries)") from e
        except openai.APIConnectionError as e:
            why = self.alive()
            raise EndpointUnavailable(why or f"{self.base_url} could not be reached ({retries} retries): {e}") from e
        except openai.APIStatusError as e:
            why = self.alive()
            raise EndpointUnavailable(why or f"{self.base_url} answered HTTP {e.status_code} ({retries} retries): "
                                      f"{str(e.message)[:300]}") from e


def continuation_logprob(response: Any, context_end: int, text_end: int) -> Loglikelihood:
    """(sum of log p, all greedy) of the echoed prompt tokens starting at or after character `context_end`."""
    logprobs: Any = getattr(response.choices[0], "logprobs", None)
    if logprobs is None or not _has_prompt_logprobs(logprobs):
        raise Unsupported(NO_PROMPT_LOGPROBS)
    tokens, values, offsets = logprobs.tokens, logprobs.token_logprobs, logprobs.text_offset
    top = logprobs.top_logprobs or [None] * len(tokens)
    picked = [i for i, offset in enumerate(offsets) if context_end <= offset < text_end]
    if any(values[i] is None for i in picked):
        raise ValueError("the endpoint gave no log-probability for the continuation's first token (an empty "
                         "context without a start token)")
    total = float(sum(values[i] for i in picked))
    greedy = all(top[i] and max(top[i], key=top[i].get) == tokens[i] for i in picked)
    return Loglikelihood(logprob=total, is_greedy=bool(greedy))


def _has_prompt_logprobs(logprobs: Any) -> bool:
    return logprobs is not None and bool(getattr(logprobs, "token_logprobs", None)) \
        and bool(getattr(logprobs, "text_offset", None))


def _parts(request: GenerateRequest) -> PromptParts:
    return request.parts if request.parts is not None else PromptParts(user=request.prompt, cut=request.cut)


def load(spec: ModelSpec, *, device: str, batch_size: Any, progress: bool) -> OpenAIBackend:
    """An endpoint the organizer named (`kind: endpoint`): base URL and served model from the entry, the API key
    from the environment variable the run config names (never from the manifest, never written)."""
    endpoint = spec.endpoint or {}
    if not endpoint.get("base_url") or not endpoint.get("model"):
        raise ValueError("the openai backend needs an endpoint entry (`kind: endpoint` with endpoint.base_url and "
                         "endpoint.model) or a serving engine (backend=transformers-serve or backend=vllm)")
    key_env = endpoint.get("api_key_env")
    api_key = os.environ.get(key_env, "") if key_env else "EMPTY"
    if key_env and not api_key:
        raise ValueError(f"the API key variable {key_env!r} (run config endpoint_api_key_env) is not set")
    return OpenAIBackend(endpoint["base_url"], endpoint["model"], api_key=api_key, chat=spec.chat_template,
                         reasoning=spec.reasoning, options=spec.options, info={"engine": "remote endpoint"})
