"""A board shows exactly the entries that exist now: outside a contest the folders under paths.submissions, in a
contest the baselines and the phase's accepted ledger entries. Withdrawn and disqualified entries are a ledger
state (time and reason, shown on the board); records of entries that no longer exist are named on stderr and kept.
The CI workflow never restores a cached store over the committed one."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_contest import SEARCHPATH, cli, predictions_entry, qa_predictions

from harness.cli import main
from harness.compose import compose

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_examples():
    """The demo tasks' examples by task name."""
    from tasks.examples import load_examples

    return {name: load_examples(task) for name, task in compose(["suite=demo"]).tasks.items()}


def test_the_workflow_never_restores_results_over_the_committed_store():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "leaderboard.yml").read_text(encoding="utf-8"))
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/cache"):
                paths = str(step.get("with", {}).get("path", ""))
                assert "_store" not in paths and "leaderboards" not in paths, step


def _shipped(subs: Path, *names: str) -> None:
    for name in names:
        shutil.copytree(ROOT / "submissions" / name, subs / name)


def test_a_deleted_entry_leaves_the_board_and_its_records_are_named(tmp_path, capsys):
    subs, out = tmp_path / "subs", tmp_path / "out"
    _shipped(subs, "baseline-lead-1", "rules-predictions")
    args = ["suite=demo", f"paths.submissions={subs}", f"paths.results={out / 'store'}",
            f"paths.leaderboards={out / 'boards'}", "progress=false"]
    assert main(["run", *args]) == 0
    capsys.readouterr()
    shutil.rmtree(subs / "rules-predictions")
    assert main(["leaderboard", *args]) == 0
    err = capsys.readouterr().err
    board = json.loads((out / "boards" / "demo" / "leaderboard.json").read_text(encoding="utf-8"))
    assert [row["submission"] for row in board["rows"]] == ["baseline-lead-1"]
    stale = [line for line in err.splitlines() if "rules-predictions" in line]
    assert len(stale) == 5 and all("no entry" in line for line in stale)  # one line a record
    assert len(list((out / "store" / "rules-predictions").glob("*.json"))) == 5  # never deleted


def test_withdrawn_and_disqualified_entries_leave_a_contest_board_with_time_and_reason(tmp_path, capsys,
                                                                                       monkeypatch, demo_examples):
    boards, subs = tmp_path / "public", tmp_path / "submissions"
    subs.mkdir()
    _shipped(subs, "baseline-majority-class", "baseline-copy-source")
    common = [SEARCHPATH, "contest=test_contest", f"paths.submissions={subs}", f"paths.leaderboards={boards}",
              f"paths.results={boards / '_store'}", "progress=false"]
    outputs: list = []
    qa = demo_examples["demo_qa"]
    for hour, (name, team) in enumerate([("a-1", "team-a"), ("a-2", "team-a"), ("b-1", "team-b")]):
        folder = predictions_entry(tmp_path / "incoming", name, team, {"demo_qa": qa_predictions(qa, hour + 2)})
        code, out = cli(capsys, monkeypatch, f"2031-01-02T1{hour}:00:00Z", ["submit", str(folder)] + common, outputs)
        assert code == 0, out
    code, out = cli(capsys, monkeypatch, "2031-01-03T09:00:00Z",
                    ["withdraw", "a-2", "--reason", "a duplicate by mistake"] + common, outputs)
    assert code == 0 and "withdrew a-2" in out
    code, out = cli(capsys, monkeypatch, "2031-01-03T10:00:00Z",
                    ["disqualify", "b-1", "--reason", "trained on the test set"] + common, outputs)
    assert code == 0 and "disqualified b-1" in out
    code, out = cli(capsys, monkeypatch, "2031-01-03T11:00:00Z", ["withdraw", "nobody", "--reason", "x"] + common,
                    outputs)
    assert code == 2 and "nobody" in out and "a-1" in out
    code, out = cli(capsys, monkeypatch, "2031-01-03T12:00:00Z", ["run", "suite=contest_warmup"] + common, outputs)
    assert code == 0, out
    board = json.loads((boards / "contest_warmup" / "leaderboard.json").read_text(encoding="utf-8"))
    assert sorted(row["submission"] for row in board["rows"]) == ["a-1", "baseline-copy-source",
                                                                   "baseline-majority-class"]
    removed = {entry["name"]: entry for entry in board["removed"]}
    assert removed["a-2"] == {"name": "a-2", "team": "team-a", "state": "withdrawn", "at": "2031-01-03T09:00:00Z",
                              "reason": "a duplicate by mistake"}
    assert removed["b-1"]["state"] == "disqualified" and removed["b-1"]["reason"] == "trained on the test set"
    md = (boards / "contest_warmup" / "leaderboard.md").read_text(encoding="utf-8")
    assert "b-1 (team-b) disqualified at 2031-01-03T10:00:00Z: trained on the test set" in md
    assert "a duplicate by mistake" in (boards / "contest_warmup" / "index.html").read_text(encoding="utf-8")
    # deleting an accepted entry's folder is an error that says how to withdraw it
    shutil.rmtree(subs / "a-1")
    code, out = cli(capsys, monkeypatch, "2031-01-03T13:00:00Z", ["run", "suite=contest_warmup"] + common, outputs)
    assert code == 2 and "a-1" in out and "withdraw" in out


