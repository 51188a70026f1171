"""A board's history: when its content changes, the previous version is kept as a numbered snapshot.

`<board>/history/0001/` holds the version that was replaced (leaderboard.md, .csv, .json) and, beside it,
`diff.md` and `diff.json`: what changed from that version to its successor (entries added and removed, rank and
tier moves, changed scores and aggregates). A regeneration with the same content writes nothing at all, so a
board's files change only when its content does. The page (index.html) is rewritten when it differs but is not
kept: it is a rendering of the json, which is.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from filelock import FileLock

from harness.store import dumps, write_temp

HISTORY = "history"
KEPT = ("leaderboard.md", "leaderboard.csv", "leaderboard.json")  # the board's content; snapshots hold these
_NUMBER = re.compile(r"^\d{4,}$")


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def next_number(folder: Path) -> int:
    numbers = [int(p.name) for p in (folder / HISTORY).glob("*") if p.is_dir() and _NUMBER.match(p.name)]
    return max(numbers, default=0) + 1


def publish(folder: Path, texts: Mapping[str, str]) -> Optional[int]:
    """Writes the files of `texts` (name -> text) into `folder`, only those that differ. When the board's content
    (KEPT) changes and a previous version exists, that version is first kept as the next numbered snapshot with
    its diff. Returns the snapshot's number, or None when none was taken."""
    folder = Path(folder)
    if all(_read(folder / name) == text for name, text in texts.items()):
        return None  # a no-op regeneration touches nothing, not even the lock file
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".history.lock")):  # two writers never take the same number
        current = {name: _read(folder / name) for name in texts}
        changed = sorted(name for name, text in texts.items() if current[name] != text)
        number: Optional[int] = None
        writes: Dict[Path, str] = {}
        previous = {name: text for name in KEPT if (text := current.get(name)) is not None}
        if previous and any(name in KEPT for name in changed):
            number = next_number(folder)
            snapshot = folder / HISTORY / f"{number:04d}"
            writes.update({snapshot / name: text for name, text in previous.items()})
            if "leaderboard.json" in previous and "leaderboard.json" in texts:
                diff = board_diff(json.loads(previous["leaderboard.json"]), json.loads(texts["leaderboard.json"]))
                writes.update({snapshot / "diff.json": dumps(diff), snapshot / "diff.md": diff_markdown(diff, number)})
        writes.update({folder / name: texts[name] for name in changed})
        _write_all(writes, folder / HISTORY / f"{number:04d}" if number else None)
    return number


def _write_all(writes: Mapping[Path, str], snapshot: Optional[Path]) -> None:
    """Every file staged (written and synced beside its place) before any is renamed into place: a write that
    fails (a full or read-only disk) leaves the board and its history exactly as they were."""
    staged: Dict[Path, Path] = {}
    try:
        for path, text in writes.items():
            staged[path] = write_temp(path, text)
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        if snapshot is not None and snapshot.is_dir() and not any(snapshot.iterdir()):
            snapshot.rmdir()
        raise
    for path, tmp in staged.items():  # snapshot files first (they come first), the board's files last
        os.replace(tmp, path)


def _cell_value(row: Dict[str, Any], task: str) -> Any:
    cell = row["cells"].get(task) or {"status": "missing"}
    return cell.get("primary") if cell["status"] == "ok" else cell["status"]


def board_diff(old: Dict[str, Any], new: Dict[str, Any]) -> Dict[str, Any]:
    """What changed between two versions of a board's json."""
    before = {row["submission"]: row for row in old.get("rows", [])}
    after = {row["submission"]: row for row in new.get("rows", [])}
    common = sorted(set(before) & set(after))
    tasks = sorted(set(old.get("tasks", {})) | set(new.get("tasks", {})))
    rank_moves = [{"submission": n, "from": before[n]["rank"], "to": after[n]["rank"]}
                  for n in common if before[n]["rank"] != after[n]["rank"]]
    tier_moves = [{"submission": n, "from": before[n].get("tier"), "to": after[n].get("tier")}
                  for n in common if before[n].get("tier") != after[n].get("tier")]
    scores: List[Dict[str, Any]] = []
    for name in common:
        for task in tasks:
            was, now = _cell_value(before[name], task), _cell_value(after[name], task)
            if was != now:
                scores.append({"submission": name, "task": task, "from": was, "to": now})
        if before[name]["aggregate"] != after[name]["aggregate"]:
            scores.append({"submission": name, "task": "aggregate", "from": before[name]["aggregate"],
                           "to": after[name]["aggregate"]})
    settings = {key: {"from": old.get(key), "to": new.get(key)} for key in ("ranking", "contest", "bootstrap")
                if old.get(key) != new.get(key)}
    return {"added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after)),
            "rank_moves": rank_moves, "tier_moves": tier_moves, "changed_scores": scores, "settings": settings}


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("—" if value is None else str(value))


def diff_markdown(diff: Dict[str, Any], number: int) -> str:
    lines = [f"# Changes after snapshot {number:04d}", ""]
    if diff["added"]:
        lines.append(f"- New entries: {', '.join(diff['added'])}")
    if diff["removed"]:
        lines.append(f"- Removed entries: {', '.join(diff['removed'])}")
    lines += [f"- {m['submission']}: rank {_fmt(m['from'])} → {_fmt(m['to'])}" for m in diff["rank_moves"]]
    lines += [f"- {m['submission']}: tier {_fmt(m['from'])} → {_fmt(m['to'])}" for m in diff["tier_moves"]]
    lines += [f"- {c['submission']} on {c['task']}: {_fmt(c['from'])} → {_fmt(c['to'])}" for c in diff["changed_scores"]]
    lines += [f"- {key} changed" for key in sorted(diff["settings"])]
    if len(lines) == 2:
        lines.append("- No change in entries, ranks or scores (only the presentation changed).")
    return "\n".join(lines) + "\n"
