"""HuggingFace transformers backends: decoder-only (`HFCausalBackend`) and encoder-decoder (`HFSeq2SeqBackend`).

Both answer the three request types of `harness.requests` in batches and return results in request order.
Decisions that change numbers, in one place:

* Batching sorts requests longest first and restores order afterwards. Decoder-only inputs are padded on the
  LEFT (for generation and scoring alike) with an attention mask and position ids counted from the first real
  token, so a row's result does not depend on its batch neighbours (float noise aside). Models whose forward
  takes no `position_ids` (ALiBi models such as BLOOM) derive positions from the mask themselves.
* Special tokens: the tokenizer's own prefix (e.g. Llama's BOS) is kept on decoder-only inputs; a suffix it
  appends (an EOS) is dropped there, since it would tell the model the text had ended. Encoder inputs keep both.
* Causal log-likelihood follows lm-evaluation-harness: trailing whitespace of the context moves to the
  continuation, then the continuation's tokens are `tok(context + continuation)[len(tok(context)):]` and the
  model sees `tok(context) + those tokens`. An empty context is replaced by BOS (EOS when there is none).
* Seq2seq log-likelihood: context -> encoder (with the tokenizer's special tokens, e.g. T5's EOS), continuation
  -> decoder labels WITHOUT an appended EOS: we score "the answer starts with this text", as the causal backend
  does, so both kinds rank choices the same way and an EOS probability does not favour short choices. A
  tokenizer prefix (BART's <s>) is fed to the decoder after the start token but not scored. An empty encoder
  input becomes a lone EOS (what T5 tokenizers make of an empty text).
* Prompts with parts (`harness.requests.PromptParts`) are laid out as plain text (`parts.plain()`) or, for an
  entry that declares `chat_template: true`, through `tokenizer.apply_chat_template(turns,
  add_generation_prompt=True)` with the target prefix appended; shots are user/assistant turns. BOS exactly once:
  where the rendered chat text starts with the BOS token, that token is taken off the text and stands for the
  tokenizer's own prefix. Chat contexts keep their trailing whitespace (it is the template's); without a target
  prefix a scored continuation loses its leading delimiter (the answer opens the assistant turn).
* Too long: shots are dropped first (the last one first; results count them in `dropped_shots`), then the `cut`
  span loses tokens from its end (side "right") or start ("left"), just enough to fit; then, if needed, tokens
  are dropped from the left (after the prefix). Results say `truncated=True`.
* A declared reasoning block (`reasoning=(start, end)`) is removed from generated text before stop strings
  apply (they are looked for only after the block) and before the text is returned; a block that never closes
  leaves an empty answer.
* Rolling log-likelihood reads [BOS (EOS if none)] + the text's tokens in windows of `window` tokens (the start
  token counts) starting every `stride` tokens; each token is scored once, by the first window reaching it.
  Windows of all documents are batched together. With `full_last_window` (the default, lm-evaluation-harness's
  rule) the last window of a long document moves back to read a whole window; without it, it reads only from
  its own start.
* Generation is pure greedy: only token-id settings are taken from the model's generation config (no beams,
  length or repetition rules a checkpoint may ship with), so every submission is decoded the same way.
"""
from __future__ import annotations

import inspect
import itertools
import logging
from typing import Any, Callable, Hashable, Optional, Sequence, Tuple, TypeVar, cast

import torch
from tqdm import tqdm
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.modeling_outputs import BaseModelOutput

from harness import runtime
from harness.config import parse_batch_size, positive_int
from harness.requests import (
    GenerateRequest,
    Generation,
    Loglikelihood,
    LoglikelihoodRequest,
    ModelSpec,
    NonFiniteOutput,
    PromptParts,
    RollingLoglikelihood,
    RollingRequest,
    cut_at_stop,
    strip_reasoning,
)

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# transformers sets model_max_length to 1e30 when a tokenizer does not know its limit; anything above this is that.
_SANE_TOKENIZER_MAX = 1_000_000
# T5-style relative positions have no hard limit; 512 is the length such models were pre-trained with.
_RELATIVE_POSITIONS_MAX = 512
_CONFIG_LENGTH_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")

T = TypeVar("T")
Span = Optional[Tuple[int, int]]


# ---------------------------------------------------------------- settings


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The rule of harness.runtime (the parent resolves `auto` by it for the key; the child by the same rule)."""
    return DTYPES[runtime.resolve_dtype(dtype, device.type)]


# ---------------------------------------------------------------- tokens


def special_affixes(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text when adding special tokens (e.g. [BOS], [EOS])."""
    probe = "Hello world"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    raise ValueError("the tokenizer's special tokens are not a plain prefix/suffix of the text; unsupported")


