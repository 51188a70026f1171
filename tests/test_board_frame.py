"""The board is a pure function of the records: ranking rule, ties, failed cells, direction, determinism."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from harness.board import frame as board_frame
from harness.board import write


def record(submission, task, primary, status="ok", higher=True, reason=""):
    return {"submission": submission, "team": f"team-{submission}", "submission_kind": "baseline", "task": task,
            "task_kind": "qa", "status": status, "reason": reason, "primary_metric": "m",
            "primary": primary if status == "ok" else None, "scores": {"m": primary} if status == "ok" else {},
            "higher_is_better": {"m": higher} if status == "ok" else {}, "signatures": {"m": "sig"}, "counts": {}}


def test_mean_normalized_respects_direction_and_failures():
    records = [record("a", "t1", 50.0), record("b", "t1", 30.0), record("c", "t1", 10.0),
               record("a", "t2", 9.0, higher=False), record("b", "t2", 3.0, higher=False),
               record("c", "t2", None, status="timeout", reason="budget of 10 s")]
    frame = board_frame.build(records, ["t1", "t2"], "mean_normalized")
    by = frame.set_index("submission")
    assert by.loc["a", "aggregate"] == pytest.approx(50.0)  # best on t1 (100), worst on t2 (0)
    assert by.loc["b", "aggregate"] == pytest.approx(75.0)  # 50 on t1, best on t2 (100)
    assert by.loc["c", "aggregate"] == pytest.approx(0.0)  # worst on t1, failed on t2 counts 0
    assert list(frame["submission"]) == ["b", "a", "c"]
    assert list(frame["rank"]) == [1, 2, 3]
    assert by.loc["c", "t2_status"] == "timeout" and "budget" in by.loc["c", "t2_reason"]
    assert math.isnan(by.loc["c", "t2"])


def test_ties_share_a_rank_and_sort_by_name():
    records = [record("b", "t", 20.0), record("a", "t", 20.0), record("c", "t", 10.0)]
    frame = board_frame.build(records, ["t"], "mean_normalized")
    assert list(frame["submission"]) == ["a", "b", "c"]
    assert list(frame["rank"]) == [1, 1, 3]


def test_mean_rank_puts_missing_cells_last():
    records = [record("a", "t1", 1.0), record("b", "t1", 2.0), record("a", "t2", 5.0)]
    frame = board_frame.build(records, ["t1", "t2"], "mean_rank")
    by = frame.set_index("submission")
    assert by.loc["b", "t2_status"] == "missing"
    assert by.loc["a", "aggregate"] == pytest.approx((2 + 1) / 2)
    assert by.loc["b", "aggregate"] == pytest.approx((1 + 2) / 2)
    assert list(frame["rank"]) == [1, 1]


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="mean_normalized"):
        board_frame.build([record("a", "t", 1.0)], ["t"], "coin_flip")


def test_written_files_are_deterministic_and_complete(tmp_path):
    records = [record("a", "t1", 50.0), record("b", "t1", None, status="crashed", reason="exit code 1 | boom")]
    write.write(records, "s", ["t1"], "mean_normalized", tmp_path / "one")
    write.write(list(reversed(records)), "s", ["t1"], "mean_normalized", tmp_path / "two")
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json"):
        assert (tmp_path / "one" / "s" / name).read_bytes() == (tmp_path / "two" / "s" / name).read_bytes()
    md = (tmp_path / "one" / "s" / "leaderboard.md").read_text(encoding="utf-8")
    assert "failed: crashed (exit code 1 \\| boom)" in md
    assert "Ranking" in md and "mean_normalized" in md
    csv = pd.read_csv(tmp_path / "one" / "s" / "leaderboard.csv")
    assert list(csv.columns) == ["submission", "team", "kind", "t1", "t1_status", "t1_reason", "aggregate", "rank"]
    assert csv["t1"].dtype == float
    data = json.loads((tmp_path / "one" / "s" / "leaderboard.json").read_text(encoding="utf-8"))
    assert data["ranking"]["policy"] == "mean_normalized"
    assert data["rows"][0]["cells"]["t1"]["signatures"] == {"m": "sig"}


def _board_cli(tmp_path, results, *extra):
    from harness import cli

    return cli.main(["leaderboard", "suite=demo", f"paths.results={results}",
                     f"paths.leaderboards={tmp_path / 'boards'}", *extra])


@pytest.mark.parametrize("where", ["empty", "absent"])
def test_a_board_without_records_is_an_error_naming_the_path(tmp_path, capsys, where):
    results = tmp_path / "results"
    if where == "empty":
        results.mkdir()
    assert _board_cli(tmp_path, results) == 2
    err = capsys.readouterr().err
    assert str(results) in err and "no records" in err and "demo" in err
    assert not (tmp_path / "boards" / "demo" / "leaderboard.md").exists()  # never an empty board


def test_directions_come_from_the_task_config_not_the_records(tmp_path, capsys):
    from harness import store

    results = tmp_path / "results"
    failed = {"submission": "x", "team": "t", "submission_kind": "predictions", "task": "demo_language_modeling",
              "task_kind": "language_modeling", "status": "crashed", "reason": "boom", "log": "",
              "primary_metric": "bits_per_byte", "primary": None, "scores": {}, "higher_is_better": {},
              "signatures": {}, "counts": {}, "keys": {}, "provenance": {}}
    store.write_cell(results, failed, None)
    assert _board_cli(tmp_path, results) == 0
    board = json.loads((tmp_path / "boards" / "demo" / "leaderboard.json").read_text(encoding="utf-8"))
    assert board["tasks"]["demo_language_modeling"]["higher_is_better"] is False
    assert board["tasks"]["demo_translation"] == dict(board["tasks"]["demo_translation"], primary_metric="bleu",
                                                      higher_is_better=True)
    assert "bits_per_byte ↓" in (tmp_path / "boards" / "demo" / "leaderboard.md").read_text(encoding="utf-8")
