"""A task's language: tags, the metric defaults it implies (in the signatures and the score key, never the
prediction key), the CMRC 2018 metric, character perplexity and the guard that refuses references which do not fit."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.cli import main
from harness.compose import available, compose
from harness.config import TaskConfig
from harness.errors import ConfigError
from harness.language import primary_subtag, script_counts, script_problem
from harness.metrics import build_metric
from harness.metrics.sacrebleu_metrics import TOKENIZER_EXTRAS
from harness.scoring import LanguageWarning, metric_options

ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
# The examples.
ZH_REFERENCE, ZH_PREDICTION = "北京今天天气不错，适合散步。", "北京今天天气很好，适合出门散步。"


def needs_extra(extra, *modules):
    """Skips, naming the optional extra, where one of its modules is not installed (.ci/run installs them all)."""
    for module in modules:
        pytest.importorskip(module, reason=f"the optional extra {extra!r} is not installed (.ci/run installs it)")


def task(**fields):
    base = {"name": "t", "kind": "summarization", "primary_metric": "rougeL", "metrics": ["rouge"]}
    return OmegaConf.merge(OmegaConf.structured(TaskConfig), {**base, **fields})


# ------------------------------------------------------------------------------------------------ tags


@pytest.mark.parametrize("tag, primary", [("zh", "zh"), ("zh-Hant", "zh"), ("ZH-hans-CN", "zh"), ("EN-us", "en"),
                                          ("ja", "ja"), ("ko-KR", "ko"), ("de-CH-1996", "de"), ("yue", "yue"),
                                          ("sr-Latn-RS", "sr"), ("en-x-private", "en")])
def test_the_primary_subtag_decides_case_insensitively(tag, primary):
    assert primary_subtag(tag) == primary


@pytest.mark.parametrize("tag", ["", "zh_CN", "chinese!", "e", "en-", "-en", " en", "en us", "english123"])
def test_a_malformed_tag_is_a_value_error(tag):
    with pytest.raises(ValueError, match="not a BCP-47 language tag"):
        primary_subtag(tag)


def write_task(folder: Path, name: str, body: str) -> None:
    (folder / "task").mkdir(parents=True, exist_ok=True)
    (folder / "task" / f"{name}.yaml").write_text(body, encoding="utf-8")


def test_a_malformed_language_is_a_config_error_naming_the_file_and_key(tmp_path):
    write_task(tmp_path, "bad_lang", "name: bad_lang\nkind: summarization\nlanguage: zh_CN\nmetrics: [rouge]\n"
                                     "primary_metric: rougeL\nfields: {document: d, references: [s]}\n")
    with pytest.raises(ConfigError) as caught:
        compose([f"hydra.searchpath=[file://{tmp_path}]", "task=bad_lang"])
    message = str(caught.value)
    assert str(tmp_path / "task" / "bad_lang.yaml") in message and "language: 'zh_CN'" in message


def test_a_task_without_language_is_english_with_a_warning_naming_the_file(tmp_path):
    write_task(tmp_path, "no_lang", "name: no_lang\nkind: summarization\nmetrics: [rouge]\nprimary_metric: rougeL\n"
                                    "fields: {document: d, references: [s]}\n")
    with pytest.warns(LanguageWarning, match=r"no_lang\.yaml\): no `language:` key"):
        cfg = compose([f"hydra.searchpath=[file://{tmp_path}]", "task=no_lang"])
    assert metric_options(cfg.task, "rouge") == {"tokenizer": "default"}


def test_every_shipped_task_declares_its_language():
    for name in available("task"):
        cfg = compose([f"task={name}"])
        assert cfg.task.language is not None, name
        primary_subtag(cfg.task.language)
        if cfg.task.kind == "translation":
            assert cfg.task.source_language is not None, name


# ------------------------------------------------------------------------------------------------ defaults


@pytest.mark.parametrize("language, tokenize", [("zh", "zh"), ("zh-Hant", "zh"), ("ja", "ja-mecab"),
                                                ("ko", "ko-mecab"), ("en", "13a"), ("de", "13a"), (None, "13a")])
def test_bleu_tokenizer_follows_sacrebleus_command_line(language, tokenize):
    t = task(kind="translation", language=language, metrics=["bleu"], primary_metric="bleu")
    assert metric_options(t, "bleu") == {"tokenize": tokenize}
    if tokenize in TOKENIZER_EXTRAS:  # building the metric loads the tokenizer, which is an optional extra
        extra, modules = TOKENIZER_EXTRAS[tokenize]
        needs_extra(extra, *modules)
    assert f"tok:{tokenize}" in build_metric("bleu", metric_options(t, "bleu")).signature()


def test_an_explicit_option_overrides_the_language_default():
    t = task(kind="translation", language="zh", metrics=["bleu"], primary_metric="bleu",
             metric_options={"bleu": {"tokenize": "char"}})
    assert metric_options(t, "bleu") == {"tokenize": "char"}


def test_chinese_bleu_and_ter_see_characters():
    t = task(kind="translation", language="zh", metrics=["bleu", "ter"], primary_metric="bleu")
    bleu = build_metric("bleu", metric_options(t, "bleu"))
    ter = build_metric("ter", metric_options(t, "ter"))
    hyp, ref = ["北京今天天气很好"], [["北京今天天气不错"]]
    assert bleu.score(hyp, ref)["bleu"] > 40  # 13a sees one "word" each side: 0
    assert build_metric("bleu", {}).score(hyp, ref)["bleu"] == 0.0
    assert ter.score(hyp, ref)["ter"] == pytest.approx(100 * 2 / 8)  # two of eight characters substituted
    assert "asian:yes" in ter.signature() and "norm:yes" in ter.signature()


@pytest.mark.slow  # MeCab's dictionaries load in ~9 s
def test_japanese_and_korean_bleu_use_mecab():
    for extra, modules in TOKENIZER_EXTRAS.values():
        needs_extra(extra, *modules)
    ja = build_metric("bleu", metric_options(task(kind="translation", language="ja"), "bleu"))
    assert "tok:ja-mecab" in ja.signature()
    assert ja.score(["猫が好きです"], [["猫が好きだ"]])["bleu"] > 0
    ko = build_metric("bleu", metric_options(task(kind="translation", language="ko"), "bleu"))
    assert ko.score(["나는 고양이를 좋아한다"], [["나는 고양이가 좋다"]])["bleu"] > 0


@pytest.mark.parametrize("tokenize, module, extra", [("ja-mecab", "MeCab", "ja"), ("ko-mecab", "mecab_ko", "ko")])
def test_a_missing_optional_extra_is_an_error_naming_it(monkeypatch, tokenize, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import MeCab` now raises ImportError
    with pytest.raises(ValueError, match=rf"optional extra '{extra}' \(pip install 'contest-harness\[{extra}\]'"):
        build_metric("bleu", {"tokenize": tokenize})


def test_a_missing_jieba_is_an_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)
    with pytest.raises(ValueError, match=r"optional extra 'zh'"):
        build_metric("rouge", {"tokenizer": "jieba"}).score(["北京"], [["北京"]])


def test_chinese_rouge_is_not_zero_and_equals_rouge_score_with_the_character_tokenizer():
    from rouge_score.rouge_scorer import RougeScorer

    from harness.metrics.tokenizers import CharTokenizer

    english = build_metric("rouge", metric_options(task(language="en"), "rouge"))
    assert english.score([ZH_PREDICTION], [[ZH_REFERENCE]])["rougeL"] == 0.0  # what the issue saw
    chinese = build_metric("rouge", metric_options(task(language="zh"), "rouge"))
    scores = chinese.score([ZH_PREDICTION], [[ZH_REFERENCE]])
    expected = RougeScorer(ROUGE_TYPES, tokenizer=CharTokenizer()).score(ZH_REFERENCE, ZH_PREDICTION)
    for t in ROUGE_TYPES:
        assert scores[t] == 100 * expected[t].fmeasure
    assert scores["rouge1"] == pytest.approx(100 * 2 * 10 / (12 + 14))  # 10 shared of 12 and 14 characters
    assert "tok:char" in chinese.signature() and "stem:no" in chinese.signature()


@pytest.mark.parametrize("text, tokens", [
    ("北京ABC-12，ｘ", ["北", "京", "abc", "12"]),  # full-width Latin is not [A-Za-z0-9]: dropped
    ("ソニーのカメラ", ["ソ", "ニ", "ー", "の", "カ", "メ", "ラ"]),  # U+30FC, the long-vowel mark, is a token
    ("𠮷野家 﨑", ["𠮷", "野", "家", "﨑"]),  # U+20BB7 and the compatibility ideograph U+FA11
    ("한국어 Привет", []),  # neither CJK nor ASCII
])
def test_the_character_tokenizer_follows_its_definition(text, tokens):
    from harness.metrics.tokenizers import CharTokenizer

    assert CharTokenizer().tokenize(text) == tokens


@pytest.mark.parametrize("tokenizer, language, pairs", [
    ("words", "ko", [("나는 고양이를 좋아한다", "나는 고양이가 좋다"), ("서울의 날씨", "서울 날씨가 맑다")]),
    ("words", "ru", [("Привет, мир! Это тест.", "привет мир, это не тест"), ("Ёлка", "ёлка")]),
    ("words", "el", [("Καλημέρα κόσμε", "καλημέρα σε όλους")]),
    ("jieba", "zh", [(ZH_REFERENCE, ZH_PREDICTION), ("我爱北京天安门。\n天安门上太阳升。", "我爱天安门")]),
])
def test_words_and_jieba_rouge_equal_rouge_score_with_the_same_tokenizer(tokenizer, language, pairs):
    from rouge_score.rouge_scorer import RougeScorer

    from harness.metrics.tokenizers import TOKENIZERS

    if tokenizer == "jieba":
        needs_extra("zh", "jieba")
    options = {**metric_options(task(language=language), "rouge"), "tokenizer": tokenizer}
    metric = build_metric("rouge", options)
    assert f"tok:{tokenizer}" in metric.signature()
    scorer = RougeScorer(ROUGE_TYPES, tokenizer=TOKENIZERS[tokenizer]())
    stats = metric.item_stats([p for _, p in pairs], [[r] for r, _ in pairs])
    expected = [[scorer.score(r, p)[t].fmeasure for t in ROUGE_TYPES] for r, p in pairs]
    assert stats.tolist() == expected
    assert any(row[0] > 0 for row in expected)


def test_stemming_with_a_non_english_tokenizer_is_an_error():
    with pytest.raises(ValueError, match="use_stemmer: true applies to the default"):
        build_metric("rouge", {"tokenizer": "char", "use_stemmer": True})


def test_rouge_defaults_by_language():
    assert metric_options(task(language="en-GB"), "rouge") == {"tokenizer": "default"}
    assert metric_options(task(language="ja"), "rouge") == {"tokenizer": "char"}
    assert metric_options(task(language="ko"), "rouge") == {"tokenizer": "words"}
    assert metric_options(task(language="de"), "rouge") == {"tokenizer": "words"}


# ------------------------------------------------------------------------------------------------ cmrc2018


@pytest.mark.parametrize("prediction, golds, em, f1", [
    ("诗人李白", ["李白"], 0.0, 100 * 2 / 3),  # the example: 66.7 (SQuAD's normalisation gives 0)
    ("李白。", ["李白"], 100.0, 100.0),  # listed punctuation is removed
    ("李白.", ["李白"], 0.0, 80.0),  # the ASCII full stop is not in the list: a third token, and EM 0
    ("  THE Beatles ", ["the beatles"], 100.0, 100.0),
    ("1949年10月1日", ["1949年"], 0.0, 100 * 2 * (2 / 6) * 1 / ((2 / 6) + 1)),
    ("", ["李白"], 0.0, 0.0),
    (None, ["李白"], 0.0, 0.0),  # unanswered
    ("杜甫", ["李白", "杜甫"], 100.0, 100.0),  # max over golds
])
def test_cmrc2018_golden_values(prediction, golds, em, f1):
    scores = build_metric("cmrc2018").score([prediction], [golds])
    assert scores["exact_match"] == em
    assert scores["f1"] == pytest.approx(f1, abs=1e-12)


def test_squad_on_a_chinese_task_is_a_config_error_suggesting_cmrc2018(tmp_path):
    write_task(tmp_path, "zh_squad", "name: zh_squad\nkind: qa\nlanguage: zh\nmetrics: [squad]\nprimary_metric: f1\n"
                                     "fields: {context: c, question: q, answers: a}\n")
    with pytest.raises(ConfigError, match=r"zh_squad\.yaml\): metrics: squad: .*use metrics: \[cmrc2018\]"):
        compose([f"hydra.searchpath=[file://{tmp_path}]", "task=zh_squad"])


@pytest.mark.parametrize("language, metric", [("zh", "cmrc2018"), ("zh-TW", "cmrc2018"), ("en", "squad"),
                                              ("ja", "squad")])
def test_a_qa_task_without_metrics_gets_its_languages_scorer(tmp_path, language, metric):
    write_task(tmp_path, "qa_default", f"name: qa_default\nkind: qa\nlanguage: {language}\nprimary_metric: f1\n"
                                       "fields: {context: c, question: q, answers: a}\n")
    cfg = compose([f"hydra.searchpath=[file://{tmp_path}]", "task=qa_default"])
    assert list(cfg.task.metrics) == [metric]


# ------------------------------------------------------------------------------------------------ perplexity


def test_chinese_perplexity_counts_characters_not_words():
    t = task(kind="language_modeling", language="zh", metrics=["perplexity"], primary_metric="char_perplexity")
    metric = build_metric("perplexity", metric_options(t, "perplexity"))
    scores = metric.score([{"logprob": -20.0, "n_tokens": 8}], ["北京 今天\n天气很好。"])  # 9 code points, 2 spaces
    assert "word_perplexity" not in scores
    assert scores["char_perplexity"] == pytest.approx(2.718281828459045 ** (20 / 9))
    assert scores["bits_per_byte"] == pytest.approx(20 / len("北京 今天\n天气很好。".encode()) / 0.6931471805599453)
    assert metric.signature().startswith("perplexity|agg:ratio-of-sums|chars:codepoints-no-ws|bytes:utf-8|window:")


def test_word_perplexity_as_the_primary_metric_of_a_chinese_task_is_a_config_error(tmp_path):
    write_task(tmp_path, "zh_lm", "name: zh_lm\nkind: language_modeling\nlanguage: zh\nmetrics: [perplexity]\n"
                                  "primary_metric: word_perplexity\nfields: {text: text}\n")
    with pytest.raises(ConfigError, match=r"primary_metric 'word_perplexity' is not a score .*char_perplexity"):
        compose([f"hydra.searchpath=[file://{tmp_path}]", "task=zh_lm"])


# ------------------------------------------------------------------------------------------------ scripts


def test_script_counts_count_letters_only():
    # digits, spaces and punctuation count for no script
    assert script_counts(["ab 中，", "Ä1ソ", ""]) == {"Latin": 3, "Han": 1, "Kana": 1}


def test_script_table():
    assert script_problem("zh", script_counts([ZH_REFERENCE])) is None
    assert "Han characters are 0%" in script_problem("zh", script_counts(["Hello world"]))
    assert script_problem("ja", script_counts(["ソニーのカメラを買った"])) is None
    assert "with some kana" in script_problem("ja", script_counts([ZH_REFERENCE]))  # Han only: Chinese
    assert script_problem("ko", script_counts(["나는 고양이를 좋아한다"])) is None
    assert "Latin letters are 0%" in script_problem("en", script_counts([ZH_REFERENCE]))
    assert script_problem("de", script_counts(["Grüße aus München"])) is None
    assert script_problem("ru", script_counts([ZH_REFERENCE])) is None  # outside the table: check (a) only


# ------------------------------------------------------------------------------------------------ the guard


def chinese_suite(folder: Path, language_line: str, extra: str = "", team: str = "t") -> Path:
    """The issue's new-user setup: a Chinese summarization task and a QA task on local jsonl, a predictions entry."""
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "summ.jsonl").write_text(
        json.dumps({"id": "s1", "document": "北京今天天气很好，适合出门散步。公园里人很多。", "summary": ZH_REFERENCE},
                   ensure_ascii=False) + "\n"
        + json.dumps({"id": "s2", "document": "上海发布新规，鼓励市民绿色出行。", "summary": "上海鼓励绿色出行。"},
                     ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "data" / "qa.jsonl").write_text(
        json.dumps({"id": "q1", "context": "唐代诗人李白被称为诗仙。", "question": "谁被称为诗仙？", "answers": ["李白"]},
                   ensure_ascii=False) + "\n"
        + json.dumps({"id": "q2", "context": "长江是中国最长的河流。", "question": "中国最长的河流是什么？",
                      "answers": ["长江"]}, ensure_ascii=False) + "\n", encoding="utf-8")
    write_task(folder, "zh_summ", f"name: zh_summ\nkind: summarization\n{language_line}\n"
                                  f"data: {{path: {folder}/data/summ.jsonl}}\n"
                                  "fields: {id: id, document: document, references: [summary]}\n"
                                  f"metrics: [rouge]\nprimary_metric: rougeL\n{extra}")
    write_task(folder, "zh_qa", f"name: zh_qa\nkind: qa\n{language_line}\ndata: {{path: {folder}/data/qa.jsonl}}\n"
                                "fields: {id: id, context: context, question: question, answers: answers}\n"
                                "primary_metric: f1\n")
    (folder / "suite").mkdir()
    (folder / "suite" / "zh_suite.yaml").write_text(
        "defaults:\n  - /task@_global_.tasks.zh_summ: zh_summ\n  - /task@_global_.tasks.zh_qa: zh_qa\n"
        "name: zh_suite\n", encoding="utf-8")
    entry = folder / "submissions" / "zh-entry"
    (entry / "predictions").mkdir(parents=True)
    (entry / "submission.yaml").write_text(f"team: {team}\nname: zh-entry\nkind: predictions\n", encoding="utf-8")
    (entry / "predictions" / "zh_summ.jsonl").write_text(
        json.dumps({"id": "s1", "prediction": ZH_PREDICTION}, ensure_ascii=False) + "\n"
        + json.dumps({"id": "s2", "prediction": "上海市民绿色出行。"}, ensure_ascii=False) + "\n", encoding="utf-8")
    (entry / "predictions" / "zh_qa.jsonl").write_text(
        json.dumps({"id": "q1", "prediction": "诗人李白"}, ensure_ascii=False) + "\n"
        + json.dumps({"id": "q2", "prediction": "长江"}, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def run_suite(folder: Path) -> int:
    return main(["run", f"hydra.searchpath=[file://{folder}]", "suite=zh_suite",
                 f"paths.submissions={folder}/submissions", f"paths.results={folder}/store",
                 f"paths.leaderboards={folder}/boards", "progress=false"])


@pytest.mark.parametrize("language_line", ["language: en", ""])
def test_chinese_references_declared_english_stop_the_run_before_anything(tmp_path, capsys, language_line):
    folder = chinese_suite(tmp_path / "suite", language_line)
    with pytest.warns(LanguageWarning) if not language_line else _no_warning():
        code = run_suite(folder)
    assert code == 2
    err = capsys.readouterr().err
    assert "zh_qa.yaml" in err or "zh_summ.yaml" in err
    assert "Han 100%" in err and "set `language: zh`" in err and "nothing was run" in err
    assert not (folder / "store").exists() and not (folder / "boards").exists()  # nothing written


def test_chinese_references_declared_chinese_are_scored(tmp_path):
    from rouge_score.rouge_scorer import RougeScorer

    from harness.metrics.tokenizers import CharTokenizer

    folder = chinese_suite(tmp_path / "suite", "language: zh")
    assert run_suite(folder) == 0
    summ = json.loads((folder / "store" / "zh-entry" / "zh_summ.json").read_text(encoding="utf-8"))
    scorer = RougeScorer(["rougeL"], tokenizer=CharTokenizer())
    expected = [scorer.score(ZH_REFERENCE, ZH_PREDICTION)["rougeL"].fmeasure,
                scorer.score("上海鼓励绿色出行。", "上海市民绿色出行。")["rougeL"].fmeasure]
    assert summ["scores"]["rougeL"] == pytest.approx(100 * sum(expected) / 2, abs=1e-12) and summ["primary"] > 0
    qa = json.loads((folder / "store" / "zh-entry" / "zh_qa.json").read_text(encoding="utf-8"))
    assert qa["scores"]["f1"] == pytest.approx((100 * 2 / 3 + 100) / 2)  # cmrc2018, picked by the language
    board = (folder / "boards" / "zh_suite" / "leaderboard.md").read_text(encoding="utf-8")
    assert "zh-entry" in board and "tok:char" in json.dumps(summ["signatures"], ensure_ascii=False)


def test_an_organizer_override_skips_the_script_check_but_not_the_kept_characters_check(tmp_path, capsys):
    # rouge-score's own tokenizer set by hand on Chinese references: declared, but it keeps nothing of them
    folder = chinese_suite(tmp_path / "suite", "language: en", "metric_options: {rouge: {tokenizer: default}}\n")
    (folder / "suite" / "zh_suite.yaml").write_text(
        "defaults:\n  - /task@_global_.tasks.zh_summ: zh_summ\nname: zh_suite\n", encoding="utf-8")
    assert run_suite(folder) == 2
    err = capsys.readouterr().err
    assert "keeps only 0% of the references' non-space characters" in err and "tok:default" in err
    assert not (folder / "store").exists()


def test_language_enters_the_score_key_never_the_prediction_key():
    from harness.execution.cells import Cell

    cfg = compose(["task=demo_summarization"])
    english = Cell(cfg.task, "entry", "sha", cfg)
    plain = cfg.task.copy()
    plain.language = None  # the same task before it declared its language
    chinese = cfg.task.copy()
    chinese.language = "zh"
    chinese.metric_options = {}
    before, after = Cell(plain, "entry", "sha", cfg), Cell(chinese, "entry", "sha", cfg)
    assert english.prediction_key == before.prediction_key == after.prediction_key
    assert len({english.score_key, before.score_key, after.score_key}) == 3


class _no_warning:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error", LanguageWarning)

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def test_the_guard_reads_references_and_passages_and_skips_what_it_cannot_judge():
    from harness.data import Example
    from harness.guard import check_references

    qa = task(kind="qa", language="en", metrics=["squad"], primary_metric="f1")
    english_answers = [Example("1", {"context": "唐代诗人李白被称为诗仙。长江是中国最长的河流。", "question": "?"}, ["Li Bai"])]
    with pytest.raises(ConfigError, match="Han"):  # the passage counts too: mostly Han letters
        check_references(qa, english_answers)
    inputs_only = [Example("1", {"context": "Some passage.", "question": "?"}, None)]
    check_references(task(kind="summarization", language="zh"), inputs_only)  # no references: nothing to judge
    labels = task(kind="classification", language="zh", metrics=["classification"], primary_metric="accuracy",
                  labels={"p": "positive"})
    check_references(labels, [Example("1", {"text": "Great film"}, "positive")])  # classification is exempt
    check_references(task(language="ru"), [Example("1", {}, [ZH_REFERENCE])])  # outside the table: (a) only
