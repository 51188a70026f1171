"""Parity for Chinese through the harness: official numbers from the real data, rouge-score for ROUGE.

Like tests/test_parity_real_data.py: each test builds `predictions` entries, runs them through the harness and reads
the records the store wrote. The tasks (tests/parity_tasks/task/) declare only `language: zh`; the tokenizers and the
QA metric follow from it. The data lives in the repository's sibling folder `shared/data` (or
`$HARNESS_SHARED_DATA`); where it is absent the real-data tests skip, saying so; where it is present they never skip.
"""
from __future__ import annotations

import json
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
    make_submission,
    read_lines,
    read_tsv_rows,
    require_shared_data,
)


@pytest.fixture(scope="module")
def shared() -> Path:
    return require_shared_data()


# ------------------------------------------------------------------------------------------------ WMT21 en-zh

WMT_ZH = ("translation", "wmt21_newstest2021_en-zh")
WMT_ZH_TASKS = {  # task -> (reference columns -> reference files, official metric suffix)
    "parity_wmt21_en_zh_ref_a": ({"ref_A": "A"}, "A"),
    "parity_wmt21_en_zh_ref_b": ({"ref_B": "B"}, "B"),
    "parity_wmt21_en_zh_ref_ab": ({"ref_A": "A", "ref_B": "B"}, "all"),
}


def official_en_zh(path: Path) -> dict:
    header, rows = read_tsv_rows(path)
    assert header == ["pair", "system", "id", "is_constrained", "metric", "score"], header
    table: dict = {}
    for pair, system, _id, _constrained, metric, value in rows:
        assert pair == "en-zh"
        table.setdefault(system, {})[metric] = float(value)
    return table


