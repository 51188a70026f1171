"""ROUGE-1/2/L/Lsum F-measure through Google's rouge-score, with a fast path that gives identical values.

Per item the statistic is rouge-score's `fmeasure` for each ROUGE type (the max over the item's references, as
`RougeScorer.score_multi` picks it); the score is the plain mean over items x 100.

The fast path (`FastRougeScorer`) is bit-identical to `RougeScorer(types, use_stemmer).score(target, prediction)`
/ `.score_multi(targets, prediction)`. It re-implements nothing beyond the few lines of `_score_lcs` noted below;
it avoids repeated work:

* every text is tokenised once with rouge-score's own `tokenize.tokenize` (what `DefaultTokenizer` calls),
  with the Porter stemmer's `stem` memoised per token (stemming is a pure function of the token and is the hot
  spot of plain rouge-score, which also tokenises each text twice per pair when rougeLsum is requested);
* reference profiles (tokens, n-gram Counters, newline-split sentence tokens) are kept in a module-level cache
  keyed by text, so references shared by many predictions / submissions are processed once;
* the scores come from rouge-score's own `_create_ngrams`, `_score_ngrams`, `_lcs_table`, `_summary_level_lcs`
  and `scoring.fmeasure`;
* rougeL (`_score_lcs_filtered`, rouge-score's `_score_lcs` with one change) builds the `_lcs_table` over the
  two token sequences with the tokens that do not occur in the other sequence removed. A common subsequence
  only uses tokens present in both, so the LCS length is unchanged, and precision / recall still divide by the
  full lengths exactly as `_score_lcs` does; the table is several times smaller (the LCS table is the hot spot
  once stemming is cached);
* rougeLsum of two single-line texts (no "\n" in either) is taken from the rougeL score on the same tokens instead
  of recomputing: with one sentence on each side `_summary_level_lcs` counts exactly the tokens of one LCS
  (each token value of an LCS occurs in it at most min(count in reference, count in candidate) times, so the
  double-counting guard never fires), divides by the same token counts and uses the same `fmeasure`, and the
  sentence tokens are the whole-text tokens (the only sentence is the text). Multi-line texts always go through
  `_summary_level_lcs`;
* inputs larger than `parallel_threshold` items are split over `n_jobs` forked worker processes (which inherit
  the caches; from the second call on the same references, those are profiled in the parent first so that
  they stay cached).

`tests/test_metrics.py` checks the equality against plain `RougeScorer` on varied pairs.
"""
from __future__ import annotations

import functools
import os
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from nltk.stem import porter
from rouge_score import rouge_scorer, scoring
from rouge_score import tokenize as rouge_tokenize
from rouge_score.rouge_scorer import (
    _create_ngrams,
    _lcs_table,
    _score_ngrams,
    _summary_level_lcs,
)


from .base import Metric, ScoreInfo, as_stats, check_lengths, reference_lists
from .tokenizers import TOKENIZERS

DEFAULT_ROUGE_TYPES: Tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_SCORE_VERSION = "0.1.2"  # rouge-score does not expose __version__; pinned in pyproject.toml
_NGRAM_TYPE_RE = re.compile(r"rouge([1-9])$")  # RougeScorer accepts rouge[0-9]$, and rejects n <= 0 when scoring

_REFERENCE_CACHE_MAX = 50_000  # reference profiles (a few KB each); the cache is emptied when it is full
_STEM_CACHE_MAX = 1 << 18  # distinct tokens


def _rouge_score_version() -> str:
    try:
        from importlib.metadata import version

        return version("rouge-score")
    except Exception:  # pragma: no cover
        return ROUGE_SCORE_VERSION


# -- memoised stemming -----------------------------------------------------------------------------------------


class _MemoStemmer:
    """nltk's PorterStemmer (the one `DefaultTokenizer(use_stemmer=True)` builds) with `stem` memoised.
    `tokenize.tokenize` only calls `stemmer.stem(token)`; its result depends on the token alone."""

    def __init__(self) -> None:
        self._stemmer = porter.PorterStemmer()
        self.stem = functools.lru_cache(maxsize=_STEM_CACHE_MAX)(self._stemmer.stem)


_STEMMER: Optional[_MemoStemmer] = None


def _stemmer(use_stemmer: bool) -> Optional[_MemoStemmer]:
    global _STEMMER
    if not use_stemmer:
        return None
    if _STEMMER is None:
        _STEMMER = _MemoStemmer()
    return _STEMMER


