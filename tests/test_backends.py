"""Model backends as plug-ins: every registered backend meets the Protocol the model's process calls
(harness.requests.Backend), and a backend defined here, registered with one line, runs a real job end to end
through the isolated child process.

A new backend adds its module, its line in harness.models.BACKENDS and, here, the tiny models it loads (MODELS).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import textwrap
from pathlib import Path

import pytest

from harness import models, store
from harness.compose import compose
from harness.execution.cells import Cell
from harness.execution.evaluator import Evaluator
from harness.requests import (
    Backend,
    GenerateRequest,
    Generation,
    Loglikelihood,
    LoglikelihoodRequest,
    ModelSpec,
    RollingLoglikelihood,
    RollingRequest,
)
from harness.submission import submission_sha256
from tasks import kind_of
from tasks.examples import load_examples

# backend name -> the (submission kind, conftest fixture of a tiny model folder) it is checked on
MODELS = {
    "hf": [("hf-causal", "tiny_gpt2_dir"), ("hf-seq2seq", "tiny_t5_dir")],
}
# Backends that need a server to talk to: their conformance runs where one is started.
CHECKED_ELSEWHERE = {
    "openai": "tests/test_serving.py (an OpenAI-compatible test server)",
    "transformers-serve": "tests/test_serving_engines.py (a real `transformers serve`, slow tier)",
    "vllm": "tests/test_gpu_serving.py (GPU tier)",
}
TASKS = ("demo_translation", "demo_classification", "demo_language_modeling")
PROTOCOL = sorted(name for name in vars(Backend) if not name.startswith("_"))


def _requests(task_name: str, n: int = 2) -> list:
    """The first `n` requests a shipped demo task makes (a classification example's choices flattened)."""
    task = compose([f"task={task_name}"]).task
    examples = load_examples(task)[:n]
    out = []
    for request in kind_of(task).requests(task, [e.inputs for e in examples]):
        out.extend(request if isinstance(request, list) else [request])
    return out


def _cases():
    return [pytest.param(name, kind, fixture, id=f"{name}-{kind}")
            for name in models.BACKENDS if name not in CHECKED_ELSEWHERE
            for kind, fixture in MODELS.get(name, [(None, None)])]


def test_every_registered_backend_has_models_to_be_checked_on():
    assert set(models.BACKENDS) == set(MODELS) | set(CHECKED_ELSEWHERE), \
        "add the tiny models a new backend is checked on to MODELS (or where it is checked to CHECKED_ELSEWHERE)"
    assert models.DEFAULT_BACKEND in models.BACKENDS


def test_the_protocol_lists_every_method_the_worker_calls():
    worker = (Path(__file__).resolve().parents[1] / "harness" / "execution" / "worker.py").read_text(encoding="utf-8")
    called = {name for name in PROTOCOL if f"backend.{name}" in worker}
    assert called == set(PROTOCOL)


@pytest.mark.parametrize("name, kind, fixture", _cases())
def test_backend_conformance(name, kind, fixture, request, one_torch_thread):
    spec = ModelSpec(kind=kind, location=request.getfixturevalue(fixture))
    backend = models.load_backend(models.backend_module(name), spec, device="cpu", batch_size=4, progress=False)
    for method in PROTOCOL:
        assert callable(getattr(backend, method, None)), f"backend {name} lacks {method}"
    info = backend.model_info()
    assert isinstance(info, dict) and info
    json.dumps(info)  # it goes into the record's provenance
    assert backend.guard_nonfinite() is None

    generate = _requests("demo_translation")
    answers = backend.generate(generate)
    assert len(answers) == len(generate) and all(isinstance(a, Generation) and isinstance(a.text, str)
                                                 for a in answers)
    assert [a.text for a in backend.generate(generate[::-1])] == [a.text for a in answers][::-1]  # request order

    choices = _requests("demo_classification")
    scores = backend.loglikelihood(choices)
    assert len(scores) == len(choices)
    for score in scores:
        assert isinstance(score, Loglikelihood) and math.isfinite(score.logprob) and score.logprob <= 0
    again = backend.loglikelihood(choices[::-1])[::-1]
    assert [s.logprob for s in again] == pytest.approx([s.logprob for s in scores], abs=1e-4)

    documents = _requests("demo_language_modeling")
    try:
        rolling = backend.rolling_loglikelihood(documents)
    except NotImplementedError:  # allowed: the worker marks the cells n/a (an encoder-decoder on perplexity)
        rolling = None
    if rolling is not None:
        assert len(rolling) == len(documents)
        for result in rolling:
            assert isinstance(result, RollingLoglikelihood) and result.logprob <= 0 and result.n_tokens > 0

    for item in (generate[0], choices[0], documents[0]):
        assert isinstance(backend.rendered_prompt(item), str)
    with pytest.raises(Exception, match="backend.options"):
        models.load_backend(models.backend_module(name), dataclasses.replace(spec, options={"no_such_option": 1}),
                            device="cpu", batch_size=4, progress=False)


def test_an_unknown_backend_is_a_config_error_naming_the_valid_ones():
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="backend.name: 'nope' is not valid; use one of hf"):
        compose(["backend.name=nope"])


