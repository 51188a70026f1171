"""The static leaderboard page: one self-contained html file (jinja2 template, CSS, JS and SVG plots inline, no
network), rendered from the board's json and the records."""
from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from harness import status
from harness.publish import plots
from harness.store import atomic_write_text

PAGE = "index.html"
TEMPLATE = "leaderboard.html.j2"


def _fmt(value: Optional[float]) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _cell_view(task: str, cell: Dict[str, Any]) -> Dict[str, Any]:
    state = cell["status"]
    ok = state == status.OK and cell.get("primary") is not None
    ci = cell.get("ci")
    return {
        "task": task, "status": state, "ok": ok, "failed": state != status.OK and not status.is_mark(state),
        "text": _fmt(cell["primary"]) if ok else status.MARK_TEXT.get(state, f"failed: {state}"),
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


def _cells_view(row: Dict[str, Any], tasks: Sequence[str]) -> List[Dict[str, Any]]:
    """The row's cells; a failure's reason is shown once per row (in the first cell that has it), the others
    keep it as their tooltip."""
    cells, shown = [], set()
    for task in tasks:
        cell = _cell_view(task, row["cells"][task])
        cell["show_reason"] = cell["failed"] and bool(cell["reason"]) and cell["reason"] not in shown
        shown.add(cell["reason"])
        cells.append(cell)
    return cells


def _row_view(row: Dict[str, Any], tasks: Sequence[str], records: Dict[tuple, Dict[str, Any]]) -> Dict[str, Any]:
    name = row["submission"]
    own = [records[(name, t)] for t in tasks if (name, t) in records]
    tier = row.get("tier")
    rank = row["rank"]
    return {
        "rank": "—" if rank is None else str(rank), "rank_sort": "" if rank is None else str(rank),
        "tier": "—" if tier is None else str(tier), "tier_sort": "" if tier is None else str(tier),
        "submission": name, "team": row.get("team") or "", "kind": row.get("kind") or "",
        "baseline": plots.is_baseline(row), "aggregate": _fmt(row["aggregate"]), "aggregate_sort": repr(row["aggregate"]),
        "cells": _cells_view(row, tasks),
        "details": [_task_details(t, row["cells"][t], records.get((name, t))) for t in tasks],
        "provenance": _entry_provenance(own),
    }


def _svg_data_uri(svg: Optional[str]) -> Optional[str]:
    """An <img> source holding the SVG itself: no file beside the page, and its ids cannot clash with the page's."""
    return None if svg is None else "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _breakable(name: str) -> Any:
    """A task name that may wrap after its underscores in a narrow column header (and copies as typed)."""
    return Markup(str(escape(name)).replace("_", "_<wbr>"))


def page_context(board: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    tasks = sorted(board["tasks"])
    by_cell = {(r["submission"], r["task"]): r for r in records}
    higher = board["ranking"]["higher_is_better"]  # the policy's direction, as the board states it
    return {
        "suite": board["suite"], "ranking": board["ranking"], "tasks": tasks, "task_info": board["tasks"],
        "task_labels": {task: _breakable(task) for task in tasks},
        "aggregate_first": "desc" if higher else "asc",
        "aggregate_arrow": "↑" if higher else "↓",
        "rows": [_row_view(row, tasks, by_cell) for row in board["rows"]],
        "teams": sorted({row.get("team") or "" for row in board["rows"]} - {""}),
        "has_tiers": any(row.get("tier") is not None for row in board["rows"]),
        "has_ci": any(cell.get("ci") for row in board["rows"] for cell in row["cells"].values()),
        "contest": board.get("contest"), "last_updated": board.get("last_updated"),
        "bootstrap": board.get("bootstrap"), "removed": board.get("removed") or [],
        "notes": [note.replace("**", "") for note in board.get("notes") or []],
        "moves": [(row["submission"], row["public_rank"], row["rank"], row["move"]) for row in board["rows"]
                  if "public_rank" in row and not plots.is_baseline(row)],
        "task_plot": _svg_data_uri(plots.task_scores_svg(board)),
        "rank_plot": _svg_data_uri(plots.rank_stability_svg(board)),
    }


def _environment():
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
