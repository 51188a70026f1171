"""Parity on real public data: the harness's stored scores equal the published / reference numbers.

Each test ships a task YAML under tests/parity_tasks/task/ (joined with `hydra.searchpath=[file://...]`, its data
paths overridden with absolute paths into the shared data), builds a `predictions` submission from the published
system outputs (or from a predictor written here), runs it through the harness (`harness.cli.main(["evaluate",
...])`, or `compose` + `evaluate_all` as `harness run` does) and reads the record JSON the store wrote. The harness's
number always comes from that record. The expected side is a published table (WMT21, SQuAD's official script) or,
where none exists, rouge-score / scikit-learn / plain sums called directly in the test.

The data lives in the repository's sibling folder `shared/data` (or `$HARNESS_SHARED_DATA`). Where it is absent
these tests skip, saying so; where it is present they never skip.
"""
from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from parity_helpers import (
    assert_ok,
    data_file,
    evaluate_cli,
    evaluate_many,
    every_nth_missing,
    make_submission,
    read_lines,
    read_tsv_rows,
    require_shared_data,
)


@pytest.fixture(scope="module")
def shared() -> Path:
    return require_shared_data()


# ------------------------------------------------------------------------------------------------ WMT21 de-en

WMT = ("translation", "wmt21_newstest2021_de-en")
WMT_TASKS = {  # task -> (reference columns -> files, official metric suffix)
    "parity_wmt21_de_en_ref_a": ({"ref_A": "A"}, "A"),
    "parity_wmt21_de_en_ref_ab": ({"ref_A": "A", "ref_B": "B"}, "all"),
}


def official_wmt_scores(path: Path) -> dict:
    """system -> metric (bleu-A, chrf-all, ...) -> score, from the official automatic-scores table."""
    header, rows = read_tsv_rows(path)
    assert header == ["pair", "system", "id", "is_constrained", "metric", "score"], header
    table: dict = {}
    for pair, system, _id, _constrained, metric, value in rows:
        assert pair == "de-en"
        table.setdefault(system, {})[metric] = float(value)
    return table


