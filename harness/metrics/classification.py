"""Accuracy, macro-F1 and per-class F1 over a declared label set.

predictions: list[str | None] (a predicted label; None = missing, which is wrong and belongs to no class; a string
outside the label set is treated the same way); targets: list[str] gold labels (must be in the label set).

Per item the statistics are one-hot rows, so any resample of rows aggregates correctly:
    [correct, pred_onehot(K), gold_onehot(K), true_positive_onehot(K)]
The F1 of label k is 2*tp / (n_pred + n_gold), 0 when the label is neither predicted nor gold; macro-F1 is the mean
over the declared labels. This is exactly how `sklearn.metrics.f1_score(average='macro', labels=labels,
zero_division=0)` computes it ((1+beta^2) tp / (beta^2 n_gold + n_pred), then the unweighted mean).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np


from .base import Metric, ScoreInfo, as_stats, check_lengths


class ClassificationMetric(Metric):
    """Options: `labels` (required): the label strings, in the order the per-class scores are reported."""

    name = "classification"
    OPTIONS = ("labels",)

    def __init__(self, labels: Optional[Sequence[str]] = None):
        if labels is None:
            raise ValueError("metric 'classification' needs the option 'labels' (the list of label strings)")
        if isinstance(labels, (str, Mapping)) or not hasattr(labels, "__iter__"):
            raise ValueError(f"option 'labels' must be a list of strings, got {labels!r}")
        labels = list(labels)
        if not labels:
            raise ValueError("option 'labels' is empty")
        for lab in labels:
            if not isinstance(lab, str):
                raise ValueError(f"labels must be strings, got {lab!r} ({type(lab).__name__})")
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {labels}")
        self.labels: List[str] = labels
        self._index = {lab: k for k, lab in enumerate(labels)}
        self.scores = (
            ScoreInfo("accuracy", higher_is_better=True, scale="0-100"),
            ScoreInfo("macro_f1", higher_is_better=True, scale="0-100"),
        ) + tuple(ScoreInfo(f"f1_{lab}", higher_is_better=True, scale="0-100") for lab in labels)

    @property
    def n_stats(self) -> int:
        return 1 + 3 * len(self.labels)

    def signature(self) -> str:
        return f"classification|labels:{','.join(self.labels)}|macro:declared-labels|zero_division:0|scale:100"

    def item_stats(self, predictions: Sequence[Optional[str]], targets: Sequence[str]) -> np.ndarray:
        check_lengths(predictions, targets)
        k = len(self.labels)
        out = np.zeros((len(predictions), self.n_stats), dtype=np.float64)
        for i, (pred, gold) in enumerate(zip(predictions, targets)):
            g = self._index.get(gold) if isinstance(gold, str) else None
            if g is None:
                raise ValueError(f"gold label {gold!r} of item {i} is not in the label set {self.labels}")
            if pred is not None and not isinstance(pred, str):
                raise ValueError(f"prediction {i} is {type(pred).__name__}, expected str or None")
            p = self._index.get(pred) if pred is not None else None
            out[i, 1 + k + g] = 1.0
            if p is not None:
                out[i, 1 + p] = 1.0
                if p == g:
                    out[i, 0] = 1.0
                    out[i, 1 + 2 * k + p] = 1.0
        return out

    def aggregate(self, stats: np.ndarray) -> Dict[str, Any]:
        arr = as_stats(stats, self.n_stats)
        n = arr.shape[0]
        k = len(self.labels)
        if n == 0:
            nan = float("nan")
            return {s.name: nan for s in self.scores}
        sums = arr.sum(axis=0)  # integer counts: exact in any order
        correct = sums[0]
        n_pred, n_gold, tp = sums[1 : 1 + k], sums[1 + k : 1 + 2 * k], sums[1 + 2 * k :]
        denom = n_gold + n_pred
        f1 = np.divide(2.0 * tp, denom, out=np.zeros(k, dtype=np.float64), where=denom > 0)
        result = {"accuracy": float(100.0 * (correct / n)), "macro_f1": float(100.0 * np.mean(f1))}
        for lab, v in zip(self.labels, f1):
            result[f"f1_{lab}"] = float(100.0 * v)
        return result
