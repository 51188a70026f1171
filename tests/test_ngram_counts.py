"""BLEU and chrF statistics counted with numpy (harness.metrics.ngram_counts) equal sacrebleu's row for row."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from parity_helpers import read_lines, require_shared_data
from sacrebleu.metrics import BLEU, CHRF

from harness.metrics import build_metric
from harness.metrics.ngram_counts import BleuCounts, ChrfCounts

CASES = [(CHRF, ChrfCounts, options) for options in (
    {}, {"word_order": 2}, {"lowercase": True}, {"whitespace": True}, {"char_order": 3, "word_order": 1},
    {"char_order": 1}, {"char_order": 0, "word_order": 2})] + [(BLEU, BleuCounts, options) for options in (
        {}, {"lowercase": True}, {"tokenize": "zh"}, {"tokenize": "char"}, {"tokenize": "none"},
        {"max_ngram_order": 2}, {"max_ngram_order": 6, "tokenize": "intl"})]
ALPHABET = "aab cdé ÉİßXY,.!?\t\n中文字。，한국어ｱ" + "\ud800"  # repeats, case pairs, CJK, a lone surrogate


def sacrebleu_rows(cls, options, hypotheses, streams):
    return cls(**options, references=streams)._extract_corpus_statistics(hypotheses, None)


def random_text(rng):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.choice([0, 1, 2, 5, 12, 40])))


@pytest.mark.parametrize("cls, counts_class, options", CASES, ids=lambda v: repr(v) if isinstance(v, dict) else "")
def test_random_segments_equal_sacrebleu(cls, counts_class, options):
    rng = random.Random(7)
    n = 300
    # three reference slots; some segments hold only the first one or two (sacrebleu drops the None)
    streams = [[random_text(rng) for _ in range(n)],
               [random_text(rng) if i % 3 else None for i in range(n)],
               [random_text(rng) if i % 5 == 0 else None for i in range(n)]]
    counts = counts_class(cls(**options), streams)
    assert counts.usable
    for hypotheses in ([random_text(rng) for _ in range(n)], [streams[0][i][::-1] for i in range(n)],
                       [""] * n, streams[0]):
        assert counts.statistics(hypotheses) == sacrebleu_rows(cls, options, hypotheses, streams)
    one = counts_class(cls(**options), streams[:1])  # the single-reference path
    hypotheses = [random_text(rng) for _ in range(n)]
    assert one.statistics(hypotheses) == sacrebleu_rows(cls, options, hypotheses, streams[:1])


def test_ties_between_references_go_as_in_sacrebleu():
    streams = [["abcd", "xyz", "a b c d", "a b"], ["abce", "xyz", "a b", "a b c d"]]
    hypotheses = ["abc", "xy", "a b c", "a b c"]  # equally close to both references (chrF: F; BLEU: length)
    assert ChrfCounts(CHRF(), streams).statistics(hypotheses) == sacrebleu_rows(CHRF, {}, hypotheses, streams)
    assert BleuCounts(BLEU(), streams).statistics(hypotheses) == sacrebleu_rows(BLEU, {}, hypotheses, streams)


@pytest.mark.parametrize("cls, name", [(CHRF, "chrf"), (BLEU, "bleu")])
def test_keys_that_would_not_fit_fall_back_to_sacrebleu(cls, name):
    """A reference with 2,000 distinct characters (or 2e5 distinct words) makes base^order overflow 63 bits: no
    numpy rows, and the metric still gives sacrebleu's number through sacrebleu's own loop."""
    if cls is CHRF:
        wide = "".join(chr(0x4E00 + i) for i in range(2000))
        hypotheses = ["中文" + wide[:50], "shirt"]
    else:
        wide = " ".join(f"w{i}" for i in range(200_000))
        hypotheses = [" ".join(f"w{i}" for i in range(0, 5000, 3)), "shirt"]
    streams = [[wide, "short"]]
    counts = (ChrfCounts if cls is CHRF else BleuCounts)(cls(), streams)
    assert not counts.usable and counts.statistics(hypotheses) is None
    metric = build_metric(name)
    assert metric.score(hypotheses, [[wide], ["short"]])[name] == cls().corpus_score(hypotheses, streams).score


@pytest.mark.parametrize("counts_class, cls", [(ChrfCounts, CHRF), (BleuCounts, BLEU)])
def test_wrong_length_or_missing_references_use_sacrebleu(counts_class, cls):
    assert counts_class(cls(), [["a", "b"]]).statistics(["a"]) is None
    assert not counts_class(cls(), [[None, "b"]]).usable  # a segment without any reference
    assert not counts_class(cls(), []).usable


@pytest.mark.slow  # every WMT21 de-en and en-zh system output, refs A and A+B, both metrics: ~1 min
@pytest.mark.parametrize("pair", ["de-en", "en-zh"])
def test_wmt21_system_outputs_equal_sacrebleu(pair):
    root: Path = require_shared_data() / "translation" / f"wmt21_newstest2021_{pair}"
    references = [read_lines(p) for p in sorted((root / "references").iterdir())]
    systems = sorted((root / "system-outputs").iterdir())
    assert len(references) >= 2 and len(systems) >= 10
    target = "zh" if pair.endswith("zh") else "13a"
    for cls, counts_class, options in ((CHRF, ChrfCounts, {}), (CHRF, ChrfCounts, {"word_order": 2}),
                                       (BLEU, BleuCounts, {"tokenize": target})):
        for streams in (references[:1], references[:2]):
            counts = counts_class(cls(**options), streams)
            reference_side = cls(**options, references=streams)
            assert counts.usable
            for system in systems:
                hypotheses = read_lines(system)
                assert counts.statistics(hypotheses) == reference_side._extract_corpus_statistics(hypotheses, None),\
                    (pair, cls.__name__, options, len(streams), system.name)
