"""BLEU and chrF segment statistics computed with numpy, equal to sacrebleu's `_extract_corpus_statistics`.

sacrebleu builds a `Counter` of every n-gram of every hypothesis and intersects it with the references' in a Python
loop; scoring an entry is mostly that loop. Here the same numbers come from sorting:

- Matching only ever pairs a hypothesis with the references of its own segment, so each segment gets its own small
  alphabet: the symbols (characters, or words) of its references, numbered 1..a. A hypothesis symbol outside that
  alphabet becomes 0, which no reference n-gram holds, so an n-gram containing it can never match.
- An n-gram is then a number in base B = (largest alphabet + 1), prefixed by its segment: segment * B^N + digits,
  with 0 digits past the segment's end. The packing is exact, and where segments * B^N would not fit in 63 bits
  the caller falls back to sacrebleu, so equal keys are equal n-grams of the same segment.
- One sort of the N-gram keys orders every shorter n-gram too (a key's leading n digits are its n-gram), so each
  order's distinct n-grams and their counts come from one sort per side; a hypothesis n-gram's match is
  min(its count, the reference's count), found by binary search in the reference's sorted keys.

Everything else is sacrebleu's own code, called as sacrebleu calls it: the preprocessing (`_preprocess_segment`:
lowercasing, BLEU's tokenizers), chrF's word splitting (`_remove_punctuation`) and chrF's choice of the best of
several references (`_compute_f_score`, first best wins). Totals of an order are the segment's length - n + 1, what
summing sacrebleu's Counter gives. Not reproduced: sacrebleu's log warning about hypotheses ending in " .".
tests/test_ngram_counts.py checks the rows equal sacrebleu's on random text (CJK, surrogates, empty segments,
every option) and on every WMT21 de-en and en-zh system output.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

_INT63 = 2 ** 63 - 1
_SYMBOL_BITS = 32  # a symbol id (a code point, or a word's number) is below 2^32

Groups = List[Tuple[np.ndarray, np.ndarray]]  # per order: sorted distinct (segment, n-gram) keys, their counts
Side = Tuple[np.ndarray, np.ndarray]  # symbols of every segment in one array, each segment's length


def _positions(lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Each position's segment and its offset within the segment."""
    segment = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    return segment, np.arange(int(lengths.sum()), dtype=np.int64) - starts[segment]


def code_points(texts: Sequence[str]) -> Side:
    """All texts' code points in one array (a lone surrogate is kept as one unit, as `len` counts it)."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    flat = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)
    return flat, lengths


class WordIds:
    """Words numbered 1, 2, ... as the references bring them; a word no reference holds is 0."""

    def __init__(self) -> None:
        self.ids: Dict[str, int] = {}

    def add(self, segments: Sequence[Sequence[str]]) -> Side:
        ids = self.ids
        flat = np.fromiter((ids.setdefault(w, len(ids) + 1) for words in segments for w in words), dtype=np.int64)
        return flat, np.fromiter(map(len, segments), dtype=np.int64, count=len(segments))

    def lookup(self, segments: Sequence[Sequence[str]]) -> Side:
        get = self.ids.get
        flat = np.fromiter((get(w, 0) for words in segments for w in words), dtype=np.int64)
        return flat, np.fromiter(map(len, segments), dtype=np.int64, count=len(segments))


def _groups(ids: np.ndarray, lengths: np.ndarray, order: int, base: int) -> Groups:
    """For n = 1..order: the distinct (segment, n-gram) keys of whole n-grams, sorted, with their counts."""
    segment, offset = _positions(lengths)
    total = len(ids)
    length_at = lengths[segment]
    key = np.zeros(total, dtype=np.int64)
    for j in range(order):
        digit = np.zeros(total, dtype=np.int64)
        digit[: max(total - j, 0)] = ids[j:]
        key = key * base + np.where(offset + j < length_at, digit, 0)
    key += segment * base ** order
    sort = np.argsort(key, kind="stable")
    key, offset, length_at = key[sort], offset[sort], length_at[sort]
    groups: Groups = []
    for n in range(1, order + 1):
        prefix = key[offset + n <= length_at] // base ** (order - n)
        starts = np.flatnonzero(np.concatenate(([True], prefix[1:] != prefix[:-1]))) if len(prefix) else prefix
        groups.append((prefix[starts], np.diff(np.append(starts, len(prefix)))))
    return groups


def _merged_max(slots: Sequence[Groups], order: int) -> Groups:
    """Per order, each n-gram's largest count over the reference slots (BLEU clips by the best reference)."""
    merged: Groups = []
    for n in range(order):
        keys = np.concatenate([groups[n][0] for groups in slots])
        counts = np.concatenate([groups[n][1] for groups in slots])
        sort = np.argsort(keys, kind="stable")
        keys, counts = keys[sort], counts[sort]
        if len(keys) == 0:
            merged.append((keys, counts))
            continue
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        merged.append((keys[starts], np.maximum.reduceat(counts, starts)))
    return merged


