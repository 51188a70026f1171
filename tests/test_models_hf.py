"""HF backends on tiny local models: batching invariance, order, stop strings, truncation, and scores checked
against direct computations with the model."""
from __future__ import annotations

import shutil

import pytest
import torch
from tiny_models import tiny_corpus, train_tokenizer

from harness.models.hf import HFCausalBackend, HFSeq2SeqBackend, rolling_windows, truncate_prompt
from harness.requests import GenerateRequest, LoglikelihoodRequest, RollingRequest

CORPUS = tiny_corpus()
# Mixed lengths, from empty to several sentences, in no particular order.
PROMPTS = [" ".join(CORPUS[i:i + n]) for i, n in [(0, 1), (5, 4), (20, 0), (30, 2), (40, 7), (60, 1), (70, 3)]]
CHOICES = [" the red door", " seven apples.", "x", " a quiet village without a word."]
LOGPROB_TOLERANCE = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs single-threaded (see conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2_dir):
    return HFCausalBackend(tiny_gpt2_dir, device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def gpt2_single(tiny_gpt2_dir):
    return HFCausalBackend(tiny_gpt2_dir, device="cpu", batch_size=1)


@pytest.fixture(scope="module")
def t5(tiny_t5_dir):
    return HFSeq2SeqBackend(tiny_t5_dir, device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def t5_single(tiny_t5_dir):
    return HFSeq2SeqBackend(tiny_t5_dir, device="cpu", batch_size=1)


def with_tokenizer(model_dir: str, folder, **flags) -> str:
    """A copy of a tiny model whose tokenizer adds special tokens (same training, so the same vocabulary)."""
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(f"{model_dir}/{name}", folder / name)
    tokenizer = train_tokenizer(CORPUS, folder=folder, **flags)
    assert tokenizer.get_vocab() == train_tokenizer(CORPUS).get_vocab()
    return str(folder)


@pytest.fixture(scope="module")
def gpt2_bos(tiny_gpt2_dir, tmp_path_factory):
    """Llama-like: the tokenizer puts <s> before and, to be dropped, </s> after every text."""
    folder = with_tokenizer(tiny_gpt2_dir, tmp_path_factory.mktemp("gpt2_bos"), add_bos=True, add_eos=True)
    return HFCausalBackend(folder, device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def t5_bos(tiny_t5_dir, tmp_path_factory):
    """BART-like: <s> text </s>."""
    folder = with_tokenizer(tiny_t5_dir, tmp_path_factory.mktemp("t5_bos"), add_bos=True, add_eos=True)
    return HFSeq2SeqBackend(folder, device="cpu", batch_size=16)


def choice_requests():
    return [LoglikelihoodRequest(prompt, choice) for prompt in PROMPTS for choice in CHOICES]


def assert_same_scores(left, right):
    assert len(left) == len(right)
    for a, b in zip(left, right):
        assert abs(a.logprob - b.logprob) < LOGPROB_TOLERANCE
        assert (a.is_greedy, a.truncated) == (b.is_greedy, b.truncated)


def token_logprobs(model, input_ids: list[int]) -> torch.Tensor:
    """log p(token | prefix) for every position of one unpadded sequence: [len, vocab]."""
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([input_ids])).logits[0].float(), dim=-1)


def record_prompts(backend, monkeypatch) -> list[list[int]]:
    """Collects the token ids each generate batch receives, after fitting."""
    seen: list[list[int]] = []
    original = backend._generate_batch

    def spy(prompts, stops, max_new):
        seen.extend(prompts)
        return original(prompts, stops, max_new)

    monkeypatch.setattr(backend, "_generate_batch", spy)
    return seen


def count_forward_calls(model):
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


def ascii_stop(text: str, start: int) -> str | None:
    """Two ASCII letters first occurring in `text` at or after `start`; ASCII, so never a partial UTF-8 '�'."""
    for i in range(start, len(text) - 1):
        candidate = text[i:i + 2]
        if candidate.isascii() and candidate.isalpha() and text.find(candidate) >= start:
            return candidate
    return None


# ---------------------------------------------------------------- batch-size invariance and order


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_loglikelihood_does_not_depend_on_batch_size(kind, gpt2, gpt2_single, t5, t5_single):
    batched, single = (gpt2, gpt2_single) if kind == "causal" else (t5, t5_single)
    requests = choice_requests()
    assert_same_scores(batched.loglikelihood(requests), single.loglikelihood(requests))


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_greedy_generation_does_not_depend_on_batch_size(kind, gpt2, gpt2_single, t5, t5_single):
    batched, single = (gpt2, gpt2_single) if kind == "causal" else (t5, t5_single)
    requests = [GenerateRequest(prompt, max_new_tokens=12) for prompt in PROMPTS]
    texts = [g.text for g in batched.generate(requests)]
    assert len(set(texts)) > len(texts) // 2, "outputs barely depend on the prompt: the test would prove little"
    assert texts == [g.text for g in single.generate(requests)]


def test_rolling_does_not_depend_on_batch_size(gpt2, gpt2_single):
    requests = [RollingRequest(prompt, window=24, stride=10) for prompt in PROMPTS]
    for a, b in zip(gpt2.rolling_loglikelihood(requests), gpt2_single.rolling_loglikelihood(requests)):
        assert abs(a.logprob - b.logprob) < LOGPROB_TOLERANCE and a.n_tokens == b.n_tokens


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_results_come_back_in_request_order(kind, tiny_gpt2_dir, tiny_t5_dir):
    backend = (HFCausalBackend(tiny_gpt2_dir, device="cpu", batch_size=3) if kind == "causal"
               else HFSeq2SeqBackend(tiny_t5_dir, device="cpu", batch_size=3))
    generate = [GenerateRequest(prompt, max_new_tokens=n) for prompt, n in zip(PROMPTS, [6, 9, 6, 4, 9, 6, 4])]
    batched = backend.generate(generate)
    assert [g.text for g in batched] == [backend.generate([r])[0].text for r in generate]
    assert len({g.text for g in batched}) > len(batched) // 2
    scoring = [LoglikelihoodRequest(p, c) for p, c in zip(PROMPTS, CHOICES * 2)]
    assert_same_scores(backend.loglikelihood(scoring), [backend.loglikelihood([r])[0] for r in scoring])


# ---------------------------------------------------------------- log-likelihood against the model itself


def manual_causal(backend, context_ids: list[int], continuation_ids: list[int]) -> tuple[float, bool]:
    logprobs = token_logprobs(backend.model, context_ids + continuation_ids[:-1])
    rows = logprobs[len(context_ids) - 1:]
    total = sum(rows[i, token].item() for i, token in enumerate(continuation_ids))
    greedy = all(rows[i].argmax().item() == token for i, token in enumerate(continuation_ids))
    return total, greedy


def test_causal_loglikelihood_matches_direct_computation(gpt2):
    tok = gpt2.tokenizer
    cases = [(PROMPTS[0], " the red door"), (PROMPTS[1], "x"), (PROMPTS[3], " seven apples.")]
    results = gpt2.loglikelihood([LoglikelihoodRequest(c, x) for c, x in cases])
    for (context, continuation), result in zip(cases, results):
        context_ids = tok(context)["input_ids"]
        continuation_ids = tok(context + continuation)["input_ids"][len(context_ids):]
        expected, greedy = manual_causal(gpt2, context_ids, continuation_ids)
        assert abs(result.logprob - expected) < LOGPROB_TOLERANCE
        assert result.is_greedy == greedy and not result.truncated


def test_causal_context_whitespace_and_empty_context(gpt2):
    tok = gpt2.tokenizer
    moved, natural, empty = gpt2.loglikelihood([
        LoglikelihoodRequest("The cat watched ", "the red door"),
        LoglikelihoodRequest("The cat watched", " the red door"),
        LoglikelihoodRequest("", "The cat watched"),
    ])
    # A trailing space of the context belongs to the continuation's first token, as BPE vocabularies have it.
    assert abs(moved.logprob - natural.logprob) < LOGPROB_TOLERANCE
    expected, _ = manual_causal(gpt2, [tok.bos_token_id], tok("The cat watched")["input_ids"])
    assert abs(empty.logprob - expected) < LOGPROB_TOLERANCE


def test_is_greedy_is_true_exactly_for_argmax_continuations(gpt2):
    tok, model = gpt2.tokenizer, gpt2.model
    greedy_cases, other_cases = [], []
    for context in CORPUS[:10]:
        ids = tok(context)["input_ids"]
        new = []
        for _ in range(3):
            new.append(int(token_logprobs(model, ids + new)[-1].argmax()))
        runner_up = int(token_logprobs(model, ids + new[:-1])[-1].topk(2).indices[1])
        # Greedy continuations of 1-3 tokens share batches, so padded positions must not count as misses.
        candidates = [(new[:n], greedy_cases) for n in (1, 2, 3)] + [(new[:-1] + [runner_up], other_cases)]
        for tokens, bucket in candidates:
            text = tok.decode(tokens)
            # Keep only continuations that tokenize back to the same tokens after the context.
            if tok(context + text)["input_ids"][len(ids):] == tokens:
                bucket.append(LoglikelihoodRequest(context, text))
    assert len({len(r.continuation) for r in greedy_cases}) > 1 and other_cases
    assert all(r.is_greedy for r in gpt2.loglikelihood(greedy_cases))
    assert not any(r.is_greedy for r in gpt2.loglikelihood(other_cases))


def test_seq2seq_loglikelihood_matches_direct_computation(t5):
    tok, model = t5.tokenizer, t5.model
    cases = [(PROMPTS[0], " the red door"), (PROMPTS[0], "x"), (PROMPTS[1], " seven apples."), (PROMPTS[1], "")]
    results = t5.loglikelihood([LoglikelihoodRequest(c, x) for c, x in cases])
    start = model.config.decoder_start_token_id
    for (context, continuation), result in zip(cases, results):
        labels = tok(continuation)["input_ids"]  # this tokenizer appends no EOS, so none is scored
        if not labels:
            assert (result.logprob, result.is_greedy) == (0.0, True)
            continue
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([tok(context)["input_ids"]]),
                           decoder_input_ids=torch.tensor([[start] + labels[:-1]])).logits[0]
        logprobs = torch.log_softmax(logits, dim=-1)
        expected = sum(logprobs[i, token].item() for i, token in enumerate(labels))
        assert abs(result.logprob - expected) < LOGPROB_TOLERANCE
        assert result.is_greedy == all(logprobs[i].argmax().item() == t for i, t in enumerate(labels))


