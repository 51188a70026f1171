"""Throughput of the harness against a bare transformers loop over the same model and data, in the same run.

    python benchmarks/throughput.py                       # the shipped tiny GPT-2, demo data, CPU
    python benchmarks/throughput.py --model DIR --device cuda --batch-size 32 --repeat 8
    python benchmarks/throughput.py --model DIR --device cuda --serve vllm      # and through vLLM's server

Prints, for each workload, examples/s and tokens/s of
  - bare:    a plain loop, batches in dataset order, `model.generate` (greedy) or one forward per batch;
  - harness: the harness's backend answering the task's own requests (longest-first batching, order restored,
             stop handling, log-softmax over scored positions only), in this process;
  - job:     the whole isolated job as `harness run` starts it (fresh child interpreter, model load included);
and the ratio harness / bare (the target is >= 0.9). Then the no-op rerun: a second `harness run suite=demo` over
a complete store, its wall time and whether it imported torch (i.e. could have loaded a model). With `lm_eval`
installed it also times lm-evaluation-harness's HFLM on the same generation and perplexity requests.

Generation runs without stop strings in both loops so they produce the same number of tokens (EOS still ends a
row in both). Ratios are what to read: the machine is shared, so absolute numbers move between runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.compose import compose  # noqa: E402
from tasks import KINDS  # noqa: E402
from tasks.examples import load_examples  # noqa: E402


def task_examples(cfg, name: str, repeat: int):
    task = cfg.tasks[name]
    examples = load_examples(task)
    return task, [dataclasses.replace(e, id=f"{e.id}-{k}") for k in range(repeat) for e in examples]


def timed(fn, rounds: int = 1):
    """(result, best wall time over `rounds` calls): the minimum is the least disturbed by other load."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return out, best


# ---------------------------------------------------------------- bare loops


def bare_generate(model, tokenizer, prompts, max_new, batch_size, device):
    tokenizer.padding_side = "left"
    new_tokens = 0
    texts = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True).to(device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            if tokenizer.eos_token_id in row:
                row = row[:row.index(tokenizer.eos_token_id)]
            new_tokens += len(row)
            texts.append(tokenizer.decode(row, skip_special_tokens=True))
    return texts, new_tokens


def bare_loglikelihood(model, tokenizer, pairs, batch_size, device):
    """One forward per batch of context+continuation; sums the continuation's log-probs."""
    tokenizer.padding_side = "right"
    scored = 0
    out = []
    for i in range(0, len(pairs), batch_size):
        batch = pairs[i:i + batch_size]
        ids = [tokenizer(c + x, add_special_tokens=False)["input_ids"] for c, x in batch]
        n_cont = [len(tokenizer(x, add_special_tokens=False)["input_ids"]) for _, x in batch]
        width = max(map(len, ids))
        inp = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(inp)
        for r, row in enumerate(ids):
            inp[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=inp.to(device), attention_mask=mask.to(device)).logits.float(), -1)
        for r, row in enumerate(ids):
            span = range(len(row) - n_cont[r], len(row))
            out.append(sum(float(logp[r, t - 1, row[t]]) for t in span))
            scored += len(row)
    return out, scored


def bare_rolling(model, tokenizer, texts, window, batch_size, device):
    """Rolling log-likelihood as a plain loop computes it: [BOS] + tokens cut into windows of `window` positions,
    each predicting the tokens after the previous window (the last one moved back to read a whole window), one
    forward per batch of windows, a full log-softmax, the targets' log-probs summed per document."""
    windows = []  # (document, the ids read followed by the last target, number of targets scored at the end)
    for doc, text in enumerate(texts):
        sequence = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"]
        n_tokens, previous = len(sequence) - 1, 0
        for end in range(min(window, n_tokens), n_tokens + 1, window) if n_tokens else ():
            windows.append((doc, sequence[max(0, end - window):end + 1], end - previous))
            previous = end
        if previous < n_tokens:
            windows.append((doc, sequence[max(0, n_tokens - window):n_tokens + 1], n_tokens - previous))
    totals = [0.0] * len(texts)
    for i in range(0, len(windows), batch_size):
        batch = windows[i:i + batch_size]
        width = max(len(ids) - 1 for _, ids, _ in batch)
        inp = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(inp)
        for r, (_, ids, _) in enumerate(batch):
            inp[r, :len(ids) - 1] = torch.tensor(ids[:-1])
            mask[r, :len(ids) - 1] = 1
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=inp.to(device), attention_mask=mask.to(device)).logits.float(), -1)
        for r, (doc, ids, n_new) in enumerate(batch):
            targets = torch.tensor(ids[len(ids) - n_new:], device=logp.device)
            totals[doc] += float(logp[r, len(ids) - 1 - n_new:len(ids) - 1].gather(-1, targets[:, None]).sum())
    return totals