class NgramTable:
    """The references of one task for one kind of n-gram (characters or words, orders 1..order): per segment an
    alphabet, and per reference slot the sorted n-gram counts. `usable` is False where the keys would not fit."""

    def __init__(self, order: int, slots: Sequence[Tuple[np.ndarray, Side]], n_segments: int):
        # slots: per reference slot, (the segments holding one, (their symbols, their lengths))
        self.order, self.n_segments = order, n_segments
        self.lengths: List[np.ndarray] = []  # per slot, every segment's reference length (0 where it has none)
        for held, (_, lengths) in slots:
            full = np.zeros(n_segments, dtype=np.int64)
            full[held] = lengths
            self.lengths.append(full)
        symbols = np.concatenate([s for _, (s, _) in slots]) if slots else np.zeros(0, np.int64)
        segment = np.concatenate([_positions(full)[0] for full in self.lengths]) if slots else symbols
        self.pairs = np.unique((segment << _SYMBOL_BITS) + symbols)  # sorted (segment, symbol)
        self.first = np.searchsorted(self.pairs >> _SYMBOL_BITS, np.arange(n_segments, dtype=np.int64))
        self.base = int(np.diff(np.append(self.first, len(self.pairs))).max(initial=0)) + 1
        self.usable = order == 0 or max(n_segments, 1) * self.base ** order <= _INT63
        self.slots: List[Groups] = []
        if self.usable and order:
            for (_, (symbols_k, _)), full in zip(slots, self.lengths):
                self.slots.append(_groups(self._ids(symbols_k, full), full, order, self.base))

    def _ids(self, symbols: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Symbols -> their number in their segment's alphabet (0 outside it)."""
        if len(self.pairs) == 0:
            return np.zeros(len(symbols), dtype=np.int64)
        keys = (_positions(lengths)[0] << _SYMBOL_BITS) + symbols
        index = np.minimum(np.searchsorted(self.pairs, keys), len(self.pairs) - 1)
        return np.where(self.pairs[index] == keys, index - self.first[keys >> _SYMBOL_BITS] + 1, 0)

    def hypothesis(self, side: Side) -> Groups:
        symbols, lengths = side
        return _groups(self._ids(symbols, lengths), lengths, self.order, self.base)

    def matches(self, hyp: Groups, ref: Groups) -> List[np.ndarray]:
        """Per order, per segment: the sum over the hypothesis's distinct n-grams of min(count, reference count)."""
        out = []
        for n, ((h_keys, h_counts), (r_keys, r_counts)) in enumerate(zip(hyp, ref), start=1):
            matched = np.zeros(self.n_segments, dtype=np.int64)
            if len(h_keys) and len(r_keys):
                index = np.minimum(np.searchsorted(r_keys, h_keys), len(r_keys) - 1)
                hit = r_keys[index] == h_keys
                np.add.at(matched, h_keys[hit] // self.base ** n, np.minimum(h_counts[hit], r_counts[index[hit]]))
            out.append(matched)
        return out


class _References:
    """What BLEU and chrF share: each segment's references in sacrebleu's order (its None dropped), preprocessed
    by the sacrebleu object's own `_preprocess_segment`, as reference slots (slot k: every segment's k-th)."""

    def __init__(self, scorer: Any, streams: Sequence[Sequence[Optional[str]]]):
        self.scorer = scorer
        self.n_segments = len(streams[0]) if streams else 0
        per_segment = [[s[i] for s in streams if s[i] is not None] for i in range(self.n_segments)]
        self.ref_counts = [len(refs) for refs in per_segment]
        self.usable = self.n_segments > 0 and min(self.ref_counts) > 0
        self.slots: List[Tuple[np.ndarray, List[str]]] = []  # (segments holding slot k, their preprocessed text)
        for k in range(max(self.ref_counts, default=0)):
            held = np.array([i for i, refs in enumerate(per_segment) if len(refs) > k], dtype=np.int64)
            self.slots.append((held, [scorer._preprocess_segment(per_segment[i][k]) for i in held]))

    def fits(self, hypotheses: Sequence[str]) -> bool:
        return self.usable and len(hypotheses) == self.n_segments


class ChrfCounts(_References):
    """The reference side of one task for one sacrebleu `CHRF` object, built once; `statistics(hypotheses)` gives
    what `chrf._extract_corpus_statistics(hypotheses, None)` gives, or None where the data cannot be represented
    exactly (the caller then uses sacrebleu)."""

    def __init__(self, chrf: Any, streams: Sequence[Sequence[Optional[str]]]):
        super().__init__(chrf, streams)
        self.words = WordIds()
        chars = [(held, code_points([self._chars(t) for t in texts])) for held, texts in self.slots]
        self.char_table = NgramTable(chrf.char_order, chars, self.n_segments)
        words = [(held, self.words.add([chrf._remove_punctuation(t) for t in texts] if chrf.word_order
                                                 else [[]] * len(texts)))
                 for held, texts in self.slots]
        self.word_table = NgramTable(chrf.word_order, words, self.n_segments)
        self.usable = self.usable and self.char_table.usable and self.word_table.usable

    def _chars(self, text: str) -> str:
        return text if self.scorer.whitespace else "".join(text.split())

    @staticmethod
    def _columns(table: NgramTable, texts: Sequence[str], split: Callable[[Sequence[str]], Side]) -> List[np.ndarray]:
        """Per reference slot: an (n_segments, 3 * order) array of [hyp, ref, match] per order."""
        if table.order == 0:
            return [np.zeros((table.n_segments, 0), dtype=np.int64) for _ in table.lengths]
        side = split(texts)
        hyp = table.hypothesis(side)
        out = []
        for ref_lengths, ref_groups in zip(table.lengths, table.slots):
            matched = table.matches(hyp, ref_groups)
            columns = []
            for n in range(1, table.order + 1):
                ref_total = np.maximum(ref_lengths - n + 1, 0)
                # sacrebleu: the hypothesis's n-grams count only where the reference has n-grams of that order
                columns += [np.where(ref_total > 0, np.maximum(side[1] - n + 1, 0), 0), ref_total, matched[n - 1]]
            out.append(np.stack(columns, axis=1))
        return out

    def statistics(self, hypotheses: Sequence[str]) -> Optional[List[List[int]]]:
        if not self.fits(hypotheses):
            return None
        chrf = self.scorer
        texts = [chrf._preprocess_segment(h) for h in hypotheses]
        chars = self._columns(self.char_table, texts, lambda ts: code_points([self._chars(t) for t in ts]))
        words = self._columns(self.word_table, texts,
                              lambda ts: self.words.lookup([chrf._remove_punctuation(t) for t in ts]))
        rows = [np.concatenate([c, w], axis=1).tolist() for c, w in zip(chars, words)]
        if len(rows) == 1:
            return rows[0]
        best = []
        for i, count in enumerate(self.ref_counts):  # sacrebleu's choice: the first reference with the best F
            best_stats: List[int] = []
            best_f = -1.0
            for k in range(count):
                f_score = chrf._compute_f_score(rows[k][i])
                if f_score > best_f:
                    best_f, best_stats = f_score, rows[k][i]
            best.append(best_stats)
        return best


class BleuCounts(_References):
    """The reference side of one task for one sacrebleu `BLEU` object, built once; `statistics(hypotheses)` gives
    what `bleu._extract_corpus_statistics(hypotheses, None)` gives ([hyp_len, ref_len, correct[n], total[n]]), or
    None where the data cannot be represented exactly."""

    def __init__(self, bleu: Any, streams: Sequence[Sequence[Optional[str]]]):
        super().__init__(bleu, streams)
        self.words = WordIds()
        order = bleu.max_ngram_order
        table = NgramTable(order, [(held, self.words.add([t.split() for t in texts])) for held, texts in self.slots],
                           self.n_segments)
        self.table = table
        self.usable = self.usable and table.usable
        self.merged = _merged_max(table.slots, order) if self.usable else []
        # each slot's length, and a marker past any real one where a segment has no reference in that slot
        absent = np.array(self.ref_counts)[None, :] <= np.arange(len(table.lengths))[:, None]
        self.ref_lengths = np.where(absent, np.iinfo(np.int64).max // 4, np.array(table.lengths).reshape(absent.shape))

    def statistics(self, hypotheses: Sequence[str]) -> Optional[List[List[int]]]:
        if not self.fits(hypotheses):
            return None
        table = self.table
        side = self.words.lookup([self.scorer._preprocess_segment(h).split() for h in hypotheses])
        hyp_len = side[1]
        # sacrebleu's closest reference length: the smallest difference, and of equal differences the shorter one
        distance = np.abs(self.ref_lengths - hyp_len[None, :])
        best = np.lexsort((self.ref_lengths, distance), axis=0)[0] if len(self.ref_lengths) > 1 else \
            np.zeros(len(hyp_len), dtype=np.int64)
        ref_len = self.ref_lengths[best, np.arange(len(hyp_len))]
        correct = table.matches(table.hypothesis(side), self.merged)
        total = [np.maximum(hyp_len - n + 1, 0) for n in range(1, table.order + 1)]
        return np.stack([hyp_len, ref_len, *correct, *total], axis=1).tolist()