def test_causal_keeps_the_tokenizer_prefix_and_drops_its_suffix(gpt2_bos, monkeypatch):
    tok, bos = gpt2_bos.tokenizer, gpt2_bos.tokenizer.bos_token_id
    cases = [(PROMPTS[0], " the red door"), ("", "The cat watched")]
    results = gpt2_bos.loglikelihood([LoglikelihoodRequest(c, x) for c, x in cases])
    for (context, continuation), result in zip(cases, results):
        body = tok(context, add_special_tokens=False)["input_ids"]
        continuation_ids = tok(context + continuation, add_special_tokens=False)["input_ids"][len(body):]
        expected, _ = manual_causal(gpt2_bos, [bos] + body, continuation_ids)
        assert abs(result.logprob - expected) < LOGPROB_TOLERANCE
    seen = record_prompts(gpt2_bos, monkeypatch)
    prompt, cut = long_prompt()
    assert gpt2_bos.generate([GenerateRequest(prompt, 16, cut=cut)])[0].truncated
    assert seen[0][0] == bos and len(seen[0]) == gpt2_bos.max_length - 16  # truncation keeps BOS


def test_seq2seq_feeds_the_tokenizer_prefix_to_the_decoder_unscored(t5_bos):
    tok, model = t5_bos.tokenizer, t5_bos.model
    context, continuation = PROMPTS[1], " seven apples."
    result = t5_bos.loglikelihood([LoglikelihoodRequest(context, continuation)])[0]
    labels = tok(continuation, add_special_tokens=False)["input_ids"]
    decoder_ids = [model.config.decoder_start_token_id, tok.bos_token_id] + labels[:-1]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tok(context)["input_ids"]]),  # <s> context </s>
                       decoder_input_ids=torch.tensor([decoder_ids])).logits[0, 1:]
    expected = torch.log_softmax(logits, dim=-1)[range(len(labels)), labels].sum().item()
    assert abs(result.logprob - expected) < LOGPROB_TOLERANCE


