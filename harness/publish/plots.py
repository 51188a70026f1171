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


TOP_RANKED = 30  # entries drawn cell by cell in the rank heat map; the others get a line over the ranks they reach


def rank_columns(board: Dict[str, Any]) -> List[int]:
    """The rank plot's columns: 1 to the worst rank any ranked entry took in a resample (never a column for the
    unranked baselines' rows)."""
    taken = [int(rank) for shares in (board.get("rank_distribution") or {}).values()
             for rank, share in shares.items() if share > 0]
    return list(range(1, max(taken, default=0) + 1))


def rank_stability_svg(board: Dict[str, Any]) -> Optional[str]:
    """Heat map: rows are the first TOP_RANKED entries (board order), columns ranks, each cell the fraction of
    bootstrap resamples in which that entry took that rank. Entries below them get one line each, from the best to
    the worst rank they take in any resample, so the plot grows linearly with the board (a full K x K map of a
    500-entry board is tens of megabytes). None when the board carries no `rank_distribution`."""
    distribution = board.get("rank_distribution")
    if not distribution:
        return None
    names = [row["submission"] for row in board["rows"] if row["submission"] in distribution]
    by_rank = {name: {int(rank): float(f) for rank, f in distribution[name].items()} for name in names}
    top, rest = names[:TOP_RANKED], names[TOP_RANKED:]
    n_ranks = len(rank_columns(board))  # the worst rank any ranked entry took: no empty column
    columns = [str(rank) for rank in range(1, min(n_ranks, TOP_RANKED) + 1)]
    grid = [[by_rank[name].get(rank, 0.0) for rank in range(1, len(columns) + 1)] for name in top]
    if n_ranks > TOP_RANKED:  # ranks below the map's rows share one column
        columns.append(f">{TOP_RANKED}")
        for row, name in zip(grid, top):
            row.append(sum(f for rank, f in by_rank[name].items() if rank > TOP_RANKED))
    plt = _pyplot()
    with plt.rc_context(SVG_RC):
        heights = [0.34 * len(top) + 0.6] + ([0.16 * len(rest) + 0.6] if rest else [])
        fig, axes = plt.subplots(len(heights), 1, figsize=(0.55 * len(columns) + 2.4, sum(heights) + 0.7),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        _heat_map(axes[0][0], top, grid, columns)
        resamples = (board.get("bootstrap") or {}).get("resamples")
        axes[0][0].set_title("Rank across bootstrap resamples" + (f" (n={resamples})" if resamples else ""))
        if rest:
            _rank_ranges(axes[1][0], rest, by_rank)
        fig.tight_layout()
        return _svg(fig)


def _heat_map(ax: Any, names: List[str], grid: List[List[float]], columns: List[str]) -> None:
    # pcolormesh (vector cells), not imshow, which would embed a raster image in the SVG
    ax.pcolormesh(grid, cmap="Blues", vmin=0.0, vmax=1.0, edgecolors="white", linewidth=1.0)
    for y, fractions in enumerate(grid):
        for x, fraction in enumerate(fractions):
            if fraction >= 0.005:
                ax.text(x + 0.5, y + 0.5, f"{fraction:.0%}", ha="center", va="center", fontsize=7,
                        color="white" if fraction > 0.6 else "black")
    ax.set_xticks([x + 0.5 for x in range(len(columns))], columns)
    ax.set_yticks([y + 0.5 for y in range(len(names))], names)
    ax.invert_yaxis()  # best entry on top, as in the table
    ax.tick_params(length=0)
    ax.set_xlabel("rank")


def _rank_ranges(ax: Any, names: List[str], by_rank: Dict[str, Dict[int, float]]) -> None:
    """One line per entry from its best to its worst rank across the resamples, a dot at its most frequent."""
    for y, name in enumerate(names):
        ranks = by_rank[name]
        ax.hlines(y, min(ranks), max(ranks), color=ENTRY_COLOR, linewidth=1.5)
        ax.plot(max(ranks, key=lambda r: (ranks[r], -r)), y, "o", color=ENTRY_COLOR, markersize=2.5)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel("ranks reached (line: best to worst; dot: most frequent)")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