def truncate_prompt(
    tokenizer: PreTrainedTokenizerBase, text: str, ids: list[int], cut: Span, budget: int, side: str = "right"
) -> tuple[list[int], bool]:
    """Fit `ids` (the special-token-free encoding of `text`) into `budget` tokens.

    First the `cut` character span loses tokens (only tokens lying wholly inside the span) from its END (side
    "right": the span's beginning survives) or its START ("left"), so everything outside it (instruction,
    question) survives; if that is not enough, tokens are dropped from the left. Returns (ids, truncated).
    """
    if budget < 0:
        raise ValueError(f"negative token budget {budget}")
    excess = len(ids) - budget
    if excess <= 0:
        return list(ids), False
    if cut is not None:
        if not tokenizer.is_fast:
            raise ValueError("cutting a character span needs a fast tokenizer (for offsets)")
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if encoding["input_ids"] != list(ids):
            raise ValueError("ids do not match the tokenizer's encoding of the text")
        start, end = cut
        inside = [i for i, (s, e) in enumerate(encoding["offset_mapping"]) if s >= start and e <= end and e > s]
        n_cut = min(excess, len(inside))
        dropped = set(inside[:n_cut] if side == "left" else inside[len(inside) - n_cut:])
        ids = [token for i, token in enumerate(ids) if i not in dropped]
        excess -= len(dropped)
    if excess > 0:
        ids = ids[excess:]
    return list(ids), True


def rolling_windows(n_tokens: int, window: int, stride: int, full_last: bool = True) -> list[tuple[int, int, int]]:
    """Windows over a sequence `[start] + tokens` (length n_tokens + 1) scoring every token exactly once.

    Returns (begin, end, n_new): the model reads positions [begin, end), which predict positions
    begin+1 .. end, and only the last n_new of those (not scored by an earlier window) count. Windows start every
    `stride` positions, so every token after the first window is scored with at least window - stride + 1
    tokens of context (the HF "perplexity of fixed-length models" scheme). `full_last`: a last window shorter
    than `window` starts earlier, at end - window, so it reads a whole window (with stride == window these are
    lm-evaluation-harness's `get_rolling_token_windows`); the tokens it scores are the same either way.
    """
    if not 1 <= stride <= window:
        raise ValueError(f"need 1 <= stride <= window, got stride={stride}, window={window}")
    windows, scored, begin = [], 0, 0
    while scored < n_tokens:
        end = min(begin + window, n_tokens)
        read_from = max(0, end - window) if full_last else begin
        windows.append((read_from, end, end - scored))
        scored, begin = end, begin + stride
    return windows


