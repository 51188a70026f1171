"""Golden-number and property tests for harness.metrics.

Literal numbers were computed once with the reference implementations (sacrebleu 2.6.0, rouge-score 0.1.2,
scikit-learn) or by hand, and pasted here.
"""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from harness.metrics import METRIC_NAMES, build_metric

# --------------------------------------------------------------------------------------------------------------
# Registry


def test_metric_names():
    assert set(METRIC_NAMES) == {"bleu", "chrf", "ter", "rouge", "squad", "cmrc2018", "classification", "perplexity"}
    for name in METRIC_NAMES:
        options = {"labels": ["a", "b"]} if name == "classification" else {}
        metric = build_metric(name, options)
        assert metric.scores and isinstance(metric.signature(), str)


def test_unknown_metric_name():
    with pytest.raises(ValueError) as err:
        build_metric("bluee", {})
    assert "'bluee'" in str(err.value) and "bleu" in str(err.value) and "perplexity" in str(err.value)


def test_unknown_option():
    with pytest.raises(ValueError) as err:
        build_metric("bleu", {"tokenise": "13a"})
    msg = str(err.value)
    assert "'tokenise'" in msg and "tokenize" in msg and "smooth_method" in msg
    with pytest.raises(ValueError, match="use_stemmer"):
        build_metric("rouge", {"stemmer": True})
    with pytest.raises(ValueError, match="none"):
        build_metric("squad", {"x": 1})


def test_bad_option_values():
    with pytest.raises(ValueError):
        build_metric("bleu", {"smooth_method": "nope"})
    with pytest.raises(ValueError):
        build_metric("bleu", {"tokenize": "nope"})
    with pytest.raises(ValueError, match="rouge7x"):
        build_metric("rouge", {"rouge_types": ["rouge1", "rouge7x"]})
    with pytest.raises(ValueError, match="labels"):
        build_metric("classification", {})


