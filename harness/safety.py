"""What a submitted model folder may hold, checked before anything loads it.

Weights are safetensors only; configs and tokenizer files are data. Refused: pickle-based checkpoints (by name,
by the pickle protocol's magic bytes, or as a pickle inside a zip, which is how `torch.save` writes), and model
code (`*.py` files, `auto_map` in a config, `trust_remote_code`) unless the organizer lists the entry in
`allow_remote_code`. Symlinks that leave the submission are invalid (checked by `harness.submission`).

Everything here reads names and bytes: nothing is unpickled, imported or instantiated. The runner and
`harness validate` call the same `vet`, so a participant sees exactly the organizer's verdict.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence

from harness.errors import SubmissionError
from harness.submission import Submission

HF_KINDS = ("hf-causal", "hf-seq2seq")
# Suffixes of the pickle-based formats torch, transformers and friends load by name.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill")
CODE_SUFFIXES = (".py", ".pyc", ".pyx", ".so")
_PICKLE_PROTOCOLS = range(2, 6)  # protocol 2+ pickles start with b"\x80" and the protocol number
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_ZIP_MEMBERS_PEEKED = 10_000
_MAX_CONFIG_BYTES = 16 << 20  # a config.json this large is not a config; do not parse it
_CONVERT = ("convert it: `AutoModel...from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`, then "
            "delete the pickle file")


@dataclass(frozen=True)
class Finding:
    """A check on the model folder: `status` is the typed failure a problem records (invalid, refused, load-error)."""

    check: str
    ok: bool
    detail: str = ""
    fix: str = ""
    status: str = "invalid"


def model_folder(submission: Submission) -> Optional[Path]:
    """Where a model entry's files are: its folder inside the submission, or its hub id's local cache snapshot."""
    if submission.manifest.model is None:  # not a model entry
        return None
    local = submission.folder / submission.manifest.model
    if local.is_dir():
        return local.resolve()
    return hub_snapshot(submission.manifest.model, submission.manifest.revision)


def hub_revision(submission: Any) -> Optional[str]:
    """The commit a hub model entry runs (its snapshot folder's name: resolved once, from the pinned `revision`
    or the cache's main), or None for a model folder inside the submission or a model not in the cache."""
    manifest = submission.manifest
    if manifest.kind not in HF_KINDS or (submission.folder / manifest.model).is_dir():
        return None
    folder = hub_snapshot(manifest.model, manifest.revision)
    return folder.name if folder is not None else None


def vet(submission: Submission, allow_remote_code: Sequence[str]) -> List[Finding]:
    """The organizer's checks on a submission's model before anything loads it (none for other kinds)."""
    manifest = submission.manifest
    if manifest.kind not in HF_KINDS:
        return []
    folder = model_folder(submission)
    if folder is None:
        return [Finding("model files found", False, f"{manifest.model!r} is neither a folder in the submission nor a "
                        f"model in this machine's hub cache (the model process runs offline)",
                        "put the model into the submission folder (`model: model`) or ask the organizer to "
                        "download the hub model first", status="load-error")]
    return check_model(folder, trust_remote_code=manifest.trust_remote_code,
                       allowed=manifest.name in allow_remote_code)


def verdict(findings: Sequence[Finding]) -> Optional[SubmissionError]:
    """The typed failure of the failed checks (refused before invalid before load-error), or None."""
    failed = [f for f in findings if not f.ok]
    if not failed:
        return None
    order = ("refused", "invalid", "load-error")
    status = min((f.status for f in failed), key=order.index)
    return SubmissionError("; ".join(f"{f.check}: {f.detail}" + (f" (fix: {f.fix})" if f.fix else "") for f in failed),
                           status=status)


def check_model(folder: Path, *, trust_remote_code: bool, allowed: bool) -> List[Finding]:
    """Every check on a local model folder, passed or not. `allowed`: the organizer allows this entry's code."""
    files = sorted(_files(folder))
    findings = [_pickles(folder, files), _safetensors(folder, files), _required(folder)]
    findings.append(_code(folder, files, trust_remote_code, allowed))
    return findings


def pickle_kind(path: Path) -> Optional[str]:
    """Why `path` is a pickle ('pickle protocol N', 'zip holding a pickle (member)'), or None. Reads bytes only."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS:
        return f"pickle protocol {head[1]}"
    if head == _ZIP_MAGIC:
        return _pickle_in_zip(path)
    return None


def _pickle_in_zip(path: Path) -> Optional[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist()[:_MAX_ZIP_MEMBERS_PEEKED]:
                if info.filename.endswith((".pkl", ".pickle")):
                    return f"zip holding a pickle ({info.filename})"
                with archive.open(info) as member:  # reads two decompressed bytes, never the whole member
                    head = member.read(2)
                if len(head) == 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS:
                    return f"zip holding a pickle ({info.filename})"
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
        return None  # not a readable zip: nothing could load a pickle from it either
    return None


def is_safetensors(path: Path) -> bool:
    """The file parses as safetensors (the header only; the library is made for untrusted files)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            f.keys()
    except Exception:  # safetensors raises its own SafetensorError and OSError/ValueError on bad input
        return False
    return True


def _files(folder: Path) -> Iterator[Path]:
    """Regular files under `folder`, symlinks not followed (escaping links are rejected before this runs)."""
    for root, _, names in os.walk(folder, followlinks=False):
        for name in names:
            path = Path(root) / name
            if path.is_file():
                yield path


def _rel(folder: Path, path: Path) -> str:
    return path.relative_to(folder).as_posix()


def _pickles(folder: Path, files: List[Path]) -> Finding:
    found = []
    for path in files:
        if path.suffix.lower() in PICKLE_SUFFIXES:
            found.append(f"{_rel(folder, path)} (a {path.suffix} checkpoint is a pickle)")
        elif path.suffix.lower() != ".safetensors" or not is_safetensors(path):
            kind = pickle_kind(path)
            if kind:
                found.append(f"{_rel(folder, path)} ({kind})")
    return Finding("no pickle-based files (they can run code when loaded)", not found, ", ".join(found),
                   _CONVERT, status="refused")


def _safetensors(folder: Path, files: List[Path]) -> Finding:
    weights = [p for p in files if p.suffix.lower() == ".safetensors"]
    bad = [_rel(folder, p) for p in weights if not is_safetensors(p)]
    if bad:
        return Finding("weights are valid safetensors", False, f"not readable as safetensors: {', '.join(bad)}",
                       "save the model with save_pretrained(dir, safe_serialization=True)")
    names = ", ".join(_rel(folder, p) for p in weights)
    return Finding("weights are valid safetensors", bool(weights), names or "no *.safetensors file",
                   "save the model with save_pretrained(dir, safe_serialization=True)")


# The vocabulary files `tokenizer.save_pretrained` writes for fast, BPE, WordPiece and sentencepiece tokenizers
# (tokenizer_config.json holds settings only: alone it is no tokenizer).
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt")
_TOKENIZER_SUFFIXES = (".model", ".spm")


def _required(folder: Path) -> Finding:
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES) and not any(
            p.suffix in _TOKENIZER_SUFFIXES for p in folder.iterdir() if p.is_file()):
        alone = " (tokenizer_config.json alone holds settings, not a vocabulary)" if (
            folder / "tokenizer_config.json").is_file() else ""
        missing.append("tokenizer files (" + " / ".join(_TOKENIZER_FILES) + " / *.model)" + alone)
    return Finding("config.json and tokenizer present", not missing, "missing: " + ", ".join(missing) if missing else
                   "", "save both into the model folder: model.save_pretrained(dir) and tokenizer.save_pretrained(dir)")