def test_contest_boards_show_deadline_usage_best_per_team_and_moves(tmp_path, capsys, monkeypatch, demo_examples):
    from test_contest import main_entry

    boards, subs = tmp_path / "public", tmp_path / "submissions"
    subs.mkdir()
    _shipped(subs, "baseline-majority-class", "baseline-copy-source")
    common = [SEARCHPATH, "contest=test_contest", f"paths.submissions={subs}", f"paths.leaderboards={boards}",
              f"paths.results={boards / '_store'}", "progress=false"]
    outputs: list = []
    for when, name, team, right, wrong in [("2031-01-09T09:00:00Z", "a-v1", "team-a", 4, 5),
                                           ("2031-01-09T10:00:00Z", "a-v2", "team-a", 10, 9),
                                           ("2031-01-09T11:00:00Z", "b-v1", "team-b", 3, 4)]:
        main_entry(tmp_path / "in", name, team, demo_examples, right, wrong)
        code, out = cli(capsys, monkeypatch, when, ["submit", str(tmp_path / "in" / name)] + common, outputs)
        assert code == 0, out
    code, out = cli(capsys, monkeypatch, "2031-01-09T13:00:00Z", ["run", "suite=contest_main"] + common, outputs)
    assert code == 0, out
    folder = boards / "contest_main"
    public = json.loads((folder / "leaderboard.json").read_text(encoding="utf-8"))
    assert public["contest"]["deadline"] == "2031-02-01T00:00:00Z"
    assert public["contest"]["teams"]["team-a"] == {"used": 2, "left": 2}  # limit: 4 in total
    html = (folder / "index.html").read_text(encoding="utf-8")
    assert "2031-02-01T00:00:00Z" in html and "2 used, 2 left" in html
    code, out = cli(capsys, monkeypatch, "2031-01-09T14:00:00Z",
                    ["leaderboard", "suite=contest_main", "best_per_team=true"] + common, outputs)
    assert code == 0, out
    best = json.loads((folder / "leaderboard.json").read_text(encoding="utf-8"))
    entries = [row for row in best["rows"] if not row["baseline"]]
    assert sorted(row["team"] for row in entries) == ["team-a", "team-b"]  # one row a team
    assert [row["rank"] for row in entries] == [1, 2]
    code, out = cli(capsys, monkeypatch, "2031-02-01T00:00:00Z", ["reveal"] + common, outputs)
    assert code == 0, out
    private = json.loads((folder / "private" / "leaderboard.json").read_text(encoding="utf-8"))
    for row in private["rows"]:
        if not row["baseline"]:
            assert row["public_rank"] is not None and row["move"] == row["public_rank"] - row["rank"]
    page = (folder / "private" / "index.html").read_text(encoding="utf-8")
    assert "Final selection" in page and "best_public" in page
