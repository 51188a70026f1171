"""A small board for the page tests: records shaped like the runner's, with a failed cell, a baseline, n/a and
not-submitted cells; and the keys a bootstrap run adds to leaderboard.json (CIs, tiers, rank distribution)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from harness.board import write

SUITE = "board"
TASKS = ["lm", "qa", "translation"]
TASK_META = {"qa": ("qa", "f1", True), "lm": ("language_modeling", "bits_per_byte", False),
             "translation": ("translation", "bleu", True)}
ENTRIES = {  # submission: (team, kind, {task: primary or a (status, reason) pair})
    "alpha": ("team-a", "hf-causal", {"qa": 71.5, "lm": 1.25, "translation": 22.0}),
    "beta": ("team-b", "hf-seq2seq", {"qa": 64.0, "lm": ("timeout", "wall-clock budget of 1800 s exceeded"),
                                      "translation": 27.5}),
    "gamma": ("team-a", "predictions", {"qa": 80.25, "lm": ("not-submitted", "no predictions/lm.jsonl"),
                                        "translation": 12.0}),
    "baseline-copy": ("organizers", "baseline", {"qa": ("n/a", "copy-source does not cover qa"),
                                                 "lm": ("n/a", "copy-source does not cover language_modeling"),
                                                 "translation": 3.5}),
}
FAILED_REASON = "wall-clock budget of 1800 s exceeded"


def record(submission: str, task: str) -> Dict[str, Any]:
    team, kind, cells = ENTRIES[submission]
    task_kind, metric, higher = TASK_META[task]
    value = cells[task]
    ok = not isinstance(value, tuple)
    status, reason = ("ok", "") if ok else value
    return {
        "submission": submission, "team": team, "submission_kind": kind, "task": task, "task_kind": task_kind,
        "status": status, "reason": reason, "log": "", "primary_metric": metric, "primary": value if ok else None,
        "scores": {metric: value, "other": 1.0} if ok else {}, "higher_is_better": {metric: higher, "other": True}
        if ok else {}, "signatures": {metric: f"{metric}|sig:1"} if ok else {},
        "counts": {"examples": 10, "missing": 0} if ok else {},
        "keys": {"predictions": "p" * 64, "scores": "s" * 64},
        "provenance": {"harness": "0.1.0", "python": "3.11.7", "libraries": {"sacrebleu": "2.6.0"},
                       "submission_sha256": f"{submission:a<64}"[:64], "task_config_sha256": "c" * 64,
                       "run_config_sha256": "r" * 64, "data_sha256": {f"/somewhere/data/{task}.jsonl": "d" * 64}},
    }


def records() -> List[Dict[str, Any]]:
    return [record(s, t) for s in sorted(ENTRIES) for t in TASKS]


def board(out_dir: Path) -> Dict[str, Any]:
    """The board as `harness leaderboard` writes it (files under out_dir/SUITE), parsed from its json."""
    write.write(records(), SUITE, TASKS, "mean_normalized", out_dir)
    return json.loads((Path(out_dir) / SUITE / "leaderboard.json").read_text(encoding="utf-8"))


def with_bootstrap(data: Dict[str, Any]) -> Dict[str, Any]:
    """The keys a bootstrap run adds: per-cell CIs, tiers, baseline flags, contest, time, rank distribution."""
    data = json.loads(json.dumps(data))
    for i, row in enumerate(data["rows"]):
        row["tier"] = 1 if i < 2 else 2
        row["baseline"] = row["kind"] == "baseline"
        for cell in row["cells"].values():
            cell["ci"] = [cell["primary"] * 0.95, cell["primary"] * 1.04] if cell["status"] == "ok" else None
    # neighbours in the board swap places in a fifth of the resamples
    names = [row["submission"] for row in data["rows"]]
    data["rank_distribution"] = {}
    for i in range(0, len(names), 2):
        pair = names[i:i + 2]
        for j, name in enumerate(pair):
            data["rank_distribution"][name] = ({str(i + 1 + j): 0.8, str(i + 2 - j): 0.2} if len(pair) == 2
                                               else {str(i + 1): 1.0})
    data.update(contest={"name": "demo-contest", "phase": "public", "split": "public"},
                last_updated="2025-01-31T12:00:00+00:00", bootstrap={"resamples": 1000, "seed": 1234})
    return data