# ---------------------------------------------------------------- the harness


def harness_backend(model_dir, device, batch_size):
    from harness.models.hf import HFCausalBackend

    return HFCausalBackend(model_dir, device=device, dtype="auto", batch_size=batch_size)


def flat_requests(task, examples):
    reqs = KINDS[task.kind].requests(task, [e.inputs for e in examples])
    return [r for item in reqs for r in (item if isinstance(item, list) else [item])]


def line(label, n, tokens, seconds, base=None):
    ratio = f"   {(base / seconds):.2f}x bare" if base else ""
    print(f"  {label:<8} {n / seconds:9.1f} examples/s {tokens / seconds:10.1f} tokens/s {seconds:8.2f} s{ratio}")


def bench_generation(cfg, args, backend, model, tokenizer):
    task, examples = task_examples(cfg, "demo_summarization", args.repeat)
    requests = flat_requests(task, examples)
    requests = [dataclasses.replace(r, stop=(), max_new_tokens=args.new_tokens) for r in requests]
    prompts = [r.prompt for r in requests]
    print(f"generation: {len(requests)} prompts of demo_summarization, {args.new_tokens} new tokens, "
          f"batch {args.batch_size}")
    bare_generate(model, tokenizer, prompts[:args.batch_size], 4, args.batch_size, args.device)  # warm-up
    (bare_texts, n_new), t_bare = timed(lambda: bare_generate(model, tokenizer, prompts, args.new_tokens,
                                                             args.batch_size, args.device), args.rounds)
    answers, t_harness = timed(lambda: backend.generate(requests), args.rounds)
    n_harness = sum(len(tokenizer(a.text, add_special_tokens=False)["input_ids"]) for a in answers)
    same = sum(a.text == b for a, b in zip(answers, bare_texts))
    line("bare", len(prompts), n_new, t_bare)
    line("harness", len(prompts), n_new, t_harness, t_bare)
    print(f"  identical outputs: {same}/{len(prompts)} (harness re-tokenised {n_harness} new tokens)")
    return t_bare / t_harness


def bench_loglikelihood(cfg, args, backend, model, tokenizer):
    task, examples = task_examples(cfg, "demo_classification", args.repeat)
    requests = flat_requests(task, examples)
    pairs = [(r.context, r.continuation) for r in requests]
    print(f"log-likelihood: {len(requests)} (context, label) pairs of demo_classification, batch {args.batch_size}")
    (bare, tokens), t_bare = timed(lambda: bare_loglikelihood(model, tokenizer, pairs, args.batch_size, args.device),
                                   args.rounds)
    answers, t_harness = timed(lambda: backend.loglikelihood(requests), args.rounds)
    worst = max(abs(a.logprob - b) for a, b in zip(answers, bare))
    line("bare", len(pairs), tokens, t_bare)
    line("harness", len(pairs), tokens, t_harness, t_bare)
    print(f"  largest |harness - bare| log-likelihood: {worst:.2e}")
    return t_bare / t_harness


ROLLING_PROBE = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import torch
from benchmarks.throughput import bare_rolling, harness_backend, task_examples
from harness.compose import compose
from harness.requests import RollingRequest
side, model_dir, device = sys.argv[2], sys.argv[3], sys.argv[4]
batch, repeat, window = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
task, examples = task_examples(compose(["suite=demo"]), "demo_language_modeling", repeat)
texts = [e.inputs["text"] for e in examples]
backend = harness_backend(model_dir, device, batch)
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if side == "bare":
    values = bare_rolling(backend.model, backend.tokenizer, texts, window, batch, device)
else:
    values = [r.logprob for r in backend.rolling_loglikelihood([RollingRequest(t, window, window) for t in texts])]
