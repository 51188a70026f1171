"""The `openai` backend against an OpenAI-compatible test server (tests/openai_fake.py): what it sends, what it
makes of the answers, and how a misbehaving server ends up typed. The real `transformers serve` runs in
tests/test_serving_engines.py (slow tier); vLLM in the GPU tier."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from openai_fake import FakeOpenAI, answer_for, word_logprob, words

from harness.compose import compose
from harness.errors import ConfigError
from harness.execution.isolation import network_isolation
from harness.execution.worker import classify_failure, failure
from harness.models import check_backend, unsupported
from harness.models.engines import engine_options
from harness.models.openai_api import NO_PROMPT_LOGPROBS, OpenAIBackend, continuation_logprob
from harness.requests import (
    EndpointTimeout,
    EndpointUnavailable,
    GenerateRequest,
    LoglikelihoodRequest,
    PromptParts,
    RollingRequest,
    Unsupported,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = {"max_retries": 0, "request_timeout_s": 5}


def backend(server: FakeOpenAI, **kwargs) -> OpenAIBackend:
    options = {**FAST, **kwargs.pop("options", {})}
    return OpenAIBackend(server.base_url, "fake-model", options=options, **kwargs)


def posts(server: FakeOpenAI) -> list:
    return [json.loads(r["raw"]) for r in server.requests if r["method"] == "POST"]


# ---------------------------------------------------------------- generation


def test_plain_prompts_go_to_completions_greedy_with_stops_and_budget():
    requests = [GenerateRequest(prompt=f"Question {i}:", max_new_tokens=7, stop=("\n",)) for i in range(5)]
    with FakeOpenAI() as server:
        results = backend(server, options={"concurrency": 3}).generate(requests)
    # the server's text past the stop string is cut here, as the HF backend cuts it; order is the requests'
    assert [r.text for r in results] == [answer_for(r.prompt).split("\n")[0] for r in requests]
    sent = posts(server)
    assert all(r["path"].endswith("/v1/completions") for r in server.requests if r["method"] == "POST")
    assert sorted(b["prompt"] for b in sent) == sorted(r.prompt for r in requests)
    assert all(b["temperature"] == 0 and b["max_tokens"] == 7 and b["stop"] == ["\n"] for b in sent)


def test_chat_entries_go_to_chat_completions_as_turns():
    parts = PromptParts(user="What is 2+2?", shots=(("What is 1+1?", "2"),), system="Be brief.")
    request = GenerateRequest(prompt=parts.plain()[0], max_new_tokens=5, stop=("\n",), parts=parts)
    with FakeOpenAI() as server:
        result = backend(server, chat=True).generate([request])[0]
    body = posts(server)[0]
    assert server.requests[-1]["path"].endswith("/v1/chat/completions")
    assert body["messages"] == parts.messages()
    assert result.text == answer_for(json.dumps(parts.messages())).split("\n")[0]


def test_a_reasoning_block_is_removed_before_the_stop_strings_apply():
    request = GenerateRequest(prompt="Q:", max_new_tokens=5, stop=("\n",))
    with FakeOpenAI() as server:
        server.completion = lambda body: {"id": "x", "object": "text_completion", "created": 0, "model": "m",
                                          "choices": [{"index": 0, "finish_reason": "stop",
                                                       "text": "<think>a\nb</think> Paris\nmore"}]}
        result = backend(server, reasoning=("<think>", "</think>")).generate([request])[0]
    assert result.text == " Paris"
    assert "stop" not in posts(server)[0]  # a stop inside the block must not end the answer before it begins


# ---------------------------------------------------------------- log-likelihood


def test_loglikelihood_reads_the_continuations_prompt_logprobs():
    requests = [LoglikelihoodRequest(context="The sky is ", continuation="blue today"),
                LoglikelihoodRequest(context="The sky is", continuation=" WRONG")]
    with FakeOpenAI(logprobs=True) as server:
        results = backend(server).loglikelihood(requests)
    # the context's trailing space moves to the continuation: " blue", " today" are scored
    assert results[0].logprob == pytest.approx(word_logprob(" blue") + word_logprob(" today"))
    assert results[0].is_greedy is True
    assert results[1].logprob == pytest.approx(word_logprob(" WRONG"))
    assert results[1].is_greedy is False
    assert all(b["echo"] is True and b["logprobs"] == 1 and b["temperature"] == 0 for b in posts(server))
    assert sorted(b["prompt"] for b in posts(server)) == ["The sky is WRONG", "The sky is blue today"]


def test_a_server_without_prompt_logprobs_makes_the_cells_na_after_one_probe():
    requests = [LoglikelihoodRequest(context=f"c{i}", continuation=" x") for i in range(6)]
    with FakeOpenAI(logprobs=False) as server:
        with pytest.raises(Unsupported, match=NO_PROMPT_LOGPROBS) as caught:
            backend(server).loglikelihood(requests)
    assert len(posts(server)) == 1
    assert classify_failure(caught.value) == "n/a"
    assert failure(caught.value)["reason"] == NO_PROMPT_LOGPROBS


def test_chat_entries_and_perplexity_are_na_with_the_reason():
    with FakeOpenAI(logprobs=False) as server:
        with pytest.raises(Unsupported, match=NO_PROMPT_LOGPROBS):
            backend(server, chat=True).loglikelihood([LoglikelihoodRequest(context="a", continuation=" b")])
        with pytest.raises(Unsupported, match=NO_PROMPT_LOGPROBS):
            backend(server).rolling_loglikelihood([RollingRequest(text="some text")])
    with FakeOpenAI(logprobs=True) as server:
        with pytest.raises(Unsupported, match="perplexity"):
            backend(server).rolling_loglikelihood([RollingRequest(text="some text")])


def test_continuation_tokens_are_found_by_their_text_offsets():
    text = "ab cd ef"
    logprobs = SimpleNamespace(tokens=[t for t, _ in words(text)], text_offset=[o for _, o in words(text)],
                               token_logprobs=[None, -1.0, -2.0], top_logprobs=[None, {" cd": -1.0}, {" xx": -0.5}])
    response = SimpleNamespace(choices=[SimpleNamespace(logprobs=logprobs)])
    assert continuation_logprob(response, len("ab cd"), len(text)).logprob == -2.0
    both = continuation_logprob(response, len("ab"), len(text))
    assert (both.logprob, both.is_greedy) == (-3.0, False)
    with pytest.raises(ValueError, match="first token"):
        continuation_logprob(response, 0, len(text))
    bare = SimpleNamespace(choices=[SimpleNamespace(logprobs=None)])
    with pytest.raises(Unsupported, match=NO_PROMPT_LOGPROBS):
        continuation_logprob(bare, 0, 1)


# ---------------------------------------------------------------- a server that misbehaves


def test_a_server_answering_500_twice_is_retried_and_the_answer_kept():
    request = GenerateRequest(prompt="Q:", max_new_tokens=5, stop=("\n",))
    with FakeOpenAI(behaviours=["500", "500"]) as server:
        result = backend(server, options={"max_retries": 2}).generate([request])[0]
    assert result.text == answer_for("Q:").split("\n")[0]
    assert len(posts(server)) == 3


def test_a_server_answering_500_beyond_the_retries_is_unavailable():
    with FakeOpenAI(default="500") as server:
        with pytest.raises(EndpointUnavailable, match="HTTP 500") as caught:
            backend(server, options={"max_retries": 1}).generate([GenerateRequest(prompt="Q:", max_new_tokens=5)])
    assert len(posts(server)) == 2
    assert classify_failure(caught.value) == "crashed"


def test_a_server_that_never_answers_times_out():
    started = time.monotonic()
    with FakeOpenAI(default="hang") as server:
        with pytest.raises(EndpointTimeout, match="did not answer within 0.5 s") as caught:
            slow = backend(server, options={"request_timeout_s": 0.5})
            slow.generate([GenerateRequest(prompt="Q:", max_new_tokens=5)])
    assert time.monotonic() - started < 10
    assert classify_failure(caught.value) == "timeout"


def test_a_server_that_goes_away_mid_job_is_unavailable_with_the_engines_word():
    requests = [GenerateRequest(prompt=f"Q{i}:", max_new_tokens=5) for i in range(4)]
    with FakeOpenAI(stop_after=2) as server:
        dead = backend(server, options={"concurrency": 1}, alive=lambda: "the serving engine (x) exited with code -9")
        with pytest.raises(EndpointUnavailable, match="exited with code -9"):
            dead.generate(requests)


# ---------------------------------------------------------------- the engine's network


LOOPBACK_PROBE = """
import socket
from harness.models.served import loopback_up
def connects():
    server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
    try:
        socket.create_connection(server.getsockname(), timeout=2).close()
        return True
    except OSError:
        return False