def _pad(rows: Sequence[Sequence[int]], pad_id: int, left: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids.to(device), mask.to(device)


LOGPROB_CHUNK_ELEMENTS = 1 << 24  # logits scored at once (64 MiB in float32): the positions of a chunk follow


def _sum_logprobs(logits: torch.Tensor, targets: torch.Tensor, scored: torch.Tensor,
                  owner: Optional[torch.Tensor] = None, greedy: bool = True) -> list[tuple[float, bool]]:
    """Per target row: (sum of log p(target) over scored positions, every scored target is the argmax).

    `logits` holds only the positions that predict `targets` ([inputs, k, vocab]); target row i reads input
    `owner[i]` (None: input i). log p(target) = logit[target] - logsumexp(logits), a chunk of positions at a
    time, so neither a float32 log-softmax nor an owner-indexed copy of the whole logits is ever made (only a
    chunk's). `greedy=False` (rolling log-likelihood) skips the argmax; the flags are then all True.
    """
    n_rows, width = targets.shape
    step = max(1, LOGPROB_CHUNK_ELEMENTS // max(1, n_rows * logits.shape[-1]))
    sums = torch.zeros(n_rows, dtype=torch.float64, device=logits.device)
    all_greedy = torch.ones(n_rows, dtype=torch.bool, device=logits.device)
    for start in range(0, width, step):
        chunk = logits[:, start:start + step, :] if owner is None else logits[owner, start:start + step, :]
        chunk = chunk.float()
        wanted, mask = targets[:, start:start + step], scored[:, start:start + step]
        token = chunk.gather(-1, wanted.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(chunk, dim=-1)
        # where(), not a product: a padded position may hold NaN and NaN * 0 is NaN.
        sums += torch.where(mask, token, torch.zeros_like(token)).double().sum(dim=-1)
        if greedy:
            all_greedy &= ((chunk.argmax(dim=-1) == wanted) | ~mask).all(dim=-1)
    return list(zip(sums.tolist(), all_greedy.tolist()))


def _aligned_targets(targets: Sequence[Sequence[int]], width: int, right: bool, device):
    """[batch, width] targets and a mask, each row aligned to the right (left padding) or the left."""
    padded = torch.zeros((len(targets), width), dtype=torch.long)
    scored = torch.zeros((len(targets), width), dtype=torch.bool)
    for i, row in enumerate(targets):
        span = slice(width - len(row), width) if right else slice(0, len(row))
        padded[i, span] = torch.tensor(row, dtype=torch.long)
        scored[i, span] = True
    return padded.to(device), scored.to(device)


def _batch_tokens(batch: Sequence[int], row_tokens: Callable[[int], int]) -> int:
    """Tokens a padded batch holds: every row is as long as its longest."""
    return len(batch) * max(row_tokens(i) for i in batch)


def _within_budget(batch: list[int], row_tokens: Callable[[int], int], budget: int) -> list[int]:
    """The longest prefix of `batch` whose padded size fits `budget` tokens (always at least one row)."""
    longest = 0
    for k, index in enumerate(batch):
        longest = max(longest, row_tokens(index))
        if k and (k + 1) * longest > budget:
            return batch[:k]
    return batch


class _StopStrings(StoppingCriteria):
    """Marks a row finished once its new text contains one of its stop strings (or it produced EOS).

    generate() freezes finished rows and stops when all are finished, so a batch ends as soon as every row has
    hit a stop string or EOS rather than running to max_new_tokens.
    """

    def __init__(self, tokenizer, stops: Sequence[Sequence[str]], new_from: int, eos_ids: set[int],
                 visible: Callable[[str], str] = lambda text: text):
        self.tokenizer, self.stops, self.new_from, self.eos_ids = tokenizer, stops, new_from, eos_ids
        self.visible = visible  # the answer part of the text so far (a reasoning block removed)
        self.finished = [False] * len(stops)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        new_tokens = input_ids[:, self.new_from:].tolist()  # one device->host copy per step
        for row, stops in enumerate(self.stops):
            if self.finished[row] or not stops:
                continue
            if self.eos_ids.intersection(new_tokens[row]):
                self.finished[row] = True  # already frozen by generate(); spares decoding it again
                continue
            text = self.visible(self.tokenizer.decode(new_tokens[row], skip_special_tokens=True))
            self.finished[row] = any(stop in text for stop in stops)
        return cast(torch.BoolTensor, torch.tensor(self.finished, dtype=torch.bool, device=input_ids.device))


def _validate_generate(request: GenerateRequest) -> None:
    if request.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {request.max_new_tokens}")
    if any(stop == "" for stop in request.stop):
        raise ValueError("empty stop string")
    _validate_span(request.cut, request.prompt)


def _validate_span(cut: Span, text: str) -> None:
    if cut is not None and not 0 <= cut[0] <= cut[1] <= len(text):
        raise ValueError(f"cut span {cut} is not inside a text of {len(text)} characters")


def _parts_of(text: str, cut: Span, parts: Optional[PromptParts]) -> PromptParts:
    """A request's prompt parts; a bare text is one user turn (so a chat entry still gets its template)."""
    return parts if parts is not None else PromptParts(user=text, cut=cut)


def _locate(chat: str, user: str, cut: Span) -> Span:
    """The cut span (relative to the query's user text) inside the rendered chat text, or None where the template
    changed the text beyond recognition (then only the last-resort left cut applies, still counted)."""
    if cut is None:
        return None
    at = chat.rfind(user)
    if at < 0:
        stripped = user.strip()
        at = chat.rfind(stripped) - (len(user) - len(user.lstrip())) if stripped else -1
        if at < 0 or not stripped:
            logger.warning("the chat template changed the prompt's text; its cut span is not used")
            return None
    start, end = max(cut[0] + at, 0), max(cut[1] + at, 0)
    return (min(start, len(chat)), min(end, len(chat)))


class _Prompt:
    """A laid-out prompt: its text (special-token-free), the cut span in it, the ids put before its tokens."""

    __slots__ = ("text", "cut", "prefix", "body", "n_shots")

    def __init__(self, text: str, cut: Span, prefix: list[int], n_shots: int):
        self.text, self.cut, self.prefix, self.n_shots = text, cut, prefix, n_shots
        self.body: list[int] = []  # the text's ids, once encoded (_layouts, _fit_prompt)


# ---------------------------------------------------------------- backends


class _HFBackend:
    """Loading, batching and tokenization shared by the two model kinds."""

    kind: str
    _auto_class: Any  # the transformers Auto class the backend loads with

    def __init__(
        self,
        model_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | str = 8,
        trust_remote_code: bool = False,
        max_length: int | None = None,
        progress: bool = False,
        chat_template: bool = False,
        reasoning: Optional[Tuple[str, str]] = None,
    ):
        self.model_path = model_path
        self.chat_template = chat_template
        self.reasoning = tuple(reasoning) if reasoning else None
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size, self._auto_batch = parse_batch_size(batch_size)
        self._token_budget: int | None = None  # auto batch size: tokens a batch may hold, learnt on out-of-memory
        self.progress = progress
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        # use_safetensors=True refuses pickled (.bin) weights, which can run arbitrary code when loaded.
        self.model = self._auto_class.from_pretrained(
            model_path, dtype=self.dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
        self.model.to(self.device).eval()
        self._ensure_pad_token()
        self.max_length = self._resolve_max_length(max_length)
        self._prefix, self._suffix = special_affixes(self.tokenizer)
        if chat_template and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"{model_path}: the submission declares chat_template: true, but the tokenizer has no "
                             "chat template (tokenizer_config.json `chat_template`, or chat_template.jinja)")
        self._eos_ids = self._collect_eos_ids()
        self._inspect_model()

    def _inspect_model(self) -> None:
        """Kind-specific checks of the loaded model, run at the end of __init__."""

    # -- setup

    def _ensure_pad_token(self) -> None:
        if self.tokenizer.pad_token_id is not None:
            return
        if self.tokenizer.eos_token is None:
            raise ValueError(f"{self.model_path}: the tokenizer has neither a pad nor an eos token to pad with")
        self.tokenizer.pad_token = self.tokenizer.eos_token  # pads are masked out, any id would do

    def _resolve_max_length(self, explicit: int | None) -> int:
        from_config = next(
            (v for k in _CONFIG_LENGTH_KEYS if isinstance(v := getattr(self.model.config, k, None), int) and v > 0),
            None,
        )
        if explicit is not None:
            explicit = positive_int(explicit, "max_length")
            if from_config is not None and explicit > from_config:
                raise ValueError(f"max_length {explicit} exceeds the model's {from_config} positions")
            return explicit
        if from_config is not None:
            return from_config
        tokenizer_max = self.tokenizer.model_max_length
        if isinstance(tokenizer_max, int) and 0 < tokenizer_max <= _SANE_TOKENIZER_MAX:
            return tokenizer_max
        if getattr(self.model.config, "relative_attention_num_buckets", None):
            logger.warning("%s: no length limit known (relative positions); using %d",
                           self.model_path, _RELATIVE_POSITIONS_MAX)
            return _RELATIVE_POSITIONS_MAX
        raise ValueError(f"{self.model_path}: cannot tell the model's maximum length; pass max_length")

    def _collect_eos_ids(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured])
        ids.add(self.tokenizer.eos_token_id)
        return {i for i in ids if i is not None}

    def guard_nonfinite(self) -> None:
        """Fail on NaN logits at the position a step predicts from (the last one), the same in every batch shape."""

        def check(module: Any, args: Any, output: Any) -> None:
            logits = getattr(output, "logits", None)
            if isinstance(logits, torch.Tensor) and logits.dim() == 3 and torch.isnan(logits[:, -1]).any():
                raise NonFiniteOutput("the model produced NaN logits")

        self.model.register_forward_hook(check)

    def model_info(self) -> dict:
        return {
            "model_path": self.model_path,
            "model_class": type(self.model).__name__,
            "kind": self.kind,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "max_length": self.max_length,
            "chat_template": self.chat_template,
            "n_parameters": sum(p.numel() for p in self.model.parameters()),
        }

    # -- helpers

    def _start_token_id(self) -> int:
        """What an empty text is scored after: BOS, or EOS where the tokenizer has no BOS."""
        for token_id in (self.tokenizer.bos_token_id, self.tokenizer.eos_token_id):
            if token_id is not None:
                return token_id
        raise ValueError(f"{self.model_path}: the tokenizer has neither a bos nor an eos token")

    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        """One sequence's text (the tokenizer's `decode` is typed for batches too)."""
        return cast(str, self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens))

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Special-token-free ids, one tokenizer call for the whole list (fast tokenizers batch in Rust)."""
        if not texts:
            return []
        return self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]

    def _greedy_config(self, max_new_tokens: int) -> GenerationConfig:
        """Pure greedy decoding; only token ids come from the checkpoint's generation config."""
        shipped = self.model.generation_config
        return GenerationConfig(
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            eos_token_id=sorted(self._eos_ids) or None,
            pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=shipped.bos_token_id,
            decoder_start_token_id=shipped.decoder_start_token_id,
            forced_bos_token_id=shipped.forced_bos_token_id,  # BART/mBART need it to start well-formed outputs
        )

    def _visible(self, text: str) -> str:
        """The answer part of generated text: without the declared reasoning block, if any."""
        return strip_reasoning(text, *self.reasoning) if self.reasoning else text

    def _finish_text(self, new_tokens: list[int], stops: Sequence[str]) -> str:
        for i, token in enumerate(new_tokens):
            if token in self._eos_ids:
                new_tokens = new_tokens[:i]  # what follows EOS is padding
                break
        return cut_at_stop(self._visible(self._decode(new_tokens, skip_special_tokens=True)), stops)

    def _stop_criteria(self, stops: list[Sequence[str]], new_from: int) -> StoppingCriteriaList:
        return StoppingCriteriaList([_StopStrings(self.tokenizer, stops, new_from, self._eos_ids, self._visible)])

    # -- prompts: laid out as plain text or chat turns; shots dropped, then a span cut, to fit

    def _layout(self, parts: PromptParts, n_shots: int, rstrip: bool = False) -> _Prompt:
        """The parts with their first `n_shots` shots, as the text this model reads. `rstrip` (causal scoring of
        a plain prompt) takes trailing whitespace off; the caller moves it to the continuation."""
        if not self.chat_template:
            text, cut = parts.plain(n_shots)
            if rstrip:
                text = text.rstrip()
                cut = _clip_span(cut, len(text))
            return _Prompt(text, cut, self._prefix, n_shots)
        chat = cast(str, self.tokenizer.apply_chat_template(parts.messages(n_shots), tokenize=False,
                                                            add_generation_prompt=True))
        text, cut = chat + parts.prefix, _locate(chat, parts.user, parts.cut)
        bos = self.tokenizer.bos_token
        if bos and text.startswith(bos):  # the template wrote BOS: it replaces the tokenizer's prefix, never doubles it
            shift = len(bos)
            cut = None if cut is None else (max(cut[0] - shift, 0), max(cut[1] - shift, 0))
            return _Prompt(text[shift:], cut, [self.tokenizer.bos_token_id], n_shots)
        return _Prompt(text, cut, self._prefix, n_shots)

    def _layouts(self, parts: Sequence[PromptParts], rstrip: bool = False) -> list[_Prompt]:
        """Every prompt with all its shots, encoded in one tokenizer call."""
        prompts = [self._layout(p, len(p.shots), rstrip) for p in parts]
        for prompt, body in zip(prompts, self._encode([p.text for p in prompts])):
            prompt.body = body
        return prompts

    def _fit_prompt(self, parts: PromptParts, prompt: _Prompt, side: str, reserved: int,
                    rstrip: bool = False) -> tuple[list[int], bool, int]:
        """(ids, truncated, shots dropped): shots go first (the last one first), then the cut span is cut."""
        while prompt.n_shots > 0 and len(prompt.body) > self._budget(reserved, prompt.prefix):
            prompt = self._layout(parts, prompt.n_shots - 1, rstrip)
            prompt.body = self._encode([prompt.text])[0]
        ids, truncated = self._fit(prompt.text, prompt.body, prompt.cut, side, reserved, prompt.prefix)
        return ids, truncated, len(parts.shots) - prompt.n_shots

    def rendered_prompt(self, request: GenerateRequest | LoglikelihoodRequest | RollingRequest) -> str:
        """The exact text this model is given for a request (special tokens included, after layout, dropped shots
        and truncation), for `harness validate` to show."""
        if isinstance(request, RollingRequest):
            return request.text
        if isinstance(request, GenerateRequest):
            text, reserved = request.prompt, request.max_new_tokens
        else:
            text, reserved = request.context, 0
        parts = _parts_of(text, request.cut, request.parts)
        prompt = self._layouts([parts])[0]
        ids, _, _ = self._fit_prompt(parts, prompt, request.side, reserved)
        return self._decode(ids, skip_special_tokens=False)

    def _continuation(self, request: LoglikelihoodRequest) -> str:
        """A chat layout without a target prefix opens the assistant turn with the answer, as the shots' answers
        do: the delimiter that separates an answer from a plain prompt's cue is not part of it there."""
        parts, text = request.parts, request.continuation
        if self.chat_template and parts is not None and not parts.prefix and text.startswith(parts.target_delimiter):
            return text[len(parts.target_delimiter):]
        return text

    def _budget(self, reserved: int, prefix: list[int]) -> int:
        """Tokens the prompt's text may take."""
        raise NotImplementedError

    def _run_batches(
        self,
        n: int,
        sort_key: Callable[[int], Any],
        run_batch: Callable[[list[int]], list[T]],
        desc: str,
        row_tokens: Callable[[int], int],
        group_key: Callable[[int], Hashable] | None = None,
    ) -> list[T]:
        """Runs items 0..n-1 in sorted batches (never mixing groups) and returns results in item order.

        With an "auto" batch size, a CUDA out-of-memory error shrinks the batch and retries it. `row_tokens` says
        how many tokens an item holds in memory (the prompt plus every token it may generate, or the scored
        sequence); the limit learnt is a token budget, half the padded tokens of the batch that failed, so a batch
        of long prompts with a long generation budget gets few rows and the shorter items that follow (items are
        sorted longest first) get more again, up to the batch size.
        """
        order = sorted(range(n), key=sort_key)
        results: list = [None] * n
        position = 0
        with tqdm(total=n, desc=f"{desc} ({self.kind})", disable=not self.progress) as bar:
            while position < n:
                batch = order[position:position + self.batch_size]
                if group_key is not None:
                    first = group_key(batch[0])
                    batch = list(itertools.takewhile(lambda i: group_key(i) == first, batch))
                if self._token_budget is not None:
                    batch = _within_budget(batch, row_tokens, self._token_budget)
                try:
                    outputs = run_batch(batch)
                except torch.OutOfMemoryError:
                    if not self._auto_batch or len(batch) == 1:
                        raise
                    outputs = None
                if outputs is None:  # outside the except block, so the failed batch's tensors can be freed
                    torch.cuda.empty_cache()
                    self._token_budget = _batch_tokens(batch, row_tokens) // 2
                    logger.warning("out of memory on %d rows; batches now hold at most %d tokens", len(batch),
                                   self._token_budget)
                    continue
                for index, output in zip(batch, outputs):
                    results[index] = output
                position += len(batch)
                bar.update(len(batch))
        return results

    # -- generate (shared; subclasses fit prompts and run a batch)

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        for request in requests:
            _validate_generate(request)
        parts = [_parts_of(r.prompt, r.cut, r.parts) for r in requests]
        prompts = [self._fit_prompt(p, laid, r.side, r.max_new_tokens)
                   for r, p, laid in zip(requests, parts, self._layouts(parts))]

        def run(batch: list[int]) -> list[str]:
            # A batch shares max_new_tokens (group_key): each prompt was fitted for its own, and a longer one
            # in the batch would push short prompts' positions past the model's limit.
            return self._generate_batch(
                [prompts[i][0] for i in batch], [requests[i].stop for i in batch], requests[batch[0]].max_new_tokens
            )

        texts = self._run_batches(
            len(requests),
            sort_key=lambda i: (requests[i].max_new_tokens, -len(prompts[i][0])),
            run_batch=run,
            desc="generate",
            group_key=lambda i: requests[i].max_new_tokens,
            row_tokens=lambda i: len(prompts[i][0]) + requests[i].max_new_tokens,  # the cache grows to this
        )
        return [Generation(text=text, truncated=truncated, dropped_shots=dropped)
                for text, (_, truncated, dropped) in zip(texts, prompts)]

    def _fit(self, text: str, body: list[int], cut: Span, side: str, reserved: int,
             prefix: list[int]) -> tuple[list[int], bool]:
        raise NotImplementedError

    def _generate_batch(self, prompts: list[list[int]], stops: list[Sequence[str]], max_new: int) -> list[str]:
        raise NotImplementedError


class HFCausalBackend(_HFBackend):
    """A decoder-only model (GPT-2, Llama, ...) loaded with AutoModelForCausalLM."""

    kind = "causal"
    _auto_class = AutoModelForCausalLM

    def _inspect_model(self) -> None:
        parameters = inspect.signature(self.model.forward).parameters
        self._takes_position_ids = "position_ids" in parameters
        # logits_to_keep lets the model run its vocabulary projection on the scored positions only.
        self._takes_logits_to_keep = "logits_to_keep" in parameters

    def _budget(self, reserved: int, prefix: list[int]) -> int:
        return self.max_length - reserved - len(prefix)

    def _fit(self, text: str, body: list[int], cut: Span, side: str, reserved: int,
             prefix: list[int]) -> tuple[list[int], bool]:
        """prefix + body fitted into max_length - reserved tokens; an empty text becomes the start token."""
        budget = self._budget(reserved, prefix)
        if budget < 0 or budget + len(prefix) < 1:
            raise ValueError(f"max_length {self.max_length} minus {reserved} reserved tokens leaves no room for "
                             "the prompt")
        body, truncated = truncate_prompt(self.tokenizer, text, body, cut, budget, side)
        ids = prefix + body
        return (ids or [self._start_token_id()]), truncated

    def _generate_batch(self, prompts: list[list[int]], stops: list[Sequence[str]], max_new: int) -> list[str]:
        ids, mask = _pad(prompts, self.tokenizer.pad_token_id, left=True, device=self.device)
        # generate() derives position ids from the attention mask, which left padding needs.
        output = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            generation_config=self._greedy_config(max_new),
            stopping_criteria=self._stop_criteria(stops, new_from=ids.shape[1]),
        )
        new_tokens = output[:, ids.shape[1]:].tolist()
        return [self._finish_text(row, row_stops) for row, row_stops in zip(new_tokens, stops)]

    # -- scoring

    def _score_batch(self, inputs: list[tuple[int, ...]], targets: list[list[tuple[int, ...]]],
                     greedy: bool = True) -> list[list[tuple[float, bool]]]:
        """One forward per distinct input; targets[i] are the target tuples read off inputs[i], each predicted by
        the last len(target) input positions."""
        keep = max(len(t) for group in targets for t in group)
        ids, mask = _pad(inputs, self.tokenizer.pad_token_id, left=True, device=self.device)
        kwargs = {"attention_mask": mask, "use_cache": False}
        if self._takes_position_ids:
            kwargs["position_ids"] = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        if self._takes_logits_to_keep:
            kwargs["logits_to_keep"] = keep
        logits = self.model(input_ids=ids, **kwargs).logits[:, -keep:, :]
        owners = [i for i, group in enumerate(targets) for _ in group]
        # several targets on one input (labels sharing a context) read its logits through `owner`, a chunk at a time
        owner = None if len(owners) == len(inputs) else torch.tensor(owners, device=self.device)
        flat, scored = _aligned_targets([t for group in targets for t in group], keep, right=True, device=self.device)
        sums = iter(_sum_logprobs(logits, flat, scored, owner, greedy))
        return [[next(sums) for _ in group] for group in targets]

    def _score_rows(self, rows: list[tuple[tuple[int, ...], tuple[int, ...]]], desc: str,
                    greedy: bool = True) -> list[tuple[float, bool]]:
        """Scores each distinct row once (identical requests are common in classification suites), and runs each
        distinct input once: the labels of a shared context whose continuations are one token long all read the
        context's last position, so one forward pass scores every label."""
        targets_of: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
        for row_inputs, row_targets in dict.fromkeys(rows):
            targets_of.setdefault(row_inputs, []).append(row_targets)
        inputs = list(targets_of)
        scores = self._run_batches(
            len(inputs),
            sort_key=lambda i: -len(inputs[i]),
            run_batch=lambda batch: self._score_batch([inputs[i] for i in batch],
                                                      [targets_of[inputs[i]] for i in batch], greedy),
            desc=desc,
            row_tokens=lambda i: len(inputs[i]),
        )
        by_row = {(row_inputs, targets): score for row_inputs, group_scores in zip(inputs, scores)
                  for targets, score in zip(targets_of[row_inputs], group_scores)}
        return [by_row[row] for row in rows]

    @torch.inference_mode()
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Loglikelihood]:
        for request in requests:
            _validate_span(request.cut, request.context)
        # Shared contexts are laid out and encoded once. A plain context's trailing whitespace moves to the
        # continuation (see the module doc); a chat context's is the template's own and stays.
        keys = list(dict.fromkeys(_context_key(r) for r in requests))
        key_parts = {key: _parts_of(key[0], key[1], key[3]) for key in keys}
        rstrip = not self.chat_template
        laid = dict(zip(keys, self._layouts([key_parts[key] for key in keys], rstrip)))
        pairs = [(laid[_context_key(r)].text,
                  (_trailing_whitespace(r.context) if rstrip else "") + self._continuation(r)) for r in requests]
        wholes = self._encode([context + continuation for context, continuation in pairs])
        rows, truncated, dropped = [], [], []
        fitted: dict = {}
        for request, (context, continuation_text), whole in zip(requests, pairs, wholes):
            key = _context_key(request)
            continuation = tuple(whole[len(laid[key].body):])
            if continuation_text and not continuation:
                # The whole text encoded to no more tokens than the context (a merge across the boundary):
                # score the continuation's own tokens rather than nothing.
                logger.warning("continuation %r merged into its context's tokens; encoding it alone",
                               continuation_text)
                continuation = tuple(self._encode([continuation_text])[0])
            if len(continuation) > self.max_length:
                raise ValueError(f"continuation of {len(continuation)} tokens exceeds max_length {self.max_length}")
            # The model reads context + continuation[:-1]: the context may use max_length + 1 - len(continuation).
            reserved = max(len(continuation) - 1, 0)
            if (key, reserved) not in fitted:
                fitted[key, reserved] = self._fit_prompt(key_parts[key], laid[key], request.side, reserved, rstrip)
            ids, was_cut, n_dropped = fitted[key, reserved]
            rows.append((tuple(ids) + continuation[:-1], continuation))
            truncated.append(was_cut)
            dropped.append(n_dropped)
        scored = [i for i, (_, continuation) in enumerate(rows) if continuation]
        scores = dict(zip(scored, self._score_rows([rows[i] for i in scored], desc="loglikelihood")))
        return [
            Loglikelihood(*scores.get(i, (0.0, True)), truncated=truncated[i], dropped_shots=dropped[i])
            for i in range(len(requests))  # an empty continuation scores log 1
        ]

    @torch.inference_mode()
    def rolling_loglikelihood(self, requests: Sequence[RollingRequest]) -> list[RollingLoglikelihood]:
        rows, owners = [], []
        texts = self._encode([r.text for r in requests])
        for index, (request, tokens) in enumerate(zip(requests, texts)):
            window = self.max_length if request.window is None else request.window
            if not 1 <= window <= self.max_length:
                raise ValueError(f"window {window} must be between 1 and max_length {self.max_length}")
            stride = window if request.stride is None else request.stride
            sequence = [self._start_token_id()] + tokens
            for begin, end, n_new in rolling_windows(len(tokens), window, stride, request.full_last_window):
                rows.append((tuple(sequence[begin:end]), tuple(sequence[end + 1 - n_new:end + 1])))
                owners.append(index)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self._score_rows(rows, desc="rolling", greedy=False)):
            totals[owner] += logprob
        return [RollingLoglikelihood(logprob=total, n_tokens=len(tokens)) for total, tokens in zip(totals, texts)]