# ---------------------------------------------------------------- generation


def manual_greedy(backend, prompt: str, n_new: int) -> str:
    """Greedy decoding by hand, without generate(), caches or padding."""
    tok, model = backend.tokenizer, backend.model
    seq2seq = model.config.is_encoder_decoder
    # An empty prompt: the decoder-only model starts after BOS, the encoder reads a lone EOS.
    prompt_ids = tok(prompt)["input_ids"] or [tok.eos_token_id if seq2seq else tok.bos_token_id]
    new = []
    with torch.no_grad():
        for _ in range(n_new):
            if seq2seq:
                logits = model(input_ids=torch.tensor([prompt_ids]),
                               decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id] + new])).logits
            else:
                logits = model(torch.tensor([prompt_ids + new])).logits
            new.append(int(logits[0, -1].argmax()))
            if new[-1] == tok.eos_token_id:
                new.pop()
                break
    return tok.decode(new, skip_special_tokens=True)


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_generation_is_greedy_decoding_of_the_new_tokens_only(kind, gpt2, t5):
    backend = gpt2 if kind == "causal" else t5
    prompts = [PROMPTS[0], PROMPTS[1], ""]
    results = backend.generate([GenerateRequest(p, max_new_tokens=10) for p in prompts])
    assert [r.text for r in results] == [manual_greedy(backend, p, 10) for p in prompts]