before = connects()
loopback_up()
print(before, connects())
"""


def test_loopback_comes_up_inside_the_childs_network_namespace():
    prefix, note = network_isolation()
    if not prefix:
        pytest.skip(f"no network namespace here: {note}")
    out = subprocess.run([*prefix, sys.executable, "-c", LOOPBACK_PROBE], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["False", "True"], out.stderr  # down in a fresh namespace, then up


# ---------------------------------------------------------------- configuration


def test_engine_options_are_checked_with_the_valid_keys_named():
    with pytest.raises(ConfigError, match=r"backend.options.tensor_paralel_size.*did you mean 'tensor_parallel_size'"):
        check_backend("vllm", {"tensor_paralel_size": 2})
    with pytest.raises(ConfigError, match="not an option of backend transformers-serve"):
        check_backend("transformers-serve", {"gpu_memory_utilization": 0.5})
    assert engine_options("vllm", {"tensor_parallel_size": 4})["tensor_parallel_size"] == 4
    with pytest.raises(ConfigError, match="extra_args"):
        engine_options("vllm", {"extra_args": "--enforce-eager"})


@pytest.mark.parametrize("name", ["vllm", "transformers-serve", "openai"])
def test_every_serving_backend_config_composes(name):
    cfg = compose(["suite=demo", f"backend={name}"])
    assert cfg.backend.name == name


def test_engine_options_are_run_config_keys():
    cfg = compose(["suite=demo", "backend=vllm", "backend.options.tensor_parallel_size=4",
                   "backend.options.max_model_len=2048"])
    assert (cfg.backend.options.tensor_parallel_size, cfg.backend.options.max_model_len) == (4, 2048)
    with pytest.raises(ConfigError, match="tensor_parallel"):
        compose(["suite=demo", "backend=vllm", "+backend.options.tensor_paralel=4"])


def test_kinds_an_engine_cannot_serve_are_named():
    assert unsupported("vllm", "hf-causal") is None
    assert "encoder-decoder" in unsupported("transformers-serve", "hf-seq2seq")
    assert "endpoint entries" in unsupported("openai", "hf-causal")
    assert unsupported("hf", "hf-seq2seq") is None


def test_the_engine_and_its_version_are_in_the_prediction_key(monkeypatch):
    import harness.models
    from harness.execution.cells import Cell

    hf_cfg, vllm_cfg = compose(["suite=demo"]), compose(["suite=demo", "backend=vllm"])
    task = hf_cfg.tasks.demo_qa

    def key(cfg, version="0.11.0"):
        monkeypatch.setattr(harness.models, "engine_version", lambda name: version)
        return Cell(task, "entry", "sha", cfg).prediction_key

    assert key(vllm_cfg) != key(hf_cfg)
    assert key(vllm_cfg) != key(vllm_cfg, "0.12.0")
    assert key(vllm_cfg) != key(compose(["suite=demo", "backend=vllm", "backend.options.tensor_parallel_size=2"]))
    endpoint = {"name": "openai", "options": {}}
    assert Cell(task, "entry", "sha", vllm_cfg, endpoint).prediction_key == Cell(task, "entry", "sha", hf_cfg,
                                                                                  endpoint).prediction_key


def test_an_api_key_variable_is_redacted_whatever_its_name(monkeypatch):
    from harness.execution import isolation

    monkeypatch.setenv("PLAIN_NAMED_VARIABLE", "value-of-the-endpoint-key-123")
    assert "value-of-the-endpoint-key-123" in isolation.redact("log: value-of-the-endpoint-key-123")
    monkeypatch.setattr(isolation, "_SECRET_VARIABLES", {"PLAIN_NAMED_VARIABLE"})
    assert isolation.redact("log: value-of-the-endpoint-key-123") == "log: [redacted]"
    home = Path("/nonexistent-home")
    assert isolation.child_env(home, "PLAIN_NAMED_VARIABLE")["PLAIN_NAMED_VARIABLE"] == "value-of-the-endpoint-key-123"
    assert "PLAIN_NAMED_VARIABLE" not in isolation.child_env(home)


def test_a_request_without_stop_strings_sends_no_stop_field():
    with FakeOpenAI() as server:
        backend(server).generate([GenerateRequest(prompt="Q:", max_new_tokens=3)])
    assert "stop" not in posts(server)[0]


def test_an_engine_that_is_not_installed_is_named_before_anything_starts(monkeypatch, tmp_path):
    from harness.models import served
    from harness.requests import ModelSpec

    monkeypatch.setattr(served, "engine_version", lambda name: None)
    monkeypatch.setattr(served, "EngineProcess", lambda *a: pytest.fail("no engine may start"))
    spec = ModelSpec(kind="hf-causal", location=str(tmp_path), backend="vllm")
    with pytest.raises(ValueError, match="backend vllm needs the 'vllm' package where the model runs: pip install vllm"):
        served.load(spec, device="cpu", batch_size=1, progress=False)
