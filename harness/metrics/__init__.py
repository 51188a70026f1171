"""Metrics: per-item sufficient statistics + a pure aggregate (see `base.py`).

`build_metric(name, options)` is the one way to get a metric. The metric modules (which import sacrebleu,
rouge-score, ...) are imported lazily inside it, so `import harness.metrics` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Mapping, Optional, Type

from .base import Metric, ScoreInfo

# name -> (module under harness.metrics, class name)
_REGISTRY: Dict[str, tuple[str, str]] = {
    "bleu": ("sacrebleu_metrics", "BLEUMetric"),
    "chrf": ("sacrebleu_metrics", "CHRFMetric"),
    "ter": ("sacrebleu_metrics", "TERMetric"),
    "rouge": ("rouge", "RougeMetric"),
    "squad": ("squad", "SquadMetric"),
    "cmrc2018": ("cmrc2018", "Cmrc2018Metric"),
    "classification": ("classification", "ClassificationMetric"),
    "perplexity": ("perplexity", "PerplexityMetric"),
}

METRIC_NAMES: tuple[str, ...] = tuple(_REGISTRY)

__all__ = ["METRIC_NAMES", "Metric", "ScoreInfo", "build_metric", "metric_class"]


def metric_class(name: str) -> Type[Metric]:
    """The Metric subclass registered under `name` (imports its module)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(METRIC_NAMES)}")
    module_name, class_name = _REGISTRY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)


def build_metric(name: str, options: Optional[Mapping[str, Any]] = None) -> Metric:
    """Build the metric `name` with `options` (keyword arguments of its constructor).

    Raises ValueError for an unknown name or an unknown option, naming the bad value and listing the valid ones.
    Each metric class lists its accepted options in `OPTIONS`.
    """
    cls = metric_class(name)
    options = dict(options or {})
    valid = tuple(cls.OPTIONS)
    unknown = sorted(str(k) for k in options if k not in valid)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(repr(k) for k in unknown)} for metric {name!r}; "
            f"valid options: {', '.join(valid) if valid else '(none)'}"
        )
    return cls(**options)