def _clip_span(cut: Span, length: int) -> Span:
    return None if cut is None else (min(cut[0], length), min(cut[1], length))


def _trailing_whitespace(context: str) -> str:
    """'Answer: ' + 'Paris' -> 'Answer:' + ' Paris': BPE vocabularies attach spaces to the following word."""
    return context[len(context.rstrip()):]


def _context_key(request: LoglikelihoodRequest) -> tuple:
    return (request.context, request.cut, request.side, request.parts)


class HFSeq2SeqBackend(_HFBackend):
    """An encoder-decoder model (T5, BART, ...) loaded with AutoModelForSeq2SeqLM."""

    kind = "seq2seq"
    _auto_class = AutoModelForSeq2SeqLM

    def _inspect_model(self) -> None:
        self._decoder_start = self.model.generation_config.decoder_start_token_id
        if self._decoder_start is None:
            self._decoder_start = self.model.config.decoder_start_token_id
        if self._decoder_start is None:
            raise ValueError(f"{self.model_path}: the model config has no decoder_start_token_id")

    def _budget(self, reserved: int, prefix: list[int]) -> int:
        return self.max_length - len(prefix) - len(self._suffix)  # `reserved` is for the decoder: ignored

    def _fit(self, text: str, body: list[int], cut: Span, side: str, reserved: int,
             prefix: list[int]) -> tuple[list[int], bool]:
        """Encoder input: prefix + body + suffix within max_length."""
        budget = self._budget(reserved, prefix)
        if budget < 1:
            raise ValueError(f"the tokenizer's special tokens fill max_length {self.max_length}")
        body, truncated = truncate_prompt(self.tokenizer, text, body, cut, budget, side)
        ids = prefix + body + self._suffix
        # An encoder needs at least one token; EOS is what T5-style tokenizers make of an empty text.
        return (ids or [self._start_token_id_for_encoder()]), truncated

    def _start_token_id_for_encoder(self) -> int:
        if self.tokenizer.eos_token_id is None:
            raise ValueError(f"{self.model_path}: empty encoder input and no eos token to stand for it")
        return self.tokenizer.eos_token_id

    def _generate_batch(self, prompts: list[list[int]], stops: list[Sequence[str]], max_new: int) -> list[str]:
        ids, mask = _pad(prompts, self.tokenizer.pad_token_id, left=False, device=self.device)
        # The decoder output starts with decoder_start_token_id; new text begins after it.
        output = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            generation_config=self._greedy_config(max_new),
            stopping_criteria=self._stop_criteria(stops, new_from=1),
        )
        new_tokens = output[:, 1:].tolist()
        return [self._finish_text(row, row_stops) for row, row_stops in zip(new_tokens, stops)]

    @torch.inference_mode()
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Loglikelihood]:
        for request in requests:
            _validate_span(request.cut, request.context)
        keys = list(dict.fromkeys(_context_key(r) for r in requests))  # shared contexts are encoded once
        key_parts = [_parts_of(key[0], key[1], key[3]) for key in keys]
        encoder_inputs = {key: self._fit_prompt(parts, laid, key[2], 0)
                          for key, parts, laid in zip(keys, key_parts, self._layouts(key_parts))}
        continuations = self._encode([self._continuation(r) for r in requests])  # no EOS appended: see module doc
        rows = [
            (tuple(encoder_inputs[_context_key(r)][0]), tuple(continuation))
            for r, continuation in zip(requests, continuations)
        ]
        scored = [i for i, (_, continuation) in enumerate(rows) if continuation]
        unique = list(dict.fromkeys(rows[i] for i in scored))
        # Sorting by encoder input puts a context's choices side by side, so a batch runs its encoder once.
        scores = self._run_batches(
            len(unique),
            sort_key=lambda i: (-len(unique[i][0]), unique[i][0], -len(unique[i][1])),
            run_batch=lambda batch: self._score_batch([unique[i] for i in batch]),
            desc="loglikelihood",
            row_tokens=lambda i: len(unique[i][0]) + len(unique[i][1]),
        )
        by_row = dict(zip(unique, scores))
        return [
            Loglikelihood(
                *(by_row[row] if row[1] else (0.0, True)),  # empty continuation: log 1
                truncated=encoder_inputs[_context_key(r)][1],
                dropped_shots=encoder_inputs[_context_key(r)][2],
            )
            for r, row in zip(requests, rows)
        ]

    def _score_batch(self, rows: list[tuple[tuple[int, ...], tuple[int, ...]]]) -> list[tuple[float, bool]]:
        """rows: (encoder ids, decoder targets). Each distinct encoder input in the batch is encoded once.

        The decoder reads start + prefix + targets[:-1], where prefix is what the tokenizer puts before a text
        (BART's <s>, which its decoder always emits first); the prefix is fed but not scored.
        """
        distinct = list(dict.fromkeys(encoder_ids for encoder_ids, _ in rows))
        slot = {encoder_ids: i for i, encoder_ids in enumerate(distinct)}
        encoder_ids, encoder_mask = _pad(distinct, self.tokenizer.pad_token_id, left=False, device=self.device)
        hidden = self.model.get_encoder()(input_ids=encoder_ids, attention_mask=encoder_mask).last_hidden_state
        pick = torch.tensor([slot[encoder_ids] for encoder_ids, _ in rows], device=self.device)
        targets = [list(t) for _, t in rows]
        decoder_ids, decoder_mask = _pad(
            [[self._decoder_start] + self._prefix + t[:-1] for t in targets], self.tokenizer.pad_token_id,
            left=False, device=self.device,
        )
        logits = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden[pick]),
            attention_mask=encoder_mask[pick],
            decoder_input_ids=decoder_ids,
            decoder_attention_mask=decoder_mask,
            use_cache=False,
        ).logits[:, len(self._prefix):, :]
        target_ids, scored = _aligned_targets(targets, logits.shape[1], right=False, device=self.device)
        return _sum_logprobs(logits, target_ids, scored)

    def rolling_loglikelihood(self, requests: Sequence[RollingRequest]) -> list[RollingLoglikelihood]:
        raise NotImplementedError(
            f"rolling_loglikelihood needs a decoder-only (causal) model; {self.model_path} is loaded as an "
            "encoder-decoder (seq2seq) model"
        )


def load(spec: ModelSpec, *, device: str, batch_size: Any, progress: bool) -> _HFBackend:
    """The backend for the submission's kind: decoder-only or encoder-decoder. It takes no `backend.options`."""
    if spec.options:
        raise ValueError(f"backend hf takes no backend.options; got {', '.join(sorted(spec.options))}")
    backend_class = {"hf-causal": HFCausalBackend, "hf-seq2seq": HFSeq2SeqBackend}[spec.kind]
    return backend_class(spec.location, device=device, dtype=spec.dtype, batch_size=batch_size,
                         trust_remote_code=spec.trust_remote_code, progress=progress,
                         chat_template=spec.chat_template, reasoning=spec.reasoning)
