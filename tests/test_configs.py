"""Every shipped config composes against the schema; bad keys and values fail with the key named."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.compose import available, compose
from harness.errors import ConfigError
from tasks import KINDS

ROOT = Path(__file__).resolve().parents[1]


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


def _bad_configs(tmp_path):
    (tmp_path / "task").mkdir()
    (tmp_path / "suite").mkdir()
    text = (ROOT / "tasks" / "task" / "demo_summarization.yaml").read_text(encoding="utf-8")
    (tmp_path / "task" / "bad_sum.yaml").write_text(
        text.replace("  document: document", "  summary: document").replace("name: demo_summarization",
                                                                            "name: bad_sum"), encoding="utf-8")
    (tmp_path / "suite" / "noname.yaml").write_text("defaults:\n  - /task@_global_.tasks.demo_qa: demo_qa\n"
                                                    "description: no name\n", encoding="utf-8")
    return f"hydra.searchpath=[file://{tmp_path}]"


def test_an_unknown_key_in_a_task_file_names_the_file_key_valid_keys_and_closest(tmp_path, capsys):
    from harness.cli import main

    searchpath = _bad_configs(tmp_path)
    assert main(["leaderboard", "task=bad_sum", searchpath]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "task" / "bad_sum.yaml") in err and "fields.summary" in err
    assert "valid keys" in err and "document" in err and "did you mean" in err


def test_a_missing_value_is_reported_before_any_model_runs(tmp_path, capsys):
    from harness.cli import main

    searchpath = _bad_configs(tmp_path)
    assert main(["run", "suite=noname", searchpath, f"paths.results={tmp_path / 'store'}"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "suite" / "noname.yaml") in err and "name" in err and "Traceback" not in err
    assert not (tmp_path / "store").exists()  # nothing ran


def _task_folder(root, name="mytask", file_name="mytask", path="data/rows.jsonl"):
    (root / "task").mkdir(parents=True)
    text = (ROOT / "tasks" / "task" / "demo_qa.yaml").read_text(encoding="utf-8")
    text = text.replace("name: demo_qa", f"name: {name}").replace("pkg://tasks/data/demo/qa_test.jsonl", path)
    (root / "task" / f"{file_name}.yaml").write_text(text, encoding="utf-8")
    return f"hydra.searchpath=[file://{root}]"


def test_a_task_folder_is_self_contained(tmp_path, monkeypatch):
    from tasks.examples import load_examples

    searchpath = _task_folder(tmp_path / "my_tasks")
    (tmp_path / "my_tasks" / "task" / "data").mkdir()
    rows = tmp_path / "my_tasks" / "task" / "data" / "rows.jsonl"
    shutil.copy(ROOT / "tasks" / "data" / "demo" / "qa_test.jsonl", rows)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # data.path is relative to the task file, not to the current directory
    task = compose(["task=mytask", searchpath]).task
    assert len(load_examples(task)) == 50
    absolute = compose(["task=mytask", searchpath, f"task.data.path={ROOT / 'tasks/data/demo/qa_test.jsonl'}"])
    assert len(load_examples(absolute.task)) == 50  # an absolute path is kept


def test_a_path_found_only_from_the_current_directory_is_an_error_saying_so(tmp_path, monkeypatch):
    searchpath = _task_folder(tmp_path / "my_tasks")
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "tasks" / "data" / "demo" / "qa_test.jsonl", tmp_path / "data" / "rows.jsonl")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        compose(["task=mytask", searchpath])
    message = str(e.value)
    assert "mytask.yaml" in message and "data.path" in message and "current directory" in message
    assert "../../data/rows.jsonl" in message  # the path to write instead


def test_a_task_named_unlike_its_file_is_an_error(tmp_path):
    searchpath = _task_folder(tmp_path / "my_tasks", name="other_name")
    with pytest.raises(ConfigError, match="other_name.*mytask|mytask.*other_name"):
        compose(["task=mytask", searchpath])


@pytest.mark.parametrize("command, words", [
    ("validate", ["usage: harness validate", "DIR", "--json", "--cfg"]),
    ("withdraw", ["usage: harness withdraw", "NAME", "--reason"]),
    ("run", ["usage: harness run", "KEY=VALUE", "retries", "--cfg"]),
])
def test_each_command_has_its_own_help(capsys, command, words):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert all(word in out for word in words), out


def test_version(capsys):
    from harness import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"harness {__version__}"


def test_cfg_job_prints_the_composed_config(tmp_path, capsys):
    import yaml

    assert main(["run", "suite=demo", "--cfg", "job", f"paths.results={tmp_path / 'store'}"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["suite"]["name"] == "demo" and printed["tasks"]["demo_qa"]["primary_metric"] == "f1"
    assert printed["paths"]["results"] == str(tmp_path / "store") and not (tmp_path / "store").exists()
    assert main(["run", "suite=demo", "--cfg", "hydra"]) == 2