# ---------------------------------------------------------------- stop strings


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_stop_strings_cut_the_text_and_end_generation_early(kind, gpt2, t5):
    backend = gpt2 if kind == "causal" else t5
    full = [g.text for g in backend.generate([GenerateRequest(p, max_new_tokens=40) for p in PROMPTS])]
    usable = [(p, text, (ascii_stop(text, 3),)) for p, text in zip(PROMPTS, full) if ascii_stop(text, 3)]
    assert len(usable) >= 2, f"too few outputs with a stop string candidate: {full}"
    prompts, full, stops = zip(*usable[:2])
    calls, handle = count_forward_calls(backend.model.get_decoder() if kind == "seq2seq" else backend.model)
    try:
        cut = backend.generate([GenerateRequest(p, 40, stop=s) for p, s in zip(prompts, stops)])
    finally:
        handle.remove()
    assert [g.text for g in cut] == [text[:text.find(s[0])] for text, s in zip(full, stops)]
    assert len(calls) < 40, "generation ran on after every row had hit a stop string"


def test_earliest_of_several_stop_strings_wins(gpt2):
    full = gpt2.generate([GenerateRequest(PROMPTS[0], max_new_tokens=40)])[0].text
    late, early = ascii_stop(full, 12), ascii_stop(full, 3)
    assert late and early and full.find(early) < full.find(late), full
    result = gpt2.generate([GenerateRequest(PROMPTS[0], 40, stop=(late, early))])[0].text
    assert result == full[:min(full.find(late), full.find(early))]


# ---------------------------------------------------------------- truncation

INSTRUCTION = "Read the story and answer.\n"
QUESTION = "\nQuestion: who watched the red door?\nAnswer:"


def long_prompt(n_sentences: int = 40) -> tuple[str, tuple[int, int]]:
    document = " ".join(CORPUS[100:100 + n_sentences])
    prompt = INSTRUCTION + document + QUESTION
    return prompt, (len(INSTRUCTION), len(INSTRUCTION) + len(document))