def test_import_is_lazy():
    code = (
        "import sys, harness.metrics\n"
        "heavy = [m for m in ('sacrebleu', 'rouge_score', 'nltk', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------------------------
# sacrebleu: BLEU / chrF / TER

# The sacrebleu README example (two reference streams).
README_SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
README_REFS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
README_ITEMS = [list(refs) for refs in zip(*README_REFS)]  # per-item reference lists

SACRE_GOLDEN = [
    # (metric, options, score with both refs, score with ref stream 1 only, signature with both refs)
    ("bleu", {}, 48.530827009929865, 45.06750632106114,
     "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"),
    ("chrf", {}, 59.72751782684763, 50.043063606582294,
     "nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"),
    ("chrf", {"word_order": 2}, 59.15310444399262, 51.7309698503746,
     "nrefs:2|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"),
    ("ter", {}, 40.0, 50.0, "nrefs:2|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0"),
    ("bleu", {"tokenize": "intl", "lowercase": True}, 43.91623493336995, 38.45246642636116,
     "nrefs:2|case:lc|eff:no|tok:intl|smooth:exp|version:2.6.0"),
    ("bleu", {"smooth_method": "floor", "smooth_value": 0.1}, 48.530827009929865, 45.06750632106114,
     "nrefs:2|case:mixed|eff:no|tok:13a|smooth:floor[0.10]|version:2.6.0"),
]


@pytest.mark.parametrize("name,options,both,one,sig", SACRE_GOLDEN)
def test_sacrebleu_readme_golden(name, options, both, one, sig):
    metric = build_metric(name, options)
    assert metric.score(README_SYS, README_ITEMS) == {name: both}
    assert metric.signature() == sig
    assert metric.score(README_SYS, [[r] for r in README_REFS[0]]) == {name: one}
    assert metric.signature() == sig.replace("nrefs:2", "nrefs:1")


def test_sacrebleu_signature_before_data():
    assert build_metric("bleu", {}).signature().startswith("nrefs:unknown|")


# Items with 3, 1, 2, 1 and 2 references; an empty prediction; German and Japanese text.
VAR_HYPS = [
    "The cat sat on the mat.",
    "Ein schöner Tag in München — für alle!",
    "",
    "He read the book because he was interested in world history.",
    "東京は日本の首都です。",
]
VAR_REFS = [
    ["The cat is on the mat.", "There is a cat on the mat.", "A cat sat on the mat."],
    ["Ein schöner Tag in München für alle."],
    ["Nothing was said.", "Silence."],
    ["He was interested in world history because he read the book."],
    ["日本の首都は東京です。", "東京は日本の首都である。"],
]
VAR_GOLDEN = [
    ("bleu", {}, 56.7322359791178),
    ("chrf", {}, 77.98191823068859),
    ("ter", {}, 36.58536585365854),
    ("bleu", {"tokenize": "char"}, 87.32388947314999),
    ("bleu", {"tokenize": "intl"}, 56.29729715230116),
]


def _streams(items):
    k = max(len(r) for r in items)
    return [[r[j] if j < len(r) else None for r in items] for j in range(k)]


def _sacre(name, options):
    from sacrebleu.metrics import BLEU, CHRF, TER

    return {"bleu": BLEU, "chrf": CHRF, "ter": TER}[name](**options)


@pytest.mark.parametrize("name,options,expected", VAR_GOLDEN)
def test_sacrebleu_variable_references(name, options, expected):
    metric = build_metric(name, options)
    stats = metric.item_stats(VAR_HYPS, VAR_REFS)
    assert stats.shape[0] == len(VAR_HYPS)
    assert metric.aggregate(stats)[name] == expected
    # the same as sacrebleu with None-padded reference streams
    assert expected == _sacre(name, options).corpus_score(VAR_HYPS, _streams(VAR_REFS)).score
    assert "nrefs:var|" in metric.signature()
    # the number of references matters: dropping the extra references changes the score
    assert metric.score(VAR_HYPS, [r[:1] for r in VAR_REFS])[name] != expected


def _random_corpus(rng, n, max_refs=3):
    vocab = ("the a cat dog sat on mat and it was not very good day in Munich für schön ü , . ! ? ' "
             "running ran runs 2024 3.5 New-York").split()
    vocab += ["東京", "日本", "é"]

    def sent():
        return " ".join(rng.choice(vocab, size=int(rng.integers(0, 14))))

    hyps = [sent() for _ in range(n)]
    refs = [[sent() for _ in range(int(rng.integers(1, max_refs + 1)))] for _ in range(n)]
    return hyps, refs


@pytest.mark.parametrize(
    "name,options",
    [("bleu", {}), ("bleu", {"smooth_method": "add-k"}), ("chrf", {}), ("chrf", {"word_order": 2}),
     ("ter", {}), ("ter", {"normalized": True, "case_sensitive": True})],
)
def test_sacrebleu_aggregate_equals_corpus_score_and_bootstrap(name, options):
    rng = np.random.default_rng(7)
    hyps, refs = _random_corpus(rng, 120)
    metric = build_metric(name, options)
    stats = metric.item_stats(hyps, refs)
    assert metric.aggregate(stats)[name] == _sacre(name, options).corpus_score(hyps, _streams(refs)).score
    # bootstrap: aggregating resampled rows equals scoring the resampled corpus (corpus-level, not a mean)
    for _ in range(3):
        idx = rng.integers(0, len(hyps), len(hyps))
        got = metric.aggregate(stats[idx])[name]
        want = _sacre(name, options).corpus_score([hyps[i] for i in idx], _streams([refs[i] for i in idx])).score
        assert got == want


def test_bleu_is_corpus_level_not_mean():
    metric = build_metric("bleu", {})
    hyps = ["the cat sat on the mat", "completely different words here"]
    refs = [["the cat sat on the mat"], ["nothing matches at all"]]
    stats = metric.item_stats(hyps, refs)
    corpus = metric.aggregate(stats)["bleu"]
    mean = np.mean([metric.aggregate(stats[i : i + 1])["bleu"] for i in range(2)])
    assert corpus == 65.80370064762461  # sacrebleu.corpus_bleu; the mean of the sentence scores is 50
    assert corpus != pytest.approx(mean)


def test_sacrebleu_edge_cases():
    metric = build_metric("bleu", {})
    assert metric.score([""], [["a reference"]]) == {"bleu": 0.0}
    assert metric.item_stats([], []).shape == (0, 10)
    assert metric.aggregate(np.zeros((0, 10))) == {"bleu": 0.0}
    with pytest.raises(ValueError, match="no reference"):
        metric.item_stats(["x", "y"], [["x"], []])
    with pytest.raises(ValueError, match="aligned"):
        metric.item_stats(["x"], [["x"], ["y"]])
    with pytest.raises(ValueError):
        metric.item_stats([None], [["x"]])
    assert build_metric("ter", {}).score(["a b"], [[""]]) == {"ter": 100.0}  # sacrebleu: empty ref, non-empty hyp


# --------------------------------------------------------------------------------------------------------------
# ROUGE

ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
ROUGE_GOLDEN = [
    # (target, prediction, f-measures with stemming, without stemming) from rouge-score 0.1.2
    ("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.",
     [0.7058823529411765, 0.26666666666666666, 0.5882352941176471, 0.5882352941176471],
     [0.7058823529411765, 0.26666666666666666, 0.5882352941176471, 0.5882352941176471]),
    ("The cats were running quickly.\nThey stopped at the gates.",
     "A cat runs quick.\nIt stopped at a gate and the cats were running.",
     [0.5833333333333334, 0.3636363636363637, 0.41666666666666663, 0.5],
     [0.5, 0.3636363636363637, 0.3333333333333333, 0.5]),
    ("police killed the gunman", "the gunman police killed", [1.0, 0.6666666666666666, 0.5, 0.5],
     [1.0, 0.6666666666666666, 0.5, 0.5]),
    ("", "something", [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]),
    ("something", "", [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]),
    ("Café ünïcode naïve 東京 test", "cafe unicode naive test", [0.2, 0.0, 0.2, 0.2], [0.2, 0.0, 0.2, 0.2]),
]


@pytest.mark.parametrize("target,prediction,stem,nostem", ROUGE_GOLDEN)
def test_rouge_golden(target, prediction, stem, nostem):
    for use_stemmer, expected in ((True, stem), (False, nostem)):
        metric = build_metric("rouge", {"use_stemmer": use_stemmer})
        stats = metric.item_stats([prediction], [[target]])
        assert stats.tolist() == [expected]
        assert metric.aggregate(stats) == {t: 100.0 * v for t, v in zip(ROUGE_TYPES, expected)}


def test_rouge_multi_reference_golden():
    metric = build_metric("rouge", {})
    stats = metric.item_stats(["the dog sat on the rug"], [["the cat sat on the mat", "a dog lay on the rug"]])
    assert stats.tolist() == [[0.6666666666666666, 0.4000000000000001, 0.6666666666666666, 0.6666666666666666]]


def _varied_pairs(seed, n):
    rng = np.random.default_rng(seed)
    words = ("the a of police killed gunman running runs ran runner connection connected connecting "
             "generously generous happiness happy ponies pony caresses relational conditional "
             "agreed agreement quick quickly brown fox jumps jumping dog dogs lazy 2018 3.5 u.s. "
             "don't o'neill £20m e-mail x y z is was were").split()
    words += ["Café", "naïve", "Zürich", "東京", "İstanbul", "straße", "ΣΊΣΥΦΟΣ", "😀", "--", "...", "(", ")"]
    seps = [" ", " ", " ", " ", "\n", "\n\n", " \n ", ", ", ". ", "\t"]

    def text():
        kind = rng.random()
        if kind < 0.05:
            return ""
        if kind < 0.08:
            return rng.choice(["   ", "\n", "\n\n\n", "!!! ...", "😀 東京"])
        n_words = int(rng.integers(1, 40))
        out = []
        for _ in range(n_words):
            w = str(rng.choice(words))
            if rng.random() < 0.2:
                w = w.upper() if rng.random() < 0.5 else w.capitalize()
            out.append(w)
            out.append(str(rng.choice(seps)))
        s = "".join(out)
        if rng.random() < 0.2:
            s = "\n" + s
        return s

    pairs = []
    for _ in range(n):
        target = text()
        # make some predictions overlap heavily with their target
        prediction = target.replace("the", "a") if rng.random() < 0.2 else text()
        pairs.append((target, prediction))
    return pairs


@pytest.mark.parametrize(
    "options",
    [{}, {"use_stemmer": False}, {"rouge_types": ["rougeLsum"]}, {"rouge_types": ["rouge3", "rougeL"]}],
)
def test_rouge_fast_path_identical_to_rouge_score(options):
    from rouge_score import rouge_scorer

    metric = build_metric("rouge", dict(options, n_jobs=1))
    types = list(metric.rouge_types)
    plain = rouge_scorer.RougeScorer(types, use_stemmer=options.get("use_stemmer", True))
    pairs = _varied_pairs(3, 300)
    stats = metric.item_stats([p for _, p in pairs], [[t] for t, _ in pairs])
    expected = [[plain.score(t, p)[k].fmeasure for k in types] for t, p in pairs]
    assert stats.tolist() == expected  # exact, not approximate
    assert any("\n" in t for t, _ in pairs) and any(t == "" for t, _ in pairs) and any(p == "" for _, p in pairs)


def test_rouge_filtered_lcs_identical_to_score_lcs():
    from rouge_score.rouge_scorer import _score_lcs

    from harness.metrics.rouge import _Profile, _score_lcs_filtered, tokenize_function

    rng = np.random.default_rng(2)
    for _ in range(1500):
        vocab = list("abcdefghij")[: int(rng.integers(1, 11))]
        t = " ".join(rng.choice(vocab, size=int(rng.integers(0, 25))))
        p = " ".join(rng.choice(vocab + ["zz"], size=int(rng.integers(0, 25))))
        tok = tokenize_function("default", False)
        tp, pp = _Profile(t, tok, (), False), _Profile(p, tok, (), False)
        assert _score_lcs_filtered(tp, pp) == _score_lcs(tp.tokens, pp.tokens)


def test_rouge_multi_reference_identical_to_score_multi():
    from rouge_score import rouge_scorer

    plain = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=True)
    pairs = _varied_pairs(11, 240)
    predictions = [p for _, p in pairs[:80]]
    targets = [[pairs[80 + 2 * i][0], pairs[81 + 2 * i][0], pairs[i][0]][: 1 + i % 3] for i in range(80)]
    stats = build_metric("rouge", {"n_jobs": 1}).item_stats(predictions, targets)
    expected = [[plain.score_multi(ts, p)[k].fmeasure for k in ROUGE_TYPES] for ts, p in zip(targets, predictions)]
    assert stats.tolist() == expected


