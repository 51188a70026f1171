"""Publishing a board: the static html page (index.html, plots inline) and the marked block in a README.

The page is a pure function of the board (the parsed leaderboard.json) and the stored records (for provenance):
no clock, no network, every asset inline, so the same records give the same bytes and the file can be opened
straight from disk or an artifact. Keys the board gains from bootstrap runs (`ci`, `tier`, `baseline`, `contest`,
`last_updated`, `bootstrap`, `rank_distribution`) are shown when present; without them the page says so.
"""
from __future__ import annotations

import base64
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import plots
from harness.errors import ConfigError
from harness.leaderboard import STATUS_TEXT
from harness.store import atomic_write_text

PAGE = "index.html"
TEMPLATE = "leaderboard.html.j2"
LOWER_IS_BETTER_POLICIES = ("mean_rank",)  # aggregates where a smaller number ranks first
NOT_FAILED = ("ok", *STATUS_TEXT)  # statuses that are not a failure of the entry


def _fmt(value: Optional[float]) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _cell_view(task: str, cell: Dict[str, Any]) -> Dict[str, Any]:
    status = cell["status"]
    ok = status == "ok" and cell.get("primary") is not None
    ci = cell.get("ci")
    return {
        "task": task, "status": status, "ok": ok, "failed": status not in NOT_FAILED,
        "text": _fmt(cell["primary"]) if ok else STATUS_TEXT.get(status, f"failed: {status}"),
        "ci": f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ok and ci else "",
        "sort": repr(float(cell["primary"])) if ok else "",
        "reason": " ".join(str(cell.get("reason") or "").split()),
    }


def _short(digest: Optional[str]) -> str:
    return (digest or "")[:12]


