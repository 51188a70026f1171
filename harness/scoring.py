"""Scoring in the parent process: predictions + references -> scores, signatures and counts."""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set

from harness.config import TaskConfig, as_dict
from harness.data import Example
from harness.errors import ConfigError, SubmissionError
from harness.language import DEFAULT_LANGUAGE, primary_subtag
from harness.metrics import METRIC_NAMES, build_metric, defaults
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


class ScoringTimeout(SubmissionError):
    def __init__(self, budget: float):
        super().__init__(f"scoring: the predictions took more than scoring_budget_s={budget:g} s to score",
                         status="timeout")


@contextlib.contextmanager
def time_budget(seconds: Optional[float]) -> Iterator[None]:
    """Raise ScoringTimeout in this block after `seconds` (a SIGALRM timer: metrics are Python code, so the
    signal lands between bytecodes). Enforced on the main thread of a POSIX process, where signals are delivered;
    elsewhere (a Ray worker thread) the block runs without a budget, bounded by the prediction caps."""
    if seconds is None or seconds <= 0 or not hasattr(signal, "setitimer") \
            or threading.current_thread() is not threading.main_thread():
        yield
        return
    budget = float(seconds)

    def expire(signum: int, frame: Any) -> None:
        raise ScoringTimeout(budget)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def explicit_options(task: TaskConfig, name: str) -> Dict[str, Any]:
    """The options the task's `metric_options` sets for metric `name`."""
    options = task.metric_options.get(name, {}) if task.metric_options else {}
    return as_dict(options, resolve=False)


def metric_options(task: TaskConfig, name: str) -> Dict[str, Any]:
    """The options metric `name` is built with: what it derives from the task (its language, its labels), then the
    task's explicit `metric_options`. Raises ValueError (an unknown metric, a task the metric cannot score)."""
    return {**defaults.options_from_task(name, task), **explicit_options(task, name)}


def task_where(task: TaskConfig) -> str:
    """How messages name a task: its YAML file where compose found it."""
    return f"task {task.name} ({task.config_file})" if task.config_file else f"task {task.name}"


def check_task(task: TaskConfig) -> None:
    """A task's language and metrics, checked when the config is composed (no metric library is loaded): the tags
    are BCP-47, the metrics are registered and take what they need from the task (`squad` on Chinese is refused).
    A task without `language` is scored as English, with a warning."""
    where = task_where(task)
    for key in ("language", "source_language"):
        if getattr(task, key) is not None:
            try:
                primary_subtag(getattr(task, key))
            except ValueError as e:
                raise ConfigError(f"{where}: {key}: {e}") from e
    if task.language is None:
        warnings.warn(f"{where}: no `language:` key; its references are scored as English ({DEFAULT_LANGUAGE}). "
                      f"Set language: to their BCP-47 tag (en, zh, ja, ...)", LanguageWarning, stacklevel=2)
    names = set()
    for name in task.metrics:
        if name not in METRIC_NAMES:
            raise ConfigError(f"{where}: metrics: unknown metric {name!r}; valid metrics: {', '.join(METRIC_NAMES)}")
        try:
            names.update(defaults.score_names(name, metric_options(task, name)))
        except ValueError as e:
            raise ConfigError(f"{where}: metrics: {name}: {e} (language: {task.language or DEFAULT_LANGUAGE})") \
                from e
    if task.metrics and task.primary_metric not in names:
        raise ConfigError(f"{where}: primary_metric {task.primary_metric!r} is not a score of its metrics for "
                          f"language {task.language or DEFAULT_LANGUAGE!r}; valid: {', '.join(sorted(names))}")


def check_metrics(task: TaskConfig) -> None:
    """Every metric of the task builds with the options it takes (a missing optional extra such as MeCab is named
    here) and the primary metric is one of their scores: checked before anything runs (harness.guard)."""
    where = task_where(task)
    names: Set[str] = set()
    for name in task.metrics:
        try:
            metric = build_metric(name, metric_options(task, name))
        except ValueError as e:
            raise ConfigError(f"{where}: metrics: {name}: {e} (language: {task.language or DEFAULT_LANGUAGE})") \
                from e
        names.update(info.name for info in metric.scores)
    if task.metrics and task.primary_metric not in names:
        raise ConfigError(f"{where}: primary_metric {task.primary_metric!r} is not a score of its metrics for "
                          f"language {task.language or DEFAULT_LANGUAGE!r}; valid: {', '.join(sorted(names))}")


class LanguageWarning(UserWarning):
    """A task that does not say which language its references are in."""


def primary_direction(task: TaskConfig) -> bool:
    """Whether the task's primary metric is higher-is-better, from the metrics' declared directions (never read
    off records, so a board whose cells all failed still shows the right arrow; no metric library is loaded)."""
    return defaults.higher_is_better(task.primary_metric)


def score(task: TaskConfig, examples: Sequence[Example], predictions: Mapping[str, Any],
          only: Optional[Sequence[str]] = None) -> Scored:
    """Every metric of the task (or the metrics named in `only`) on these predictions."""
    kind = kind_of(task)
    known = {example.id for example in examples}
    missing = sum(1 for example in examples if example.id not in predictions)
    fill = kind.missing_prediction(task) if missing else None
    ordered = [predictions.get(example.id, fill) for example in examples]
    metric_preds, targets = kind.metric_inputs(task, examples, ordered)
    scored = Scored({}, {}, {}, {"examples": len(examples), "missing": missing,
                                 "unknown": sum(1 for i in predictions if i not in known),
                                 **kind.counts(task, examples)}, ordered)
    for name in task.metrics if only is None else [m for m in task.metrics if m in only]:
        try:
            metric = build_metric(name, metric_options(task, name))
        except ValueError as e:
            raise ConfigError(f"task {task.name}: metrics: {e}") from e
        try:  # a prediction the kind's check let through but the metric cannot take is the entry's failure
            stats = metric.item_stats(metric_preds, targets)
            values = metric.aggregate(stats)
        except (ValueError, ArithmeticError, RecursionError) as e:
            raise SubmissionError(f"metric {name} cannot score these predictions: {type(e).__name__}: "
                                  f"{str(e)[:300]}", status="bad-output") from e
        scored.stats[name] = (metric, stats)
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