def test_truncate_prompt_cuts_the_end_of_the_span(gpt2):
    tok = gpt2.tokenizer
    prompt, cut = long_prompt()
    ids = tok(prompt)["input_ids"]
    fitted, truncated = truncate_prompt(tok, prompt, ids, cut, budget=60)
    text = tok.decode(fitted)
    document = prompt[cut[0]:cut[1]]
    kept = text[len(INSTRUCTION):len(text) - len(QUESTION)]
    assert truncated and len(fitted) == 60
    assert text.startswith(INSTRUCTION) and text.endswith(QUESTION)
    assert 20 < len(kept) < len(document) and document.startswith(kept)


def test_truncate_prompt_drops_from_the_left_when_the_span_is_not_enough(gpt2):
    tok = gpt2.tokenizer
    prompt, cut = long_prompt()
    ids = tok(prompt)["input_ids"]
    assert truncate_prompt(tok, prompt, ids, None, budget=50) == (ids[-50:], True)
    outside = tok(INSTRUCTION)["input_ids"] + tok(QUESTION)["input_ids"]
    fitted, truncated = truncate_prompt(tok, prompt, ids, cut, budget=len(outside) - 3)
    assert truncated and fitted == outside[3:]  # whole span gone, then three tokens off the left
    assert truncate_prompt(tok, prompt, ids, cut, budget=len(ids)) == (ids, False)


def test_generate_truncates_long_prompts_to_the_window(gpt2, monkeypatch):
    seen = record_prompts(gpt2, monkeypatch)
    prompt, cut = long_prompt()
    short = GenerateRequest(PROMPTS[0], max_new_tokens=16, cut=(0, 5))
    with_span, without_span, fits = gpt2.generate(
        [GenerateRequest(prompt, 16, cut=cut), GenerateRequest(prompt, 16), short])
    assert with_span.truncated and without_span.truncated and not fits.truncated
    by_text = {gpt2.tokenizer.decode(ids): ids for ids in seen}
    assert sorted(len(ids) for ids in seen)[1:] == [gpt2.max_length - 16] * 2  # cut just enough to fit
    kept_span = [text for text in by_text if text.startswith(INSTRUCTION)]
    assert len(kept_span) == 1 and kept_span[0].endswith(QUESTION)
    assert PROMPTS[0] in by_text


def test_loglikelihood_truncation_matches_direct_computation(gpt2):
    tok = gpt2.tokenizer
    prompt, cut = long_prompt()
    result = gpt2.loglikelihood([LoglikelihoodRequest(prompt, " Nobody.", cut=cut)])[0]
    continuation_ids = tok(prompt + " Nobody.")["input_ids"][len(tok(prompt)["input_ids"]):]
    budget = gpt2.max_length - (len(continuation_ids) - 1)
    context_ids, _ = truncate_prompt(tok, prompt, tok(prompt)["input_ids"], cut, budget)
    expected, _ = manual_causal(gpt2, context_ids, continuation_ids)
    assert result.truncated and abs(result.logprob - expected) < LOGPROB_TOLERANCE
    # A span reaching the end of a context whose trailing space moves to the continuation is still valid.
    spaced = LoglikelihoodRequest(prompt + " ", "Nobody.", cut=(cut[0], len(prompt) + 1))
    assert gpt2.loglikelihood([spaced])[0].truncated
    with pytest.raises(ValueError, match="cut span"):
        gpt2.loglikelihood([LoglikelihoodRequest(prompt, " Nobody.", cut=(0, len(prompt) + 1))])


def test_seq2seq_truncates_the_encoder_input_only(t5, monkeypatch):
    seen = record_prompts(t5, monkeypatch)
    prompt, cut = long_prompt()
    result = t5.generate([GenerateRequest(prompt, max_new_tokens=t5.max_length, cut=cut)])[0]
    assert result.truncated and len(seen[0]) == t5.max_length  # the decoder's budget is separate
    assert t5.tokenizer.decode(seen[0]).endswith(QUESTION)


# ---------------------------------------------------------------- rolling log-likelihood


def direct_window_sum(backend, sequence: list[int], begin: int, end: int, first_target: int) -> float:
    """Reads sequence[begin:end] and sums log p of the targets sequence[first_target..end]."""
    logprobs = token_logprobs(backend.model, sequence[begin:end])
    return sum(logprobs[p - 1 - begin, sequence[p]].item() for p in range(first_target, end + 1))


