"""The GPU path (marker `gpu`): bf16 chosen by `dtype: auto`, an automatic batch size, and a model of a few hundred
million parameters built from config (GPT-2 medium's shape, random weights, the tiny tokenizer), run through the
harness. Prints throughput against a bare transformers loop and peak GPU memory (run with -s to see them):

    python -m pytest -m gpu tests/test_gpu.py -s

Skips, saying why, where torch sees no CUDA device (CPU-only CI).
"""
from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of scripts, not an installed package
from benchmarks.throughput import bare_generate, bare_loglikelihood  # noqa: E402  (the same bare loops)

DEMO = ROOT / "tasks" / "data" / "demo"
# GPT-2 medium's shape; with the tiny tokenizer's 512-token vocabulary about 304M parameters.
MEDIUM = dict(n_layer=24, n_embd=1024, n_head=16, n_positions=1024)
N_SCORE, N_GENERATE, NEW_TOKENS, BARE_BATCH = 2048, 256, 32, 64

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA GPU: torch.cuda.is_available() is False here (CPU-only machines skip "
                              "the GPU tier; run `python -m pytest -m gpu tests/test_gpu.py -s` on a GPU machine)"),
]


# ---------------------------------------------------------------- the model and the workload


def build_medium_gpt2(folder: Path, tokenizer_dir: str, shape: Dict[str, int] = MEDIUM) -> Path:
    """A seeded random GPT-2 built from config, saved as bf16 safetensors with its tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    tokenizer.model_max_length = shape["n_positions"]  # the tiny tokenizer says 128; the model reads n_positions
    config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config).to(torch.bfloat16).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


def qa_rows(n: int) -> List[dict]:
    """Real-length prompts: the demo QA train split, repeated to `n` rows."""
    rows = [json.loads(line) for line in (DEMO / "qa_train.jsonl").read_text(encoding="utf-8").splitlines()]
    return [rows[i % len(rows)] for i in range(n)]


def prompt(row: dict) -> str:
    return f"Passage: {row['context']}\nQuestion: {row['question']}\nAnswer:"


def timed(device: torch.device, work: Callable[[], object]) -> Dict[str, float]:
    """Seconds and peak allocated GPU memory of `work()`, after one untimed warm-up call."""
    work()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"seconds": time.perf_counter() - started, "peak_gib": peak}


# ---------------------------------------------------------------- bare loops: the benchmark's (benchmarks/throughput.py)


def harness_side(model_dir: Path, device: str, scoring: list, generating: list) -> Dict[str, dict]:
    """The harness's backend (dtype and batch size `auto`) on the requests; its GPU memory goes with it on return."""
    from harness.models.hf import HFCausalBackend

    backend = HFCausalBackend(str(model_dir), device=device, dtype="auto", batch_size="auto")
    return {
        "harness_loglikelihood": timed(backend.device, lambda: backend.loglikelihood(scoring)),
        "harness_generate": timed(backend.device, lambda: backend.generate(generating)),
        "info": {**backend.model_info(), "batch_size": backend.batch_size, "auto_batch": backend._auto_batch},
    }


def compare_with_bare_loops(model_dir: Path, device: str = "auto", n_score: int = N_SCORE,
                            n_generate: int = N_GENERATE, new_tokens: int = NEW_TOKENS) -> Dict[str, dict]:
    """Requests per second and peak GPU memory: the harness's backend against the benchmark's bare loops on the
    same model, dtype and requests."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.requests import GenerateRequest, LoglikelihoodRequest

    pairs = [(prompt(row), " " + row["answers"][0]) for row in qa_rows(n_score)]
    prompts = [prompt(row) for row in qa_rows(n_generate)]
    results = harness_side(model_dir, device, [LoglikelihoodRequest(c, x) for c, x in pairs],
                           [GenerateRequest(p, new_tokens, ()) for p in prompts])
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16 if torch.cuda.is_available()
                                                 else torch.float32).to(results["info"]["device"]).eval()
    on = model.device
    results["bare_loglikelihood"] = timed(on, lambda: bare_loglikelihood(model, tokenizer, pairs, BARE_BATCH, on))
    results["bare_generate"] = timed(on, lambda: bare_generate(model, tokenizer, prompts, new_tokens, BARE_BATCH, on))
    for kind, n in (("loglikelihood", n_score), ("generate", n_generate)):
        for side in ("harness", "bare"):
            results[f"{side}_{kind}"]["requests_per_s"] = n / results[f"{side}_{kind}"]["seconds"]
    return results


def report(results: Dict[str, dict]) -> str:
    info = results["info"]
    lines = [f"model: {info['n_parameters'] / 1e6:.0f}M parameters, {info['dtype']} on {info['device']} "
             f"({torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}), harness batch size "
             f"{'auto -> ' if info['auto_batch'] else ''}{info['batch_size']}, bare loop batch {BARE_BATCH}"]
    for kind in ("loglikelihood", "generate"):
        harness, bare = results[f"harness_{kind}"], results[f"bare_{kind}"]
        lines.append(f"{kind:<14} harness {harness['requests_per_s']:8.1f} req/s (peak {harness['peak_gib']:.2f} GiB)"
                     f" | bare loop {bare['requests_per_s']:8.1f} req/s (peak {bare['peak_gib']:.2f} GiB)"
                     f" | ratio {harness['requests_per_s'] / bare['requests_per_s']:.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def medium_entry(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    entry = tmp_path_factory.mktemp("gpu-submissions") / "gpt2-medium-random"
    build_medium_gpt2(entry / "model", tiny_tokenizer_dir)
    (entry / "submission.yaml").write_text("team: gpu\nname: gpt2-medium-random\nkind: hf-causal\nmodel: model\n"
                                           "dtype: auto\n", encoding="utf-8")
    return entry


class GpuMemorySampler(threading.Thread):
    """Peak device-wide GPU memory in use while a child process (the model's) runs: the parent cannot ask the
    child's allocator, so it samples `torch.cuda.mem_get_info` and subtracts what was in use before."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        free, total = torch.cuda.mem_get_info()
        self.baseline, self.peak, self.interval, self.done = total - free, 0, interval, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            free, total = torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free - self.baseline)
            time.sleep(self.interval)

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.peak / 2**30