def _code(folder: Path, files: List[Path], trust_remote_code: bool, allowed: bool) -> Finding:
    found = [_rel(folder, p) for p in files if p.suffix.lower() in CODE_SUFFIXES]
    found += [f"auto_map in {_rel(folder, p)}" for p in files if _is_config(p) and _has_auto_map(p)]
    if trust_remote_code:
        found.append("trust_remote_code: true in submission.yaml")
    detail = ", ".join(found) + (" (allowed for this entry by the organizer)" if found and allowed else "")
    return Finding("no model code shipped (auto_map, *.py, trust_remote_code)", allowed or not found, detail,
                   "use a model class that ships with transformers: remove the code files, `auto_map` and "
                   "trust_remote_code; shipped code runs only where the organizer lists the entry in "
                   "allow_remote_code", status="refused")


def _is_config(path: Path) -> bool:
    return path.suffix == ".json" and path.name.endswith("config.json")


def _has_auto_map(path: Path) -> bool:
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        return False  # transformers would fail to use it as a config as well
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return False  # not JSON: loading fails in the child with a load-error naming the file
    return isinstance(data, dict) and "auto_map" in data


def hub_snapshot(model_id: str, revision: Optional[str] = None) -> Optional[Path]:
    """The local cache folder of a hub model at `revision` (None: main), named by its commit (the child runs
    offline and is given this folder), or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
