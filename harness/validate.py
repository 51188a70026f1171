"""`harness validate DIR`: the organizer's checks, run by a participant, each with how to fix a failure."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from harness.errors import SubmissionError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def _check(name: str, ok: bool, detail: str = "", fix: str = "") -> Dict[str, Any]:
    return {"check": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


def model_folder_checks(folder: Path, allow_remote_code: bool) -> List[Dict[str, Any]]:
    """Files of a local transformers model folder: config, tokenizer, safetensors weights, no pickles, no code."""
    checks = []
    pickles = sorted(p.name for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    checks.append(_check("weights are safetensors only", not pickles, ", ".join(pickles),
                         "convert the weights with model.save_pretrained(dir, safe_serialization=True) and delete "
                         "the pickle files"))
    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    checks.append(_check("safetensors weights present", bool(weights), ", ".join(weights) or "none found",
                         "save the model with save_pretrained(..., safe_serialization=True)"))
    config = folder / "config.json"
    checks.append(_check("config.json present", config.is_file(), str(config), "save the model with save_pretrained"))
    tokenizer = any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json",
                                                     "spiece.model"))
    checks.append(_check("tokenizer files present", tokenizer, "", "save the tokenizer with tokenizer.save_pretrained"))
    code = sorted(p.name for p in folder.rglob("*.py"))
    auto_map = False
    if config.is_file():
        try:
            auto_map = "auto_map" in json.loads(config.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            checks.append(_check("config.json is valid JSON", False, str(config), "write config.json with save_pretrained"))
    has_code = bool(code) or auto_map
    checks.append(_check("no custom model code (or allowed by the organizer)", allow_remote_code or not has_code,
                         ", ".join(code + (["auto_map in config.json"] if auto_map else [])),
                         "use a model class that ships with transformers; custom code runs only where the "
                         "organizer allows it for this entry by name"))
    return checks


def validate(folder: Path, cfg: Any, tasks: Dict[str, Any]) -> Dict[str, Any]:
    checks: List[Dict[str, Any]] = []
    report: Dict[str, Any] = {"submission": str(folder), "suite": cfg.suite.name, "checks": checks, "tasks": {}}
    try:
        from harness.submission import load_submission

        submission = load_submission(folder)
    except SubmissionError as e:
        checks.append(_check("submission.yaml is valid", False, str(e),
                             "fix the field named above; see README 'Add a submission'"))
        report["accepted"] = False
        return report
    checks.append(_check("submission.yaml is valid", True, f"{submission.manifest.kind} entry {submission.name!r}"))
    kind = submission.manifest.kind
    if kind in ("hf-causal", "hf-seq2seq"):
        local = folder / submission.manifest.model
        allowed = submission.manifest.trust_remote_code and submission.name in cfg.allow_remote_code
        if local.is_dir():
            checks.extend(model_folder_checks(local, allowed))
        else:
            checks.append(_check("model is a hub id", True, submission.manifest.model))
    elif kind == "predictions":
        checks.extend(_prediction_checks(submission, tasks, report))
    report["accepted"] = all(c["ok"] for c in checks)
    return report


def _prediction_checks(submission: Any, tasks: Dict[str, Any], report: Dict[str, Any]) -> List[Dict[str, Any]]:
    from harness.data import load_examples
    from harness.models.predictions import predictions_file, read_predictions
    from tasks import kind_of

    checks = []
    for name, task in sorted(tasks.items()):
        path = predictions_file(submission.folder, name)
        if not path.is_file():
            report["tasks"][name] = {"status": "not-submitted"}
            continue
        try:
            predictions = read_predictions(path, lambda v, t=task: kind_of(t).check_prediction(t, v))
        except SubmissionError as e:
            checks.append(_check(f"predictions/{name}.jsonl is well formed", False, str(e),
                                 'each line must be exactly {"id": "<string>", "prediction": ...}'))
            continue
        ids = {e.id for e in load_examples(task)}
        missing, unknown = len(ids - set(predictions)), len(set(predictions) - ids)
        report["tasks"][name] = {"status": "ok", "predictions": len(predictions), "missing": missing, "unknown": unknown}
        checks.append(_check(f"predictions/{name}.jsonl is well formed", True,
                             f"{len(predictions)} predictions, {missing} missing ids (score 0), {unknown} unknown ids "
                             f"(ignored)"))
    return checks


def print_report(report: Dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False))
        return
    print(f"validating {report['submission']} against suite {report['suite']}")
    for check in report["checks"]:
        print(f"  [{'ok' if check['ok'] else 'FAIL'}] {check['check']}" + (f": {check['detail']}" if check["detail"] else ""))
        if check["fix"]:
            print(f"         fix: {check['fix']}")
    print("accepted" if report["accepted"] else "rejected")