def test_rouge_parallel_path_identical():
    pairs = _varied_pairs(5, 400)
    predictions, targets = [p for _, p in pairs], [[t] for t, _ in pairs]
    serial = build_metric("rouge", {"n_jobs": 1}).item_stats(predictions, targets)
    metric = build_metric("rouge", {"n_jobs": 2, "parallel_threshold": 50})
    # first sight of these references; second call (profiles them in the parent); third call (cached)
    for _ in range(3):
        assert metric.item_stats(predictions, targets).tolist() == serial.tolist()


def test_rouge_aggregate_and_signature():
    metric = build_metric("rouge", {})
    assert metric.signature() == (
        "rouge|types:rouge1,rouge2,rougeL,rougeLsum|stem:yes|tok:default|lsum:newline-split|agg:mean-fmeasure"
        "|version:rouge-score-0.1.2"
    )
    assert build_metric("rouge", {"use_stemmer": False, "rouge_types": ["rouge1"]}).signature() == (
        "rouge|types:rouge1|stem:no|tok:default|agg:mean-fmeasure|version:rouge-score-0.1.2"
    )
    stats = np.array([[0.5, 0.25, 0.5, 0.5], [1.0, 0.0, 0.25, 0.75]])
    assert metric.aggregate(stats) == {"rouge1": 75.0, "rouge2": 12.5, "rougeL": 37.5, "rougeLsum": 62.5}
    assert [s.name for s in metric.scores] == ROUGE_TYPES
    assert all(s.higher_is_better and s.scale == "0-100" for s in metric.scores)