seconds = time.perf_counter() - started
gpu = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "loaded_mib": loaded / 1024, "gpu_mib": gpu, "values": values}))
"""


def bench_rolling_memory(args):
    """Rolling log-likelihood of the demo documents, the bare loop and the harness each in a fresh process: time,
    peak memory (RSS; on CUDA also the peak allocated), and the largest difference between their values."""
    window = 16  # short windows: every document spans several, the last one moved back
    out = {}
    for side in ("bare", "harness"):
        done = subprocess.run([sys.executable, "-c", ROLLING_PROBE, str(ROOT), side, args.model, args.device,
                               str(args.batch_size), str(args.repeat * 8), str(window)],
                              capture_output=True, text=True, check=True)
        out[side] = json.loads(done.stdout.strip().splitlines()[-1])
    bare, harness = out["bare"], out["harness"]
    worst = max(abs(a - b) for a, b in zip(bare["values"], harness["values"]))
    print(f"rolling log-likelihood, {len(bare['values'])} documents in windows of {window}, each in a fresh process:")
    for side, r in out.items():
        gpu = f", GPU peak allocated {r['gpu_mib']:.0f} MiB" if r["gpu_mib"] is not None else ""
        print(f"  {side:8s} {r['seconds']:.2f} s, peak RSS {r['peak_mib']:.0f} MiB ({r['loaded_mib']:.0f} MiB after "
              f"the model loaded){gpu}")
    print(f"  harness / bare speed {bare['seconds'] / harness['seconds']:.2f} (target >= 0.95); largest "
          f"|harness - bare| per document {worst:.2e}")


def bench_job(cfg, args):
    """The isolated path `harness run` takes: child interpreter, model load, pooled requests, strict reading."""
    from harness.execution.isolation import run_job

    job = []
    for name in ("demo_summarization", "demo_classification", "demo_language_modeling"):
        task, examples = task_examples(cfg, name, args.repeat)
        job.append((task, examples))
    model = {"kind": "hf-causal", "location": args.model, "dtype": "auto", "trust_remote_code": False}
    outcome, seconds = timed(lambda: run_job(model, job, device=args.device, batch_size=args.batch_size,
                                             progress=False))
    n = sum(len(e) for _, e in job)
    print(f"isolated job (summarization + classification + language modeling, {n} examples): {seconds:.2f} s, "
          f"{n / seconds:.1f} examples/s incl. child start and model load; failures: {outcome.failures or 'none'}; "
          f"child peak RSS {outcome.peak_rss_bytes / 2**20:.0f} MiB")


def bench_served(cfg, args):
    """Generation through a serving engine (`--serve vllm|transformers-serve`) against backend hf, both as the
    isolated job `harness run` starts (engine start and model load included), on the same generation task."""
    from harness.execution.isolation import run_job

    task, examples = task_examples(cfg, "demo_summarization", args.repeat)
    results = {}
    for backend in ("hf", args.serve):
        model = {"backend": backend, "options": {"concurrency": args.concurrency} if backend != "hf" else {},
                 "kind": "hf-causal", "location": args.model, "dtype": "auto", "trust_remote_code": False}
        outcome, seconds = timed(lambda: run_job(model, [(task, examples)], device=args.device,
                                                 batch_size=args.batch_size, progress=False))
        if outcome.failures:
            print(f"  {backend}: failed: {outcome.failures}")
            return
        load = outcome.timings.get("startup_s", 0.0) + outcome.timings.get("load_s", 0.0)
        generate = outcome.timings["types"]["GenerateRequest"]["seconds"]
        results[backend] = outcome.predictions[task.name]
        print(f"  {backend:<18} {len(examples) / generate:8.1f} examples/s generating ({generate:.2f} s; job "
              f"{seconds:.2f} s incl. {load:.2f} s start and load)")
    same = sum(results["hf"][i] == results[args.serve][i] for i in results["hf"])
    print(f"  identical predictions: {same}/{len(examples)}")


def bench_noop_rerun():
    """A second `harness run suite=demo` over a complete store: wall time, and whether torch was imported."""
    probe = ("import json, sys, time; t = time.perf_counter(); from harness.cli import main; code = main(sys.argv[1:]);"
             "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules, 's': time.perf_counter() - t}),"
             " file=sys.stderr)")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        if (ROOT / "leaderboards" / "_store").is_dir():
            shutil.copytree(ROOT / "leaderboards" / "_store", store)
        argv = [sys.executable, "-c", probe, "run", "suite=demo", f"paths.results={store}",
                f"paths.leaderboards={Path(tmp) / 'boards'}", "progress=false"]
        runs = []
        for attempt in ("first", "second"):
            started = time.perf_counter()
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
            wall = time.perf_counter() - started
            report = json.loads(done.stderr.strip().splitlines()[-1])
            models = sum(line.startswith("running ") for line in done.stderr.splitlines())
            runs.append((attempt, wall, report, models))
        for attempt, wall, report, models in runs:
            print(f"  {attempt} run: exit {report['code']}, {wall:.2f} s wall (process start included), "
                  f"models loaded: {models}, torch imported by the driver: {report['torch']}")


# Each side runs in a fresh interpreter: after lm_eval's generate_until, generation in the same process (the
# harness's included) was seen to run ~10x slower, so sharing a process would measure that, not the two tools.
_SIDE = r"""
import dataclasses, json, sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks.throughput import flat_requests, task_examples
from harness.compose import compose
side, model, device, batch, repeat, new = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
cfg = compose(["suite=demo"])
task, examples = task_examples(cfg, "demo_summarization", repeat)
gen = [dataclasses.replace(r, stop=(), max_new_tokens=new) for r in flat_requests(task, examples)]
lm_task, lm_examples = task_examples(cfg, "demo_language_modeling", repeat)
roll = flat_requests(lm_task, lm_examples)
if side == "lm_eval":
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    lm = HFLM(pretrained=model, device=device, batch_size=batch)
    g = [Instance("generate_until", None, (r.prompt, {"until": [], "max_gen_toks": new, "do_sample": False}), i)
         for i, r in enumerate(gen)]
    r = [Instance("loglikelihood_rolling", None, (q.text,), i) for i, q in enumerate(roll)]
    run_gen, run_roll = (lambda: lm.generate_until(g, disable_tqdm=True)), (lambda: lm.loglikelihood_rolling(r, disable_tqdm=True))
