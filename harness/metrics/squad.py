"""SQuAD v1.1 exact match and F1, as the official evaluation script computes them.

The functions below are copied from the official SQuAD v1.1 evaluation script, `evaluate-v1.1.py`
(https://rajpurkar.github.io/SQuAD-explorer/ -> "Evaluation Script v1.1"; also e.g. allenai/bi-att-flow
`squad/evaluate-v1.1.py`), which is not a pip package: `normalize_answer`, `f1_score`, `exact_match_score`,
`metric_max_over_ground_truths`. Only formatting was changed. A question the system did not answer (prediction
None) scores 0 and still counts in the total, as in the script ("Unanswered question ... will receive score 0").
Scores are 100 x (sum over questions) / (number of questions), summed in order as the script does.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np


from .base import Metric, ScoreInfo, as_stats, check_lengths, sequential_sums


# ---- begin: official SQuAD v1.1 evaluate-v1.1.py ----------------------------------------------------------------
def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


# ---- end: official SQuAD v1.1 evaluate-v1.1.py ------------------------------------------------------------------


class GoldAnswersMetric(Metric):
    """Extractive QA scored per item against its gold answers (max over golds): exact match and F1, 0-100, mean
    over items. Subclasses give `answer_scores` (their official normalisation); SQuAD v1.1 and CMRC 2018 share the
    rest."""

    scores = (
        ScoreInfo("exact_match", higher_is_better=True, scale="0-100"),
        ScoreInfo("f1", higher_is_better=True, scale="0-100"),
    )

    def answer_scores(self, prediction: str, golds: List[str]) -> Tuple[float, float]:
        raise NotImplementedError

    def item_stats(self, predictions: Sequence[Optional[str]], targets: Sequence[Sequence[str]]) -> np.ndarray:
        check_lengths(predictions, targets)
        out = np.zeros((len(predictions), 2), dtype=np.float64)
        for i, (pred, golds) in enumerate(zip(predictions, targets)):
            if isinstance(golds, str):
                golds = [golds]
            golds = [g for g in (golds or []) if g is not None]
            if not golds:
                raise ValueError(f"item {i} has no gold answer")
            if pred is None:  # unanswered: 0, counted in the total (the official scripts' rule)
                continue
            if not isinstance(pred, str):
                raise ValueError(f"prediction {i} is {type(pred).__name__}, expected str or None")
            out[i] = self.answer_scores(pred, golds)
        return out

    def aggregate(self, stats: np.ndarray) -> Dict[str, Any]:
        arr = as_stats(stats, 2)
        n = arr.shape[0]
        if n == 0:
            return {"exact_match": float("nan"), "f1": float("nan")}
        em, f1 = sequential_sums(arr)
        return {"exact_match": float(100.0 * em / n), "f1": float(100.0 * f1 / n)}


class SquadMetric(GoldAnswersMetric):
    """SQuAD v1.1 EM / F1 (official normalisation, max over gold answers), 0-100. No options."""

    name = "squad"
    OPTIONS: tuple[str, ...] = ()

    def kept_characters(self, text: str) -> Optional[int]:
        return len("".join(normalize_answer(text).split()))

    def signature(self) -> str:
        return "squad|norm:v1.1-official|agg:max-over-golds|scale:100"

    def answer_scores(self, prediction: str, golds: List[str]) -> Tuple[float, float]:
        return (float(metric_max_over_ground_truths(exact_match_score, prediction, golds)),
                float(metric_max_over_ground_truths(f1_score, prediction, golds)))