# --------------------------------------------------------------------------------------------------------------
# SQuAD v1.1


SQUAD_CASES = [
    # (prediction, golds, exact match, f1), by hand with the official normalisation
    ("the Denver Broncos", ["Denver Broncos", "Broncos"], 1.0, 1.0),  # article and case dropped
    ("Broncos of Denver", ["Denver Broncos"], 0.0, 0.8),  # P = 2/3, R = 1
    ("Santa Clara, California.", ["Santa Clara", "Santa Clara, California"], 1.0, 1.0),  # punctuation dropped
    ("in 1990", ["1989"], 0.0, 0.0),
    ("Carolina Panthers", ["Denver Broncos", "Carolina Panthers won"], 0.0, 0.8),  # max over golds
    ("", ["Broncos"], 0.0, 0.0),
    ("Ünïcode straße", ["ünïcode Straße"], 1.0, 1.0),
]


def test_squad_hand_cases():
    metric = build_metric("squad", {})
    stats = metric.item_stats([c[0] for c in SQUAD_CASES], [c[1] for c in SQUAD_CASES])
    assert stats[:, 0].tolist() == [c[2] for c in SQUAD_CASES]
    assert stats[:, 1].tolist() == pytest.approx([c[3] for c in SQUAD_CASES], abs=1e-15)
    scores = metric.aggregate(stats)
    assert scores["exact_match"] == pytest.approx(100.0 * 3 / 7)
    assert scores["f1"] == pytest.approx(100.0 * 4.6 / 7)
    assert metric.signature() == "squad|norm:v1.1-official|agg:max-over-golds|scale:100"


