"""Manifest checks: plain data, unknown keys/wrong types/bad kinds rejected with file, field, value and options."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SubmissionError
from harness.submission import discover, load_submission

SHIPPED = discover(Path(__file__).resolve().parents[1] / "submissions")


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_submission_loads(folder):
    assert load_submission(folder).name


def test_shipped_submissions_cover_every_kind():
    kinds = {load_submission(f).manifest.kind for f in SHIPPED}
    assert kinds == {"hf-causal", "hf-seq2seq", "predictions", "baseline"}


@pytest.mark.parametrize("text, words", [
    ("team: a\nname: b\nkind: baseline\nbaseline: lead-1\ncolour: red\n", ["colour", "valid fields"]),
    ("team: a\nname: b\n", ["'kind'", "required"]),
    ("team: a\nname: b\nkind: wizard\n", ["wizard", "hf-causal"]),
    ("team: 3\nname: b\nkind: baseline\nbaseline: lead-1\n", ["'team'", "expected str"]),
    ("team: a\nname: b\nkind: hf-causal\nmodel: m\ntrust_remote_code: yes please\n", ["trust_remote_code"]),
    ("team: a\nname: b\nkind: baseline\nbaseline: oracle\n", ["oracle", "lead-1"]),
    ("team: a\nname: b\nkind: hf-causal\n", ["'model' is required"]),
    ("team: a\nname: b\nkind: hf-causal\nmodel: ../../etc\n", ["leaves the submission folder"]),
    ("team: a\nname: b\nkind: hf-causal\nmodel: /etc\n", ["leaves the submission folder"]),
    ("team: a\nname: 'bad name!'\nkind: baseline\nbaseline: lead-1\n", ["'name'", "bad name!"]),
    ("- just\n- a list\n", ["expected a mapping"]),
    ("team: [unclosed\n", ["not valid YAML"]),
    ("team: ${oc.env:SECRET_TOKEN}\nname: b\nkind: baseline\nbaseline: lead-1\n", ["interpolation"]),
])
def test_bad_manifest_is_rejected_with_the_field_named(tmp_path, text, words):
    folder = write(tmp_path / "entry", text)
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    message = str(info.value)
    assert "submission.yaml" in message
    for word in words:
        assert word in message


def test_interpolation_is_never_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2-secret")
    folder = write(tmp_path / "entry", "team: ${oc.env:SECRET_TOKEN}\nname: b\nkind: baseline\nbaseline: lead-1\n")
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    assert "hunter2-secret" not in str(info.value)
