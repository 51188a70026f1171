"""Submission manifests: `submission.yaml` is plain data, checked against a dataclass schema.

It is read with a safe YAML loader and never composed as config: no `${...}` interpolation is resolved and nothing
in it is instantiated.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from harness import filehash
from harness.errors import SubmissionError
from harness.models.baselines import BASELINES

MANIFEST = "submission.yaml"
KINDS = ("hf-causal", "hf-seq2seq", "predictions", "baseline", "endpoint")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Team names: Unicode letters, marks and digits (any script), space and -_.&()' only: nothing that splits a table
# row, opens markup or starts a spreadsheet formula. At most 64 characters.
_TEAM_PUNCTUATION = frozenset(" -_.&()'")
TEAM_CHARS = 64
# What a manifest may hold, checked on its YAML tokens before any value is built: a manifest is a few short
# fields, so anything bigger is refused before it can cost time or memory (deep nesting, alias bombs).
MANIFEST_BYTES = 64 << 10
MANIFEST_DEPTH = 8
MANIFEST_STRING_CHARS = 4096
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
    # endpoint kind: {base_url: "https://host/v1", model: "served-model-id"}, an OpenAI-compatible server the
    # organizer allows (run config allow_endpoints); its API key comes from the organizer's environment, never here
    endpoint: Optional[Dict[str, str]] = None
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
          "trust_remote_code": bool, "chat_template": bool, "reasoning": dict, "max_new_tokens": int, "endpoint": dict,
          "revision": str}
MODEL_KINDS = ("hf-causal", "hf-seq2seq", "endpoint")  # kinds a model answers (locally or behind an endpoint)
_HF_ONLY = ("chat_template", "reasoning", "max_new_tokens", "revision")
_ENDPOINT_KEYS = ("base_url", "model")


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
    size = path.stat().st_size
    if size > MANIFEST_BYTES:
        raise SubmissionError(f"{path}: {size} bytes; the limit is {MANIFEST_BYTES} bytes for a manifest")
    try:
        text = path.read_text(encoding="utf-8")
        check_yaml_bounds(path, text)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as e:
        raise SubmissionError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from e
    except yaml.YAMLError as e:
        raise SubmissionError(f"{path}: not valid YAML: {str(e)[:500]}") from e
    if not isinstance(data, dict):
        raise SubmissionError(f"{path}: expected a mapping of fields (team, name, kind, ...), got {type(data).__name__}")
    return data


def check_yaml_bounds(path: Path, text: str) -> None:
    """Depth, string length and aliases, read from the token stream (the scanner does not recurse; building the
    values does, and an alias bomb expands only then)."""
    depth = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
            raise SubmissionError(f"{path}: line {token.start_mark.line + 1}: anchors and aliases are not allowed in "
                                  f"a manifest (it is plain data; write each value out)")
        if isinstance(token, (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
                              yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)):
            depth += 1
            if depth > MANIFEST_DEPTH:
                raise SubmissionError(f"{path}: line {token.start_mark.line + 1}: values nested deeper than "
                                      f"{MANIFEST_DEPTH} levels; a manifest is a mapping of short fields")
        elif isinstance(token, (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)):
            depth -= 1
        elif isinstance(token, yaml.ScalarToken) and len(token.value) > MANIFEST_STRING_CHARS:
            raise SubmissionError(f"{path}: line {token.start_mark.line + 1}: a value {len(token.value)} characters "
                                  f"long, longer than the limit of {MANIFEST_STRING_CHARS}")


def check_team(path: Path, team: str) -> None:
    bad = [c for c in team if c not in _TEAM_PUNCTUATION and unicodedata.category(c)[0] not in "LMN"]
    if bad or not team.strip() or len(team) > TEAM_CHARS:
        shown = team if len(team) <= 80 else team[:80] + "..."
        why = (f"character {bad[0]!r} is not allowed" if bad else
               f"{len(team)} characters, more than {TEAM_CHARS}" if len(team) > TEAM_CHARS else "it is blank")
        raise SubmissionError(f"{path}: field 'team': {shown!r} is not valid ({why}); use letters and digits of "
                              f"any script, space and -_.&()' (at most {TEAM_CHARS} characters)")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _check_fields(path: Path, data: Dict[str, Any]) -> Manifest:
    errors: List[str] = []
    for key in data:
        if key not in _FIELDS:
            close = difflib.get_close_matches(str(key)[:80], _FIELDS, n=1)
            errors.append(f"unknown field {_short(key)}" + (f" (did you mean {close[0]!r}?)" if close else "")
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
            errors.append(f"field {key!r}: expected {expected.__name__}, got {type(value).__name__} ({_short(value)})")
        elif isinstance(value, str) and "${" in value:
            errors.append(f"field {key!r}: `${{...}}` interpolation is not allowed in a submission manifest "
                          f"(it is plain data; write the value itself)")
    if errors:
        raise SubmissionError(f"{path}: " + "; ".join(errors))
    manifest = Manifest(**data)
    check_team(path, manifest.team)
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
    if manifest.kind not in MODEL_KINDS:
        given = [key for key in _HF_ONLY if key in data and data[key] not in (None, False)]
        if given:
            raise SubmissionError(f"{path}: field {given[0]!r} is only for kinds {', '.join(MODEL_KINDS)}, "
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
    if kind == "endpoint":
        check_endpoint(path, manifest.endpoint)
    elif manifest.endpoint is not None:
        raise SubmissionError(f"{path}: field 'endpoint' is only for kind 'endpoint', not {kind!r}")
    if kind == "baseline":
        if manifest.baseline not in BASELINES:
            raise SubmissionError(f"{path}: field 'baseline': {manifest.baseline!r} is not a built-in baseline; "
                                  f"use one of {', '.join(BASELINES)}")
    elif manifest.baseline is not None:
        raise SubmissionError(f"{path}: field 'baseline' is only for kind 'baseline', not {kind!r}")
    if kind == "predictions" and not (folder / "predictions").is_dir():
        raise SubmissionError(f"{folder}: kind 'predictions' needs a predictions/ folder with <task>.jsonl files")


def check_endpoint(path: Path, endpoint: Optional[Dict[str, Any]]) -> None:
    """`endpoint: {base_url: http(s)://host[:port]/..., model: id}`, nothing else (an API key never belongs here)."""
    example = "e.g. `endpoint: {base_url: \"https://api.example.com/v1\", model: \"my-model\"}`"
    if endpoint is None:
        raise SubmissionError(f"{path}: field 'endpoint' is required for kind 'endpoint' ({example})")
    if set(endpoint) != set(_ENDPOINT_KEYS):
        extra = sorted(set(endpoint) - set(_ENDPOINT_KEYS))
        hint = " (an API key is never part of a submission: the organizer sets it)" if extra else ""
        raise SubmissionError(f"{path}: field 'endpoint': expected exactly the keys base_url and model, got "
                              f"{', '.join(map(repr, endpoint)) or 'none'}{hint} ({example})")
    for key in _ENDPOINT_KEYS:
        if not isinstance(endpoint[key], str) or not endpoint[key].strip():
            raise SubmissionError(f"{path}: field 'endpoint.{key}': expected a non-empty string, got "
                                  f"{endpoint[key]!r} ({example})")
    if endpoint_host(endpoint["base_url"]) is None:
        raise SubmissionError(f"{path}: field 'endpoint.base_url': {endpoint['base_url']!r} is not an http(s) URL "
                              f"with a host ({example})")


def endpoint_host(base_url: str) -> Optional[str]:
    """`host` or `host:port` of an http(s) URL (lower case), None for anything else."""
    parts = urllib.parse.urlsplit(base_url.strip())
    try:
        port = parts.port
    except ValueError:  # a port that is not a number
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return parts.hostname.lower() + (f":{port}" if port else "")


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


def submission_sha256(folder: Path, cache: Optional[Path] = None) -> str:
    """sha256 over every file of the submission (relative path and bytes), in sorted order; with `cache`, a folder
    whose files did not change (by stat) is not read again (harness.filehash)."""
    return filehash.tree_sha256(folder, cache)


def discover(root: str | os.PathLike) -> List[Path]:
    """Submission folders under `root`: every direct subfolder holding a submission.yaml, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file())
