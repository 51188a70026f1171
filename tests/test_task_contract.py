"""One contract test run over every shipped task: examples, requests, predictions and scores fit together."""
from __future__ import annotations

import math

import pytest

from harness.compose import available, compose
from harness.prompting import select_shots
from harness.requests import (
    GenerateRequest,
    Generation,
    Loglikelihood,
    LoglikelihoodRequest,
    RollingLoglikelihood,
    RollingRequest,
)
from harness.scoring import score
from tasks import kind_of
from tasks.examples import load_examples


class EchoBackend:
    """Answers every request deterministically from its text, without a model."""

    def generate(self, requests):
        return [Generation(r.prompt.split()[-1] if r.prompt.split() else "") for r in requests]

    def loglikelihood(self, requests):
        return [Loglikelihood(-float(len(r.continuation)), False) for r in requests]

    def rolling_loglikelihood(self, requests):
        return [RollingLoglikelihood(-2.0 * max(1, len(r.text.split())), max(1, len(r.text.split()))) for r in requests]


def answer(backend, request):
    if isinstance(request, list):
        return [answer(backend, r) for r in request]
    method = {GenerateRequest: backend.generate, LoglikelihoodRequest: backend.loglikelihood,
              RollingRequest: backend.rolling_loglikelihood}[type(request)]
    return method([request])[0]


def local_tasks():
    out = []
    for name in available("task"):
        task = compose([f"task={name}"]).task
        if task.data.source == "local":
            out.append(name)
    return out


LOCAL_TASKS = local_tasks()  # composed once at collection (each compose is a full Hydra run)


@pytest.mark.parametrize("name", LOCAL_TASKS)
def test_task_contract(name):
    task = compose([f"task={name}"]).task
    kind = kind_of(task)
    examples = load_examples(task)
    assert len(examples) >= 40, "a shipped task has at least 40 examples"
    assert len({e.id for e in examples}) == len(examples)
    assert all(isinstance(e.id, str) for e in examples)
    shots = select_shots(task, [e.id for e in examples], lambda: load_examples(task, task.train, "train"))
    requests = kind.requests(task, [e.inputs for e in examples], shots)
    assert len(requests) == len(examples)
    if shots:  # every shot is in the prompt, before the query
        first = requests[0][0] if isinstance(requests[0], list) else requests[0]
        assert len(first.parts.shots) == task.fewshot.num_fewshot and first.parts.plain()[0].endswith(
            first.parts.user + first.parts.prefix)
    backend = EchoBackend()
    predictions = kind.predictions(task, [answer(backend, r) for r in requests])
    for prediction in predictions:
        assert kind.check_prediction(task, prediction) is None
    for example in examples:  # the model-side inputs never carry the reference
        for value in example.inputs.values():
            target = example.target if isinstance(example.target, list) else [example.target]
            if task.kind != "language_modeling":
                assert all(str(t) != str(value) for t in target if len(str(t)) > 20)
    scored = score(task, examples, {e.id: p for e, p in zip(examples, predictions)})
    assert task.primary_metric in scored.scores
    assert set(scored.scores) == set(scored.higher_is_better)
    assert all(math.isfinite(v) for v in scored.scores.values())
    assert scored.signatures


@pytest.mark.parametrize("name", [n for n in available("task") if n not in LOCAL_TASKS])
def test_hub_task_renders_prompts(name):
    """Hub tasks cannot be downloaded here; their prompts still render from the fields they map."""
    task = compose([f"task={name}"]).task
    kind = kind_of(task)
    inputs = {field: f"<{field}>" for field in kind.input_fields}
    requests = kind.requests(task, [inputs])
    assert len(requests) == 1


def test_a_hub_task_loads_through_datasets_from_a_repository_folder(tmp_path, monkeypatch):
    """`source: hub` runs `datasets.load_dataset(path, name, split=...)`. A folder laid out as a dataset repository
    (data/test.jsonl) takes the same path offline: the shipped WMT14 task, its nested field mapping
    (translation.de / translation.en) and row-index ids, with no network."""
    import json

    from harness.compose import compose
    from tasks.examples import load_examples

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "wmt14-like"
    (repo / "data").mkdir(parents=True)
    rows = [{"translation": {"de": f"Satz {i}.", "en": f"Sentence {i}."}} for i in range(5)]
    (repo / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (repo / "data" / "train.jsonl").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # nothing cached in $HOME
    task = compose(["task=wmt14_de_en", f"task.data.path={repo}", "task.data.name=null"]).task
    examples = load_examples(task)
    assert [e.id for e in examples] == ["0", "1", "2", "3", "4"]  # the test split only, row indices as ids
    assert examples[3].inputs == {"source": "Satz 3."} and examples[3].target == ["Sentence 3."]
