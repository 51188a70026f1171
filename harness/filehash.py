"""The sha256 of a submission's files, with a cache on disk so an unchanged submission is never read twice.

Hashing is how a run knows a submission did not change (its cells' keys hold the hash), so it runs on every
command; reading tens of gigabytes of weights for a no-op rerun would cost minutes. The cache (a JSON file in the
results folder) maps a submission folder (its absolute path, hashed) to each file's (path, size, mtime in ns,
inode) and the digest: a folder whose files all stat the same is taken as unchanged. Any change rehashes the whole
folder, so the digest stays the plain byte-stream hash that records and ledgers already hold. Rewriting or
replacing a file changes its mtime or inode (a writer that restores the mtime and keeps the inode on purpose is the
organizer's own doing, not an entry's).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from filelock import FileLock

from harness.store import atomic_write_text

CACHE_NAME = ".file-hashes.json"


def submission_files(folder: Path) -> Iterator[Tuple[str, Path]]:
    """(relative path, path) of every file the submission's hash covers, sorted: hidden files and caches left out."""
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = file.relative_to(folder).as_posix()
        if rel.startswith(".") or "__pycache__" in rel:
            continue
        yield rel, file


def sizes(folder: Path) -> List[Tuple[str, int]]:
    """(relative path, size) of the submission's files, from stat alone (nothing is read)."""
    return [(rel, file.stat().st_size) for rel, file in submission_files(folder)]


def _stats(folder: Path) -> List[List]:
    """Each file's relative path, size, mtime (ns) and inode: what says, without reading, that nothing changed."""
    out = []
    for rel, file in submission_files(folder):
        stat = file.stat()
        out.append([rel, stat.st_size, stat.st_mtime_ns, stat.st_ino])
    return out


def _load(cache: Optional[Path]) -> Dict[str, Any]:
    if cache is None:
        return {}
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a missing or damaged cache only costs a rehash
    return data if isinstance(data, dict) else {}


def stream_sha256(folder: Path) -> str:
    """sha256 over every file of the submission (relative path and bytes), in sorted order: reads every byte."""
    digest = hashlib.sha256()
    for rel, file in submission_files(folder):
        digest.update(rel.encode("utf-8") + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def tree_sha256(folder: Path, cache: Optional[Path] = None) -> str:
    """`stream_sha256(folder)`, read from the cache when every file's stat is what it was when it was hashed."""
    # keyed by the folder's absolute path, hashed: the store (sometimes published) never shows where entries live
    where = hashlib.sha256(os.path.abspath(folder).encode("utf-8", "surrogateescape")).hexdigest()
    known = _load(cache)
    stats = _stats(folder)
    entry = known.get(where)
    if isinstance(entry, dict) and entry.get("files") == stats and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = stream_sha256(folder)
    if cache is not None and _stats(folder) == stats:  # not rewritten while it was read
        try:  # under a lock, read again: scoring workers hash entries at once, none may drop another's line
            with FileLock(str(cache) + ".lock"):
                known = _load(cache)
                known[where] = {"files": stats, "sha256": digest}
                atomic_write_text(cache, json.dumps(known, sort_keys=True))
        except OSError:
            pass  # the cache saves time only; a store that cannot take it still runs
    return digest
