"""Tiny, deterministic local models for tests: nothing is downloaded, everything is built from configs.

`tiny_corpus()` gives a few hundred template sentences, `train_tokenizer()` fits a byte-level BPE on them, and
`make_tiny_gpt2()` / `make_tiny_t5()` save randomly initialised (seeded) models next to that tokenizer, in
safetensors, so they load through `from_pretrained` exactly like a real checkpoint folder.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"

_SUBJECTS = ["The cat", "A farmer", "My neighbour", "The old ship", "Every student", "The river", "A small robot",
             "The teacher", "Our team", "The city council"]
_VERBS = ["watched", "painted", "carried", "followed", "described", "ignored", "visited", "repaired", "counted",
          "remembered"]
_OBJECTS = ["the red door", "a quiet village", "seven apples", "the northern road", "an empty bottle",
            "the morning news", "a broken clock", "the tall tower", "three letters", "the winter garden"]
_ENDINGS = ["yesterday.", "after lunch.", "for an hour.", "again and again.", "without a word.", "in the rain.",
            "before the storm.", "with great care.", "on Monday.", "at night."]


def tiny_corpus(n_sentences: int = 400, seed: int = 0) -> list[str]:
    """Deterministic template sentences: varied enough for BPE merges, small enough to train in milliseconds."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_ENDINGS)}"
        for _ in range(n_sentences)
    ]


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 512,
    folder: str | Path | None = None,
    model_max_length: int = 128,
    add_bos: bool = False,
    add_eos: bool = False,
) -> PreTrainedTokenizerFast:
    """Byte-level BPE with <pad>/<s>/</s>/<unk>. By default it adds no special tokens when encoding (like
    GPT-2); add_bos / add_eos make it put <s> before / </s> after every text (like Llama / BART).

    Byte-level means every string is encodable, so the unk token is never produced; it exists because some
    code paths expect one. Training is deterministic, so the flags change nothing but the added tokens.
    Saved to `folder` when given.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    if add_bos or add_eos:
        template = " ".join(([BOS] if add_bos else []) + ["$A"] + ([EOS] if add_eos else []))
        backend.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(t, backend.token_to_id(t)) for t in (BOS, EOS)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=model_max_length,
    )
    if folder is not None:
        tokenizer.save_pretrained(str(folder))
    return tokenizer


def _save(model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, folder: str | Path) -> Path:
    folder = Path(folder)
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


def _seeded(build, seed: int):
    # fork_rng keeps the caller's global RNG untouched, so building a model never changes other tests' randomness.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def make_tiny_gpt2(folder: str | Path, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Path:
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        # Larger than GPT-2's 0.02 so the random model has peaked, varied next-token distributions: greedy
        # choices are then far from ties, and generations are not one token repeated.
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = _seeded(lambda: GPT2LMHeadModel(config), seed).eval()
    return _save(model, tokenizer, folder)


def make_tiny_t5(folder: str | Path, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Path:
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model = _seeded(lambda: T5ForConditionalGeneration(config), seed).eval()
    _amplify_cross_attention(model, _T5_CROSS_ATTENTION_GAIN)
    return _save(model, tokenizer, folder)


# A randomly initialised T5 all but ignores its encoder: greedy outputs are the same whatever the input, so
# batching and order tests could not fail. Scaling the cross-attention value/output projections makes outputs
# depend on the prompt. A larger initializer_factor would too, but it inflates activations and logits until
# float noise between batch shapes exceeds the 1e-5 tolerance the backend tests hold results to.
_T5_CROSS_ATTENTION_GAIN = 6.0


def _amplify_cross_attention(model: T5ForConditionalGeneration, gain: float) -> None:
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".EncDecAttention." in name and name.endswith((".v.weight", ".o.weight")):
                parameter.mul_(gain)


def write_entries(folder: Path, models: dict, shipped: Iterable[str]) -> Path:
    """A submissions folder: the tiny models given as {name: (kind, model folder)}, each as an entry of its own
    team, and copies of the named shipped entries (baselines, the predictions entry)."""
    import shutil

    repo = Path(__file__).resolve().parents[1]
    for name, (kind, model_dir) in models.items():
        shutil.copytree(model_dir, folder / name / "model")
        (folder / name / "submission.yaml").write_text(f"team: t-{name}\nname: {name}\nkind: {kind}\nmodel: model\n",
                                                       encoding="utf-8")
    for name in shipped:
        shutil.copytree(repo / "submissions" / name, folder / name)
    return folder