# ---------------------------------------------------------------- the tests


def test_backend_chooses_bf16_and_its_batch_size_and_keeps_up_with_a_bare_loop(medium_entry):
    results = compare_with_bare_loops(medium_entry / "model")
    print("\n" + report(results))
    info = results["info"]
    assert 2e8 < info["n_parameters"] < 6e8, "a model of a few hundred million parameters"
    assert info["dtype"] == "bfloat16" and info["device"].startswith("cuda")
    assert info["auto_batch"] and info["batch_size"] >= 1
    for kind in ("loglikelihood", "generate"):
        harness, bare = results[f"harness_{kind}"], results[f"bare_{kind}"]
        assert harness["requests_per_s"] >= 0.5 * bare["requests_per_s"], f"{kind}: the harness is far slower"
        assert harness["peak_gib"] > 0.5, "the weights alone are 0.6 GiB in bf16: the model did not run on the GPU"


def test_demo_suite_runs_through_the_harness_on_the_gpu(medium_entry, tmp_path):
    """The organizer's code path: Evaluator -> isolated child -> backend on the GPU, every demo task."""
    from harness.compose import compose, suite_tasks
    from harness.execution.evaluator import Evaluator

    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false", "device=auto",
                   "batch_size=auto"])  # start at 64 rows, shrink on CUDA out-of-memory
    evaluator = Evaluator(cfg, suite_tasks(cfg), echo=print)
    sampler = GpuMemorySampler()
    sampler.start()
    started = time.perf_counter()
    records = evaluator.evaluate(medium_entry)
    wall = time.perf_counter() - started
    peak = sampler.stop()
    job = evaluator.jobs["gpt2-medium-random"]
    model = job.timings["model"]
    examples = sum(r["counts"]["examples"] for r in records)
    print(f"\ndemo suite through the harness: {len(records)} tasks, {examples} examples, {wall:.1f} s wall "
          f"(model process {job.wall_s:.1f} s: start {job.timings['startup_s']:.1f} s, load {job.timings['load_s']:.1f} s,"
          f" " + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in sorted(job.timings["types"].items()))
          + f"); {model['dtype']} on {model['device']}; peak GPU memory in use {peak:.2f} GiB")
    assert [r["status"] for r in records] == ["ok"] * 5, [(r["task"], r["status"], r["reason"]) for r in records]
    assert model["dtype"] == "bfloat16" and model["device"].startswith("cuda")
    assert model["n_parameters"] > 2e8
    assert peak > 0.5, "the weights alone are 0.6 GiB in bf16: the model did not run on the GPU"


def test_ray_executor_gives_each_job_a_gpu(medium_entry, tmp_path):
    """Several GPUs in one machine through `executor=ray` (a local cluster that counts the CUDA devices)."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    from harness.cli import main

    subs = tmp_path / "subs"
    for i in range(2):
        shutil.copytree(medium_entry, subs / f"entry-{i}")
        text = (subs / f"entry-{i}" / "submission.yaml").read_text(encoding="utf-8")
        (subs / f"entry-{i}" / "submission.yaml").write_text(text.replace("gpt2-medium-random", f"entry-{i}"),
                                                             encoding="utf-8")
    code = main(["run", "suite=demo", "executor=ray", "executor.num_gpus=1", f"paths.submissions={subs}",
                 f"paths.results={tmp_path / 'store'}", f"paths.leaderboards={tmp_path / 'boards'}", "progress=false"])
    assert code == 0
    for i in range(2):
        for task in ("demo_qa", "demo_translation"):
            record = json.loads((tmp_path / "store" / f"entry-{i}" / f"{task}.json").read_text(encoding="utf-8"))
            assert record["status"] == "ok", record["reason"]