# ---------------------------------------------------------------- a backend is one module plus one registry line

ECHO_MODULE = textwrap.dedent('''
    """A backend that answers from the request's text alone (no model)."""
    from harness.requests import Generation, Loglikelihood, RollingLoglikelihood


    class Echo:
        def generate(self, requests):
            return [Generation(r.prompt.split()[-1] if r.prompt.split() else "") for r in requests]

        def loglikelihood(self, requests):
            return [Loglikelihood(-float(len(r.continuation)), False) for r in requests]

        def rolling_loglikelihood(self, requests):
            return [RollingLoglikelihood(-2.0 * len(r.text.split()), len(r.text.split())) for r in requests]

        def model_info(self):
            return {"class": "Echo"}

        def rendered_prompt(self, request):
            return getattr(request, "prompt", None) or getattr(request, "context", None) or request.text

        def guard_nonfinite(self):
            return None


    def load(spec, *, device, batch_size, progress):
        return Echo()
''')


def _echo_answers(task, examples):
    """What the echo backend answers, computed here from the same requests the child builds."""
    echo = {GenerateRequest: lambda r: Generation(r.prompt.split()[-1] if r.prompt.split() else ""),
            LoglikelihoodRequest: lambda r: Loglikelihood(-float(len(r.continuation)), False),
            RollingRequest: lambda r: RollingLoglikelihood(-2.0 * len(r.text.split()), len(r.text.split()))}
    requests = kind_of(task).requests(task, [e.inputs for e in examples])
    answers = [[echo[type(c)](c) for c in r] if isinstance(r, list) else echo[type(r)](r) for r in requests]
    return kind_of(task).predictions(task, answers)


@pytest.mark.slow  # a child interpreter loading torch, ~15 s
def test_a_backend_defined_in_a_test_runs_a_job_through_the_child_process(tmp_path, monkeypatch, tiny_gpt2_dir):
    import shutil

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "echo_backend.py").write_text(ECHO_MODULE, encoding="utf-8")
    # the module is importable in the model's process (its PYTHONPATH), never imported here
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")])))
    monkeypatch.setitem(models.BACKENDS, "echo", "echo_backend")  # the one registry line
    entry = tmp_path / "submissions" / "tiny"
    shutil.copytree(tiny_gpt2_dir, entry / "model")  # the organizer's checks still vet the entry's files
    (entry / "submission.yaml").write_text("team: t\nname: tiny\nkind: hf-causal\nmodel: model\n", encoding="utf-8")

    cfg = compose(["backend.name=echo", f"paths.results={tmp_path / 'results'}"])
    tasks = {name: compose([f"task={name}"]).task for name in TASKS}
    evaluator = Evaluator(cfg, tasks, echo=lambda message: None)
    records = {r["task"]: r for r in evaluator.evaluate(entry)}

    assert evaluator.models_loaded == 1
    assert evaluator.jobs["tiny"].timings["model"] == {"class": "Echo"}  # the child loaded the echo backend
    for name, task in tasks.items():
        assert records[name]["status"] == "ok", records[name]["reason"]
        rows = store.read_predictions(Path(cfg.paths.results), "tiny", name)
        examples = load_examples(task)
        assert [row["prediction"] for row in rows] == _echo_answers(task, examples)
        # a backend other than the default is part of the prediction key: never another backend's predictions
        default = Cell(task, "tiny", submission_sha256(entry), compose([f"paths.results={tmp_path / 'results'}"]))
        assert records[name]["keys"]["predictions"] != default.prediction_key