else:
    from harness.models.hf import HFCausalBackend
    backend = HFCausalBackend(model, device=device, batch_size=batch)
    run_gen, run_roll = (lambda: backend.generate(gen)), (lambda: backend.rolling_loglikelihood(roll))
out = {"n_gen": len(gen), "n_roll": len(roll)}
for key, fn in (("gen", run_gen), ("roll", run_roll)):
    t = time.perf_counter(); fn(); out[key] = time.perf_counter() - t
print(json.dumps(out))
"""


def bench_lm_eval(cfg, args):
    """The same generation and perplexity requests through lm-evaluation-harness's HFLM, where it is installed."""
    import importlib.util

    if importlib.util.find_spec("lm_eval") is None:
        print("lm_eval: not installed (pip install lm_eval accelerate) - skipped")
        return
    sides = {}
    for side in ("harness", "lm_eval"):
        argv = [sys.executable, "-c", _SIDE, str(ROOT), side, args.model, args.device, str(args.batch_size),
                str(args.repeat), str(args.new_tokens)]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            print(f"lm_eval comparison failed ({side}): {done.stderr[-800:]}")
            return
        sides[side] = json.loads(done.stdout.strip().splitlines()[-1])
    h, lm = sides["harness"], sides["lm_eval"]
    print(f"lm_eval (HFLM, batch {args.batch_size}, each tool in its own process):")
    print(f"  generate_until {h['n_gen']} prompts: lm_eval {h['n_gen'] / lm['gen']:.1f} examples/s, harness "
          f"{h['n_gen'] / h['gen']:.1f} ({lm['gen'] / h['gen']:.2f}x lm_eval)")
    print(f"  loglikelihood_rolling {h['n_roll']} documents: lm_eval {h['n_roll'] / lm['roll']:.1f} docs/s, harness "
          f"{h['n_roll'] / h['roll']:.1f} ({lm['roll'] / h['roll']:.2f}x lm_eval)")