def test_squad_normalisation_is_official():
    from harness.metrics.squad import normalize_answer

    assert normalize_answer("  The  Quick, brown-fox!  an apple ") == "quick brownfox apple"
    assert normalize_answer("theatre anthem a") == "theatre anthem"  # articles only as whole words


def test_squad_unanswered_counts_as_zero():
    metric = build_metric("squad", {})
    scores = metric.score(["Denver Broncos", None], [["Denver Broncos"], ["Carolina"]])
    assert scores == {"exact_match": 50.0, "f1": 50.0}
    with pytest.raises(ValueError, match="no gold"):
        metric.item_stats(["x"], [[]])


# --------------------------------------------------------------------------------------------------------------
# Classification


def test_classification_golden():
    metric = build_metric("classification", {"labels": ["neg", "pos", "neutral"]})
    preds = ["pos", "pos", "neg", None, "banana", "neg"]
    golds = ["pos", "neg", "neg", "pos", "neg", "neg"]
    scores = metric.score(preds, golds)
    # pos: tp 1, pred 2, gold 2 -> 0.5; neg: tp 2, pred 2, gold 4 -> 2/3; neutral: nothing -> 0
    assert scores["accuracy"] == pytest.approx(50.0)
    assert scores["f1_pos"] == pytest.approx(50.0)
    assert scores["f1_neg"] == pytest.approx(200.0 / 3)
    assert scores["f1_neutral"] == 0.0
    assert scores["macro_f1"] == pytest.approx((50.0 + 200.0 / 3) / 3)
    assert [s.name for s in metric.scores] == ["accuracy", "macro_f1", "f1_neg", "f1_pos", "f1_neutral"]


def test_classification_sklearn_parity():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    for _ in range(60):
        n = int(rng.integers(1, 80))
        golds = [labels[i] for i in rng.integers(0, 3, n)]  # label 4 never gold
        preds = [None if r < 0.1 else ("junk" if r < 0.15 else labels[int(rng.integers(0, 4))]) for r in rng.random(n)]
        metric = build_metric("classification", {"labels": labels})
        stats = metric.item_stats(preds, golds)
        idx = rng.integers(0, n, n)  # also on a bootstrap resample
        for rows in (np.arange(n), idx):
            got = metric.aggregate(stats[rows])
            p = ["<missing>" if preds[i] is None else preds[i] for i in rows]
            g = [golds[i] for i in rows]
            assert got["macro_f1"] == 100 * f1_score(g, p, labels=labels, average="macro", zero_division=0)
            assert got["accuracy"] == 100 * accuracy_score(g, p)
            per_class = f1_score(g, p, labels=labels, average=None, zero_division=0)
            assert [got[f"f1_{lab}"] for lab in labels] == [100 * v for v in per_class]


def test_classification_errors():
    metric = build_metric("classification", {"labels": ["a", "b"]})
    with pytest.raises(ValueError, match="'c'"):
        metric.item_stats(["a"], ["c"])
    with pytest.raises(ValueError):
        build_metric("classification", {"labels": ["a", "a"]})


# --------------------------------------------------------------------------------------------------------------
# Perplexity


