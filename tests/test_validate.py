"""`harness validate`: accepts every shipped example entry, rejects every hostile one with its reason and a fix,
and reports prompts, predictions, speed, memory and an estimate for a model entry."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from hostile import builders

from harness.cli import main
from harness.compose import compose
from harness.submission import discover
from harness.validate import MANIFEST_CHECK, print_report, validate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = discover(ROOT / "submissions")
GENERATION_TASKS = ("demo_translation", "demo_summarization", "demo_qa")
CHEAP = [f"tasks.{t}.generation.max_new_tokens=4" for t in GENERATION_TASKS]


def _shipped(folder):  # an entry that loads a model runs it in a child interpreter: ~10 s, the slow tier
    kind = yaml.safe_load((folder / "submission.yaml").read_text(encoding="utf-8"))["kind"]
    return pytest.param(folder, id=folder.name, marks=[pytest.mark.slow] if kind.startswith("hf-") else [])


@pytest.mark.parametrize("folder", [_shipped(folder) for folder in SHIPPED])
def test_every_shipped_submission_is_accepted(folder):
    cfg = compose(["suite=demo", "progress=false"] + CHEAP)
    report = validate(folder, cfg, dict(cfg.tasks))
    failed = [c for c in report["checks"] if not c["ok"]]
    assert report["accepted"], failed
    assert report["tasks"], "the organizer's run produced no cell"


@pytest.fixture(scope="module")
def model_report(tmp_path_factory, tiny_gpt2_dir):
    root = tmp_path_factory.mktemp("validate")
    folder = builders.good(root, "mine", tiny_gpt2_dir)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["validate", str(folder), "suite=demo", "--json", "progress=false"] + CHEAP)
    return code, json.loads(out.getvalue())


def test_a_model_entry_is_accepted_with_prompts_predictions_speed_and_memory(model_report):
    code, report = model_report
    assert code == 0 and report["accepted"]
    assert all(c["ok"] for c in report["checks"])
    for name in ("demo_qa", "demo_classification", "demo_language_modeling"):
        task = report["tasks"][name]
        assert task["status"] == "ok" and task["examples"] == 3
        assert len(task["prompts"]) == 3 and set(task["predictions"]) == set(task["prompts"])
    assert report["tasks"]["demo_qa"]["prompts"]["qa-0001"].startswith("Answer with a span from the passage.")
    run = report["run"]
    assert run["examples"] == 15 and run["examples_per_s"] > 0
    assert 50 < run["peak_rss_mib"] < 16_000  # the child's own peak (torch alone is well over 50 MiB)
    full = sum(len((ROOT / "tasks" / "data" / "demo" / f).read_text(encoding="utf-8").splitlines())
               for f in ("translation_test.jsonl", "summarization_test.jsonl", "qa_test.jsonl",
                         "classification_test.jsonl", "lm_test.jsonl"))
    assert run["full_examples"] == full
    assert run["load_s"] < run["estimate_s"] and run["budget_s"] == 5 * 1800


def test_the_text_report_shows_checks_prompts_predictions_and_the_estimate(model_report, capsys):
    _, report = model_report
    print_report(report, as_json=False)
    text = capsys.readouterr().out
    for words in ("[ok] no pickle-based files", "[qa-0001] prompt:", "[qa-0001] prediction:", "peak memory",
                  "estimated full run on this machine", "network isolation:", "accepted"):
        assert words in text


def _hostile(kind: str, root: Path, model_dir: str) -> Path:
    marker = root / "marker"
    if kind.startswith("pickle-"):
        return builders.pickle_entry(root, kind, model_dir, marker, kind.removeprefix("pickle-"))
    if kind == "remote-code":
        return builders.remote_code_entry(root, kind, model_dir, marker)
    if kind == "link-weights":
        (root / "elsewhere").mkdir()
        shutil.copy(Path(model_dir) / "model.safetensors", root / "elsewhere" / "model.safetensors")
        return builders.symlinked_weights_entry(root, kind, model_dir, root / "elsewhere" / "model.safetensors")
    if kind == "traversal":
        return builders.model_entry(root, kind, "../../somewhere/model")
    if kind == "interpolation":
        return builders.interpolation_entry(root, kind, "HARNESS_TEST_SECRET")
    if kind == "no-weights":
        folder = builders.good(root, kind, model_dir)
        (folder / "model" / "model.safetensors").unlink()
        return folder
    raise ValueError(kind)


STATIC = {  # hostile entry -> (the failed check, words of its detail)
    "pickle-bin": ("no pickle-based files", "pytorch_model.bin"),
    "pickle-zip": ("no pickle-based files", "zip holding a pickle"),
    "pickle-disguised": ("no pickle-based files", "pickle protocol"),
    "remote-code": ("no model code shipped", "modeling_evil.py"),
    "link-weights": (MANIFEST_CHECK, "symlinks that leave the submission folder"),
    "traversal": (MANIFEST_CHECK, "leaves the submission folder"),
    "interpolation": (MANIFEST_CHECK, "interpolation is not allowed"),
    "no-weights": ("weights are valid safetensors", "no *.safetensors file"),
}


@pytest.mark.parametrize("kind", sorted(STATIC))
def test_a_hostile_entry_is_rejected_with_its_reason_and_a_fix(tmp_path, tiny_gpt2_dir, capsys, monkeypatch, kind):
    monkeypatch.setenv("HARNESS_TEST_SECRET", "s3cr3t-value-never-shown")
    folder = _hostile(kind, tmp_path, tiny_gpt2_dir)
    assert main(["validate", str(folder), "suite=demo"]) == 1
    out = capsys.readouterr().out
    check, words = STATIC[kind]
    failed = [line for line in out.splitlines() if line.startswith("  [FAIL]")]
    assert failed and check in failed[0] and words in out
    assert "fix:" in out and out.rstrip().endswith("rejected: fix the FAIL lines above")
    assert "model process:" not in out  # nothing of a rejected entry ran
    assert not (tmp_path / "marker").exists() and "s3cr3t-value-never-shown" not in out


@pytest.mark.slow
@pytest.mark.parametrize("kind, status, words", [
    ("nan", "bad-output", "NaN"),
    ("crash", "crashed", "IndexError"),
    ("huge", "bad-output", "bytes per example"),
])
def test_a_hostile_model_is_rejected_by_its_sample_run(tmp_path, tiny_gpt2_dir, capsys, kind, status, words):
    build = {"nan": builders.nan_entry, "crash": builders.crash_entry, "huge": builders.huge_output_entry}[kind]
    folder = build(tmp_path, kind, tiny_gpt2_dir)
    assert main(["validate", str(folder), "suite=demo", "progress=false"] + CHEAP) == 1
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("  [FAIL]")]
    assert any(f": {status}: " in line and words in line for line in failed), out
    assert "fix:" in out and "rejected" in out


def test_a_broken_predictions_file_is_named_with_its_line(tmp_path, capsys):
    folder = tmp_path / "preds"
    shutil.copytree(ROOT / "submissions" / "rules-predictions", folder)
    target = sorted((folder / "predictions").glob("*.jsonl"))[0]
    lines = target.read_text(encoding="utf-8").splitlines()
    lines[1] = '{"id": "x", "prediction": "y", "oops": 1}'
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["validate", str(folder), "suite=demo"]) == 1
    out = capsys.readouterr().out
    assert f"{target.name}:2" in out and "[FAIL]" in out


def test_validate_needs_one_folder():
    assert main(["validate"]) == 2


def test_missing_and_unknown_ids_are_reported_per_task_and_missing_ids_reject(tmp_path, capsys):
    folder = tmp_path / "preds"
    shutil.copytree(ROOT / "submissions" / "rules-predictions", folder)
    target = folder / "predictions" / "demo_qa.jsonl"
    target.write_text(target.read_text(encoding="utf-8").replace('"qa-0002"', '"qa-002"'), encoding="utf-8")
    assert main(["validate", str(folder), "suite=demo"]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "demo_qa" in line and "ids" in line)
    assert "[FAIL]" in line and "missing 1" in line and "qa-0002" in line and "unknown 1" in line and "qa-002" in line
    assert "[ok] task demo_translation" in out  # the other tasks are fine
    # `run` still scores a missing id as 0 and counts it
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}"])
    from harness.execution.executors import evaluate_all

    records = {r["task"]: r for r in evaluate_all(cfg, {"demo_qa": cfg.tasks.demo_qa}, [folder], echo=print)}
    assert records["demo_qa"]["status"] == "ok" and records["demo_qa"]["counts"]["missing"] == 1


def test_a_stray_predictions_file_is_named_with_the_closest_task(tmp_path, capsys):
    folder = tmp_path / "preds"
    shutil.copytree(ROOT / "submissions" / "rules-predictions", folder)
    (folder / "predictions" / "demo_translation.jsonl").rename(folder / "predictions" / "demo_translaton.jsonl")
    assert main(["validate", str(folder), "suite=demo"]) == 1
    out = capsys.readouterr().out
    assert "demo_translaton.jsonl" in out and "did you mean 'demo_translation'" in out


def _inputs_only(tmp_path, task_file: str, reference_columns) -> Path:
    """The task's test data without its reference columns: what a hidden-test contest gives participants."""
    rows = [json.loads(line) for line in (ROOT / "tasks" / "data" / "demo" / task_file).read_text().splitlines()]
    path = tmp_path / task_file
    path.write_text("".join(json.dumps({k: v for k, v in row.items() if k not in reference_columns}) + "\n"
                            for row in rows), encoding="utf-8")
    return path


def test_validate_runs_every_check_on_data_without_references(tmp_path, capsys, tiny_gpt2_dir, scripted_jobs):
    from tiny_models import write_entries

    plan, calls = scripted_jobs
    plan += ["ok"]
    data = [f"tasks.demo_translation.data.path={_inputs_only(tmp_path, 'translation_test.jsonl', ['en'])}",
            f"tasks.demo_classification.data.path={_inputs_only(tmp_path, 'classification_test.jsonl', ['label'])}"]
    assert main(["validate", str(ROOT / "submissions" / "rules-predictions"), "suite=demo", *data]) == 0
    out = capsys.readouterr().out
    assert "no references" in out and "accepted" in out
    folder = write_entries(tmp_path / "subs", {"gpt": ("hf-causal", tiny_gpt2_dir)}, shipped=()) / "gpt"
    cfg = compose(["suite=demo", *data])
    report = validate(folder, cfg, {"demo_translation": cfg.tasks.demo_translation})  # scripted answers are text
    assert report["accepted"], report["checks"]
    assert len(calls) == 1 and report["tasks"]["demo_translation"]["status"] == "ok"
    assert report["tasks"]["demo_translation"]["scores"] == {}  # nothing to score against
    assert report["run"] is not None  # the cost estimate is made (its numbers need a real model: not here)


def test_validate_in_a_contest_uses_the_open_phases_suite(tmp_path, capsys, monkeypatch):
    from harness.contest import rules
    from test_contest import SEARCHPATH, at

    monkeypatch.setattr(rules, "utc_now", lambda: at("2031-01-09T12:00:00Z"))  # the main phase is open
    folder = ROOT / "submissions" / "rules-predictions"
    main(["validate", str(folder), SEARCHPATH, "contest=test_contest", f"paths.contests={tmp_path}"])
    out = capsys.readouterr().out
    assert "against suite contest_main" in out


@pytest.mark.slow  # a child that fails loading, ~10 s
def test_a_load_error_shows_the_report_only_and_names_the_full_log(tmp_path, capfd, tiny_t5_dir):
    from tiny_models import write_entries

    folder = write_entries(tmp_path / "subs", {"t5": ("hf-causal", tiny_t5_dir)}, shipped=()) / "t5"  # wrong kind
    assert main(["validate", str(folder), "suite=demo", "tasks.demo_translation.data.limit=2"]) == 1
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err  # the child's traceback stays in its log
    line = next(line for line in captured.out.splitlines() if "full log:" in line)
    log = Path(line.split("full log:", 1)[1].strip())
    assert "Traceback" in log.read_text(encoding="utf-8")
    assert "load-error" in captured.out and "hf-seq2seq" in captured.out  # the fix names the right kind


def test_tokenizer_config_alone_is_no_tokenizer(tmp_path, tiny_gpt2_dir):
    from harness import safety

    model = tmp_path / "model"
    shutil.copytree(tiny_gpt2_dir, model)
    (model / "tokenizer.json").unlink()
    assert (model / "tokenizer_config.json").is_file()
    finding = next(f for f in safety.check_model(model, trust_remote_code=False, allowed=False)
                   if "tokenizer" in f.check)
    assert not finding.ok and "tokenizer_config.json alone" in finding.detail
