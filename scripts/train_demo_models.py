#!/usr/bin/env python
"""Train the two tiny demo submissions (a GPT-2 and a T5) on the English and Chinese demo train sets together
(tasks/data/demo, tasks/data/demo_zh), on a CPU, in a few minutes.

    python scripts/train_demo_models.py                          # writes submissions/tiny-gpt2, submissions/tiny-t5
    python scripts/train_demo_models.py --untrained-out /tmp/u   # also saves the seeded, untrained copies

Both models share one byte-level BPE tokenizer trained here on the demo train texts. They are trained with the
prompt formats of the demo tasks (tasks/task/demo_*.yaml), so that `harness run suite=demo` and `suite=demo_zh`
show them beating the untrained copies. Seeded and deterministic; single-threaded by default (--threads 1), so the result does not
depend on the core count and a busy machine slows it down less.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tasks" / "data" / "demo"
DATA_ZH = ROOT / "tasks" / "data" / "demo_zh"
SEED = 1234
MAX_MODEL_BYTES = 5 * 1024 * 1024
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]  # ids 0..3

# The prompt formats of the demo tasks; `{x}` is the field. The target follows the prompt directly.
PROMPTS = {
    "translation": "Translate German to English.\nGerman: {de}\nEnglish:",
    "summarization": "Summarize the article in one sentence.\nArticle: {document}\nSummary:",
    "qa": "Answer with a span from the passage.\nPassage: {context}\nQuestion: {question}\nAnswer:",
    "classification": "Review: {text}\nSentiment:",
    "zh_translation": "Translate English to Chinese.\nEnglish: {en}\nChinese:",
    "zh_summarization": "用一句话总结这篇文章。\n文章：{document}\n总结：",
    "zh_qa": "根据文章回答问题。\n文章：{context}\n问题：{question}\n答案：",
    "zh_classification": "评论：{text}\n情感：",
}
ZH_LABELS = {"positive": "正面", "negative": "负面", "neutral": "中性"}  # demo_zh_classification's verbalisers
TARGETS = {
    "translation": lambda r: " " + r["en"],
    "summarization": lambda r: " " + r["summary"],
    "qa": lambda r: " " + r["answers"][0],
    "classification": lambda r: " " + r["label"],
    "zh_translation": lambda r: " " + r["zh"],
    "zh_summarization": lambda r: " " + r["summary"],
    "zh_qa": lambda r: " " + r["answers"][0],
    "zh_classification": lambda r: " " + ZH_LABELS[r["label"]],  # the harness scores " " + label (target_delimiter)
}
TASKS = ["translation", "summarization", "qa", "classification", "lm",
         "zh_translation", "zh_summarization", "zh_qa", "zh_classification", "zh_lm"]
# How often each task's batches come up in training (the two languages equally).
_CAUSAL = {"translation": 0.25, "summarization": 0.2, "qa": 0.25, "classification": 0.1, "lm": 0.2}
_SEQ2SEQ = {"translation": 0.32, "summarization": 0.3, "qa": 0.3, "classification": 0.08}
CAUSAL_WEIGHTS = {**_CAUSAL, **{f"zh_{t}": w for t, w in _CAUSAL.items()}}
SEQ2SEQ_WEIGHTS = {**_SEQ2SEQ, **{f"zh_{t}": w for t, w in _SEQ2SEQ.items()}}

SUBMISSION_YAML = """# {comment}: python scripts/train_demo_models.py
team: {team}
name: {name}
kind: {kind}
model: model
"""


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def examples(split: str) -> dict[str, list[tuple[str, str]]]:
    """task -> [(prompt, target)]; for lm the prompt is empty and the target is the whole text."""
    out = {}
    for task in TASKS:
        folder, name = (DATA_ZH, task[3:]) if task.startswith("zh_") else (DATA, task)
        rows = read_jsonl(folder / f"{name}_{split}.jsonl")
        if name == "lm":
            out[task] = [("", r["text"]) for r in rows]
        else:
            out[task] = [(PROMPTS[task].format(**r), TARGETS[task](r)) for r in rows]
    return out


# ------------------------------------------------------------------------------------------------ tokenizer

def train_tokenizer(train: dict[str, list[tuple[str, str]]], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    texts = [p + t for task in TASKS for p, t in train[task]]
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=512)
    assert [fast.convert_tokens_to_ids(t) for t in SPECIALS] == [0, 1, 2, 3]
    return fast


# ------------------------------------------------------------------------------------------------ models

def build_models(vocab: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    torch.manual_seed(SEED)
    gcfg = GPT2Config(vocab_size=vocab, n_positions=512, n_embd=128, n_layer=2, n_head=4, n_inner=512,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1, eos_token_id=2,
                      pad_token_id=0, tie_word_embeddings=True)
    gpt2 = GPT2LMHeadModel(gcfg)
    torch.manual_seed(SEED + 1)
    tcfg = T5Config(vocab_size=vocab, d_model=128, d_kv=32, d_ff=256, num_layers=2, num_decoder_layers=2,
                    num_heads=4, dropout_rate=0.0, feed_forward_proj="relu", decoder_start_token_id=0,
                    pad_token_id=0, eos_token_id=2, bos_token_id=1, tie_word_embeddings=True,
                    relative_attention_num_buckets=32, relative_attention_max_distance=128)
    t5 = T5ForConditionalGeneration(tcfg)
    for m in (gpt2, t5):
        m.generation_config.pad_token_id = 0
        m.generation_config.eos_token_id = 2
    gpt2.generation_config.bos_token_id = 1
    t5.generation_config.decoder_start_token_id = 0
    return gpt2, t5


# ------------------------------------------------------------------------------------------------ batches

class Encoded:
    """Token ids of every example, per task: (prompt ids, target ids)."""

    def __init__(self, tok, exs: dict[str, list[tuple[str, str]]], max_len: int = 512):
        self.data: dict[str, list[tuple[list[int], list[int]]]] = {}
        for task, pairs in exs.items():
            rows = []
            for p, t in pairs:
                pi = tok(p, add_special_tokens=False)["input_ids"] if p else []
                ti = tok(t, add_special_tokens=False)["input_ids"]
                if len(pi) + len(ti) + 2 > max_len:
                    pi = pi[: max_len - len(ti) - 2]
                rows.append((pi, ti))
            self.data[task] = rows


def causal_batch(rows, rng: random.Random | None, prompt_weight: float):
    """[<s>]? prompt target </s>, right-padded; per-token loss weights (prompt_weight on the prompt).

    With an rng, half the rows start with <s> (so the model works with and without it); without, none do."""
    import torch

    seqs, weights = [], []
    for pi, ti in rows:
        bos = [1] if rng is not None and rng.random() < 0.5 else []  # both with and without a leading <s>
        ids = bos + pi + ti + [2]
        w = [prompt_weight] * (len(bos) + len(pi)) + [1.0] * (len(ti) + 1)
        if not pi:  # plain text: every token counts
            w = [1.0] * len(ids)
        seqs.append(ids)
        weights.append(w)
    n = max(map(len, seqs))
    ids = torch.zeros(len(seqs), n, dtype=torch.long)
    att = torch.zeros(len(seqs), n, dtype=torch.long)
    wt = torch.zeros(len(seqs), n)
    for i, (s, w) in enumerate(zip(seqs, weights)):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
        wt[i, : len(s)] = torch.tensor(w)
    return ids, att, wt


def causal_loss(model, ids, att, wt):
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
    tgt, w = ids[:, 1:], wt[:, 1:]
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), reduction="none").view_as(tgt)
    return (nll * w).sum() / w.sum(), (nll * (w == 1.0)).sum(), (w == 1.0).sum()


def seq2seq_batch(rows):
    import torch

    srcs = [pi for pi, _ in rows]
    tgts = [ti + [2] for _, ti in rows]
    ns, nt = max(map(len, srcs)), max(map(len, tgts))
    ids = torch.zeros(len(rows), ns, dtype=torch.long)
    att = torch.zeros(len(rows), ns, dtype=torch.long)
    labels = torch.full((len(rows), nt), -100, dtype=torch.long)
    for i, (s, t) in enumerate(zip(srcs, tgts)):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
        labels[i, : len(t)] = torch.tensor(t)
    return ids, att, labels


def seq2seq_loss(model, ids, att, labels):
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=att, labels=labels).logits
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), reduction="sum",
                          ignore_index=-100)
    n = (labels != -100).sum()
    return nll / n, nll, n


def sample_batch(enc: Encoded, task: str, rng: random.Random, token_budget: int, max_rows: int):
    """Rows of one task until the padded batch would exceed token_budget tokens."""
    pool = enc.data[task]
    rows, longest = [], 0
    while len(rows) < max_rows:
        r = pool[rng.randrange(len(pool))]
        n = len(r[0]) + len(r[1]) + 2
        if rows and max(longest, n) * (len(rows) + 1) > token_budget:
            break
        rows.append(r)
        longest = max(longest, n)
    return rows


# ------------------------------------------------------------------------------------------------ training

def train(model, kind: str, enc: Encoded, steps: int, lr: float, token_budget: int, prompt_weight: float,
          seed: int, log_every: int = 100) -> dict[str, float]:
    import torch

    weights = CAUSAL_WEIGHTS if kind == "causal" else SEQ2SEQ_WEIGHTS
    tasks = list(weights)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    running = {t: [] for t in tasks}
    t0 = time.time()
    for step in range(1, steps + 1):
        task = rng.choices(tasks, weights=[weights[t] for t in tasks])[0]
        rows = sample_batch(enc, task, rng, token_budget, max_rows=32)
        if kind == "causal":
            loss, _, _ = causal_loss(model, *causal_batch(rows, rng, prompt_weight))
        else:
            loss, _, _ = seq2seq_loss(model, *seq2seq_batch(rows))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running[task] = (running[task] + [loss.item()])[-20:]
        if step % log_every == 0 or step == steps:
            avg = "  ".join(f"{t[:5]} {sum(v) / len(v):.3f}" for t, v in running.items() if v)
            print(f"  [{kind}] step {step}/{steps}  {time.time() - t0:5.1f}s  {avg}", flush=True)
    model.eval()
    return {t: sum(v) / len(v) for t, v in running.items() if v}


def test_losses(model, kind: str, enc: Encoded) -> dict[str, float]:
    """Mean per-token loss on the targets of each test set (every token for lm), <s> never prepended."""
    import torch

    out = {}
    with torch.no_grad():
        for task, rows in enc.data.items():
            if kind == "seq2seq" and task.endswith("lm"):
                continue
            tot, n = 0.0, 0
            for i in range(0, len(rows), 16):
                chunk = rows[i: i + 16]
                if kind == "causal":
                    _, s, k = causal_loss(model, *causal_batch(chunk, None, 0.0))
                else:
                    _, s, k = seq2seq_loss(model, *seq2seq_batch(chunk))
                tot, n = tot + s.item(), n + k.item()
            out[task] = tot / n
    return out


def generate(model, kind: str, tok, prompt: str, max_new_tokens: int = 48) -> str:
    import torch

    ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        if kind == "causal":
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=2, pad_token_id=0)[0, ids.shape[1]:]
        else:
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=2, pad_token_id=0, decoder_start_token_id=0)[0]
    text = tok.decode(out, skip_special_tokens=True)
    return text.split("\n")[0].strip()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def save(model, tok, path: Path) -> int:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    # transformers 5 writes its own class name ("TokenizersBackend"); the generic name loads in 4.x and 5.x alike.
    cfg_path = path / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    size = dir_bytes(path)
    if size > MAX_MODEL_BYTES:
        sys.exit(f"ERROR: {path} is {size / 1e6:.2f} MB, over the {MAX_MODEL_BYTES / 1e6:.2f} MB limit")
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "submissions", help="where tiny-gpt2/ and tiny-t5/ go")
    ap.add_argument("--untrained-out", type=Path, default=None,
                    help="also save the seeded, untrained models to DIR/tiny-gpt2 and DIR/tiny-t5 (not committed)")
    # Small batches and many steps learn most per CPU second at this size (checked on the demo data).
    ap.add_argument("--gpt2-steps", type=int, default=4400)
    ap.add_argument("--gpt2-lr", type=float, default=2e-3)
    ap.add_argument("--gpt2-token-budget", type=int, default=512, help="padded tokens per GPT-2 batch")
    ap.add_argument("--t5-steps", type=int, default=3400)
    ap.add_argument("--t5-lr", type=float, default=1.5e-3)
    ap.add_argument("--t5-token-budget", type=int, default=768, help="padded tokens per T5 batch (source + target)")
    ap.add_argument("--prompt-loss-weight", type=float, default=0.1,
                    help="weight of prompt tokens in the causal loss (the target and plain texts weigh 1)")
    ap.add_argument("--vocab-size", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=1, help="torch threads; results are reproducible for a given value")
    ap.add_argument("--samples", type=int, default=2, help="greedy outputs printed per task")
    args = ap.parse_args()

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    random.seed(SEED)
    torch.manual_seed(SEED)
    t_start, cpu_start = time.time(), time.process_time()

    train_ex, test_ex = examples("train"), examples("test")
    tok = train_tokenizer(train_ex, args.vocab_size)
    print(f"tokenizer: {len(tok)} tokens")
    enc_train, enc_test = Encoded(tok, train_ex), Encoded(tok, test_ex)
    for task in TASKS:
        lens = [len(p) + len(t) for p, t in enc_train.data[task]]
        print(f"  {task:15s} {len(lens):5d} train examples, mean {sum(lens) / len(lens):.0f} / max {max(lens)} tokens")

    gpt2, t5 = build_models(len(tok))
    print(f"gpt2: {gpt2.num_parameters() / 1e6:.2f}M parameters, t5: {t5.num_parameters() / 1e6:.2f}M parameters")
    if args.untrained_out:
        for name, m in (("tiny-gpt2", gpt2), ("tiny-t5", t5)):
            save(m, tok, args.untrained_out / name / "model")
        print(f"saved untrained copies under {args.untrained_out}")
    before = {"causal": test_losses(gpt2, "causal", enc_test), "seq2seq": test_losses(t5, "seq2seq", enc_test)}

    results = {}
    for name, model, kind, steps, lr, budget, seed in (
            ("tiny-gpt2", gpt2, "causal", args.gpt2_steps, args.gpt2_lr, args.gpt2_token_budget, SEED + 10),
            ("tiny-t5", t5, "seq2seq", args.t5_steps, args.t5_lr, args.t5_token_budget, SEED + 20)):
        t0, c0 = time.time(), time.process_time()
        print(f"training {name} ({steps} steps, lr {lr:g}, {budget} tokens a batch)")
        final = train(model, kind, enc_train, steps, lr, budget, args.prompt_loss_weight, seed, log_every=200)
        secs = (time.time() - t0, time.process_time() - c0)
        after = test_losses(model, kind, enc_test)
        results[name] = (final, before[kind], after, secs)

    sizes = {}
    for name, model, team, kind, comment in (
            ("tiny-gpt2", gpt2, "demo-team-a", "hf-causal", "A tiny GPT-2 trained for a minute on the demo data"),
            ("tiny-t5", t5, "demo-team-b", "hf-seq2seq", "A tiny T5 trained for a minute on the demo data")):
        sub = args.out / name
        sizes[name] = save(model, tok, sub / "model")
        with open(sub / "submission.yaml", "w", encoding="utf-8", newline="\n") as f:
            f.write(SUBMISSION_YAML.format(comment=comment, team=team, name=name, kind=kind))

    print("\n=== results")
    ok = True
    for name, (final, b, a, secs) in results.items():
        print(f"{name}: trained in {secs[0]:.0f}s wall / {secs[1]:.0f}s CPU, saved {sizes[name] / 1e6:.2f} MB")
        print("  final train loss (last 20 batches): " + ", ".join(f"{t} {v:.3f}" for t, v in final.items()))
        for task in a:
            flag = "" if a[task] < b[task] - 0.5 else "   <-- not well below the untrained model"
            ok &= not flag
            print(f"  test loss {task:15s} untrained {b[task]:.3f}  trained {a[task]:.3f}{flag}")

    print("\n=== greedy outputs on test prompts")
    for name, model, kind in (("tiny-gpt2", gpt2, "causal"), ("tiny-t5", t5, "seq2seq")):
        print(f"--- {name}")
        for task in [t for t in TASKS if not t.endswith("lm")]:
            for p, t in test_ex[task][: args.samples]:
                short = p.rsplit("\n", 2 if task == "qa" else 1)[0].split("\n", 1)[-1][-90:].replace("\n", " | ")
                print(f"  [{task}] ...{short}\n     gold: {t.strip()}\n     pred: {generate(model, kind, tok, p)}")
    for task in ("lm", "zh_lm"):
        lm_prompt = test_ex[task][0][1][:40]
        print(f"  [{task}] {lm_prompt!r} -> {generate(gpt2, 'causal', tok, lm_prompt)!r}")
    print(f"\ntotal time {time.time() - t_start:.0f}s wall, {time.process_time() - cpu_start:.0f}s CPU")
    if not ok:
        print("WARNING: some trained test losses are not well below the untrained ones")


if __name__ == "__main__":
    main()
