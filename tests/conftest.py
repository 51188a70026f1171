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