def test_perplexity_hand_computed():
    metric = build_metric("perplexity", {})
    preds = [{"logprob": -4.0, "n_tokens": 3}, {"logprob": -2.0, "n_tokens": 1}]
    texts = ["hello  world\n", "héllo"]  # 2 words, 13 bytes; 1 word, 6 bytes ("é" is 2 bytes)
    stats = metric.item_stats(preds, texts)
    assert stats.tolist() == [[-4.0, 3.0, 2.0, 13.0], [-2.0, 1.0, 1.0, 6.0]]
    scores = metric.aggregate(stats)
    assert scores["perplexity"] == pytest.approx(math.exp(6 / 4))
    assert scores["word_perplexity"] == pytest.approx(math.exp(6 / 3))
    assert scores["byte_perplexity"] == pytest.approx(math.exp(6 / 19))
    assert scores["bits_per_byte"] == pytest.approx(6 / 19 / math.log(2))
    assert scores["perplexity"] == pytest.approx(4.4816890703380645)
    assert all(not s.higher_is_better and s.scale == "unbounded" for s in metric.scores)
    assert metric.signature() == "perplexity|agg:ratio-of-sums|words:whitespace|bytes:utf-8"  # no task settings given


def test_perplexity_word_count_and_objects():
    from harness.metrics.perplexity import count_words
    from harness.requests import RollingLoglikelihood

    assert count_words(" a b\tc\n\nd ") == 4
    assert count_words("   ") == 0
    assert count_words("") == 0
    metric = build_metric("perplexity", {})
    stats = metric.item_stats([RollingLoglikelihood(logprob=-1.5, n_tokens=2)], ["one two"])
    assert stats.tolist() == [[-1.5, 2.0, 2.0, 7.0]]
    with pytest.raises(ValueError):
        metric.item_stats([{"logprob": -1.0}], ["x"])
    with pytest.raises(ValueError):
        metric.item_stats([{"logprob": 1.0, "n_tokens": 1}], ["x"])
    assert math.isnan(metric.aggregate(np.zeros((0, 4)))["perplexity"])


# --------------------------------------------------------------------------------------------------------------
# Every metric is bootstrap-friendly: aggregate over any resampled index array


def _example(name):
    if name in ("bleu", "chrf", "ter"):
        return {}, README_SYS, README_ITEMS
    if name == "rouge":
        return {}, README_SYS, README_ITEMS
    if name == "squad":
        return {}, [c[0] for c in SQUAD_CASES], [c[1] for c in SQUAD_CASES]
    if name == "classification":
        return {"labels": ["a", "b"]}, ["a", None, "b", "b"], ["a", "a", "b", "a"]
    return {}, [{"logprob": -3.0, "n_tokens": 2}, {"logprob": -1.0, "n_tokens": 1}], ["a b", "c"]


@pytest.mark.parametrize("name", sorted(["bleu", "chrf", "ter", "rouge", "squad", "classification", "perplexity"]))
def test_bootstrap_resample(name):
    options, preds, targets = _example(name)
    metric = build_metric(name, options)
    stats = metric.item_stats(preds, targets)
    assert stats.ndim == 2 and stats.shape[0] == len(preds) and stats.dtype == np.float64
    full = metric.aggregate(stats)
    assert list(full) == [s.name for s in metric.scores]
    assert metric.aggregate(stats[np.arange(len(preds))]) == full
    rng = np.random.default_rng(1)
    for _ in range(5):
        idx = rng.integers(0, len(preds), len(preds))
        res = metric.aggregate(stats[idx])
        assert set(res) == set(full) and all(isinstance(v, float) for v in res.values())
        # resampling rows is the same as scoring the resampled items
        assert res == metric.score([preds[i] for i in idx], [targets[i] for i in idx])