@pytest.mark.slow  # 29 systems x 3 reference sets through the harness (sacrebleu's zh tokenizer): about a minute
def test_wmt21_en_zh_bleu_chrf_equal_official_table(shared, tmp_path):
    root = shared.joinpath(*WMT_ZH)
    official = official_en_zh(data_file(root, "automatic-scores.en-zh.tsv"))
    assert len(official) == 29 and sum(len(v) for v in official.values()) == 174
    source = data_file(root, "sources", "newstest2021.en-zh.src.en")
    refs = {ref: data_file(root, "references", f"newstest2021.en-zh.ref.{ref}.zh") for ref in ("A", "B")}
    n_lines = len(read_lines(source))
    assert n_lines == 1002
    submissions = []
    for system in sorted(official):
        hyp = read_lines(data_file(root, "system-outputs", f"newstest2021.en-zh.hyp.{system}.zh"))
        assert len(hyp) == n_lines, system
        by_id = {str(i): line for i, line in enumerate(hyp)}
        submissions.append(make_submission(tmp_path / "entries", system, {task: by_id for task in WMT_ZH_TASKS}))

    def task_data(columns):
        return {"files.source": source, **{f"files.{col}": refs[ref] for col, ref in columns.items()}}

    workers = max(1, min(len(WMT_ZH_TASKS), os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {task: pool.submit(evaluate_many, submissions, task, tmp_path / "store", task_data(columns))
                   for task, (columns, _suffix) in WMT_ZH_TASKS.items()}
        by_task = {task: future.result() for task, future in futures.items()}
    compared = 0
    for task, (columns, suffix) in WMT_ZH_TASKS.items():
        records = by_task[task]
        assert sorted(records) == sorted(official)
        for system, record in records.items():
            assert_ok(record)
            assert record["counts"]["examples"] == 1002 and record["counts"]["missing"] == 0
            for metric in ("bleu", "chrf"):
                assert record["scores"][metric] == pytest.approx(official[system][f"{metric}-{suffix}"], abs=1e-6), \
                    (task, system, metric)
                compared += 1
            assert "tok:zh" in record["signatures"]["bleu"], record["signatures"]["bleu"]
            assert f"nrefs:{len(columns)}" in record["signatures"]["bleu"]
    assert compared == 174
    # the number the issue reported for 13a (Borderline, ref A: 3.30) is what the language default replaces
    borderline = by_task["parity_wmt21_en_zh_ref_a"]["Borderline"]["scores"]["bleu"]
    assert borderline == pytest.approx(36.51, abs=0.005)


# ------------------------------------------------------------------------------------------------ CMRC 2018

CMRC = ("qa", "cmrc2018")
CMRC_TASK = "parity_cmrc2018_dev"
# cmrc2018_evaluate.py (ported to Python 3) on cmrc2018_dev.json, from the data's PROVENANCE.md: F1, EM, SKIP
CMRC_OFFICIAL = {
    "mixed": (69.49199981561242, 37.962100031065546, 161),
    "window": (64.54520997405295, 0.21745883814849332, 0),
}


@pytest.mark.slow  # 3,219 questions x 2 files through the harness
def test_cmrc2018_dev_equals_official_evaluate_script(shared, tmp_path):
    root = shared.joinpath(*CMRC)
    dev = data_file(root, "cmrc2018_dev.json")
    for name, (f1, em, skipped) in CMRC_OFFICIAL.items():
        answers = json.loads(data_file(root, "predictions", f"{name}.json").read_text(encoding="utf-8"))
        folder = make_submission(tmp_path / "entries", name, {CMRC_TASK: answers})
        record = evaluate_cli(folder, CMRC_TASK, tmp_path / "store", {"path": dev})
        assert_ok(record)
        assert record["counts"]["examples"] == 3219
        assert record["counts"]["missing"] == skipped and record["counts"]["unknown"] == 0
        assert record["scores"]["f1"] == pytest.approx(f1, abs=1e-9), name
        assert record["scores"]["exact_match"] == pytest.approx(em, abs=1e-9), name
        assert record["signatures"]["cmrc2018"].startswith("cmrc2018|seg:mixed")
        assert "squad" not in record["signatures"]  # the language picked the metric: no `metrics:` in the YAML


@pytest.mark.slow
def test_cmrc2018_first_gold_answers_score_100(shared, tmp_path):
    dev = data_file(shared.joinpath(*CMRC), "cmrc2018_dev.json")
    data = json.loads(dev.read_text(encoding="utf-8"))
    answers = {q["id"]: q["answers"][0]["text"] for d in data["data"] for p in d["paragraphs"] for q in p["qas"]}
    folder = make_submission(tmp_path / "entries", "gold", {CMRC_TASK: answers})
    record = evaluate_cli(folder, CMRC_TASK, tmp_path / "store", {"path": dev})
    assert record["scores"]["f1"] == 100.0 and record["scores"]["exact_match"] == 100.0


# ------------------------------------------------------------------------------------------------ Chinese ROUGE

ROUGE_TASK = "parity_rouge_zh"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
PHRASES = ["北京", "今天", "天气", "很好", "不错", "适合", "出门", "散步", "上海", "市政府", "发布", "新规", "经济",
           "增长", "百分之五", "学生", "老师", "考试", "成绩", "公司", "利润", "下降", "春节", "假期", "旅游", "人数",
           "创新高", "医院", "医生", "病人", "手机", "价格", "科学家", "发现", "新", "物种", "足球", "比赛", "获胜"]
EXTRAS = ["GDP", "5G", "2024年", "iPhone 15", "AI", "COVID-19", "NBA", "3.5%", "ソニー", "カメラ", "の", "﨑", "𠮷"]
PUNCT = ["，", "。", "、", "！", "？", "“", "”", "（", "）", " ", "：", "—", "…"]


def chinese_pairs(n: int, seed: int = 12):
    """(reference, prediction) pairs: phrases, Latin words and digits, kana, rare CJK, punctuation, some on two
    lines (rougeLsum), some sharing nothing, some empty."""
    rng = random.Random(seed)

    def text():
        parts = []
        for _ in range(rng.randint(1, 14)):
            roll = rng.random()
            parts.append(rng.choice(PHRASES) if roll < 0.75 else rng.choice(EXTRAS) if roll < 0.85 else
                         rng.choice(PUNCT))
        if rng.random() < 0.2:
            parts.insert(rng.randint(0, len(parts)), "\n")
        return "".join(parts)

    pairs = []
    for i in range(n):
        reference = text()
        roll = rng.random()
        if roll < 0.5:  # an edited copy: shared characters in a changed order
            words = list(reference)
            rng.shuffle(words[: len(words) // 2])
            prediction = "".join(words[: rng.randint(0, len(words))]) + text()
        elif roll < 0.95:
            prediction = text()
        else:
            prediction = ""
        pairs.append((reference, prediction))
    return pairs


def test_chinese_rouge_equals_rouge_score_with_the_character_tokenizer(tmp_path):
    from rouge_score.rouge_scorer import RougeScorer

    from harness.metrics import build_metric
    from harness.metrics.tokenizers import CharTokenizer

    pairs = chinese_pairs(240)
    scorer = RougeScorer(list(ROUGE_TYPES), tokenizer=CharTokenizer())
    expected = [[scorer.score(ref, pred)[t].fmeasure for t in ROUGE_TYPES] for ref, pred in pairs]
    assert sum(1 for row in expected if row[0] > 0) > 150  # most pairs share characters: not a test of zeros
    # per example: the metric the harness builds for a zh task (its fast path) equals plain rouge-score exactly
    metric = build_metric("rouge", {"tokenizer": "char"})
    stats = metric.item_stats([p for _, p in pairs], [[r] for r, _ in pairs])
    assert stats.tolist() == expected
    # through the harness: a task declaring only `language: zh`
    data = tmp_path / "refs.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "summary": ref}, ensure_ascii=False) + "\n"
                            for i, (ref, _) in enumerate(pairs)), encoding="utf-8")
    folder = make_submission(tmp_path / "entries", "zh-system", {ROUGE_TASK: {str(i): p for i, (_, p) in
                                                                               enumerate(pairs)}})
    record = evaluate_cli(folder, ROUGE_TASK, tmp_path / "store", {"path": data})
    assert_ok(record)
    assert "tok:char" in record["signatures"]["rouge"] and "stem:no" in record["signatures"]["rouge"]
    for k, t in enumerate(ROUGE_TYPES):
        assert record["scores"][t] == pytest.approx(100.0 * sum(row[k] for row in expected) / len(pairs), abs=1e-9)
