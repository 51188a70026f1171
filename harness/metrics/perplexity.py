"""Perplexities and bits-per-byte of whole documents, as ratios of corpus sums (lm-evaluation-harness style).

predictions: one per document, `{"logprob": float, "n_tokens": int}` (the document's total natural-log likelihood
and the number of tokens it was scored over) or any object with those attributes (e.g. `RollingLoglikelihood`);
targets: the document texts as counted (the task's original text, or the transformed text the model read; see
tasks.language_modeling). Per item the statistics are [logprob, n_tokens, n_words, n_bytes], with
n_bytes = len(text.encode("utf-8")) and n_words by the `words` option:

* `whitespace` (default): the number of maximal runs of non-whitespace characters, i.e.
  len(re.split(r"\\s+", text.strip())), and 0 for a text that is empty or all whitespace. An empty document
  (no tokens, words or bytes) adds nothing to any sum.
* `regex-split`: len(re.split(r"\\s+", text)) with no strip, lm-evaluation-harness's `_count_words` (wikitext's
  `process_results`): one more than the whitespace count for a text that starts with whitespace, one more for
  one that ends with it, and 1 for an empty text. On the 4,358 WikiText-2 raw test rows the two counts are
  241,211 and 248,460 words.

Chinese and Japanese are not written with spaces, so "words" mean nothing there: with `unit: chars` (the default
for those languages) the third column counts the Unicode code points that are not whitespace, and the score is
`char_perplexity = exp(-sum(logprob) / sum(n_chars))` instead of `word_perplexity`.

    perplexity      = exp(-sum(logprob) / sum(n_tokens))
    word_perplexity = exp(-sum(logprob) / sum(n_words))
    byte_perplexity = exp(-sum(logprob) / sum(n_bytes))
    bits_per_byte   = -(sum(logprob) / sum(n_bytes)) / ln 2

A ratio with a zero denominator is NaN.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, Mapping, Sequence

import numpy as np


from .base import Metric, ScoreInfo, as_stats, check_lengths, sequential_sums

_WS = re.compile(r"\s+")


def count_words(text: str) -> int:
    """Runs of non-whitespace characters (the `whitespace` rule); 0 for a blank text."""
    stripped = text.strip()
    return len(_WS.split(stripped)) if stripped else 0


def count_words_regex_split(text: str) -> int:
    """lm-evaluation-harness's count: the pieces of re.split(r"\\s+", text), leading/trailing empties included."""
    return len(_WS.split(text))


def count_chars(text: str) -> int:
    """Unicode code points that are not whitespace."""
    return sum(1 for c in text if not c.isspace())


WORD_RULES = {"whitespace": count_words, "regex-split": count_words_regex_split}


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _field(pred: Any, key: str, i: int) -> Any:
    if isinstance(pred, Mapping):
        if key not in pred:
            raise ValueError(f"prediction {i} has no {key!r}")
        return pred[key]
    if hasattr(pred, key):
        return getattr(pred, key)
    raise ValueError(f"prediction {i} must be a dict with 'logprob' and 'n_tokens', got {type(pred).__name__}")


class PerplexityMetric(Metric):
    """Token / word (or character) / byte perplexity and bits per byte (lower is better).

    Options: `unit`: `words` (word_perplexity) or `chars` (code points that are not whitespace, char_perplexity);
    the task's language picks it (chars for Chinese and Japanese). `words`: how words are counted (see the module
    doc). `scoring`: how the task produced the log-likelihoods (window, stride, start token, last-window rule, text
    transform, counted text), taken from the task so the signature states it."""

    name = "perplexity"
    OPTIONS: tuple[str, ...] = ("unit", "words", "scoring")
    LANGUAGE_OPTIONS = ("unit",)
    UNITS = {"words": "word_perplexity", "chars": "char_perplexity"}

    def __init__(self, unit: str = "words", words: str = "whitespace", scoring: str = ""):
        if unit not in self.UNITS:
            raise ValueError(f"unit {unit!r} is not valid; use one of {', '.join(self.UNITS)}")
        if words not in WORD_RULES:
            raise ValueError(f"words {words!r} is not valid for metric 'perplexity'; use one of "
                             f"{', '.join(WORD_RULES)}")
        self.unit, self.words, self.scoring = unit, words, scoring
        self._count_words = WORD_RULES[words]
        self.scores = (
            ScoreInfo("perplexity", higher_is_better=False, scale="unbounded"),
            ScoreInfo(self.UNITS[unit], higher_is_better=False, scale="unbounded"),
            ScoreInfo("byte_perplexity", higher_is_better=False, scale="unbounded"),
            ScoreInfo("bits_per_byte", higher_is_better=False, scale="unbounded"),
        )

    def signature(self) -> str:
        unit = f"words:{self.words}" if self.unit == "words" else "chars:codepoints-no-ws"
        return f"perplexity|agg:ratio-of-sums|{unit}|bytes:utf-8" + (f"|{self.scoring}" if self.scoring else "")

    def item_stats(self, predictions: Sequence[Any], targets: Sequence[str]) -> np.ndarray:
        check_lengths(predictions, targets)
        out = np.zeros((len(predictions), 4), dtype=np.float64)
        for i, (pred, text) in enumerate(zip(predictions, targets)):
            if not isinstance(text, str):
                raise ValueError(f"target {i} is {type(text).__name__}, expected the document text (str)")
            logprob = float(_field(pred, "logprob", i))
            n_tokens = _field(pred, "n_tokens", i)
            if not math.isfinite(logprob) and logprob != -math.inf:
                raise ValueError(f"prediction {i}: logprob {logprob!r} is not a log-likelihood")
            if logprob > 0:
                raise ValueError(f"prediction {i}: logprob {logprob!r} > 0 is not a log-likelihood")
            try:
                bad = isinstance(n_tokens, bool) or int(n_tokens) != n_tokens or n_tokens < 0
            except (TypeError, ValueError):
                bad = True
            if bad:
                raise ValueError(f"prediction {i}: n_tokens must be a non-negative integer, got {n_tokens!r}")
            units = self._count_words(text) if self.unit == "words" else count_chars(text)
            out[i] = (logprob, float(n_tokens), units, count_bytes(text))
        return out

    def aggregate(self, stats: np.ndarray) -> Dict[str, float]:
        arr = as_stats(stats, 4)
        logprob, n_tokens, n_words, n_bytes = sequential_sums(arr).tolist()

        def nll_per(denominator: float) -> float:
            return -logprob / denominator if denominator > 0 else float("nan")

        per_byte = nll_per(n_bytes)
        return {
            "perplexity": _exp(nll_per(n_tokens)),
            self.UNITS[self.unit]: _exp(nll_per(n_words)),
            "byte_perplexity": _exp(per_byte),
            "bits_per_byte": per_byte / math.log(2),
        }


def _exp(x: float) -> float:
    if math.isnan(x):
        return x
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf
