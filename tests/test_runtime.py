"""What ran is in the key and the record: the requested device, the resolved device type and dtype (resolved in
the parent without importing torch), the batch size, parameter count and library versions at prediction time,
and a hub model's resolved commit. Model jobs are scripted (no model loads)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import write_entries

from harness import runtime
from harness.compose import compose
from harness.execution.executors import evaluate_all

TASK = "demo_translation"
REPO = Path(__file__).resolve().parents[1]


def test_auto_resolves_without_importing_torch():
    code = ("import sys; from harness import runtime; print(runtime.device_type('auto'), "
            "runtime.resolve_dtype('auto', runtime.device_type('auto'))); assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() in (["cpu", "float32"], ["cuda", "bfloat16"])


def test_resolution_rules(monkeypatch):
    monkeypatch.setattr(runtime, "cuda_usable", lambda: False)
    assert (runtime.device_type("auto"), runtime.resolved_device("auto")) == ("cpu", "cpu")
    monkeypatch.setattr(runtime, "cuda_usable", lambda: True)
    assert (runtime.device_type("auto"), runtime.resolved_device("auto")) == ("cuda", "cuda")
    assert (runtime.device_type("cuda:1"), runtime.resolved_device("cuda:1")) == ("cuda", "cuda:1")
    assert runtime.device_type("cpu") == "cpu"
    assert runtime.resolve_dtype("auto", "cuda") == "bfloat16" and runtime.resolve_dtype("auto", "cpu") == "float32"
    assert runtime.resolve_dtype("float16", "cpu") == "float16"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(runtime, "cuda_usable", runtime.__dict__["_cuda_usable_uncached"])
    assert runtime.device_type("auto") == "cpu"  # no visible GPU


@pytest.fixture
def entry(tmp_path, tiny_gpt2_dir):
    return write_entries(tmp_path / "subs", {"gpt": ("hf-causal", tiny_gpt2_dir)}, shipped=()) / "gpt"


def run(tmp_path, folder, *overrides):
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false",
                   f"tasks.{TASK}.data.limit=3", *overrides])
    [record] = evaluate_all(cfg, {TASK: cfg.tasks[TASK]}, [folder], echo=lambda m: None)
    return record


def test_a_cpu_fp32_record_never_serves_a_gpu_bf16_run(tmp_path, entry, scripted_jobs, monkeypatch):
    plan, calls = scripted_jobs
    plan += ["ok", "ok", "ok"]
    monkeypatch.setattr(runtime, "cuda_usable", lambda: False)
    cpu = run(tmp_path, entry)
    assert calls[-1][1]["device"] == "cpu" and calls[-1][0]["dtype"] == "float32"  # the child runs what the key says
    assert run(tmp_path, entry)["keys"] == cpu["keys"] and len(calls) == 1
    monkeypatch.setattr(runtime, "cuda_usable", lambda: True)
    gpu = run(tmp_path, entry)
    assert len(calls) == 2 and gpu["keys"]["predictions"] != cpu["keys"]["predictions"]
    assert calls[-1][1]["device"] == "cuda" and calls[-1][0]["dtype"] == "bfloat16"
    prediction = gpu["provenance"]["prediction"]
    assert prediction["device_requested"] == "auto"
    assert (prediction["device"], prediction["dtype"]) == ("cuda", "bfloat16")
    assert cpu["provenance"]["prediction"]["dtype"] == "float32"


def test_provenance_records_batch_size_parameters_and_libraries_but_the_key_does_not(tmp_path, entry,
                                                                                     scripted_jobs):
    from harness.execution.cells import library_versions

    plan, calls = scripted_jobs
    plan += ["ok"]
    first = run(tmp_path, entry, "batch_size=4")
    prediction = first["provenance"]["prediction"]
    assert prediction["batch_size"] == 4 and prediction["n_parameters"] == 1234
    assert prediction["libraries"] == library_versions()
    second = run(tmp_path, entry, "batch_size=16")  # scores never depend on the batch size: reused
    assert len(calls) == 1 and second["provenance"]["prediction"]["batch_size"] == 4


def _hub_cache(root: Path, model_dir: str, commits) -> Path:
    """A hub cache holding `org/tiny` at each commit; refs/main points at the last."""
    import shutil

    repo = root / "models--org--tiny"
    for commit in commits:
        shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commits[-1], encoding="utf-8")
    return root


def test_hub_entries_are_keyed_by_their_resolved_commit(tmp_path, tiny_gpt2_dir, scripted_jobs, monkeypatch):
    plan, calls = scripted_jobs
    plan += ["ok", "ok", "ok"]
    one, two = "1" * 40, "2" * 40
    cache = _hub_cache(tmp_path / "hub", tiny_gpt2_dir, [one, two])
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    folder = tmp_path / "subs" / "hubby"
    folder.mkdir(parents=True)
    manifest = "team: t\nname: hubby\nkind: hf-causal\nmodel: org/tiny\n"
    (folder / "submission.yaml").write_text(manifest, encoding="utf-8")
    unpinned = run(tmp_path, folder)
    assert unpinned["provenance"]["prediction"]["model_revision"] == two  # resolved once, recorded
    assert calls[-1][0]["location"].endswith(two)
    assert run(tmp_path, folder)["keys"] == unpinned["keys"] and len(calls) == 1  # the same commit: reused
    (cache / "models--org--tiny" / "refs" / "main").write_text(one, encoding="utf-8")
    moved = run(tmp_path, folder)  # the hub's main moved: another model, another key, run again
    assert moved["keys"]["predictions"] != unpinned["keys"]["predictions"] and len(calls) == 2
    assert moved["provenance"]["prediction"]["model_revision"] == one and calls[-1][0]["location"].endswith(one)
    (folder / "submission.yaml").write_text(manifest + f"revision: '{two}'\n", encoding="utf-8")
    pinned = run(tmp_path, folder)  # pinned to the older commit, whatever main says
    assert pinned["provenance"]["prediction"]["model_revision"] == two and calls[-1][0]["location"].endswith(two)


def test_revision_is_for_hub_models_only(tmp_path, entry):
    from harness.errors import SubmissionError
    from harness.submission import load_submission

    text = (entry / "submission.yaml").read_text(encoding="utf-8")
    (entry / "submission.yaml").write_text(text + "revision: main\n", encoding="utf-8")
    with pytest.raises(SubmissionError, match="revision"):
        load_submission(entry)
