"""Time plain rouge-score against harness.metrics.rouge's fast path on the same pairs, in the same run.

    python benchmarks/rouge_speed.py --data DIR [--refs gold-test-sentences.txt] [--preds topic-convs2s-test-output.txt]
    python benchmarks/rouge_speed.py                      # synthetic text

With --data, DIR holds line-aligned text files, one summary per line (e.g. the XSum full-test predictions folder:
gold-test-sentences.txt and topic-convs2s-test-output.txt, 11,334 pairs). Without it, synthetic pairs are made.
Prints pairs/s for plain `RougeScorer.score` and for the fast path (cold caches: serial and with worker
processes; then warm: the same references already cached, as for later submissions), the speed-up ratios, and
asserts that every per-item f-measure is identical. CPU seconds (this process + its workers) are printed too: on a
shared machine wall-clock ratios move with other load, CPU-time ratios much less.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np


def synthetic_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    vocab = ("the a of to in and police said government minister running ran runs connection connected "
             "football club players season league people country economy markets growth companies "
             "announced announcing announcement report reported reporting 2018 £5m u.s. o'neill").split()

    def text(k: int) -> str:
        return " ".join(rng.choice(vocab) for _ in range(k)) + " ."

    refs = [text(rng.randint(12, 35)) for _ in range(n)]
    preds = [text(rng.randint(12, 35)) for _ in range(n)]
    return refs, preds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder with line-aligned reference and prediction files")
    ap.add_argument("--refs", default="gold-test-sentences.txt", help="reference file name inside --data")
    ap.add_argument("--preds", default="topic-convs2s-test-output.txt", help="prediction file name inside --data")
    ap.add_argument("--n", type=int, default=11334, help="number of synthetic pairs (without --data)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    ap.add_argument("--n-jobs", type=int, default=None, help="worker processes for the fast path (default: CPUs)")
    ap.add_argument("--no-stemmer", action="store_true")
    args = ap.parse_args(argv)

    from rouge_score import rouge_scorer

    import harness.metrics.rouge as fast_rouge
    from harness.data import read_lines  # split as the harness's `format: text` reader splits
    from harness.metrics import build_metric

    if args.data:
        refs = read_lines(Path(args.data) / args.refs)
        preds = read_lines(Path(args.data) / args.preds)
        if len(refs) != len(preds):
            sys.exit(f"{args.refs}: {len(refs)} lines but {args.preds}: {len(preds)} lines")
        source = f"{args.data} ({args.refs} vs {args.preds})"
    else:
        refs, preds = synthetic_pairs(args.n)
        source = "synthetic text"
    if args.limit:
        refs, preds = refs[: args.limit], preds[: args.limit]
    n = len(refs)
    use_stemmer = not args.no_stemmer
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    print(f"pairs: {n} from {source}; types {types}; use_stemmer={use_stemmer}; cpus={os.cpu_count()}")

    # plain rouge-score
    def cpu_seconds() -> float:  # this process and its reaped children (the worker processes)
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    scorer = rouge_scorer.RougeScorer(types, use_stemmer=use_stemmer)
    c0, t0 = cpu_seconds(), time.perf_counter()
    results = [scorer.score(r, p) for r, p in zip(refs, preds)]
    t_plain, c_plain = time.perf_counter() - t0, cpu_seconds() - c0
    plain = np.array([[res[k].fmeasure for k in types] for res in results], dtype=np.float64)

    def fast(n_jobs, cold=True):
        if cold:  # empty the module caches, as in a fresh process
            fast_rouge._REFERENCE_CACHE.clear()
            fast_rouge._SEEN_REFERENCE_SETS.clear()
            fast_rouge._STEMMER = None
        metric = build_metric("rouge", {"use_stemmer": use_stemmer, "n_jobs": n_jobs})
        targets = [[r] for r in refs]
        c, t = cpu_seconds(), time.perf_counter()
        stats = metric.item_stats(preds, targets)
        return (time.perf_counter() - t, cpu_seconds() - c), stats, metric

    t_serial, s_serial, _ = fast(1)
    t_par, s_par, metric = fast(args.n_jobs)
    fast(args.n_jobs, cold=False)  # second call on these references: the parent profiles and keeps them
    t_warm, s_warm, _ = fast(args.n_jobs, cold=False)  # third call: references cached

    for label, s in (("serial", s_serial), ("parallel", s_par), ("warm", s_warm)):
        if s.shape != plain.shape or not np.array_equal(s, plain):
            bad = np.argwhere(s != plain)
            raise AssertionError(f"fast path ({label}) differs from rouge-score at {len(bad)} entries, e.g. {bad[:5]}")

    def row(label, tc):
        t, c = tc
        return (f"{label:<44s} {t:8.3f} s {n / t:8.0f} pairs/s  x{t_plain / t:5.2f}   "
                f"| cpu {c:7.3f} s  x{c_plain / c:5.2f}")

    print(f"{'':<44s} {'wall':>10s} {'throughput':>14s} {'ratio':>6s}   | cpu time (all processes)")
    print(row("plain rouge-score RougeScorer.score", (t_plain, c_plain)))
    print(row("fast path, cold caches, 1 process", t_serial))
    print(row(f"fast path, cold caches, n_jobs={metric.n_jobs}", t_par))
    print(row(f"fast path, references cached, n_jobs={metric.n_jobs}", t_warm))
    scores = metric.aggregate(s_par)
    print("identical per-item f-measures: yes (all %d x %d values equal)" % plain.shape)
    print("scores:", ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    print("signature:", metric.signature())
    return 0


if __name__ == "__main__":
    sys.exit(main())
