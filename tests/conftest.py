"""Shared pytest fixtures. Keep each group in its own block."""
from __future__ import annotations

import pytest

# ---------------------------------------------------------------- tiny local models (HF backend tests)
# Built once per session into tmp folders from tests/tiny_models.py: a byte-level BPE tokenizer trained on a
# generated corpus, and randomly initialised (seeded) GPT-2 and T5 models saved as safetensors.
from tiny_models import make_tiny_gpt2, make_tiny_t5, tiny_corpus, train_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny_tokenizer")
    train_tokenizer(tiny_corpus(), folder=folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, tiny_tokenizer_dir) -> str:
    return str(make_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"), _load_tokenizer(tiny_tokenizer_dir)))


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory, tiny_tokenizer_dir) -> str:
    return str(make_tiny_t5(tmp_path_factory.mktemp("tiny_t5"), _load_tokenizer(tiny_tokenizer_dir)))


def _load_tokenizer(folder: str):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(folder)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch in this process on one thread. Tiny models gain nothing from threads, and on a busy machine OpenMP's
    hand-offs make each small matmul take milliseconds instead of microseconds."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

# ---------------------------------------------------------------- end of tiny local models


# ---------------------------------------------------------------- a scripted model process
@pytest.fixture
def scripted_jobs(monkeypatch):
    """Model jobs without a model: each job ends in the next status of `plan` (a list the test fills; "ok" answers
    every example with "a b c"); `calls` keeps each job's (model spec, keyword arguments)."""
    from harness import status
    from harness.execution import evaluator
    from harness.execution.isolation import JobOutcome

    plan, calls = [], []

    def run_job(model, jobs, **kwargs):
        calls.append((model, kwargs))
        outcome = JobOutcome(timings={"model": {"n_parameters": 1234}})
        state = plan.pop(0)
        for task, examples in jobs:
            if state == status.OK:
                outcome.predictions[task.name] = {e.id: "a b c" for e in examples}
                outcome.meta[task.name] = {}
            else:
                outcome.failures[task.name] = (state, f"scripted {state}", "")
        return outcome

    monkeypatch.setattr(evaluator, "run_job", run_job)
    return plan, calls

# ---------------------------------------------------------------- end of a scripted model process
