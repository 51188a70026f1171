"""Submission manifests: `submission.yaml` is plain data, checked against a dataclass schema.

It is read with a safe YAML loader and never composed as config: no `${...}` interpolation is resolved and nothing
in it is instantiated.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from harness.errors import SubmissionError
from harness.models.baselines import BASELINES

MANIFEST = "submission.yaml"
KINDS = ("hf-causal", "hf-seq2seq", "predictions", "baseline")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass(frozen=True)
class Manifest:
    team: str
    name: str
    kind: str
    model: Optional[str] = None  # hf kinds: a folder relative to the submission, or a hub id
    baseline: Optional[str] = None  # baseline kind: a built-in baseline's name
    dtype: str = "auto"
    trust_remote_code: bool = False  # honoured only where the organizer allows it for this entry
    chat_template: bool = False  # hf kinds: prompts go through the tokenizer's chat template (shots as turns)
    # hf kinds: {start: "<think>", end: "</think>"}: the block is removed from generated text before scoring
    reasoning: Optional[Dict[str, str]] = None
    max_new_tokens: Optional[int] = None  # hf kinds: raise every task's token budget to this, up to the run's cap
    revision: Optional[str] = None  # hub models: the commit (or branch, tag) to run; unpinned: the cache's main


@dataclass(frozen=True)
class Submission:
    folder: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name


_FIELDS = {f.name: f for f in dataclasses.fields(Manifest)}
_TYPES = {"team": str, "name": str, "kind": str, "model": str, "baseline": str, "dtype": str,
          "trust_remote_code": bool, "chat_template": bool, "reasoning": dict, "max_new_tokens": int,
          "revision": str}
_HF_ONLY = ("chat_template", "reasoning", "max_new_tokens", "revision")


def load_submission(folder: str | os.PathLike) -> Submission:
    """Read and check `<folder>/submission.yaml`. Raises SubmissionError naming the file, field and value."""
    folder = Path(folder)
    path = folder / MANIFEST
    if folder.is_dir():
        check_links(folder)  # before reading anything: submission.yaml itself may be a link to a secret
    if not path.is_file():
        raise SubmissionError(f"{path}: no {MANIFEST} in the submission folder")
    data = _read_yaml(path)
    manifest = _check_fields(path, data)
    _check_kind(path, folder, manifest)
    return Submission(folder, manifest)


def _read_yaml(path: Path) -> Dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except UnicodeDecodeError as e:
        raise SubmissionError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from e
    except yaml.YAMLError as e:
        raise SubmissionError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise SubmissionError(f"{path}: expected a mapping of fields (team, name, kind, ...), got {type(data).__name__}")
    return data


def _check_fields(path: Path, data: Dict[str, Any]) -> Manifest:
    errors: List[str] = []
    for key in data:
        if key not in _FIELDS:
            close = difflib.get_close_matches(str(key), _FIELDS, n=1)
            errors.append(f"unknown field {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                          + f" (valid fields: {', '.join(_FIELDS)})")
    for key in ("team", "name", "kind"):
        if key not in data:
            errors.append(f"field {key!r} is required")
    for key, value in data.items():
        expected = _TYPES.get(key)
        if expected is None:
            continue
        if value is None and _FIELDS[key].default is None:
            continue
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            errors.append(f"field {key!r}: expected {expected.__name__}, got {type(value).__name__} ({value!r})")
        elif isinstance(value, str) and "${" in value:
            errors.append(f"field {key!r}: `${{...}}` interpolation is not allowed in a submission manifest "
                          f"(it is plain data; write the value itself)")
    if errors:
        raise SubmissionError(f"{path}: " + "; ".join(errors))
    manifest = Manifest(**data)
    if not _NAME.match(manifest.name):
        raise SubmissionError(f"{path}: field 'name': {manifest.name!r} is not valid; use letters, digits, '.', '_' "
                              f"and '-' (at most 64 characters, starting with a letter or digit)")
    if manifest.kind not in KINDS:
        raise SubmissionError(f"{path}: field 'kind': {manifest.kind!r} is not valid; use one of {', '.join(KINDS)}")
    if manifest.dtype not in DTYPES:
        raise SubmissionError(f"{path}: field 'dtype': {manifest.dtype!r} is not valid; use one of {', '.join(DTYPES)}")
    _check_prompting_fields(path, manifest, data)
    return manifest


def _check_prompting_fields(path: Path, manifest: Manifest, data: Dict[str, Any]) -> None:
    """chat_template, reasoning and max_new_tokens: for model entries only, each well-formed."""
    if manifest.kind not in ("hf-causal", "hf-seq2seq"):
        given = [key for key in _HF_ONLY if key in data and data[key] not in (None, False)]
        if given:
            raise SubmissionError(f"{path}: field {given[0]!r} is only for kinds hf-causal and hf-seq2seq, "
                                  f"not {manifest.kind!r}")
    if manifest.max_new_tokens is not None and manifest.max_new_tokens < 1:
        raise SubmissionError(f"{path}: field 'max_new_tokens': {manifest.max_new_tokens} must be a positive integer")
    reasoning = manifest.reasoning
    if reasoning is None:
        return
    example = 'e.g. `reasoning: {start: "<think>", end: "</think>"}`'
    if set(reasoning) != {"start", "end"}:
        raise SubmissionError(f"{path}: field 'reasoning': expected exactly the keys 'start' and 'end', got "
                              f"{', '.join(map(repr, reasoning)) or 'none'} ({example})")
    for key in ("start", "end"):
        value = reasoning[key]
        if not isinstance(value, str) or not value.strip():
            raise SubmissionError(f"{path}: field 'reasoning.{key}': expected a non-empty text marker, got "
                                  f"{value!r} ({example})")
    if reasoning["start"] == reasoning["end"]:
        raise SubmissionError(f"{path}: field 'reasoning': start and end are the same marker {reasoning['start']!r}; "
                              f"the block's end must differ from its start")


def _check_kind(path: Path, folder: Path, manifest: Manifest) -> None:

    kind = manifest.kind
    if kind in ("hf-causal", "hf-seq2seq"):
        if not manifest.model:
            raise SubmissionError(f"{path}: field 'model' is required for kind {kind!r} (a model folder relative "
                                  f"to the submission, e.g. `model: .`, or a hub id)")
        check_model_path(path, folder, manifest.model)
        if manifest.revision is not None and (folder / manifest.model).is_dir():
            raise SubmissionError(f"{path}: field 'revision': {manifest.revision!r} is only for hub models; "
                                  f"{manifest.model!r} is a folder in the submission (its files are its version)")
    elif manifest.model is not None:
        raise SubmissionError(f"{path}: field 'model' is only for kinds hf-causal and hf-seq2seq, not {kind!r}")
    if kind == "baseline":
        if manifest.baseline not in BASELINES:
            raise SubmissionError(f"{path}: field 'baseline': {manifest.baseline!r} is not a built-in baseline; "
                                  f"use one of {', '.join(BASELINES)}")
    elif manifest.baseline is not None:
        raise SubmissionError(f"{path}: field 'baseline' is only for kind 'baseline', not {kind!r}")
    if kind == "predictions" and not (folder / "predictions").is_dir():
        raise SubmissionError(f"{folder}: kind 'predictions' needs a predictions/ folder with <task>.jsonl files")


def check_model_path(path: Path, folder: Path, model: str) -> None:
    """`model` is a folder inside the submission, or a hub id; never a path that leaves the submission."""
    if os.path.isabs(model) or ".." in Path(model).parts:
        raise SubmissionError(f"{path}: field 'model': {model!r} leaves the submission folder; give a path "
                              f"inside it (e.g. `model: .` or `model: model`) or a hub id")
    local = folder / model
    if local.exists():
        if not local.is_dir():
            raise SubmissionError(f"{path}: field 'model': {model!r} is a file; it must be a model folder")
        return
    if not _HUB_ID.match(model):
        raise SubmissionError(f"{path}: field 'model': {model!r} is neither a folder in the submission nor a "
                              f"hub id (like 'org/name')")


def check_links(folder: Path, limit: int = 5) -> None:
    """Every symlink under `folder` must resolve inside it: a link out could make the organizer read (and publish)
    a file of theirs, or another entry's results, as this entry's model or predictions."""
    root = os.path.realpath(folder)
    escaping = []
    for dirpath, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            link = os.path.join(dirpath, name)
            if os.path.islink(link) and os.path.commonpath([root, os.path.realpath(link)]) != root:
                escaping.append(f"{Path(link).relative_to(folder).as_posix()} -> {os.readlink(link)}")
    if escaping:
        shown = ", ".join(sorted(escaping)[:limit]) + (f" and {len(escaping) - limit} more" if len(escaping) > limit else "")
        raise SubmissionError(f"{folder}: symlinks that leave the submission folder: {shown}; copy the files into "
                              f"the submission instead of linking to them")


def submission_sha256(folder: Path) -> str:
    """sha256 over every file of the submission (relative path and bytes), in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = file.relative_to(folder).as_posix()
        if rel.startswith(".") or "__pycache__" in rel:
            continue
        digest.update(rel.encode("utf-8") + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def discover(root: str | os.PathLike) -> List[Path]:
    """Submission folders under `root`: every direct subfolder holding a submission.yaml, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file())