# -- text profiles ---------------------------------------------------------------------------------------------


def tokenize_function(tokenizer: str, use_stemmer: bool) -> Callable[[str], List[str]]:
    """text -> tokens, as `RougeScorer`'s tokenizer gives them: rouge-score's own `tokenize.tokenize` (what
    `DefaultTokenizer(use_stemmer).tokenize` calls) with the memoised stemmer, or one of harness.metrics.tokenizers."""
    if tokenizer == "default":
        stemmer = _stemmer(use_stemmer)
        return functools.partial(rouge_tokenize.tokenize, stemmer=stemmer)
    tokenizer_class: Any = TOKENIZERS[tokenizer]
    tokenize: Callable[[str], List[str]] = tokenizer_class().tokenize
    return tokenize


class _Profile:
    """What the scorer needs of one text: tokens, n-gram Counters, sentence tokens for rougeLsum."""

    __slots__ = ("tokens", "token_set", "ngrams", "sents", "single_line")

    def __init__(self, text: str, tok: Callable[[str], List[str]], ns: Tuple[int, ...], need_sents: bool):
        self.tokens: Tuple[str, ...] = tuple(tok(text))
        self.token_set = frozenset(self.tokens)
        self.ngrams = {n: _create_ngrams(self.tokens, n) for n in ns}
        self.single_line = "\n" not in text
        if not need_sents:
            self.sents: List[Tuple[str, ...]] = []
        elif self.single_line:
            self.sents = [self.tokens] if len(text) else []  # the only sentence is the text itself
        else:
            # RougeScorer.score's get_sents with split_summaries=False: split on "\n", drop empty strings
            self.sents = [tuple(tok(s)) for s in text.split("\n") if len(s)]


def _score_lcs_filtered(t: _Profile, p: _Profile) -> scoring.Score:
    """rouge-score's `_score_lcs(t.tokens, p.tokens)`, same values: the LCS table is built over the tokens the two
    texts share (see the module docstring); everything else is `_score_lcs` line for line."""
    target_tokens, prediction_tokens = t.tokens, p.tokens
    if not target_tokens or not prediction_tokens:
        return scoring.Score(precision=0, recall=0, fmeasure=0)

    common = t.token_set & p.token_set
    if common:
        lcs_table = _lcs_table([x for x in target_tokens if x in common], [x for x in prediction_tokens if x in common])
        lcs_length = lcs_table[-1][-1]
    else:
        lcs_length = 0

    precision = lcs_length / len(prediction_tokens)
    recall = lcs_length / len(target_tokens)
    fmeasure = scoring.fmeasure(precision, recall)

    return scoring.Score(precision=precision, recall=recall, fmeasure=fmeasure)


_REFERENCE_CACHE: Dict[tuple, _Profile] = {}
_SEEN_REFERENCE_SETS: set = set()  # fingerprints of reference lists scored by worker processes


