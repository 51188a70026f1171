"""vLLM behind the `openai` backend (marker `gpu`), against the HF backend on the same model and requests: a small
GPT-2 built from config (random weights, the tiny tokenizer), float32 on both sides so the numbers can agree.
Generation must agree on at least 98% of prompts (the rest are printed), log-likelihoods within 1e-3 nats per
token; throughput of both is printed (run with -s):

    pip install vllm && python -m pytest -m gpu tests/test_gpu_serving.py -s

Skips, saying why, without a CUDA device or without vLLM installed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List

import pytest

from harness.requests import GenerateRequest, LoglikelihoodRequest, ModelSpec

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tasks" / "data" / "demo"
SMALL = dict(n_layer=6, n_embd=512, n_head=8, n_positions=1024)
N_GENERATE, N_SCORE, NEW_TOKENS = 256, 512, 24

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: torch.cuda.is_available() is False "
                       "here (run `python -m pytest -m gpu tests/test_gpu_serving.py -s` on a GPU machine)"),
]


def _vllm_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("vllm") is not None


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, tiny_tokenizer_dir) -> str:
    if not _vllm_installed():
        pytest.skip("needs vLLM: pip install vllm")
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("vllm-model")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tiny_tokenizer_dir)
    tokenizer.model_max_length = SMALL["n_positions"]
    config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **SMALL)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return str(folder)


def rows(n: int) -> List[dict]:
    lines = (DEMO / "qa_train.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(lines[i % len(lines)]) for i in range(n)]


def prompt(row: dict) -> str:
    return f"Passage: {row['context']}\nQuestion: {row['question']}\nAnswer:"


def timed(work) -> tuple:
    started = time.perf_counter()
    out = work()
    return out, time.perf_counter() - started


def both(model_dir: str, tmp_path: Path, monkeypatch) -> Dict[str, object]:
    """Answers and seconds of vLLM (served, through the openai backend) and of the HF backend."""
    from harness.models import hf, served

    generating = [GenerateRequest(prompt(r), NEW_TOKENS, ("\n",)) for r in rows(N_GENERATE)]
    scoring = [LoglikelihoodRequest(prompt(r), " " + r["answers"][0]) for r in rows(N_SCORE)]
    results: Dict[str, object] = {"generating": generating, "scoring": scoring}
    monkeypatch.chdir(tmp_path)
    spec = ModelSpec(kind="hf-causal", location=model_dir, dtype="float32", backend="vllm",
                     options={"gpu_memory_utilization": 0.5, "concurrency": 64, "max_retries": 1})
    engine = served.load(spec, device="cuda", batch_size=1, progress=False)
    try:
        results["vllm_generate"] = timed(lambda: engine.generate(generating))
        results["vllm_score"] = timed(lambda: engine.loglikelihood(scoring))
    finally:
        engine.close()
    local = hf.load(ModelSpec(kind="hf-causal", location=model_dir, dtype="float32"), device="cuda",
                    batch_size=32, progress=False)
    results["hf_generate"] = timed(lambda: local.generate(generating))
    results["hf_score"] = timed(lambda: local.loglikelihood(scoring))
    whole = local._encode([r.context + r.continuation for r in scoring])
    contexts = local._encode([r.context.rstrip() for r in scoring])
    results["n_tokens"] = [len(a) - len(b) for a, b in zip(whole, contexts)]
    return results


def test_vllm_agrees_with_the_hf_backend(small_model, tmp_path, monkeypatch):
    results = both(small_model, tmp_path, monkeypatch)
    vllm_text = [g.text for g in results["vllm_generate"][0]]
    hf_text = [g.text for g in results["hf_generate"][0]]
    differ = [(i, a, b) for i, (a, b) in enumerate(zip(vllm_text, hf_text)) if a != b]
    for i, a, b in differ:
        print(f"generation {i} differs: vllm {a!r} | hf {b!r}")
    assert len(differ) <= 0.02 * N_GENERATE, f"{len(differ)} of {N_GENERATE} generations differ"
    gaps = [abs(v.logprob - h.logprob) / max(n, 1) for v, h, n in
            zip(results["vllm_score"][0], results["hf_score"][0], results["n_tokens"])]
    assert max(gaps) <= 1e-3, f"largest log-likelihood gap {max(gaps):.2e} nats per token"
    for kind, n in (("generate", N_GENERATE), ("score", N_SCORE)):
        vllm_rate, hf_rate = n / results[f"vllm_{kind}"][1], n / results[f"hf_{kind}"][1]
        print(f"{kind:<9} vllm {vllm_rate:8.1f} req/s | hf {hf_rate:8.1f} req/s")
