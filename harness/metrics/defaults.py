"""What each registered metric takes from its task, and the direction of each score, without importing the metric
modules (which import sacrebleu, rouge-score, nltk): keys, config checks and board arrows read these, so a no-op
run and a board over stored cells load no metric library. Each metric class's `options_from_task` hook reads its
entry here; tests/test_metrics.py checks the directions against every metric's own `ScoreInfo`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from harness.config import TaskConfig
from harness.language import ASIAN_LANGUAGES, CJK_CHAR_LANGUAGES, task_language

# What sacrebleu's command line picks for a target language (`sacrebleu -tok`: "defaults to zh for Chinese, ja-mecab
# for Japanese, ko-mecab for Korean and 13a otherwise"; BLEU._TOKENIZER_MAP).
BLEU_TOKENIZERS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")  # the rouge metric's default types
LOWER_IS_BETTER = frozenset({"ter", "perplexity", "word_perplexity", "char_perplexity", "byte_perplexity",
                             "bits_per_byte"})


def _bleu(task: TaskConfig) -> Dict[str, Any]:
    return {"tokenize": BLEU_TOKENIZERS.get(task_language(task), "13a")}


def _ter(task: TaskConfig) -> Dict[str, Any]:
    # sacrebleu's asian support splits CJK text into characters; it acts only on normalised text, so both are set
    # (without them a Chinese sentence is one "word")
    return {"normalized": True, "asian_support": True} if task_language(task) in ASIAN_LANGUAGES else {}


def _rouge(task: TaskConfig) -> Dict[str, Any]:
    """English: rouge-score's tokenizer (stemming stays its own option); Chinese and Japanese: characters; every
    other language: words of letters and digits."""
    language = task_language(task)
    if language == "en":
        return {"tokenizer": "default"}
    return {"tokenizer": "char" if language in CJK_CHAR_LANGUAGES else "words"}


def _squad(task: TaskConfig) -> Dict[str, Any]:
    if task_language(task) == "zh":  # the v1.1 normalisation splits on spaces: a Chinese answer is one token
        raise ValueError("squad cannot score Chinese answers (its normalisation splits on spaces, so a whole answer "
                         "is one token); use metrics: [cmrc2018], the CMRC 2018 official scoring")
    return {}


def _classification(task: TaskConfig) -> Dict[str, Any]:
    return {"labels": list(task.labels.values())}  # the verbalisers, in the task's order


def _perplexity(task: TaskConfig) -> Dict[str, Any]:
    """The unit (characters for Chinese and Japanese) and how the log-likelihoods were produced (window, stride,
    start token, last-window rule, text transform, counted text): each changes the number, so the signature
    states it."""
    window = "model-max" if task.window is None else task.window
    stride = "window" if task.stride is None else task.stride
    text = f"transform:{task.transform}|counted:{task.count_on}" if task.transform else "transform:none"
    # the first window's context is the tokenizer's BOS, or EOS where it has none (the HF backend's rule)
    return {"unit": "chars" if task_language(task) in CJK_CHAR_LANGUAGES else "words",
            "scoring": f"window:{window}|stride:{stride}|start:bos-else-eos|last-window:{task.last_window}|{text}"}


FROM_TASK: Dict[str, Callable[[TaskConfig], Dict[str, Any]]] = {
    "bleu": _bleu, "ter": _ter, "rouge": _rouge, "squad": _squad, "classification": _classification,
    "perplexity": _perplexity,
}


def options_from_task(name: str, task: TaskConfig) -> Dict[str, Any]:
    """The options metric `name` derives from the task (ValueError when it cannot score such a task at all)."""
    rule = FROM_TASK.get(name)
    return rule(task) if rule is not None else {}


def higher_is_better(score: str) -> bool:
    return score not in LOWER_IS_BETTER


def score_names(name: str, options: Dict[str, Any]) -> List[str]:
    """The scores metric `name` reports when built with `options` (its ScoreInfo names, checked by a test)."""
    if name in ("squad", "cmrc2018"):
        return ["exact_match", "f1"]
    if name == "rouge":
        return list(options.get("rouge_types") or ROUGE_TYPES)
    if name == "classification":
        return ["accuracy", "macro_f1"] + [f"f1_{label}" for label in options.get("labels", [])]
    if name == "perplexity":
        unit = "char_perplexity" if options.get("unit") == "chars" else "word_perplexity"
        return ["perplexity", unit, "byte_perplexity", "bits_per_byte"]
    return [name]  # bleu, chrf, ter
