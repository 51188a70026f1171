"""Scoring in the parent process: predictions + references -> scores, signatures and counts."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from omegaconf import OmegaConf

from harness.data import Example
from harness.errors import ConfigError, SubmissionError
from harness.metrics import build_metric
from tasks import kind_of


@dataclass
class Scored:
    scores: Dict[str, float]
    higher_is_better: Dict[str, bool]
    signatures: Dict[str, str]
    counts: Dict[str, int]
    predictions: List[Any] = field(default_factory=list)  # one per example, in example order (missing filled)
    # metric name -> (the Metric, its per-item statistics in example order): part scores and bootstrap resample
    # these (harness.contest.splits, harness.board.significance); kept in memory only, never stored beside the public record
    stats: Dict[str, Any] = field(default_factory=dict)


def metric_options(task: Any, name: str) -> Dict[str, Any]:

    options = task.metric_options.get(name, {}) if task.metric_options else {}
    options = OmegaConf.to_container(options) if OmegaConf.is_config(options) else dict(options)
    if name == "classification":
        options.setdefault("labels", list(task.labels.values()))
    if name == "perplexity":  # how the log-likelihoods were computed: in the signature, never a second setting
        options.update(window=task.window, stride=task.stride)
    return options


def primary_direction(task: Any) -> bool:
    """Whether the task's primary metric is higher-is-better, as its metrics declare it (never read off records,
    so a board whose cells all failed still shows the right arrow)."""
    for name in task.metrics:
        try:
            metric = build_metric(name, metric_options(task, name))
        except ValueError as e:
            raise ConfigError(f"task {task.name}: metrics: {e}") from e
        for info in metric.scores:
            if info.name == task.primary_metric:
                return info.higher_is_better
    raise ConfigError(f"task {task.name}: primary_metric {task.primary_metric!r} is not a score of its metrics "
                      f"({', '.join(task.metrics)})")


def score(task: Any, examples: Sequence[Example], predictions: Mapping[str, Any],
          only: Optional[Sequence[str]] = None) -> Scored:
    """Every metric of the task (or the metrics named in `only`) on these predictions."""
    kind = kind_of(task)
    known = {example.id for example in examples}
    missing = sum(1 for example in examples if example.id not in predictions)
    fill = kind.missing_prediction(task) if missing else None
    ordered = [predictions.get(example.id, fill) for example in examples]
    metric_preds, targets = kind.metric_inputs(task, examples, ordered)
    scored = Scored({}, {}, {}, {"examples": len(examples), "missing": missing,
                                 "unknown": sum(1 for i in predictions if i not in known)}, ordered)
    for name in task.metrics if only is None else [m for m in task.metrics if m in only]:
        try:
            metric = build_metric(name, metric_options(task, name))
        except ValueError as e:
            raise ConfigError(f"task {task.name}: metrics: {e}") from e
        stats = metric.item_stats(metric_preds, targets)
        scored.stats[name] = (metric, stats)
        values = metric.aggregate(stats)
        for info in metric.scores:
            if info.name not in values:
                continue
            scored.scores[info.name] = float(values[info.name])
            scored.higher_is_better[info.name] = info.higher_is_better
        scored.signatures[name] = metric.signature()
    if task.primary_metric not in scored.scores:
        raise ConfigError(f"task {task.name}: primary_metric {task.primary_metric!r} is not a score of its metrics "
                          f"({', '.join(sorted(scored.scores))})")
    bad = sorted(name for name, value in scored.scores.items() if not math.isfinite(value))
    if bad:
        raise SubmissionError(f"scores {', '.join(bad)} are not finite numbers", status="bad-output")
    return scored
