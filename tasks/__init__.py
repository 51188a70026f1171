"""Task plugins: one module per task kind, one YAML per concrete task (task/), suites of tasks (suite/).

A new dataset of an existing kind is one YAML file in `task/`; a new kind is one module here, registered in
KINDS, plus its YAML and tests.
"""
from __future__ import annotations

from typing import Dict

from harness.config import TaskConfig
from harness.errors import ConfigError
from tasks.base import TaskKind
from tasks.classification import Classification
from tasks.language_modeling import LanguageModeling
from tasks.qa import QuestionAnswering
from tasks.summarization import Summarization
from tasks.translation import Translation

KINDS: Dict[str, TaskKind] = {k.name: k for k in (Translation(), Summarization(), QuestionAnswering(),
                                                 Classification(), LanguageModeling())}


def kind_of(task: TaskConfig) -> TaskKind:

    if task.kind not in KINDS:
        raise ConfigError(f"task {task.name}: kind {task.kind!r} is not valid; use one of {', '.join(KINDS)}")
    return KINDS[task.kind]
