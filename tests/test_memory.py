"""Memory: the model process's peak grows with the batch, not with the number of examples. Ten times the examples
of a generation, a log-likelihood and a perplexity task must not raise its peak resident memory (getrusage of the
child) by more than 10%."""
from __future__ import annotations

import dataclasses

import pytest

from harness.compose import compose
from harness.execution.isolation import run_job
from tasks.examples import load_examples

TASKS = ("demo_summarization", "demo_classification", "demo_language_modeling")
BASE = 40  # examples per task in the small job


def job_peak(model_dir: str, tasks: dict, copies: int) -> int:
    """The child's peak RSS (bytes) answering `copies` x BASE examples of each task."""
    job = []
    for task in tasks.values():
        examples = load_examples(task)[:BASE]
        job.append((task, [dataclasses.replace(e, id=f"{e.id}-{k}") for k in range(copies) for e in examples]))
    model = {"kind": "hf-causal", "location": model_dir, "dtype": "float32", "trust_remote_code": False}
    outcome = run_job(model, job, device="cpu", batch_size=8, progress=False)
    assert not outcome.failures, outcome.failures
    assert all(len(outcome.predictions[name]) == copies * BASE for name in tasks)
    return outcome.peak_rss_bytes


@pytest.mark.slow
def test_ten_times_the_examples_do_not_raise_peak_memory_by_more_than_ten_percent(tiny_gpt2_dir):
    cfg = compose(["suite=demo", "tasks.demo_summarization.generation.max_new_tokens=8"])
    tasks = {name: cfg.tasks[name] for name in TASKS}
    small = job_peak(tiny_gpt2_dir, tasks, 1)
    large = job_peak(tiny_gpt2_dir, tasks, 10)
    print(f"child peak RSS: {small / 2**20:.1f} MiB for {BASE} examples per task, {large / 2**20:.1f} MiB for "
          f"{10 * BASE} ({(large / small - 1) * 100:+.1f}%)")
    assert large <= 1.10 * small