def test_sacrebleu_reference_side_is_built_once_per_task(monkeypatch):
    """Entries scored against the same references reuse sacrebleu's preprocessed references; scores are unchanged."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    from harness.metrics import sacrebleu_metrics

    sacrebleu_metrics._REF_CACHE.clear()
    built = []
    for cls in (BLEU, CHRF, TER):
        original = cls._cache_references
        monkeypatch.setattr(cls, "_cache_references",
                            lambda self, refs, _o=original, _c=cls: built.append(_c.__name__) or _o(self, refs))
    for counts, name in ((sacrebleu_metrics.BleuCounts, "BLEU"), (sacrebleu_metrics.ChrfCounts, "CHRF")):
        init = counts.__init__  # BLEU's and chrF's reference side is their numpy counts
        monkeypatch.setattr(counts, "__init__", lambda self, *a, _o=init, _n=name: built.append(_n) or _o(self, *a))
    refs = [["The cat sat on the mat.", "A dog barked."], ["The cat is on the mat.", ""]]
    targets = [list(pair) for pair in zip(*refs)]
    entries = [["The cat sat on a mat.", "The dog barked."], ["A cat.", "Dogs bark loudly."], ["", ""]]
    for name, cls in (("bleu", BLEU), ("chrf", CHRF), ("ter", TER)):
        expected = [cls().corpus_score(hyps, refs).score for hyps in entries]
        metric = build_metric(name)
        built.clear()
        assert [metric.score(hyps, targets)[name] for hyps in entries] == expected
        assert built == [cls.__name__]  # one reference build per metric, not one per entry
    assert len(sacrebleu_metrics._REF_CACHE) == 3


# --------------------------------------------------------------------------------------------------------------
# Signatures: every option that changes a metric's value is in its signature

# metric -> option -> (other options, one value, another value that changes the score)
VALUE_OPTIONS = {
    "bleu": {"lowercase": ({}, False, True), "tokenize": ({}, "13a", "intl"), "smooth_method": ({}, "exp", "floor"),
             "smooth_value": ({"smooth_method": "floor"}, 0.1, 0.2), "max_ngram_order": ({}, 4, 2),
             "effective_order": ({}, False, True), "trg_lang": ({}, "", "zh")},
    "chrf": {"char_order": ({}, 6, 4), "word_order": ({}, 0, 2), "beta": ({}, 2, 3), "lowercase": ({}, False, True),
             "whitespace": ({}, False, True), "eps_smoothing": ({}, False, True)},
    "ter": {"normalized": ({}, False, True), "no_punct": ({}, False, True), "asian_support": ({}, False, True),
            "case_sensitive": ({}, False, True)},
    "rouge": {"rouge_types": ({}, ["rouge1"], ["rouge2"]), "use_stemmer": ({}, True, False),
              "tokenizer": ({}, "default", "char")},
    "classification": {"labels": ({}, ["a", "b"], ["b", "a", "c"])},
    "perplexity": {"words": ({}, "whitespace", "regex-split"), "scoring": ({}, "", "window:64|stride:window"),
                   "unit": ({}, "words", "chars")},
}
NEUTRAL_OPTIONS = {"bleu": {"force"}, "rouge": {"n_jobs", "parallel_threshold"}}  # speed or warnings only


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_every_value_changing_option_is_in_the_signature(name):
    from harness.metrics import metric_class

    options = set(metric_class(name).OPTIONS)
    assert options == set(VALUE_OPTIONS.get(name, {})) | NEUTRAL_OPTIONS.get(name, set()), "a new option: add it"
    for option, (others, one, other) in VALUE_OPTIONS.get(name, {}).items():
        base = dict(others, labels=["a", "b", "c"]) if name == "classification" and option != "labels" else others
        signatures = {build_metric(name, dict(base, **{option: value})).signature() for value in (one, other)}
        assert len(signatures) == 2, (name, option, signatures)


def test_perplexity_signature_follows_the_task_window_and_stride():
    from harness.compose import compose
    from harness.scoring import score
    from tasks.examples import load_examples

    signatures = set()
    for window, stride in ((None, None), (64, None), (64, 32)):
        overrides = ["task=demo_language_modeling"] + [f"task.{k}={v}" for k, v in (("window", window),
                                                                                 ("stride", stride)) if v]
        task = compose(overrides).task
        examples = load_examples(task)[:2]
        preds = {e.id: {"logprob": -3.0, "n_tokens": 4} for e in examples}
        signature = score(task, examples, preds).signatures["perplexity"]
        assert f"window:{window or 'model-max'}|stride:{stride or 'window'}|start:bos-else-eos" in signature
        signatures.add(signature)
    assert len(signatures) == 3


@pytest.mark.parametrize("name", METRIC_NAMES)
@pytest.mark.parametrize("options", [{}, {"labels": ["a", "b"]}, {"unit": "chars"}, {"rouge_types": ["rougeL"]}])
def test_the_light_score_table_matches_every_metric(name, options):
    """Config checks and board arrows read harness.metrics.defaults (no metric library loaded): it must say what
    the metric itself says."""
    from harness.metrics import defaults, metric_class

    usable = {k: v for k, v in options.items() if k in metric_class(name).OPTIONS}
    if name == "classification" and "labels" not in usable:
        usable["labels"] = ["x"]
    metric = build_metric(name, usable)
    assert defaults.score_names(name, usable) == [s.name for s in metric.scores]
    assert all(defaults.higher_is_better(s.name) == s.higher_is_better for s in metric.scores)
