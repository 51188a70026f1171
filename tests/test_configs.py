"""Every shipped config composes against the schema; bad keys and values fail with the key named."""
from __future__ import annotations

import pytest

from harness.cli import main
from harness.compose import available, compose
from harness.errors import ConfigError
from tasks import KINDS


@pytest.mark.parametrize("suite", available("suite"))
def test_every_suite_composes(suite):
    cfg = compose([f"suite={suite}"])
    assert cfg.suite.name == suite
    assert cfg.tasks, f"suite {suite} has no tasks"
    for name, task in cfg.tasks.items():
        assert task.name == name, f"suite {suite}: task key {name} holds task {task.name}"


@pytest.mark.parametrize("task", available("task"))
def test_every_task_composes(task):
    cfg = compose([f"task={task}"])
    assert cfg.task.name == task, "a task's `name` must equal its file name"
    assert cfg.task.kind in KINDS
    assert cfg.task.primary_metric
    assert cfg.task.metrics


def test_demo_suite_has_one_task_of_each_kind():
    cfg = compose(["suite=demo"])
    assert sorted(t.kind for t in cfg.tasks.values()) == sorted(KINDS)


@pytest.mark.parametrize("override, named", [
    ("task.bogus=1", "bogus"),
    ("task.generation.max_new_tokens=many", "max_new_tokens"),
    ("batch_size=big", "batch_size"),
])
def test_bad_override_names_the_key(override, named):
    with pytest.raises(ConfigError, match=named):
        compose(["task=demo_qa", override])


def test_unknown_task_lists_the_valid_ones(capsys):
    assert main(["evaluate", "submission=submissions/baseline-copy-source", "task=nope"]) == 2
    err = capsys.readouterr().err
    assert "task/nope" in err and "demo_qa" in err


def test_help_lists_groups_tasks_and_suites(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("suite", "task", "demo", "demo_translation", "standard"):
        assert word in out
    assert main(["run", "--help"]) == 0
    assert "demo_qa" in capsys.readouterr().out


def test_extra_task_folder_joins_through_searchpath(tmp_path):
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "my_task.yaml").write_text(
        "name: my_task\nkind: qa\nlanguage: en\nprimary_metric: f1\nmetrics: [squad]\n"
        "data: {path: x.jsonl}\nfields: {context: c, question: q, answers: a}\n", encoding="utf-8")
    cfg = compose([f"hydra.searchpath=[file://{tmp_path}]", "task=my_task"])
    assert cfg.task.name == "my_task"
    assert "my_task" in available("task", [f"hydra.searchpath=[file://{tmp_path}]"])
    assert "demo_qa" in available("task", [f"hydra.searchpath=[file://{tmp_path}]"]), "shipped tasks stay available"


@pytest.mark.parametrize("value, expected", [("8", (8, False)), ("auto", (64, True)), ("auto:16", (16, True))])
def test_batch_size_takes_a_number_or_auto(value, expected):
    from harness.config import parse_batch_size

    assert parse_batch_size(compose(["suite=demo", f"batch_size={value}"]).batch_size) == expected


@pytest.mark.parametrize("value", ["0", "autoo", "auto:0", "2.5"])
def test_a_bad_batch_size_is_a_config_error_naming_the_forms(value):
    with pytest.raises(ConfigError, match="batch_size must be a positive integer, 'auto' or 'auto:N'"):
        compose(["suite=demo", f"batch_size={value}"])


@pytest.mark.parametrize("override, message", [
    ("tasks.demo_qa.generation.max_new_token=3",
     "tasks.demo_qa.generation.max_new_token: unknown key 'max_new_token' (did you mean 'max_new_tokens'?); "
     "valid keys here: max_new_tokens, stop"),
    ("batch_sise=3", "batch_sise: unknown key 'batch_sise' (did you mean 'batch_size'?)"),
])
def test_a_misspelled_key_gets_the_closest_valid_one_not_advice_to_append_it(override, message):
    with pytest.raises(ConfigError) as caught:
        compose(["suite=demo", override])
    assert message in str(caught.value) and "+" not in str(caught.value)


def test_an_unknown_suite_names_the_options_without_hydras_search_path():
    with pytest.raises(ConfigError) as caught:
        compose(["suite=dmo"])
    assert "Could not find 'suite/dmo'" in str(caught.value) and "demo" in str(caught.value)
    assert "search path" not in str(caught.value)
