"""The leaderboard's plots, drawn with matplotlib as deterministic SVG text (same board -> same bytes).

Both plots are pure functions of the board (the parsed leaderboard.json): per-task primary scores with their
confidence intervals, and how often each entry took each rank across the bootstrap resamples.
"""
from __future__ import annotations

import io
from typing import Any, Dict, List, Optional

# Fixed SVG settings so regeneration is byte-identical: ids are hashed with a fixed salt, text stays text (no
# glyph paths that depend on the installed fonts), and no creation date is written.
SVG_RC = {"svg.hashsalt": "contest-harness", "svg.fonttype": "none", "font.family": "sans-serif",
          "font.size": 9.0, "axes.titlesize": 10.0}
ENTRY_COLOR, BASELINE_COLOR = "#1f6fb4", "#9a9a9a"


def _pyplot():
    """pyplot on the Agg backend, imported only when a plot is drawn (no display, no GUI toolkit)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any) -> str:
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def is_baseline(row: Dict[str, Any]) -> bool:
    """The board's own flag where it has one; otherwise the built-in baseline entries."""
    return bool(row["baseline"]) if "baseline" in row else row.get("kind") == "baseline"


def task_scores_svg(board: Dict[str, Any]) -> Optional[str]:
    """One panel per task: each scored entry's primary metric, with its CI as an error bar where the board has
    one. Entries keep the board's order (best first); failed and n/a cells are left out of their panel."""
    tasks = sorted(board["tasks"])
    rows = board["rows"]
    if not tasks or not rows:
        return None
    plt = _pyplot()
    with plt.rc_context(SVG_RC):
        fig, axes = plt.subplots(1, len(tasks), figsize=(2.6 * len(tasks) + 1.2, 0.32 * len(rows) + 1.3),
                                 sharey=True, squeeze=False)
        labels = [row["submission"] for row in rows]
        for ax, task in zip(axes[0], tasks):
            _task_panel(ax, task, board["tasks"][task], rows)
            ax.set_yticks(range(len(rows)), labels)
            ax.set_ylim(len(rows) - 0.5, -0.5)
        fig.tight_layout()
        return _svg(fig)


def _task_panel(ax: Any, task: str, info: Dict[str, Any], rows: List[Dict[str, Any]]) -> None:
    arrow = "↑" if info["higher_is_better"] else "↓"
    ax.set_title(f"{task}\n{info['primary_metric']} {arrow}")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for y, row in enumerate(rows):
        cell = row["cells"][task]
        if cell["status"] != "ok" or cell.get("primary") is None:
            continue
        value = float(cell["primary"])
        ci = cell.get("ci")
        xerr = [[value - ci[0]], [ci[1] - value]] if ci else None
        color = BASELINE_COLOR if is_baseline(row) else ENTRY_COLOR
        ax.errorbar(value, y, xerr=xerr, fmt="o", color=color, ecolor=color, capsize=3, markersize=5)


def rank_columns(board: Dict[str, Any]) -> List[int]:
    """The rank plot's columns: 1 to the worst rank any ranked entry took in a resample (never a column for the
    unranked baselines' rows)."""
    taken = [int(rank) for shares in (board.get("rank_distribution") or {}).values()
             for rank, share in shares.items() if share > 0]
    return list(range(1, max(taken, default=0) + 1))


def rank_stability_svg(board: Dict[str, Any]) -> Optional[str]:
    """Heat map: rows are entries (board order), columns ranks, each cell the fraction of bootstrap resamples in
    which that entry took that rank. None when the board carries no `rank_distribution`."""
    distribution = board.get("rank_distribution")
    if not distribution:
        return None
    names = [row["submission"] for row in board["rows"] if row["submission"] in distribution]
    n_ranks = len(rank_columns(board))
    by_rank = {name: {int(rank): float(f) for rank, f in distribution[name].items()} for name in names}
    grid = [[by_rank[name].get(rank, 0.0) for rank in range(1, n_ranks + 1)] for name in names]
    plt = _pyplot()
    with plt.rc_context(SVG_RC):
        fig, ax = plt.subplots(figsize=(0.55 * n_ranks + 2.4, 0.34 * len(names) + 1.3))
        # pcolormesh (vector cells), not imshow, which would embed a raster image in the SVG
        ax.pcolormesh(grid, cmap="Blues", vmin=0.0, vmax=1.0, edgecolors="white", linewidth=1.0)
        for y, fractions in enumerate(grid):
            for x, fraction in enumerate(fractions):
                if fraction >= 0.005:
                    ax.text(x + 0.5, y + 0.5, f"{fraction:.0%}", ha="center", va="center", fontsize=7,
                            color="white" if fraction > 0.6 else "black")
        ax.set_xticks([r - 0.5 for r in range(1, n_ranks + 1)], [str(r) for r in range(1, n_ranks + 1)])
        ax.set_yticks([y + 0.5 for y in range(len(names))], names)
        ax.invert_yaxis()  # best entry on top, as in the table
        ax.tick_params(length=0)
        ax.set_xlabel("rank")
        resamples = (board.get("bootstrap") or {}).get("resamples")
        ax.set_title("Rank across bootstrap resamples" + (f" (n={resamples})" if resamples else ""))
        fig.tight_layout()
        return _svg(fig)