class FastRougeScorer:
    """Drop-in for `RougeScorer(rouge_types, use_stemmer)` (tokenizer "default") or `RougeScorer(rouge_types,
    tokenizer=TOKENIZERS[tokenizer]())` `.score/score_multi`, returning f-measures only."""

    def __init__(self, rouge_types: Sequence[str] = DEFAULT_ROUGE_TYPES, use_stemmer: bool = True,
                 tokenizer: str = "default"):
        self.rouge_types = tuple(rouge_types)
        self.use_stemmer = bool(use_stemmer) and tokenizer == "default"
        self.tokenizer = tokenizer
        self._tokenize = tokenize_function(tokenizer, self.use_stemmer)
        self._plan: List[Tuple[str, int]] = []  # (kind, n)
        ns = []
        for t in self.rouge_types:
            m = _NGRAM_TYPE_RE.match(t)
            if m:
                self._plan.append(("ngram", int(m.group(1))))
                ns.append(int(m.group(1)))
            elif t == "rougeL":
                self._plan.append(("lcs", 0))
            elif t == "rougeLsum":
                self._plan.append(("lsum", 0))
            else:
                raise ValueError(f"invalid rouge type {t!r}; valid: rouge1..rouge9, rougeL, rougeLsum")
        self._ns = tuple(sorted(set(ns)))
        self._need_sents = "rougeLsum" in self.rouge_types
        self._key = (self.tokenizer, self.use_stemmer, self._ns, self._need_sents)

    def _profile(self, text: str) -> _Profile:
        return _Profile(text, self._tokenize, self._ns, self._need_sents)

    def reference_profile(self, text: str) -> _Profile:
        key = (self._key, text)
        prof = _REFERENCE_CACHE.get(key)
        if prof is None:
            if len(_REFERENCE_CACHE) >= _REFERENCE_CACHE_MAX:
                _REFERENCE_CACHE.clear()
            prof = _REFERENCE_CACHE[key] = self._profile(text)
        return prof

    def _fmeasures(self, t: _Profile, p: _Profile) -> List[float]:
        out: List[float] = []
        lcs = None
        for kind, n in self._plan:
            if kind == "ngram":
                out.append(_score_ngrams(t.ngrams[n], p.ngrams[n]).fmeasure)
            elif kind == "lcs":
                if lcs is None:
                    lcs = _score_lcs_filtered(t, p)
                out.append(lcs.fmeasure)
            else:  # rougeLsum
                if t.single_line and p.single_line:  # see the module docstring: equal to the summary-level LCS
                    if lcs is None:
                        lcs = _score_lcs_filtered(t, p)
                    out.append(lcs.fmeasure)
                else:
                    out.append(_summary_level_lcs(t.sents, p.sents).fmeasure)
        return out

    def fmeasures(self, target: str, prediction: str) -> List[float]:
        """f-measure per rouge type, equal to `RougeScorer.score(target, prediction)[t].fmeasure`."""
        return self._fmeasures(self.reference_profile(target), self._profile(prediction))

    def fmeasures_multi(self, targets: Sequence[str], prediction: str) -> List[float]:
        """Equal to `RougeScorer.score_multi(targets, prediction)[t].fmeasure` (max over targets per type)."""
        if not targets:
            raise ValueError("no reference")
        p = self._profile(prediction)
        rows = [self._fmeasures(self.reference_profile(t), p) for t in targets]
        if len(rows) == 1:
            return rows[0]
        # score_multi takes, per type, the Score at np.argmax of the f-measures: its f-measure is the maximum
        return [max(col) for col in zip(*rows)]

    def score_items(self, predictions: Sequence[str], targets: Sequence[Sequence[str]]) -> np.ndarray:
        out = np.zeros((len(predictions), len(self.rouge_types)), dtype=np.float64)
        for i, (pred, refs) in enumerate(zip(predictions, targets)):
            out[i] = self.fmeasures_multi(refs, pred)
        return out


def _score_chunk(args) -> np.ndarray:
    rouge_types, use_stemmer, tokenizer, predictions, targets = args
    return FastRougeScorer(rouge_types, use_stemmer, tokenizer).score_items(predictions, targets)


def _default_jobs() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


