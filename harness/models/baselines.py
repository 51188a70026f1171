"""Built-in baselines: plain functions of the task inputs (and the task's train split), no user code.

A baseline covers some task kinds; elsewhere it answers `None` and the cell shows n/a, not a failure.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from harness.config import TaskConfig

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")  # Chinese and Japanese need no space

Inputs = Sequence[Mapping[str, Any]]
TrainLoader = Callable[[], Optional[List[Any]]]  # the task's train examples, or None when it has no train split


def copy_source(task: TaskConfig, inputs: Inputs, train: TrainLoader) -> Optional[List[Any]]:
    """Translation: the source sentence; summarization: the whole document."""
    field = {"translation": "source", "summarization": "document"}.get(task.kind)
    return None if field is None else [str(item.get(field, "")) for item in inputs]


def lead(k: int) -> Callable[[Any, Inputs, TrainLoader], Optional[List[Any]]]:
    def lead_k(task: TaskConfig, inputs: Inputs, train: TrainLoader) -> Optional[List[Any]]:
        """Summarization: the document's first k sentences, one per line (how ROUGE-Lsum splits them)."""
        if task.kind != "summarization":
            return None
        return ["\n".join(_SENTENCE_END.split(str(item.get("document", "")).strip())[:k]) for item in inputs]

    return lead_k


def majority_class(task: TaskConfig, inputs: Inputs, train: TrainLoader) -> Optional[List[Any]]:
    """Classification: the most frequent label of the train split (earliest declared label on a tie)."""
    if task.kind != "classification":
        return None
    examples = train()
    if not examples:
        return None
    counts = Counter(example.target for example in examples)
    order = list(task.labels.values())
    best = max(order, key=lambda label: (counts[label], -order.index(label)))
    return [best] * len(inputs)


def unigram_lm(task: TaskConfig, inputs: Inputs, train: TrainLoader) -> Optional[List[Any]]:
    """Language modeling: a byte unigram model with add-one smoothing fitted on the train split.

    Bytes, not words: every text has a finite likelihood (no out-of-vocabulary case), and n_tokens = bytes.
    """
    if task.kind != "language_modeling":
        return None
    examples = train()
    if not examples:
        return None
    counts: Counter[int] = Counter()
    for example in examples:
        counts.update(str(example.inputs["text"]).encode("utf-8"))
    total = sum(counts.values()) + 256
    logp = [math.log((counts[b] + 1) / total) for b in range(256)]
    out = []
    for item in inputs:
        data = str(item["text"]).encode("utf-8")
        out.append({"logprob": float(math.fsum(logp[b] for b in data)), "n_tokens": len(data)})
    return out


BASELINES: Dict[str, Callable[[Any, Inputs, TrainLoader], Optional[List[Any]]]] = {
    "copy-source": copy_source,
    "lead-1": lead(1),
    "lead-3": lead(3),
    "majority-class": majority_class,
    "unigram-lm": unigram_lm,
}
