"""Real serving engines. CPU (slow tier): `transformers serve` (the `serving` extra) on the demo models, against
the HF backend. GPU tier: vLLM, in tests/test_gpu_serving.py."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.models.openai_api import NO_PROMPT_LOGPROBS
from harness.requests import EndpointUnavailable, GenerateRequest, ModelSpec

pytest.importorskip("fastapi", reason="needs the serving extra: pip install -e '.[serving]'")
pytest.importorskip("uvicorn", reason="needs the serving extra: pip install -e '.[serving]'")

ROOT = Path(__file__).resolve().parents[1]
GENERATION_TASKS = ("demo_translation", "demo_summarization", "demo_qa")
SCORED_BY_LOGLIKELIHOOD = ("demo_classification", "demo_language_modeling")
pytestmark = pytest.mark.slow


def demo_run(work: Path, backend: str) -> Path:
    store = work / backend / "store"
    overrides = ["run", "suite=demo", f"backend={backend}", f"paths.submissions={work / 'submissions'}",
                 f"paths.results={store}", f"paths.leaderboards={work / backend / 'boards'}", "progress=false",
                 "device=cpu"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(overrides) == 0
    return store


def predictions(store: Path, entry: str, task: str) -> dict:
    lines = (store / entry / f"{task}.predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["id"]: row["prediction"] for row in map(json.loads, lines)}


def record(store: Path, entry: str, task: str) -> dict:
    return json.loads((store / entry / f"{task}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("serving")
    for entry in ("tiny-gpt2", "tiny-t5"):
        shutil.copytree(ROOT / "submissions" / entry, work / "submissions" / entry)
    return {backend: demo_run(work, backend) for backend in ("hf", "transformers-serve")}


def test_transformers_serve_generates_exactly_what_the_hf_backend_does(runs):
    for task in GENERATION_TASKS:
        served = record(runs["transformers-serve"], "tiny-gpt2", task)
        assert served["status"] == "ok", served["reason"]
        assert predictions(runs["transformers-serve"], "tiny-gpt2", task) == predictions(runs["hf"], "tiny-gpt2", task)
        assert served["scores"] == record(runs["hf"], "tiny-gpt2", task)["scores"]
        assert served["provenance"]["backend"]["engine"] == "transformers-serve"
        assert served["provenance"]["backend"]["engine_version"]
        assert "127.0.0.1" in served["provenance"]["isolation"]["network"]
        assert served["keys"]["predictions"] != record(runs["hf"], "tiny-gpt2", task)["keys"]["predictions"]


def test_loglikelihood_tasks_are_na_with_the_reason(runs):
    for task in SCORED_BY_LOGLIKELIHOOD:
        cell = record(runs["transformers-serve"], "tiny-gpt2", task)
        assert (cell["status"], cell["reason"]) == ("n/a", NO_PROMPT_LOGPROBS)


def test_encoder_decoder_entries_are_na_with_the_engines_limit(runs):
    for task in GENERATION_TASKS:
        cell = record(runs["transformers-serve"], "tiny-t5", task)
        assert cell["status"] == "n/a" and "encoder-decoder" in cell["reason"]
        assert record(runs["hf"], "tiny-t5", task)["status"] == "ok"


def _spec(model_dir: str, **options) -> ModelSpec:
    return ModelSpec(kind="hf-causal", location=model_dir, backend="transformers-serve",
                     options={"concurrency": 1, "max_retries": 0, "startup_timeout_s": 120, **options})


def test_an_engine_killed_mid_job_is_typed(tiny_gpt2_dir, tmp_path, monkeypatch):
    from harness.models import served

    monkeypatch.chdir(tmp_path)
    backend = served.load(_spec(tiny_gpt2_dir), device="cpu", batch_size=1, progress=False)
    try:
        requests = [GenerateRequest(prompt=f"number {i}", max_new_tokens=32) for i in range(200)]
        killer = threading.Timer(2.0, backend.engine.process.kill)
        killer.start()
        started = time.monotonic()
        with pytest.raises(EndpointUnavailable, match=r"exited with code -9"):
            backend.generate(requests)
        assert time.monotonic() - started < 60
    finally:
        backend.close()


def test_an_engine_that_cannot_load_the_model_fails_with_its_log(tmp_path, monkeypatch):
    from harness.models import served

    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(RuntimeError, match="exited with code") as caught:
        served.load(_spec(str(tmp_path / "empty-model")), device="cpu", batch_size=1, progress=False)
    assert "empty-model" in str(caught.value)