def test_rolling_with_window_equal_to_stride_sums_disjoint_windows(gpt2):
    text = " ".join(CORPUS[:12])
    tokens = gpt2.tokenizer(text)["input_ids"]
    sequence, window = [gpt2.tokenizer.bos_token_id] + tokens, 16
    expected = sum(
        direct_window_sum(gpt2, sequence, start, min(start + window, len(tokens)), start + 1)
        for start in range(0, len(tokens), window)
    )
    result = gpt2.rolling_loglikelihood([RollingRequest(text, window=window, stride=window,
                                                        full_last_window=False)])[0]
    assert result.n_tokens == len(tokens) and len(tokens) > 3 * window
    assert abs(result.logprob - expected) < 1e-4


def test_rolling_full_last_window_reads_a_whole_window(gpt2):
    """The default rule: a long document's last window moves back to read `window` tokens (lm-evaluation-harness's
    rule); the other windows are unchanged, so only the last window's score differs from the `own` rule."""
    text = " ".join(CORPUS[:12])
    tokens = gpt2.tokenizer(text)["input_ids"]
    sequence, window = [gpt2.tokenizer.bos_token_id] + tokens, 20
    n = len(tokens)
    assert n % window, "the test needs a short last window"
    starts = list(range(0, n, window))
    expected = sum(direct_window_sum(gpt2, sequence, start, start + window, start + 1) for start in starts[:-1])
    expected += direct_window_sum(gpt2, sequence, n - window, n, starts[-1] + 1)
    full, own = gpt2.rolling_loglikelihood([RollingRequest(text, window=window, stride=window),
                                            RollingRequest(text, window=window, stride=window,
                                                           full_last_window=False)])
    assert abs(full.logprob - expected) < 1e-4 and full.n_tokens == own.n_tokens == n
    assert abs(full.logprob - own.logprob) > 1e-3  # the rules really differ on this document


def lm_eval_windows(n_tokens: int, window: int) -> list:
    """lm-evaluation-harness's rolling windows (lm_eval.utils where installed, else its documented rule: the first
    window reads [prefix] + tokens[:window - 1]; each later one predicts the next `window` tokens and reads the
    `window` positions before its last target) as (model input, targets) over tokens 1..n with prefix 0."""
    tokens = list(range(1, n_tokens + 1))
    try:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
        pairs = [make_disjoint_window(w) for w in get_rolling_token_windows(tokens, 0, window, 1)]
        return [(list(context) + list(target)[:-1], list(target)) for context, target in pairs]
    except ImportError:
        sequence, out, predicted = [0] + tokens, [], 0
        while predicted < n_tokens:
            end = min(predicted + window, n_tokens)
            out.append((sequence[max(0, end - window):end], sequence[predicted + 1:end + 1]))
            predicted = end
        return out


def test_full_last_window_rule_is_lm_evaluation_harness_rule():
    for n_tokens, window in [(1, 4), (4, 4), (5, 4), (50, 16), (47, 16), (1000, 128)]:
        sequence = list(range(n_tokens + 1))
        ours = [(sequence[b:e], sequence[e + 1 - k:e + 1]) for b, e, k in rolling_windows(n_tokens, window, window)]
        assert ours == lm_eval_windows(n_tokens, window), (n_tokens, window)


def test_rolling_with_overlap_scores_each_token_once_with_its_window_context(gpt2):
    text = " ".join(CORPUS[:8])
    tokens = gpt2.tokenizer(text)["input_ids"]
    sequence, window, stride = [gpt2.tokenizer.bos_token_id] + tokens, 16, 5
    expected = 0.0
    for p in range(1, len(tokens) + 1):  # each token, from the first window whose reach covers it
        begin = next(k * stride for k in range(len(tokens)) if min(k * stride + window, len(tokens)) >= p)
        expected += direct_window_sum(gpt2, sequence, begin, p, p)
    result = gpt2.rolling_loglikelihood([RollingRequest(text, window=window, stride=stride)])[0]
    assert result.n_tokens == len(tokens)
    assert abs(result.logprob - expected) < 1e-4


