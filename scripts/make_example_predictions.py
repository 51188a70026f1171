#!/usr/bin/env python
"""Write submissions/rules-predictions: a `predictions` entry from simple hand-written rules (no model).

It shows the predictions format on the demo tasks, English and Chinese; its language-modeling files is left out on purpose, so the
boards show a `not submitted` cell.

    python scripts/make_example_predictions.py
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "submissions" / "rules-predictions"
DATA = ROOT / "tasks" / "data" / "demo"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_demo_data import NOUNS  # noqa: E402  (the demo grammar's lexicon)
from make_demo_data_zh import ACTIONS, FEELINGS, PEOPLE, PLACES, TIMES  # noqa: E402  (the Chinese demo's lexicon)

DATA_ZH = ROOT / "tasks" / "data" / "demo_zh"
ZH_POSITIVE = ("好", "喜欢", "满意", "推荐", "棒")
ZH_NEGATIVE = ("差", "失望", "生气", "不值", "不推荐", "不好")

WORDS = re.compile(r"\w+|[^\w\s]")
POSITIVE = {"great", "love", "loved", "excellent", "wonderful", "good", "best", "brilliant", "perfect", "enjoyed",
            "beautiful", "recommend", "fantastic", "happy", "delightful", "superb"}
NEGATIVE = {"bad", "terrible", "awful", "boring", "worst", "broke", "poor", "disappointing", "waste", "hate",
            "hated", "broken", "useless", "dull", "rude", "never"}
FUNCTION_WORDS = {"der": "the", "die": "the", "das": "the", "den": "the", "dem": "the", "ein": "a", "eine": "a",
                  "einen": "a", "und": "and", "ist": "is", "sind": "are", "im": "in the", "in": "in", "oft": "often",
                  "immer": "always", "heute": "today", "jetzt": "now", "nicht": "not", "ich": "I", "du": "you",
                  "er": "he", "sie": "she", "wir": "we", "mit": "with"}


def rows(name: str, data: Path = DATA):
    with open(data / f"{name}_test.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def translate(sentence: str) -> str:
    lexicon = dict(FUNCTION_WORDS)
    lexicon.update({n["de"].lower(): n["en"] for n in NOUNS})
    words = [lexicon.get(w.lower(), w) for w in WORDS.findall(sentence)]
    return re.sub(r" ([.,!?])", r"\1", " ".join(words))


def best_sentence(context: str, question: str) -> str:
    asked = {w.lower() for w in WORDS.findall(question)}
    sentences = re.split(r"(?<=[.!?])\s+", context)
    return max(sentences, key=lambda s: len(asked & {w.lower() for w in WORDS.findall(s)}))


def sentiment(text: str) -> str:
    words = {w.lower() for w in WORDS.findall(text)}
    score = len(words & POSITIVE) - len(words & NEGATIVE)
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def translate_zh(sentence: str) -> str:
    """Phrase by phrase in English word order (a Chinese reader would reorder the time and place)."""
    words = [("is ", ""), ("because", "，因为"), ("she", "她"), ("he", "他"), ("does", "")]
    lexicon = sorted(PEOPLE + PLACES + TIMES + FEELINGS + words + [(e, z) for e, _, z in ACTIONS] +
                     [(base, z) for _, base, z in ACTIONS],
                     key=lambda pair: -len(pair[0]))
    text = sentence.rstrip(".?")
    for english, chinese in lexicon:
        text = re.sub(r"\b" + re.escape(english), chinese, text, flags=re.I)
    return re.sub(r"\s+", "", text) + "。"


def best_sentence_zh(context: str, question: str) -> str:
    sentences = [s for s in re.split(r"(?<=[。！？])", context) if s]
    return max(sentences, key=lambda s: len(set(s) & set(question)))


def sentiment_zh(text: str) -> str:
    score = sum(w in text for w in ZH_POSITIVE) - 2 * sum(w in text for w in ZH_NEGATIVE)
    return "正面" if score > 0 else "负面" if score < 0 else "中性"


def write(task: str, predictions) -> None:
    path = OUT / "predictions" / f"{task}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for example_id, prediction in predictions:
            f.write(json.dumps({"id": example_id, "prediction": prediction}, ensure_ascii=False) + "\n")


def main() -> None:
    write("demo_translation", [(r["id"], translate(r["de"])) for r in rows("translation")])
    write("demo_summarization", [(r["id"], " ".join(re.split(r"(?<=[.!?])\s+", r["document"])[:2]))
                                 for r in rows("summarization")])
    write("demo_qa", [(r["id"], best_sentence(r["context"], r["question"])) for r in rows("qa")])
    write("demo_classification", [(r["id"], sentiment(r["text"])) for r in rows("classification")])
    write("demo_zh_translation", [(r["id"], translate_zh(r["en"])) for r in rows("translation", DATA_ZH)])
    write("demo_zh_summarization", [(r["id"], re.split(r"(?<=。)", r["document"])[0])
                                    for r in rows("summarization", DATA_ZH)])
    write("demo_zh_qa", [(r["id"], best_sentence_zh(r["context"], r["question"])) for r in rows("qa", DATA_ZH)])
    write("demo_zh_classification", [(r["id"], sentiment_zh(r["text"])) for r in rows("classification", DATA_ZH)])
    (OUT / "submission.yaml").write_text(
        "# Rule-based predictions (no model): python scripts/make_example_predictions.py\n"
        "team: demo-team-c\nname: rules-predictions\nkind: predictions\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