class RougeMetric(Metric):
    """ROUGE F-measures (rouge-score), mean over items x 100; max over an item's references.

    Options: `rouge_types` (default rouge1, rouge2, rougeL, rougeLsum), `tokenizer` (default: rouge-score's own,
    English only; `char`, `words`, `jieba`: harness.metrics.tokenizers), `use_stemmer` (Porter stemming, default
    True with rouge-score's tokenizer; the other tokenizers never stem), `n_jobs` (worker processes for large
    inputs; default: the CPUs available, at most 8; 1 = never fork) and `parallel_threshold` (items above which
    workers are used; default 2000). Only the first three change values.
    """

    name = "rouge"
    OPTIONS = ("rouge_types", "use_stemmer", "tokenizer", "n_jobs", "parallel_threshold")
    TOKENIZERS = ("default", *TOKENIZERS)
    LANGUAGE_OPTIONS = ("tokenizer",)

    def __init__(
        self,
        rouge_types: Sequence[str] = DEFAULT_ROUGE_TYPES,
        use_stemmer: Optional[bool] = None,
        n_jobs: Optional[int] = None,
        parallel_threshold: int = 2000,
        tokenizer: str = "default",
    ):
        if isinstance(rouge_types, str):
            rouge_types = [rouge_types]
        rouge_types = tuple(rouge_types)
        if not rouge_types:
            raise ValueError("rouge_types is empty; valid: rouge1..rouge9, rougeL, rougeLsum")
        if len(set(rouge_types)) != len(rouge_types):
            raise ValueError(f"duplicate rouge types in {list(rouge_types)}")
        if tokenizer not in self.TOKENIZERS:
            raise ValueError(f"tokenizer {tokenizer!r} is not valid; use one of {', '.join(self.TOKENIZERS)}")
        if use_stemmer is None:
            use_stemmer = tokenizer == "default"
        if not isinstance(use_stemmer, bool):
            raise ValueError(f"use_stemmer must be true or false, got {use_stemmer!r}")
        if use_stemmer and tokenizer != "default":  # Porter stemming is for English words only
            raise ValueError(f"use_stemmer: true applies to the default (English) tokenizer only, not to tokenizer "
                             f"{tokenizer!r}; drop use_stemmer")
        self.rouge_types = rouge_types
        self.use_stemmer = use_stemmer
        self.tokenizer = tokenizer
        self.n_jobs = _default_jobs() if n_jobs is None else int(n_jobs)
        if self.n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs!r}")
        self.parallel_threshold = int(parallel_threshold)
        self._fast = FastRougeScorer(rouge_types, use_stemmer, tokenizer)  # validates the types
        self.scores = tuple(ScoreInfo(t, higher_is_better=True, scale="0-100") for t in rouge_types)

    def kept_characters(self, text: str) -> Optional[int]:
        # without stemming: a stem is shorter than its word but the word was read
        tokens = tokenize_function(self.tokenizer, False)(text)
        return sum(len(token) for token in tokens)

    def signature(self) -> str:
        lsum = "|lsum:newline-split" if "rougeLsum" in self.rouge_types else ""
        return (
            f"rouge|types:{','.join(self.rouge_types)}|stem:{'yes' if self.use_stemmer else 'no'}"
            f"|tok:{self.tokenizer}{lsum}|agg:mean-fmeasure|version:rouge-score-{_rouge_score_version()}"
        )

    def reference_scorer(self) -> rouge_scorer.RougeScorer:
        """The plain rouge-score scorer this metric is identical to."""
        if self.tokenizer == "default":
            return rouge_scorer.RougeScorer(list(self.rouge_types), use_stemmer=self.use_stemmer)
        return rouge_scorer.RougeScorer(list(self.rouge_types), tokenizer=TOKENIZERS[self.tokenizer]())

    def item_stats(self, predictions: Sequence[str], targets: Sequence[Sequence[str]]) -> np.ndarray:
        check_lengths(predictions, targets)
        for i, p in enumerate(predictions):
            if not isinstance(p, str):
                raise ValueError(f"prediction {i} is {type(p).__name__}, expected str")
        targets = reference_lists(targets)
        predictions = list(predictions)
        n = len(predictions)
        if n > self.parallel_threshold and self.n_jobs > 1:
            stats = self._parallel(predictions, targets)
            if stats is not None:
                return stats
        return self._fast.score_items(predictions, targets)

    def _parallel(self, predictions: List[str], targets: List[List[str]]) -> Optional[np.ndarray]:
        import multiprocessing as mp

        try:
            ctx = mp.get_context("fork")  # workers inherit the warm caches; spawn would re-import everything
        except ValueError:  # pragma: no cover - no fork on this platform
            return None
        # The workers' caches die with them. When these references were scored before (another submission of
        # the same task), profile them here first: this process keeps them, the forked workers inherit them,
        # and later calls only tokenise the predictions. On first sight, skip that serial step (fastest cold).
        fingerprint = hash((self._fast._key, tuple(tuple(refs) for refs in targets)))
        if fingerprint in _SEEN_REFERENCE_SETS:
            for refs in targets:
                for ref in refs:
                    self._fast.reference_profile(ref)
        else:
            if len(_SEEN_REFERENCE_SETS) >= 1000:
                _SEEN_REFERENCE_SETS.clear()
            _SEEN_REFERENCE_SETS.add(fingerprint)
        n = len(predictions)
        n_chunks = self.n_jobs * 4
        bounds = np.linspace(0, n, n_chunks + 1).astype(int)
        chunks = [
            (self.rouge_types, self.use_stemmer, self.tokenizer, predictions[a:b], targets[a:b])
            for a, b in zip(bounds[:-1], bounds[1:])
            if b > a
        ]
        try:
            with ctx.Pool(self.n_jobs) as pool:
                parts = pool.map(_score_chunk, chunks, chunksize=1)
        except (OSError, AssertionError):  # pragma: no cover - cannot fork (limits, daemonic process): serial
            return None
        return np.concatenate(parts, axis=0)

    def aggregate(self, stats: np.ndarray) -> Dict[str, float]:
        arr = as_stats(stats, len(self.rouge_types))
        if arr.shape[0] == 0:
            return {t: float("nan") for t in self.rouge_types}
        means = arr.mean(axis=0) * 100.0
        return {t: float(v) for t, v in zip(self.rouge_types, means)}