WIKITEXT_PROBE = """
import json, math, sys
sys.path.insert(0, sys.argv[1])
from omegaconf import OmegaConf
from harness.config import TaskConfig
from harness.metrics import build_metric
from harness.models.hf import HFCausalBackend
from harness.scoring import metric_options
from tasks import kind_of
model_dir, device, batch, rows_path = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
lines = open(rows_path, encoding="utf-8").read().splitlines()
rows = [(line + "\\n") for line in lines if line.strip()][:int(sys.argv[6])]
# the shipped wikitext2 recipe, with lm_eval's window: the model's whole length, windows not overlapping
task = OmegaConf.merge(OmegaConf.structured(TaskConfig), OmegaConf.load(sys.argv[1] + "/tasks/task/wikitext2.yaml"),
                       {"window": None, "stride": None})
kind = kind_of(task)
examples = [kind.make_example(task, str(i), {"text": row}, "rows") for i, row in enumerate(rows)]
backend = HFCausalBackend(model_dir, device=device, batch_size=batch)
answers = backend.rolling_loglikelihood(kind.requests(task, [e.inputs for e in examples]))
metric = build_metric("perplexity", metric_options(task, "perplexity"))
ours = metric.score(kind.predictions(task, answers), [e.target for e in examples])["bits_per_byte"]
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks.wikitext.preprocess_wikitext import process_results, wikitext_detokenizer
lm = HFLM(pretrained=model_dir, device=device, batch_size=batch)
docs = [{"page": row} for row in rows]
values = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", d, (wikitext_detokenizer(d),), i)
                                   for i, d in enumerate(docs)], disable_tqdm=True)
pairs = [process_results(d, [v])["bits_per_byte"] for d, v in zip(docs, values)]
theirs = -sum(v for v, _ in pairs) / sum(n for _, n in pairs) / math.log(2)  # lm_eval's bits_per_byte aggregation
print(json.dumps({"documents": len(rows), "harness": ours, "lm_eval": theirs, "max_length": backend.max_length}))
"""


def bench_wikitext_recipe(args):
    """lm-evaluation-harness's wikitext recipe (detokenised text read, bytes of the original counted, whole-window
    rolling windows) in both tools on the same model and WikiText-2 rows: their bits per byte."""
    import importlib.util

    rows = ROOT.parent / "shared" / "data" / "language_modeling" / "wikitext-2" / "wiki.test.raw.reconstructed"
    if importlib.util.find_spec("lm_eval") is None or not rows.is_file():
        print("wikitext recipe: needs lm_eval installed and the WikiText-2 rows in ../shared/data - skipped")
        return
    done = subprocess.run([sys.executable, "-c", WIKITEXT_PROBE, str(ROOT), args.model, args.device,
                           str(args.batch_size), str(rows), "300"], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        print(f"wikitext recipe comparison failed: {done.stderr[-800:]}")
        return
    r = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"wikitext recipe on the first {r['documents']} WikiText-2 test documents (window {r['max_length']}): "
          f"bits per byte harness {r['harness']:.10f}, lm_eval {r['lm_eval']:.10f}, |difference| "
          f"{abs(r['harness'] - r['lm_eval']):.1e} (target <= 1e-6)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "submissions" / "tiny-gpt2" / "model"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="copies of each demo test set")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="timed repetitions of each loop; the best is kept")
    parser.add_argument("--skip-job", action="store_true", help="skip the isolated job and the no-op rerun")
    parser.add_argument("--serve", choices=("vllm", "transformers-serve"),
                        help="also time generation through this serving engine against backend hf")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight to the serving engine")
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = compose(["suite=demo"])
    backend = harness_backend(args.model, args.device, args.batch_size)
    model, tokenizer = backend.model, backend.tokenizer  # the same weights and tokenizer for both loops
    print(f"model {args.model} on {args.device}, dtype {backend.dtype}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    ratios = [bench_generation(cfg, args, backend, model, tokenizer),
              bench_loglikelihood(cfg, args, backend, model, tokenizer)]
    print(f"harness / bare: generation {ratios[0]:.2f}, log-likelihood {ratios[1]:.2f} (target >= 0.9)")
    bench_rolling_memory(args)
    if not args.skip_job:
        bench_job(cfg, args)
        print("no-op rerun of `harness run suite=demo` over a complete store:")
        bench_noop_rerun()
    if args.serve:
        print(f"generation as an isolated job, demo_summarization x{args.repeat}: hf against {args.serve}")
        bench_served(cfg, args)
    bench_lm_eval(cfg, args)
    bench_wikitext_recipe(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
