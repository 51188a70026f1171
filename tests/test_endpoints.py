"""`kind: endpoint` entries through a whole `harness run`: the organizer's allow-list, the API key (from the
environment, never written), what the records say, no reuse of a remote model's cells unless pinned, and servers
that fail mid-run (each typed, the rest of the run scored). The servers are tests/openai_fake.py on loopback.
Whole runs (a child process each) are in the slow tier; the refusals, which start no child, are not."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from hostile import builders
from openai_fake import FakeOpenAI

from harness.cli import main
from harness.errors import SubmissionError
from harness.submission import load_submission

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("demo_qa", "demo_classification", "demo_language_modeling")
KEY_ENV, KEY = "REMOTE_MODEL_ACCESS", "sk-test-9f8e7d6c5b4a"  # a name the secret-name pattern would not catch


def run(work: Path, *extra: str) -> int:
    overrides = ["suite=demo", f"paths.submissions={work / 'submissions'}", f"paths.results={work / 'store'}",
                 f"paths.leaderboards={work / 'boards'}", "progress=false",
                 "tasks.demo_qa.generation.max_new_tokens=4"]
    overrides += [f"tasks.{task}.data.limit=3" for task in ("demo_qa", "demo_classification", "demo_language_modeling",
                                                             "demo_translation", "demo_summarization")]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(["run", *overrides, *extra])


def record(work: Path, entry: str, task: str) -> dict:
    return json.loads((work / "store" / entry / f"{task}.json").read_text(encoding="utf-8"))


def written(work: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in work.rglob("*") if p.is_file())


@pytest.fixture
def work(tmp_path):
    (tmp_path / "submissions").mkdir()
    baseline = "baseline-majority-class"
    shutil.copytree(ROOT / "submissions" / baseline, tmp_path / "submissions" / baseline)
    return tmp_path


@pytest.mark.slow
def test_an_endpoint_entry_is_scored_with_its_key_from_the_environment(work, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeOpenAI(logprobs=True) as server:
        builders.endpoint_entry(work / "submissions", "remote", server.base_url, model="served/id")
        code = run(work, f"allow_endpoints=[127.0.0.1:{server.port}]", f"endpoint_api_key_env={KEY_ENV}")
    assert code == 0
    scored = ("demo_qa", "demo_translation", "demo_classification")
    assert {record(work, "remote", t)["status"] for t in scored} == {"ok"}
    na = record(work, "remote", "demo_language_modeling")
    assert (na["status"], "perplexity" in na["reason"]) == ("n/a", True)
    posts = [r for r in server.requests if r["method"] == "POST"]
    assert posts and all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in posts)
    assert all(json.loads(r["raw"])["model"] == "served/id" for r in posts)
    assert KEY not in written(work)  # the key is in no record, board or predictions file
    provenance = record(work, "remote", "demo_qa")["provenance"]
    assert provenance["backend"]["name"] == "openai" and provenance["backend"]["served_model"] == "served/id"
    assert "no weights hash" in provenance["backend"]["weights_sha256"]
    assert f"remote endpoint on 127.0.0.1:{server.port}" in provenance["isolation"]["network"]
    assert KEY_ENV in provenance["isolation"]["environment"]


def test_an_endpoint_not_on_the_allow_list_is_refused_before_any_request(work):
    with FakeOpenAI() as server:
        builders.endpoint_entry(work / "submissions", "remote", server.base_url)
        run(work)  # allow_endpoints is empty by default
        refused = record(work, "remote", "demo_qa")
        run(work, "allow_endpoints=[127.0.0.1:1]")  # another port of the same host is not this endpoint
    assert refused["status"] == "refused" and "allow_endpoints" in refused["reason"]
    assert record(work, "remote", "demo_qa")["status"] == "refused"
    assert server.requests == []
    assert record(work, "baseline-majority-class", "demo_classification")["status"] == "ok"


@pytest.mark.slow
def test_endpoint_cells_are_predicted_again_unless_pinned(work):
    with FakeOpenAI(logprobs=True) as server:
        builders.endpoint_entry(work / "submissions", "remote", server.base_url)
        allow = f"allow_endpoints=[127.0.0.1:{server.port}]"
        run(work, allow)
        first = len(server.requests)
        run(work, allow)
        second = len(server.requests) - first
        run(work, allow, "reuse_endpoint_predictions=true")
        third = len(server.requests) - first - second
    assert first > 0 and second == first and third == 0


@pytest.mark.slow
@pytest.mark.parametrize("behaviour, options, status, words", [
    (dict(behaviours=["500", "500"]), ["backend.options.max_retries=2"], "ok", ""),
    (dict(default="hang"), ["backend.options.request_timeout_s=1"], "timeout", "did not answer within 1 s"),
    (dict(stop_after=1), [], "crashed", "could not be reached"),
])
def test_a_failing_server_gives_a_typed_result_and_the_rest_is_scored(work, behaviour, options, status, words):
    with FakeOpenAI(logprobs=True, **behaviour) as bad, FakeOpenAI(logprobs=True) as good:
        builders.endpoint_entry(work / "submissions", "remote-bad", bad.base_url)
        builders.endpoint_entry(work / "submissions", "remote-good", good.base_url)
        run(work, f"allow_endpoints=[127.0.0.1:{bad.port},127.0.0.1:{good.port}]", "backend=openai",
            "backend.options.max_retries=0", "backend.options.concurrency=1", *options)
    generated = record(work, "remote-bad", "demo_qa")
    assert generated["status"] == status, generated["reason"]
    assert words in generated["reason"]
    assert {record(work, "remote-good", t)["status"] for t in ("demo_qa", "demo_classification")} == {"ok"}
    assert record(work, "baseline-majority-class", "demo_classification")["status"] == "ok"


def test_local_entries_are_na_under_backend_openai(work):
    shutil.copytree(ROOT / "submissions" / "tiny-gpt2", work / "submissions" / "tiny-gpt2")
    run(work, "backend=openai")
    cell = record(work, "tiny-gpt2", "demo_qa")
    assert cell["status"] == "n/a" and "endpoint entries" in cell["reason"]


@pytest.mark.parametrize("endpoint, words", [
    ('{base_url: "https://h.example/v1", model: m, api_key: sk-1}', "API key is never part of a submission"),
    ('{base_url: "ftp://h.example/v1", model: m}', "not an http(s) URL"),
    ('{base_url: "https://h.example:99999/v1", model: m}', "not an http(s) URL"),
    ('{base_url: "https://h.example/v1", model: ""}', "endpoint.model"),
    (None, "field 'endpoint' is required"),
])
def test_a_malformed_endpoint_is_invalid_with_the_field_named(tmp_path, endpoint, words):
    text = "team: t\nname: remote\nkind: endpoint\n" + (f"endpoint: {endpoint}\n" if endpoint else "")
    builders.manifest(tmp_path / "remote", text)
    with pytest.raises(SubmissionError, match="submission.yaml") as caught:
        load_submission(tmp_path / "remote")
    assert words in str(caught.value)


def test_an_endpoint_field_on_a_local_model_is_invalid(tmp_path):
    builders.manifest(tmp_path / "x", 'team: t\nname: x\nkind: hf-causal\nmodel: gpt2\n'
                                      'endpoint: {base_url: "https://h.example/v1", model: m}\n')
    with pytest.raises(SubmissionError, match="field 'endpoint' is only for kind 'endpoint'"):
        load_submission(tmp_path / "x")