@pytest.mark.slow  # 19 systems x 2 reference sets through the harness: ~16 s, kept out of the fast tier
def test_wmt21_de_en_bleu_chrf_equal_official_table(shared, tmp_path):
    root = shared.joinpath(*WMT)
    official = official_wmt_scores(data_file(root, "automatic-scores.de-en.tsv"))
    assert len(official) == 19, sorted(official)
    # Scale: the official table's chrF is on sacreBLEU 2's 0-100 scale (e.g. 62.31), the harness's too, so they are
    # compared as they are. sacreBLEU 1.x printed chrF on a 0-1 scale; a table on that scale would read <= 1.
    chrf_values = [v for scores in official.values() for m, v in scores.items() if m.startswith("chrf")]
    assert all(1.0 < v <= 100.0 for v in chrf_values), "official chrF is expected on the 0-100 scale"

    source = data_file(root, "sources", "newstest2021.de-en.src.de")
    refs = {ref: data_file(root, "references", f"newstest2021.de-en.ref.{ref}.en") for ref in ("A", "B")}
    n_lines = len(read_lines(source))
    assert n_lines == 1000
    submissions = []
    for system in sorted(official):
        hyp = read_lines(data_file(root, "system-outputs", f"newstest2021.de-en.hyp.{system}.en"))
        assert len(hyp) == n_lines, system
        by_id = {str(i): line for i, line in enumerate(hyp)}  # ids are 0-based line numbers
        submissions.append(make_submission(tmp_path / "entries", system, {task: by_id for task in WMT_TASKS}))

    def task_data(columns):
        return {"files.source": source, **{f"files.{col}": refs[ref] for col, ref in columns.items()}}

    # 38 cells, each a sacreBLEU pass over 1,000 segments: the two tasks run side by side in forked processes
    # (separate record files in one store), each as one `compose` + `evaluate_all` over the 19 entries.
    workers = max(1, min(len(WMT_TASKS), os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {task: pool.submit(evaluate_many, submissions, task, tmp_path / "store", task_data(columns))
                   for task, (columns, _suffix) in WMT_TASKS.items()}
        by_task = {task: future.result() for task, future in futures.items()}
    for task, (columns, suffix) in WMT_TASKS.items():
        records = by_task[task]
        assert sorted(records) == sorted(official)
        for system, record in records.items():
            assert_ok(record)
            assert record["counts"]["examples"] == 1000 and record["counts"]["missing"] == 0
            assert record["counts"]["unknown"] == 0
            assert record["scores"]["bleu"] == pytest.approx(official[system][f"bleu-{suffix}"], abs=1e-6), \
                (task, system, "bleu")
            assert record["scores"]["chrf"] == pytest.approx(official[system][f"chrf-{suffix}"], abs=1e-6), \
                (task, system, "chrf")
            n_refs = len(columns)
            assert f"nrefs:{n_refs}" in record["signatures"]["bleu"], record["signatures"]["bleu"]
            assert f"nrefs:{n_refs}" in record["signatures"]["chrf"], record["signatures"]["chrf"]

    # `harness evaluate` (the CLI entry point) stores the same numbers: one system on refs A+B, in its own store
    facebook = next(s for s in submissions if s.name == "Facebook-AI")
    record = evaluate_cli(facebook, "parity_wmt21_de_en_ref_ab", tmp_path / "cli-store",
                          task_data(WMT_TASKS["parity_wmt21_de_en_ref_ab"][0]))
    assert_ok(record)
    assert record["scores"]["bleu"] == pytest.approx(official["Facebook-AI"]["bleu-all"], abs=1e-6)
    assert record["scores"]["chrf"] == pytest.approx(official["Facebook-AI"]["chrf-all"], abs=1e-6)


# ------------------------------------------------------------------------------------------------ SQuAD v1.1

SQUAD = ("qa", "squad_v1.1")
# official evaluate-v1.1.py on dev-v1.1.json: (prediction file, EM, F1)
SQUAD_OFFICIAL = {
    "bert-ensemble": ("BERT_ensemble_Google_AI_Language.json", 86.20624408703878, 92.19557978351145),
    "r-net-ensemble": ("r_net_ensemble_Microsoft_Research_Asia.json", 82.46925260170293, 88.47785965423249),
    "slqa-ensemble": ("SLQA_ensemble_Alibaba_iDST_NLP.json", 81.94891201513718, 88.38386312172166),
    "match-lstm-ensemble": ("Match_LSTM_with_Ans_Ptr_Boundary_Ensemble_Singapore_Management_University.json",
                            67.63481551561021, 76.75556184979695),
    "logistic-regression": ("Logistic_Regression_Baseline_Stanford_University.json",
                            40.14191106906339, 50.98153647324461),
}
SQUAD_TASK = "parity_squad_v11_dev"


@pytest.mark.slow  # real data: 10,570 questions x 5 systems through the harness, ~18 s
def test_squad_v11_dev_equals_official_evaluate_script(shared, tmp_path):
    root = shared.joinpath(*SQUAD)
    dev = data_file(root, "dev-v1.1.json")
    for name, (filename, em, f1) in SQUAD_OFFICIAL.items():
        answers = json.loads(data_file(root, "predictions", filename).read_text(encoding="utf-8"))
        folder = make_submission(tmp_path / "entries", name, {SQUAD_TASK: answers})  # every key, unknown ones too
        record = evaluate_cli(folder, SQUAD_TASK, tmp_path / "store", {"path": dev})
        assert_ok(record)
        assert record["counts"]["examples"] == 10570
        assert record["scores"]["exact_match"] == pytest.approx(em, abs=1e-9), name
        assert record["scores"]["f1"] == pytest.approx(f1, abs=1e-9), name
        if name == "logistic-regression":  # 10,585 keys: 13 dev questions unanswered, 28 ids not in dev
            assert record["counts"]["missing"] == 13
            assert record["counts"]["unknown"] == 28
        else:
            assert record["counts"]["missing"] == 0 and record["counts"]["unknown"] == 0


# ------------------------------------------------------------------------------------------------ XSum

XSUM = ("summarization", "xsum", "full_test_predictions")
XSUM_SYSTEMS = {"t-convs2s": "topic-convs2s", "convs2s": "convs2s", "ptgen": "ptgen", "lead": "lead"}
XSUM_TASK = "parity_xsum_refs_only"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _rouge_fmeasures(pairs):
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    out = []
    for target, prediction in pairs:
        scores = scorer.score(target, prediction)
        out.append(tuple(scores[t].fmeasure for t in ROUGE_TYPES))
    return out


def expected_rouge(gold, hyp):
    """Plain mean over items of RougeScorer(..., use_stemmer=True).score(target, prediction).fmeasure, x 100.
    (The pairs are scored in forked workers, in contiguous chunks, only to save time; the mean is taken here.)"""
    pairs = list(zip(gold, hyp))
    workers = max(1, os.cpu_count() or 1)
    bounds = [len(pairs) * k // (4 * workers) for k in range(4 * workers + 1)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_rouge_fmeasures, [pairs[a:b] for a, b in zip(bounds, bounds[1:])])
    rows = [row for part in parts for row in part]
    assert len(rows) == len(pairs)
    return {t: 100.0 * sum(row[k] for row in rows) / len(rows) for k, t in enumerate(ROUGE_TYPES)}


@pytest.mark.slow
def test_xsum_references_only_rouge_equals_rouge_score(shared, tmp_path):
    root = shared.joinpath(*XSUM)
    gold_path = data_file(root, "gold-test-sentences.txt")
    gold = read_lines(gold_path)
    assert len(gold) == 11334
    submissions, outputs = [], {}
    for name, stem in XSUM_SYSTEMS.items():
        outputs[name] = read_lines(data_file(root, f"{stem}-test-output.txt"))
        assert len(outputs[name]) == len(gold), name
        by_id = {str(i): line for i, line in enumerate(outputs[name])}
        submissions.append(make_submission(tmp_path / "entries", name, {XSUM_TASK: by_id}))
    records = evaluate_many(submissions, XSUM_TASK, tmp_path / "store", {"files.gold": gold_path})
    for name, record in records.items():
        assert_ok(record)
        assert record["counts"]["examples"] == 11334 and record["counts"]["missing"] == 0
        expected = expected_rouge(gold, outputs[name])
        for t in ROUGE_TYPES:
            assert record["scores"][t] == pytest.approx(expected[t], abs=1e-9), (name, t)
    # the published ranking (XSum paper, ROUGE-1.5.5) holds with rouge-score too
    for t in ROUGE_TYPES:
        ranked = [records[n]["scores"][t] for n in ("t-convs2s", "convs2s", "ptgen", "lead")]
        assert ranked == sorted(ranked, reverse=True) and len(set(ranked)) == 4, (t, ranked)


# ------------------------------------------------------------------------------------------------ classification

MISSING = "__missing__"  # what sklearn sees for an id the entry left out: a label outside the set, always wrong


def sklearn_scores(gold, predicted, labels):
    from sklearn.metrics import accuracy_score, f1_score

    y_pred = [MISSING if p is None else p for p in predicted]
    macro = f1_score(gold, y_pred, labels=labels, average="macro", zero_division=0)
    per_class = f1_score(gold, y_pred, labels=labels, average=None, zero_division=0)
    return (100.0 * accuracy_score(gold, y_pred), 100.0 * macro,
            {f"f1_{label}": 100.0 * v for label, v in zip(labels, per_class)})


def check_classification(record, gold, predicted, labels):
    assert_ok(record)
    assert record["counts"]["examples"] == len(gold)
    assert record["counts"]["missing"] == sum(p is None for p in predicted)
    accuracy, macro, per_class = sklearn_scores(gold, predicted, labels)
    assert record["scores"]["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert record["scores"]["macro_f1"] == pytest.approx(macro, abs=1e-9)
    for name, value in per_class.items():
        assert record["scores"][name] == pytest.approx(value, abs=1e-9), name
    assert record["scores"]["accuracy"] != pytest.approx(record["scores"]["macro_f1"])  # two different numbers


SST2_LABELS = {"0": "negative", "1": "positive"}
POSITIVE_WORDS = {"good", "great", "best", "fun", "funny", "beautiful", "charming", "love", "enjoyable", "fine",
                  "moving", "wonderful", "well", "smart", "entertaining", "works", "rare", "remarkable"}
NEGATIVE_WORDS = {"bad", "worst", "dull", "boring", "no", "not", "never", "mess", "flat", "stupid", "tedious",
                  "lacks", "fails", "too", "pretentious", "unfunny", "nothing", "problem"}


def test_sst2_dev_accuracy_macro_f1_equal_sklearn(shared, tmp_path):
    path = data_file(shared, "classification", "sst2_glue", "dev.tsv")
    header, rows = read_tsv_rows(path)
    assert header == ["sentence", "label"] and len(rows) == 872
    rng = random.Random(20240521)
    ids = [str(i) for i in range(len(rows))]  # row index, header excluded
    dropped = every_nth_missing(ids, 23)
    gold, predicted, by_id = [], [], {}
    for example_id, (sentence, label) in zip(ids, rows):
        words = set(sentence.split())
        score = len(words & POSITIVE_WORDS) - len(words & NEGATIVE_WORDS)
        guess = "positive" if score > 0 else "negative" if score < 0 else rng.choice(["negative", "positive"])
        gold.append(SST2_LABELS[label])
        predicted.append(None if example_id in dropped else guess)
        if example_id not in dropped:
            by_id[example_id] = guess
    folder = make_submission(tmp_path / "entries", "keyword-rules", {"parity_sst2_dev": by_id})
    record = evaluate_cli(folder, "parity_sst2_dev", tmp_path / "store", {"path": path})
    check_classification(record, gold, predicted, list(SST2_LABELS.values()))
    assert record["counts"]["missing"] == len(dropped) == 37


AG_LABELS = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}
AG_KEYWORDS = {
    "Sports": {"game", "season", "team", "coach", "cup", "win", "league", "olympic", "match", "player"},
    "Business": {"company", "shares", "profit", "oil", "market", "stocks", "sales", "bank", "prices", "deal"},
    "Sci/Tech": {"software", "internet", "microsoft", "computer", "space", "technology", "web", "google", "users"},
}


def test_ag_news_test_accuracy_macro_f1_equal_sklearn(shared, tmp_path):
    path = data_file(shared, "classification", "ag_news", "test.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 7600 and all(len(r) == 3 for r in rows)
    rng = random.Random(7)
    ids = [str(i) for i in range(len(rows))]  # headerless: row 0 is the first example
    dropped = every_nth_missing(ids, 31)
    gold, predicted, by_id = [], [], {}
    for example_id, (label, _title, description) in zip(ids, rows):
        words = set(description.lower().replace(",", " ").replace(".", " ").split())
        hits = [topic for topic, keys in AG_KEYWORDS.items() if words & keys]
        guess = hits[0] if len(hits) == 1 else ("World" if not hits else rng.choice(hits))
        gold.append(AG_LABELS[label])
        predicted.append(None if example_id in dropped else guess)
        if example_id not in dropped:
            by_id[example_id] = guess
    assert sorted(gold.count(label) for label in AG_LABELS.values()) == [1900] * 4
    folder = make_submission(tmp_path / "entries", "keyword-rules", {"parity_ag_news_test": by_id})
    record = evaluate_cli(folder, "parity_ag_news_test", tmp_path / "store", {"path": path})
    check_classification(record, gold, predicted, list(AG_LABELS.values()))
    assert record["counts"]["missing"] == len(dropped) == 245


# ------------------------------------------------------------------------------------------------ WikiText-2

def test_wikitext2_perplexities_are_ratios_of_sums(shared, tmp_path):
    lines = read_lines(data_file(shared, "language_modeling", "wikitext-2", "wiki.test.tokens"))
    assert len(lines) == 4358
    documents = [(i, line) for i, line in enumerate(lines) if line.strip()]
    assert len(documents) == 2891
    data = tmp_path / "wikitext2_test_nonempty.jsonl"
    data.write_text("".join(json.dumps({"line": i, "text": text}, ensure_ascii=False) + "\n"
                            for i, text in documents), encoding="utf-8")
    rng = random.Random(11)
    by_id, logprob, tokens, words, n_bytes = {}, 0.0, 0, 0, 0
    for i, text in documents:  # made-up model outputs: ~1.3 tokens a word, 2-5 nats a token
        n_tokens = max(1, round(len(text.split()) * rng.uniform(1.1, 1.5)))
        value = -n_tokens * rng.uniform(2.0, 5.0)
        by_id[str(i)] = {"logprob": value, "n_tokens": n_tokens}
        logprob += value
        tokens += n_tokens
        words += len(text.split())
        n_bytes += len(text.encode("utf-8"))
    folder = make_submission(tmp_path / "entries", "made-up-lm", {"parity_wikitext2_test": by_id})
    record = evaluate_cli(folder, "parity_wikitext2_test", tmp_path / "store", {"path": data})
    assert_ok(record)
    assert record["counts"]["examples"] == 2891 and record["counts"]["missing"] == 0
    expected = {"perplexity": math.exp(-logprob / tokens), "word_perplexity": math.exp(-logprob / words),
                "byte_perplexity": math.exp(-logprob / n_bytes), "bits_per_byte": -logprob / n_bytes / math.log(2)}
    for name, value in expected.items():
        assert record["scores"][name] == pytest.approx(value, rel=1e-12), name
    assert record["primary"] == record["scores"]["bits_per_byte"]