@pytest.mark.parametrize("full_last", [True, False])
def test_rolling_windows_cover_every_token_once(full_last):
    for n_tokens, window, stride in [(1, 4, 4), (50, 16, 16), (50, 16, 5), (51, 7, 1), (10, 32, 8)]:
        scored = []
        windows = rolling_windows(n_tokens, window, stride, full_last)
        for begin, end, n_new in windows:
            assert end - begin <= window
            targets = list(range(end + 1 - n_new, end + 1))
            assert targets[0] > begin and (not scored or targets[0] - begin >= min(window - stride + 1, window))
            scored += targets
        assert scored == list(range(1, n_tokens + 1))
        begin, end, _ = windows[-1]
        assert (end - begin == min(window, n_tokens)) if full_last else (begin == (len(windows) - 1) * stride)
    with pytest.raises(ValueError):
        rolling_windows(10, 4, 5)


def test_rolling_defaults_to_the_model_window(gpt2):
    text = " ".join(CORPUS[:30])
    tokens = gpt2.tokenizer(text)["input_ids"]
    assert len(tokens) > gpt2.max_length
    default, explicit = gpt2.rolling_loglikelihood(
        [RollingRequest(text), RollingRequest(text, window=gpt2.max_length, stride=gpt2.max_length)])
    assert default == explicit and default.n_tokens == len(tokens)
    assert gpt2.rolling_loglikelihood([RollingRequest("")])[0].n_tokens == 0


def test_seq2seq_has_no_rolling_loglikelihood(t5):
    with pytest.raises(NotImplementedError, match="seq2seq"):
        t5.rolling_loglikelihood([RollingRequest("some text")])


# ---------------------------------------------------------------- loading


def test_model_info(gpt2, t5):
    info = gpt2.model_info()
    assert info["model_class"] == "GPT2LMHeadModel" and info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["max_length"] == 128  # config.n_positions
    assert info["n_parameters"] == sum(p.numel() for p in gpt2.model.parameters())
    assert t5.model_info()["max_length"] == 128  # relative positions: the tokenizer's model_max_length


def test_pickled_weights_are_refused(tiny_gpt2_dir, tmp_path):
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{tiny_gpt2_dir}/{name}", tmp_path / name)
    from safetensors.torch import load_file

    torch.save(load_file(f"{tiny_gpt2_dir}/model.safetensors"), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):
        HFCausalBackend(str(tmp_path), device="cpu")


def test_auto_batch_size_halves_the_rows_that_ran_out_of_memory(tiny_gpt2_dir):
    backend = HFCausalBackend(tiny_gpt2_dir, device="cpu", batch_size="auto:8")
    sizes = []

    def run(batch):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("pretend")
        return [index * 10 for index in batch]

    one_token = lambda i: 1  # noqa: E731  (rows of one size: the budget halves the rows that failed)
    assert backend._run_batches(5, sort_key=lambda i: -i, run_batch=run, desc="test",
                                row_tokens=one_token) == [0, 10, 20, 30, 40]
    assert sizes == [5, 2, 2, 1] and backend._token_budget == 2  # half of the 5 rows that failed
    fixed = HFCausalBackend(tiny_gpt2_dir, device="cpu", batch_size="4")
    with pytest.raises(torch.OutOfMemoryError):
        fixed._run_batches(5, sort_key=lambda i: i, run_batch=run, desc="test", row_tokens=one_token)


