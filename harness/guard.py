"""The guard against silent nonsense: a task whose references cannot be what its metrics read is refused before
any model runs (a config error, exit 2, nothing written).

Over all of a task's references (for QA also its passages):
(a) every metric's tokenizer must keep at least half of the non-space characters (rouge-score's default tokenizer
    keeps nothing of Chinese text; a ROUGE of 0 then looks like a bad system, not a bad config);
(b) the letters' script must fit the declared language (harness.language.script_problem: zh needs Han >= 50%, ja
    Han+kana >= 50% with some kana, ko Hangul >= 50%, a Latin-script language Latin >= 50%). Languages outside that
    table get check (a) only. An organizer who sets every language-dependent option by hand in `metric_options`
    (`bleu.tokenize`, `rouge.tokenizer`, ...; shown in the signatures) overrides (b); (a) still applies.
Classification is exempt (labels and accuracy do not tokenise). Data without references (the inputs-only data a
participant validates with) is not checked.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Sequence

from harness.data import Example
from harness.errors import ConfigError
from harness.language import describe_scripts, guess_language, script_counts, script_problem, task_language
from harness.metrics import build_metric, metric_class
from harness.scoring import check_metrics, explicit_options, metric_options, task_where

MIN_KEPT = 0.5  # share of the non-space characters a metric's tokenizer must keep
EXEMPT_KINDS = ("classification",)


def reference_texts(task: Any, examples: Sequence[Example]) -> List[str]:
    """The distinct texts the guard reads: every reference (and, for QA, every passage), in first-seen order."""
    texts: Dict[str, None] = {}
    for example in examples:
        target = example.target
        for text in ([target] if isinstance(target, str) else list(target or [])):
            if isinstance(text, str) and text.strip():
                texts.setdefault(text)
        if task.kind == "qa" and isinstance(example.inputs.get("context"), str):
            texts.setdefault(example.inputs["context"])
    return list(texts)


def check_references(task: Any, examples: Sequence[Example]) -> None:
    """Raises ConfigError when the task's references fail check (b) or (a) (see the module docstring)."""
    if task.kind in EXEMPT_KINDS:
        return
    texts = reference_texts(task, examples)
    if not texts:
        return
    where = task_where(task)
    if not _overridden(task):
        counts = script_counts(texts)
        problem = script_problem(task_language(task), counts)
        if problem:
            guess = guess_language(counts)
            hint = f"set `language: {guess}`" if guess else "set `language:` to the references' BCP-47 tag"
            raise ConfigError(
                f"{where}: language: {task.language!r}{' (absent: English)' if task.language is None else ''} "
                f"does not fit the references: their letters are {describe_scripts(counts)}; {problem}. "
                f"{hint} in {task.config_file or 'the task config'} (or, for translation, the target's tag); "
                f"nothing was run")
    for name in task.metrics:
        metric = build_metric(name, metric_options(task, name))
        kept = _kept_share(metric, texts)
        if kept is not None and kept < MIN_KEPT:
            raise ConfigError(
                f"{where}: metric {name} ({metric.signature()}) keeps only {kept:.0%} of the references' non-space "
                f"characters (language: {task.language!r}, letters {describe_scripts(script_counts(texts))}); "
                f"its scores would mean nothing. Set `language:` to the references' language or choose a tokenizer "
                f"in metric_options.{name}; nothing was run")


def check_tasks(tasks: Dict[str, Any], examples: Any) -> None:
    """Every task of a run, before any model runs: its metrics build for it (harness.scoring.check_metrics) and
    its references fit its language; `examples(task)` loads a task's examples."""
    for name in sorted(tasks):
        check_metrics(tasks[name])
        check_references(tasks[name], examples(tasks[name]))


def _kept_share(metric: Any, texts: Iterable[str]) -> Any:
    kept = total = 0
    for text in texts:
        count = metric.kept_characters(text)
        if count is None:
            return None
        kept += count
        total += sum(1 for c in text if not c.isspace())
    return kept / total if total else None


def _overridden(task: Any) -> bool:
    """Every metric whose defaults follow the language has its tokenisation set by hand in metric_options."""
    dependent = [name for name in task.metrics if metric_class(name).LANGUAGE_OPTIONS]
    return bool(dependent) and all(
        set(metric_class(name).LANGUAGE_OPTIONS) & set(explicit_options(task, name)) for name in dependent)