def _task_details(task: str, cell: Dict[str, Any], record: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """One task of an entry's details: every metric with its direction, counts, signatures, cell provenance."""
    higher = cell.get("higher_is_better") or {}
    provenance = (record or {}).get("provenance") or {}
    return {
        "task": task, "status": cell["status"], "reason": " ".join(str(cell.get("reason") or "").split()),
        "scores": [(name, _fmt(value), "↑" if higher.get(name, True) else "↓")
                   for name, value in sorted((cell.get("scores") or {}).items())],
        "counts": ", ".join(f"{k} {v}" for k, v in sorted((cell.get("counts") or {}).items())),
        "signatures": sorted((cell.get("signatures") or {}).items()),
        "task_config": provenance.get("task_config_sha256"), "run_config": provenance.get("run_config_sha256"),
        # data files by name only: the record's absolute paths belong to the machine that ran the cell
        "data": sorted((Path(path).name, digest) for path, digest in (provenance.get("data_sha256") or {}).items()),
    }


def _entry_provenance(records: Sequence[Dict[str, Any]]) -> List[tuple]:
    """The entry-wide provenance (the same for all its cells, or every distinct value when not), as (label, value)."""
    def distinct(get) -> str:
        return "; ".join(sorted({str(v) for v in (get(r.get("provenance") or {}) for r in records) if v}))

    libraries = distinct(lambda p: ", ".join(f"{k} {v}" for k, v in sorted((p.get("libraries") or {}).items())))
    items = [("submission sha256", distinct(lambda p: p.get("submission_sha256"))),
             ("harness", distinct(lambda p: p.get("harness"))), ("python", distinct(lambda p: p.get("python"))),
             ("libraries", libraries)]
    return [(label, value) for label, value in items if value]


def _row_view(row: Dict[str, Any], tasks: Sequence[str], records: Dict[tuple, Dict[str, Any]]) -> Dict[str, Any]:
    name = row["submission"]
    own = [records[(name, t)] for t in tasks if (name, t) in records]
    tier = row.get("tier")
    return {
        "rank": row["rank"], "tier": "—" if tier is None else str(tier), "tier_sort": "" if tier is None else str(tier),
        "submission": name, "team": row.get("team") or "", "kind": row.get("kind") or "",
        "baseline": plots.is_baseline(row), "aggregate": _fmt(row["aggregate"]), "aggregate_sort": repr(row["aggregate"]),
        "cells": [_cell_view(t, row["cells"][t]) for t in tasks],
        "details": [_task_details(t, row["cells"][t], records.get((name, t))) for t in tasks],
        "provenance": _entry_provenance(own),
    }


def _svg_data_uri(svg: Optional[str]) -> Optional[str]:
    """An <img> source holding the SVG itself: no file beside the page, and its ids cannot clash with the page's."""
    return None if svg is None else "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _breakable(name: str) -> Any:
    """A task name that may wrap after its underscores in a narrow column header (and copies as typed)."""
    from markupsafe import Markup, escape

    return Markup(str(escape(name)).replace("_", "_<wbr>"))


def page_context(board: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    tasks = sorted(board["tasks"])
    by_cell = {(r["submission"], r["task"]): r for r in records}
    policy = board["ranking"]["policy"]
    return {
        "suite": board["suite"], "ranking": board["ranking"], "tasks": tasks, "task_info": board["tasks"],
        "task_labels": {task: _breakable(task) for task in tasks},
        "aggregate_first": "asc" if policy in LOWER_IS_BETTER_POLICIES else "desc",
        "aggregate_arrow": "↓" if policy in LOWER_IS_BETTER_POLICIES else "↑",
        "rows": [_row_view(row, tasks, by_cell) for row in board["rows"]],
        "teams": sorted({row.get("team") or "" for row in board["rows"]} - {""}),
        "has_tiers": any(row.get("tier") is not None for row in board["rows"]),
        "has_ci": any(cell.get("ci") for row in board["rows"] for cell in row["cells"].values()),
        "contest": board.get("contest"), "last_updated": board.get("last_updated"),
        "bootstrap": board.get("bootstrap"),
        "task_plot": _svg_data_uri(plots.task_scores_svg(board)),
        "rank_plot": _svg_data_uri(plots.rank_stability_svg(board)),
    }


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    # StrictUndefined: a misspelled name in the template fails the render instead of printing nothing
    return Environment(loader=PackageLoader("harness", "templates"), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_page(board: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> str:
    return _environment().get_template(TEMPLATE).render(page_context(board, records))


def write_page(board: Dict[str, Any], records: Sequence[Dict[str, Any]], out_dir: Path) -> Path:
    """Writes `<out_dir>/index.html` (out_dir is the suite's folder) and returns its path."""
    path = Path(out_dir) / PAGE
    atomic_write_text(path, render_page(board, records))
    return path


# ---------------------------------------------------------------- the README block

def markers(suite: str) -> tuple:
    return f"<!-- leaderboard:{suite}:start -->", f"<!-- leaderboard:{suite}:end -->"


def readme_block(markdown: str, suite: str) -> str:
    """The board's markdown for a README: its own `# Leaderboard` heading dropped (the README has its headings),
    and a note saying the block is generated."""
    body = re.sub(r"\A# [^\n]*\n+", "", markdown)
    note = (f"<!-- generated by `harness leaderboard suite={suite} readme=...`: edits between these markers are "
            f"replaced -->")
    return f"{note}\n\n{body.rstrip()}\n"


def update_readme(path: Path, suite: str, markdown: str) -> bool:
    """Replaces what is between the suite's start and end markers in `path`; the rest of the file is kept byte
    for byte. Returns whether the file changed. Raises ConfigError naming the file and the markers it needs."""
    path = Path(path)
    start, end = markers(suite)
    needed = f"a line {start} and, below it, a line {end}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"readme: {str(path)!r} does not exist; name a markdown file that holds {needed}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"readme: cannot read {str(path)!r} as UTF-8 text: {e}") from e
    counts = (text.count(start), text.count(end))
    if counts != (1, 1) or text.index(start) > text.index(end):
        found = f"found the start marker {counts[0]} time(s) and the end marker {counts[1]} time(s)"
        raise ConfigError(f"readme: {str(path)!r} must hold exactly one block for suite {suite!r}: {needed} "
                          f"({found}{', end before start' if counts == (1, 1) else ''})")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    updated = f"{head}{start}\n{readme_block(markdown, suite)}{end}{tail}"
    if updated == text:
        return False
    atomic_write_text(path, updated)
    return True