def test_auto_batch_size_learns_a_token_budget_that_counts_generation(tiny_gpt2_dir):
    """Items hold prompt + generation tokens; the device (pretend) holds 100. After the first out-of-memory the
    batches hold at most half the failed batch's tokens, so long items go in small batches and short ones in
    bigger batches again, and the results still come back in item order."""
    backend = HFCausalBackend(tiny_gpt2_dir, device="cpu", batch_size="auto:8")
    lengths = [40, 40, 30, 30, 10, 10, 10, 10, 10, 10, 10, 10]  # prompt + max_new_tokens of each item
    batches = []

    def run(batch):
        batches.append(list(batch))
        if len(batch) * max(lengths[i] for i in batch) > 100:
            raise torch.OutOfMemoryError("pretend")
        return [index * 10 for index in batch]

    out = backend._run_batches(len(lengths), sort_key=lambda i: -lengths[i], run_batch=run, desc="test",
                               row_tokens=lambda i: lengths[i])
    assert out == [index * 10 for index in range(len(lengths))]
    # 8 rows of 40 tokens: out of memory, budget 160; then 4 rows of 40 (160 tokens): out of memory, budget 80;
    # then 2 of 40, 2 of 30, and the 8 short items together again (80 tokens): the row cap itself never shrank.
    assert batches == [list(range(8)), [0, 1, 2, 3], [0, 1], [2, 3], list(range(4, 12))]
    assert backend._token_budget == 80 and backend.batch_size == 8


def test_bad_settings_are_rejected(tiny_gpt2_dir):
    with pytest.raises(ValueError, match="dtype"):
        HFCausalBackend(tiny_gpt2_dir, device="cpu", dtype="float8")
    with pytest.raises(ValueError, match="max_length"):
        HFCausalBackend(tiny_gpt2_dir, device="cpu", max_length=4096)


def test_a_shared_context_with_one_token_labels_is_run_once(gpt2, gpt2_single):
    """Three one-token labels on each of several contexts: one forward row per context, not per label, and the
    same scores as one request at a time."""
    labels = [word for word in (" the", " a", " and", " of", " to", " red", " door")
              if len(gpt2.tokenizer(word, add_special_tokens=False)["input_ids"]) == 1][:3]
    assert len(labels) == 3, "the tiny tokenizer lacks one-token words: the test would prove nothing"
    contexts = PROMPTS[:5]
    requests = [LoglikelihoodRequest(context, label) for context in contexts for label in labels]
    rows = []
    hook = gpt2.model.register_forward_pre_hook(lambda module, args, kwargs: rows.append(len(kwargs["input_ids"])),
                                                with_kwargs=True)
    try:
        batched = gpt2.loglikelihood(requests)
    finally:
        hook.remove()
    assert sum(rows) == len(contexts)
    one_by_one = [gpt2_single.loglikelihood([request])[0] for request in requests]
    assert_same_scores(batched, one_by_one)
    assert len({round(r.logprob, 6) for r in batched}) > len(contexts), "labels should score differently"


@pytest.mark.parametrize("chunk", [1 << 24, 7 * 50])  # one chunk; chunks of a few positions
def test_sum_logprobs_in_chunks_equals_a_full_log_softmax(chunk, monkeypatch):
    """logit[target] - logsumexp per chunk of positions, reading shared inputs through `owner`, gives the full
    log-softmax's sums (within 1e-5) and the same greedy flags; a NaN in an unscored (padded) position is ignored."""
    import harness.models.hf as hf

    monkeypatch.setattr(hf, "LOGPROB_CHUNK_ELEMENTS", chunk)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 9, 50, generator=generator) * 4
    owner = torch.tensor([0, 0, 1, 2, 2])
    targets = torch.randint(0, 50, (5, 9), generator=generator)
    targets[1] = logits[0].argmax(dim=-1)  # an all-greedy row
    scored = torch.ones(5, 9, dtype=torch.bool)
    scored[2, :4] = False
    logits[1, 0, 3] = float("nan")  # in row 2's unscored part
    full = torch.log_softmax(logits[owner].float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    expected_sums = torch.where(scored, full, torch.zeros_like(full)).double().sum(dim=-1).tolist()
    expected_greedy = ((logits[owner].argmax(dim=-1) == targets) | ~scored).all(dim=-1).tolist()
    got = hf._sum_logprobs(logits, targets, scored, owner)
    assert [g for _, g in got] == expected_greedy and expected_greedy[1]
    assert all(abs(a - b) < 1e-5 for (a, _), b in zip(got, expected_sums))
    assert all(flag for _, flag in hf._sum_logprobs(logits, targets, scored, owner, greedy=False))
