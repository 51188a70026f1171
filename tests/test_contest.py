"""Contests: the partition, the config checks and lock, submitting within limits, the final selection, the ranking
policies, the board's history, and a two-phase contest end to end (phases, limits, splits, selection, reveal) in
which every file a participant can see is read back for private-part references and scores."""
from __future__ import annotations

import json
import math
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from harness.board import frame as board_frame
from harness.board import history, policies, write
from harness.cli import main
from harness.compose import compose
from harness.contest import entries as contest_entries
from harness.contest import ledger as contest_ledger
from harness.contest import rules, splits
from harness.errors import ConfigError
from tasks.examples import Example

ROOT = Path(__file__).resolve().parents[1]
CONF = Path(__file__).resolve().parent / "contest_conf"
SEARCHPATH = f"hydra.searchpath=[file://{CONF}]"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


# ---------------------------------------------------------------- the partition


class Spec:
    def __init__(self, fraction=0.4, seed=7, stratify=True):
        self.public_fraction, self.seed, self.stratify = fraction, seed, stratify


class Data:
    limit = None


class Task:
    def __init__(self, name="t", kind="classification"):
        self.name, self.kind, self.data = name, kind, Data()


def labelled(n=100, labels=("pos", "neg", "neu"), weights=(0.5, 0.3, 0.2)):
    out = []
    for i in range(n):
        share = (i % 10) / 10
        label = labels[0] if share < weights[0] else labels[1] if share < weights[0] + weights[1] else labels[2]
        out.append(Example(f"ex{i:03d}", {"text": str(i)}, label))
    return out


def test_partition_is_exact_stratified_seeded_and_ignores_row_order():
    examples = labelled()
    mask = splits.public_mask(Task(), examples, Spec())
    assert mask.sum() == 40  # the declared fraction, exactly
    for label, n in (("pos", 50), ("neg", 30), ("neu", 20)):
        in_label = [m for m, e in zip(mask, examples) if e.target == label]
        assert sum(in_label) == round(0.4 * n)  # every label in proportion
    again = splits.public_mask(Task(), examples, Spec())
    assert (mask == again).all()
    shuffled = [examples[i] for i in np.random.default_rng(3).permutation(len(examples))]
    remask = splits.public_mask(Task(), shuffled, Spec())
    assert {e.id for e, m in zip(shuffled, remask) if m} == {e.id for e, m in zip(examples, mask) if m}
    assert (splits.public_mask(Task(), examples, Spec(seed=8)) != mask).any()
    assert (splits.public_mask(Task(name="other"), examples, Spec()) != mask).any()  # tasks split independently
    text = splits.public_mask(Task(kind="qa"), examples, Spec(fraction=0.25))
    assert text.sum() == 25


def test_part_rows_cover_the_set_once_and_keep_ids():
    examples = labelled(31)
    public = splits.part_rows(Task(), examples, Spec(), "public")
    private = splits.part_rows(Task(), examples, Spec(), "private")
    assert sorted(np.concatenate([public, private]).tolist()) == list(range(31))
    assert len(public) == 12 and not set(public) & set(private)
    assert splits.part_rows(Task(), examples, None, "full").tolist() == list(range(31))
    assert splits._public_count(0.5, 1) == 1 and splits._public_count(0.01, 10) == 1  # both parts non-empty
    assert splits._public_count(0.99, 10) == 9


# ---------------------------------------------------------------- the config


def contest_cfg(*overrides):
    return compose([SEARCHPATH, "contest=test_contest", *overrides])


@pytest.mark.parametrize("override, named", [
    ("contest.phases.0.end=2030-01-01T00:00:00Z", "start 2031-01-01T00:00:00Z is not before end"),
    ("contest.phases.1.start=2031-01-05T00:00:00Z", "warmup and main overlap"),
    ("contest.phases.0.start=2031-01-01T00:00:00", "has no time zone"),
    ("contest.phases.0.start=tomorrow", "'tomorrow' is not an ISO 8601 time"),
    ("contest.phases.1.suite=contest_warmup", "suite contest_warmup used by more than one phase"),
    ("contest.phases.1.split=secret", "phases[1] (main).split: 'secret' is not valid"),
    ("contest.partition.public_fraction=1.0", "partition.public_fraction: 1.0 must be between 0 and 1"),
    ("contest.teams.team-a.members=[bob]", "'bob' is already a member of team"),
    ("contest.selection.rule=random", "selection.rule: 'random' is not valid; use one of best_public, last"),
    ("contest.ranking.policy=elo", "ranking.policy: 'elo' is not valid"),
    ("contest.phases.1.limits.per_day=0", "limits.per_day: 0 must be at least 1"),
])
def test_bad_contest_config_names_key_and_value(override, named):
    with pytest.raises(ConfigError) as error:
        contest_cfg(override)
    assert named in str(error.value)


def test_every_problem_is_reported_together():
    with pytest.raises(ConfigError) as error:
        contest_cfg("contest.partition.public_fraction=0", "contest.selection.max=0")
    assert "public_fraction" in str(error.value) and "selection.max" in str(error.value)


def test_a_contest_declares_its_ranking(capsys):
    assert main(["leaderboard", SEARCHPATH, "contest=test_contest", "suite=contest_main", "ranking=mean_rank"]) == 2
    assert "declares its ranking" in capsys.readouterr().err


# ---------------------------------------------------------------- ranking policies (harness.leaderboard)


def rec(submission, task, primary, status="ok", higher=True, kind="predictions"):
    ok = status == "ok"
    return {"submission": submission, "team": f"team-{submission}", "submission_kind": kind, "task": task,
            "task_kind": "qa", "status": status, "reason": "" if ok else "boom", "primary_metric": "m",
            "primary": primary if ok else None, "scores": {"m": primary} if ok else {},
            "higher_is_better": {"m": higher} if ok else {}, "signatures": {"m": "sig"}, "counts": {}}


def board(records, tasks, policy, baselines=(), missing="worst"):
    return board_frame.build(records, tasks, policy, frozenset(baselines), missing).set_index("submission")


def test_baselines_anchor_the_normalisation_and_are_never_ranked():
    records = [rec("base", "t1", 20.0), rec("a", "t1", 60.0), rec("b", "t1", 40.0), rec("c", "t1", 10.0),
               rec("base", "t2", 5.0, higher=False), rec("a", "t2", 4.0, higher=False),
               rec("b", "t2", 3.0, higher=False), rec("c", "t2", 7.0, higher=False)]
    by = board(records, ["t1", "t2"], "mean_normalized", baselines=["base"])
    assert by.loc["a", "aggregate"] == pytest.approx((100 + 50) / 2)  # t1: best entry 100; t2: half way to best
    assert by.loc["b", "aggregate"] == pytest.approx((50 + 100) / 2)
    assert by.loc["c", "aggregate"] == pytest.approx((-25 + -100) / 2)  # below the baseline goes negative
    assert by.loc["base", "aggregate"] == pytest.approx(0.0)
    assert by["rank"].isna()["base"] and by.loc[["a", "b", "c"], "rank"].tolist() == [1, 1, 3]  # a tie shares


def test_a_baseline_better_than_every_entry_is_no_anchor_and_no_winner():
    records = [rec("base", "t", 90.0), rec("a", "t", 50.0), rec("b", "t", 30.0)]
    frame = board_frame.build(records, ["t"], "mean_normalized", frozenset({"base"}))
    assert frame["submission"].tolist() == ["base", "a", "b"]  # listed by score, for reference
    assert frame["rank"].isna().tolist() == [True, False, False] and frame["rank"].iloc[1] == 1
    assert frame.set_index("submission").loc["b", "aggregate"] == pytest.approx(0.0)  # worst entry anchors


@pytest.mark.parametrize("policy", sorted(policies.POLICIES))
def test_missing_cells_never_rank_first(policy):
    # "ghost" has a single, excellent score and nothing else; it must not beat complete entries
    records = [rec("a", "t1", 50.0), rec("a", "t2", 50.0), rec("a", "t3", 50.0),
               rec("b", "t1", 40.0), rec("b", "t2", 40.0), rec("b", "t3", 40.0),
               rec("ghost", "t1", 99.0), rec("ghost", "t2", None, status="crashed")]
    frame = board_frame.build(records, ["t1", "t2", "t3"], policy)
    by = frame.set_index("submission")
    assert by.loc["ghost", "t3_status"] == "missing"
    assert by.loc["ghost", "rank"] > by.loc["a", "rank"]
    unranked = board_frame.build(records, ["t1", "t2", "t3"], policy, missing="unranked")
    assert unranked["submission"].tolist() == ["a", "b", "ghost"]  # listed, never dropped
    assert unranked["rank"].isna().tolist() == [False, False, True]
    assert math.isnan(unranked["aggregate"].iloc[2])


def test_borda_and_win_rate_count_head_to_head():
    records = [rec("a", "t1", 3.0), rec("b", "t1", 2.0), rec("c", "t1", 2.0),
               rec("a", "t2", 1.0), rec("b", "t2", 2.0), rec("c", "t2", 3.0)]
    borda = board(records, ["t1", "t2"], "borda")
    assert borda["aggregate"].to_dict() == {"a": 2.0, "b": 1.0, "c": 2.0}  # wins outright only
    win = board(records, ["t1", "t2"], "win_rate")
    assert win.loc["a", "aggregate"] == pytest.approx(50.0)  # 2/2 then 0/2
    assert win.loc["b", "aggregate"] == pytest.approx((0.25 + 0.5) / 2 * 100)  # a tie counts half
    assert win.loc["c", "aggregate"] == pytest.approx((0.25 + 1.0) / 2 * 100)
    ranks = board(records, ["t1", "t2"], "mean_rank")
    assert ranks["aggregate"].to_dict() == {"a": 2.0, "b": 2.0, "c": 1.5}
    assert ranks["rank"].to_dict() == {"c": 1, "a": 2, "b": 2}


def test_every_policy_is_printed_with_the_board(tmp_path):
    records = [rec("a", "t", 1.0), rec("b", "t", 2.0)]
    for policy in policies.POLICIES:
        write.write(records, "s", ["t"], policy, tmp_path / policy)
        data = json.loads((tmp_path / policy / "s" / "leaderboard.json").read_text(encoding="utf-8"))
        assert data["ranking"]["policy"] == policy and data["ranking"]["rule"] == policies.POLICIES[policy].description
        assert data["ranking"]["missing"] == "worst"
        md = (tmp_path / policy / "s" / "leaderboard.md").read_text(encoding="utf-8")
        assert policies.POLICIES[policy].description in md and "Missing cells" in md


# ---------------------------------------------------------------- history


def test_history_keeps_the_previous_version_with_a_diff_and_a_noop_writes_nothing(tmp_path):
    folder = tmp_path / "s"
    first = [rec("a", "t", 50.0), rec("b", "t", 40.0)]
    write.write(first, "s", ["t"], "mean_normalized", tmp_path)
    assert not (folder / "history").exists()
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    write.write(list(reversed(first)), "s", ["t"], "mean_normalized", tmp_path)  # same content
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == stamp
    old_json = (folder / "leaderboard.json").read_text(encoding="utf-8")
    second = [rec("a", "t", 30.0), rec("b", "t", 40.0), rec("c", "t", 45.0)]
    write.write(second, "s", ["t"], "mean_normalized", tmp_path)
    snapshot = folder / "history" / "0001"
    assert (snapshot / "leaderboard.json").read_text(encoding="utf-8") == old_json
    diff = json.loads((snapshot / "diff.json").read_text(encoding="utf-8"))
    assert diff["added"] == ["c"] and diff["removed"] == []
    assert {"submission": "a", "from": 1, "to": 3} in diff["rank_moves"]
    assert {"submission": "a", "task": "t", "from": 50.0, "to": 30.0} in diff["changed_scores"]
    md = (snapshot / "diff.md").read_text(encoding="utf-8")
    assert "New entries: c" in md and "a: rank 1 → 3" in md
    write.write(first, "s", ["t"], "mean_normalized", tmp_path)
    assert (folder / "history" / "0002" / "leaderboard.json").is_file()
    assert history.next_number(folder) == 3


# ---------------------------------------------------------------- submitting, limits and selection (plain functions)


def predictions_entry(root: Path, name: str, team: str, by_task: dict) -> Path:
    folder = root / name
    (folder / "predictions").mkdir(parents=True)
    (folder / "submission.yaml").write_text(f"team: {team}\nname: {name}\nkind: predictions\n", encoding="utf-8")
    for task, by_id in by_task.items():
        (folder / "predictions" / f"{task}.jsonl").write_text(
            "".join(json.dumps({"id": i, "prediction": p}) + "\n" for i, p in by_id.items()), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def demo_examples():
    from tasks.examples import load_examples

    cfg = compose(["suite=demo"])
    return {name: load_examples(task) for name, task in cfg.tasks.items()}


def qa_predictions(examples, right_every):
    return {e.id: (e.target[0] if i % right_every == 0 else "no idea") for i, e in enumerate(examples)}


def test_limits_count_only_accepted_submissions_that_did_not_fail(tmp_path, demo_examples):
    from harness import store

    paths = [f"paths.submissions={tmp_path / 'subs'}", f"paths.leaderboards={tmp_path / 'boards'}",
             f"paths.results={tmp_path / 'boards' / '_store'}"]
    cfg = contest_cfg("suite=contest_warmup", *paths)
    tasks = dict(cfg.tasks)
    entries = tmp_path / "incoming"
    qa = demo_examples["demo_qa"]
    day = "2031-01-02T{}:00:00Z"
    outcomes = []
    for hour, name in enumerate(["w1", "w2", "w3", "w4", "w5", "w6"]):
        folder = predictions_entry(entries, name, "team-a", {"demo_qa": qa_predictions(qa, hour + 1)})
        outcomes.append(contest_entries.submit(folder, cfg, tasks, at(day.format(f"{10 + hour:02d}"))))
        if name == "w2":  # its evaluation failed on the organizer's machine: it stops counting
            record = {"submission": "w2", "task": "demo_qa", "status": "crashed", "reason": "exit code 1"}
            store.write_cell(Path(cfg.paths.results), record, None)
    assert [o["state"] for o in outcomes] == ["accepted"] * 6  # w2 failed, so six fit a limit of five a day
    refused = contest_entries.submit(predictions_entry(entries, "w7", "team-a", {"demo_qa": qa_predictions(qa, 9)}),
                             cfg, tasks, at("2031-01-02T23:00:00Z"))
    assert refused["state"] == "refused" and "daily limit reached: 5 of 5" in refused["reason"]
    assert "2031-01-03T00:00:00Z" in refused["reason"]  # when the next is possible
    invalid = predictions_entry(entries, "w8", "team-a", {})
    (invalid / "predictions" / "demo_qa.jsonl").write_text('{"id": "1", "prediction": 3}\n', encoding="utf-8")
    assert contest_entries.submit(invalid, cfg, tasks, at("2031-01-02T23:30:00Z"))["state"] == "invalid"
    next_day = contest_entries.submit(entries / "w7", cfg, tasks, at("2031-01-03T00:00:01Z"))
    assert next_day["state"] == "accepted" and next_day["at"] == "2031-01-03T00:00:01Z"  # the harness's clock
    again = contest_entries.submit(entries / "w7", cfg, tasks, at("2031-01-03T01:00:00Z"))
    assert again["state"] == "refused" and "taken" in again["reason"]
    closed = contest_entries.submit(predictions_entry(entries, "w9", "team-a", {"demo_qa": qa_predictions(qa, 2)}),
                            cfg, tasks, at("2031-01-09T00:00:00Z"))
    assert closed["state"] == "refused" and "no phase" in closed["reason"]
    stranger = predictions_entry(entries, "x1", "team-z", {"demo_qa": qa_predictions(qa, 2)})
    assert "not registered" in contest_entries.submit(stranger, cfg, tasks, at("2031-01-03T02:00:00Z"))["reason"]
    ledger = contest_ledger.read_ledger(cfg)
    states = [(e["name"], e["state"]) for e in ledger["entries"]]
    assert ("w7", "refused") in states and ("w8", "invalid") in states and ("w7", "accepted") in states
    counted = contest_ledger.counted(ledger, Path(cfg.paths.results), "team-a", "warmup")
    assert sorted(e["name"] for e in counted) == ["w1", "w3", "w4", "w5", "w6", "w7"]
    assert (Path(cfg.paths.submissions) / "w1" / "submission.yaml").is_file()  # installed for `harness run`


def test_final_selection_rules():
    class Cfg:
        class paths:
            results = "/nonexistent"

        class contest:
            class selection:
                rule, max, fallback = "best_public", 1, "best_public"

    class Phase:
        name = "main"

    ledger = {"entries": [
        {"name": "a1", "team": "A", "phase": "main", "state": "accepted", "at": "2031-01-09T10:00:00Z"},
        {"name": "a2", "team": "A", "phase": "main", "state": "accepted", "at": "2031-01-10T10:00:00Z"},
        {"name": "a3", "team": "A", "phase": "main", "state": "refused", "at": "2031-01-11T10:00:00Z"},
        {"name": "b1", "team": "B", "phase": "main", "state": "accepted", "at": "2031-01-09T11:00:00Z"},
        {"name": "b2", "team": "B", "phase": "main", "state": "accepted", "at": "2031-01-09T12:00:00Z"},
    ], "selections": {"main": {"B": {"names": ["b1"], "at": "2031-01-12T00:00:00Z"}}}}
    rank = {"a1": 3, "a2": 1, "b1": 4, "b2": 2}
    assert contest_ledger.final_selection(Cfg, ledger, Phase, rank) == {"A": {"names": ["a2"], "rule": "best_public"},
                                                                 "B": {"names": ["b2"], "rule": "best_public"}}
    Cfg.contest.selection.rule = "last"
    assert contest_ledger.final_selection(Cfg, ledger, Phase, rank)["A"]["names"] == ["a2"]
    assert contest_ledger.final_selection(Cfg, ledger, Phase, rank)["B"]["names"] == ["b2"]
    Cfg.contest.selection.rule, Cfg.contest.selection.max = "chosen", 2
    chosen = contest_ledger.final_selection(Cfg, ledger, Phase, rank)
    assert chosen["B"] == {"names": ["b1"], "rule": "chosen"}
    assert chosen["A"] == {"names": ["a1", "a2"], "rule": "best_public"}  # chose nothing: the fallback
    Cfg.contest.selection.fallback = "none"
    assert "A" not in contest_ledger.final_selection(Cfg, ledger, Phase, rank)


# ---------------------------------------------------------------- a two-phase contest end to end (CLI)


def near_translation(reference: str, i: int) -> str:
    """A hypothesis close to the reference but never equal to it (so no reference text lands in any file)."""
    words = reference.split()
    return " ".join(words[:-1] if i % 3 else words[1:]) or "the"


def main_entry(root, name, team, examples, right_every, wrong_every):
    labels = ["positive", "negative", "neutral"]
    cls = {e.id: (e.target if i % right_every else labels[(labels.index(e.target) + 1) % 3])
           for i, e in enumerate(examples["demo_classification"])}
    tr = {e.id: (near_translation(e.target[0], i) if i % wrong_every else "nothing at all")
          for i, e in enumerate(examples["demo_translation"])}
    return predictions_entry(root, name, team, {"demo_classification": cls, "demo_translation": tr})


def cli(capsys, monkeypatch, when, args, outputs):
    monkeypatch.setattr(rules, "utc_now", lambda: at(when))
    code = main(args)
    captured = capsys.readouterr()
    outputs.append(captured.out + captured.err)
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def e2e_root(tmp_path_factory):
    return tmp_path_factory.mktemp("contest")


def test_two_phase_contest_end_to_end(tmp_path, capsys, monkeypatch, demo_examples):
    boards = tmp_path / "public"  # everything a participant can see lives here
    subs = tmp_path / "submissions"
    subs.mkdir()
    for baseline in ("baseline-majority-class", "baseline-copy-source"):
        shutil.copytree(ROOT / "submissions" / baseline, subs / baseline)
    common = [SEARCHPATH, "contest=test_contest", f"paths.submissions={subs}", f"paths.leaderboards={boards}",
              f"paths.results={boards / '_store'}", "progress=false"]
    incoming = tmp_path / "incoming"
    outputs: list = []

    # warm-up: refused before it opens, accepted during it, its board scores every example
    warm = predictions_entry(incoming, "a-warm", "team-a", {"demo_qa": qa_predictions(demo_examples["demo_qa"], 2)})
    code, out = cli(capsys, monkeypatch, "2030-12-31T12:00:00Z", ["submit", str(warm)] + common, outputs)
    assert code == 1 and "no phase" in out and "not counted" in out
    code, out = cli(capsys, monkeypatch, "2031-01-02T12:00:00Z", ["submit", str(warm)] + common, outputs)
    assert code == 0 and "accepted a-warm" in out
    assert (boards / "_contests" / "test_contest" / "lock.json").is_file()  # locked by its first acceptance
    code, out = cli(capsys, monkeypatch, "2031-01-02T13:00:00Z",
                    ["run", "suite=contest_warmup"] + common, outputs)
    assert code == 0
    warm_board = json.loads((boards / "contest_warmup" / "leaderboard.json").read_text(encoding="utf-8"))
    assert warm_board["contest"] == {"name": "test_contest", "phase": "warmup", "split": "full",
                                     "deadline": "2031-01-08T00:00:00Z",
                                     "teams": {"team-a": {"used": 1, "left": None},
                                               "team-b": {"used": 0, "left": None}}}
    assert warm_board["rows"][0]["cells"]["demo_qa"]["counts"]["examples"] == 50
    assert "public_examples" not in warm_board["rows"][0]["cells"]["demo_qa"]["counts"]

    # the lock: a changed config is refused, naming what changed
    code, out = cli(capsys, monkeypatch, "2031-01-03T00:00:00Z",
                    ["leaderboard", "suite=contest_main", "contest.partition.public_fraction=0.5"] + common, outputs)
    assert code == 2 and "is locked" in out and "partition.public_fraction: 0.4 -> 0.5" in out

    # main phase: two teams, a daily limit of two, an invalid entry that does not count
    entries = {"a-v1": ("team-a", 4, 5), "a-v2": ("team-a", 10, 9), "b-v1": ("team-b", 3, 4)}
    for name, (team, right, wrong) in entries.items():
        main_entry(incoming, name, team, demo_examples, right, wrong)
    bad = main_entry(incoming, "a-bad", "team-a", demo_examples, 2, 2)
    (bad / "predictions" / "demo_translation.jsonl").write_text("not json\n", encoding="utf-8")
    main_entry(incoming, "a-v3", "team-a", demo_examples, 7, 7)
    for when, name, expected in [("2031-01-09T09:00:00Z", "a-v1", 0), ("2031-01-09T09:30:00Z", "a-bad", 1),
                                 ("2031-01-09T10:00:00Z", "a-v2", 0), ("2031-01-09T11:00:00Z", "a-v3", 1),
                                 ("2031-01-09T12:00:00Z", "b-v1", 0)]:
        code, out = cli(capsys, monkeypatch, when, ["submit", str(incoming / name)] + common, outputs)
        assert code == expected, out
    assert "daily limit reached: 2 of 2" in outputs[-2]
    code, out = cli(capsys, monkeypatch, "2031-01-09T12:30:00Z",
                    ["validate", str(incoming / "a-v3"), "suite=contest_main"] + common, outputs)
    code, out = cli(capsys, monkeypatch, "2031-01-09T13:00:00Z", ["run", "suite=contest_main"] + common, outputs)
    assert code == 0
    folder = boards / "contest_main"
    public = json.loads((folder / "leaderboard.json").read_text(encoding="utf-8"))
    names = [row["submission"] for row in public["rows"]]
    assert sorted(names) == ["a-v1", "a-v2", "b-v1", "baseline-copy-source", "baseline-majority-class"]
    assert {k: public["contest"][k] for k in ("name", "phase", "split", "deadline")} == {
        "name": "test_contest", "phase": "main", "split": "public", "deadline": "2031-02-01T00:00:00Z"}
    assert public["last_updated"] == "2031-01-09T12:00:00Z"  # the latest acceptance, not the render time
    assert public["bootstrap"] == {"resamples": 1000, "seed": 12345, "alpha": 0.05}
    for row in public["rows"]:
        assert row["baseline"] == row["submission"].startswith("baseline-")
        assert (row["rank"] is None) == row["baseline"] and (row["tier"] is None) == row["baseline"]
        cell = row["cells"]["demo_classification"]
        if cell["status"] == "ok":
            assert cell["counts"]["public_examples"] == 24 and cell["counts"]["examples"] == 60
            assert cell["ci"][0] <= cell["primary"] <= cell["ci"][1]
    assert sum(public["rank_distribution"]["a-v2"].values()) == pytest.approx(1.0)

    # the board's records hold the public part's scores exactly
    cfg = compose(common + ["suite=contest_main"])
    private_values, public_values, references = scores_by_part(cfg, boards / "_store", names)
    for row in public["rows"]:
        for task, cell in row["cells"].items():
            if cell["status"] == "ok":
                assert cell["scores"] == public_values[(row["submission"], task)]

    # team-a chooses its first entry; team-b chooses nothing (fallback: best public)
    code, out = cli(capsys, monkeypatch, "2031-01-20T00:00:00Z", ["select", "a-v1"] + common, outputs)
    assert code == 0 and "team team-a chose a-v1" in out
    code, out = cli(capsys, monkeypatch, "2031-01-20T00:00:00Z", ["select", "a-v1", "b-v1"] + common, outputs)
    assert code == 1 and "one team's submissions" in out
    code, out = cli(capsys, monkeypatch, "2031-01-20T00:00:00Z", ["reveal"] + common, outputs)
    assert code == 2 and "ends at 2031-02-01T00:00:00Z" in out
    assert not (folder / "private").exists()

    # nothing a participant could see so far holds a private-part reference or score
    assert_no_private_material(boards, outputs, private_values, public_values, references)

    code, out = cli(capsys, monkeypatch, "2031-02-01T00:00:00Z", ["reveal"] + common, outputs)
    assert code == 0, out
    private = json.loads((folder / "private" / "leaderboard.json").read_text(encoding="utf-8"))
    assert private["contest"]["split"] == "private"
    by = {row["submission"]: row for row in private["rows"]}
    assert sorted(by) == ["a-v1", "b-v1", "baseline-copy-source", "baseline-majority-class"]  # a-v2 not chosen
    for name in ("a-v1", "b-v1"):
        for task in ("demo_classification", "demo_translation"):
            assert by[name]["cells"][task]["scores"] == private_values[(name, task)]
            assert by[name]["cells"][task]["counts"]["private_examples"] == 36
    md = (folder / "private" / "leaderboard.md").read_text(encoding="utf-8")
    assert "team-a: a-v1 (chosen)" in md and "team-b: b-v1 (best_public)" in md


def scores_by_part(cfg, results, names):
    """(private and full-set scores, public scores, private references) of every cell, computed here."""
    from harness import store
    from harness.scoring import score
    from tasks.examples import load_examples

    private, public, references = {}, {}, set()
    for task_name, task in cfg.tasks.items():
        examples = load_examples(task)
        rows = splits.part_rows(task, examples, cfg.contest.partition, "private")
        for i in rows:
            if task.kind == "translation":
                references.update(r for r in examples[i].target if len(r) >= 15)
        for name in names:
            path = Path(results) / name / f"{task_name}.predictions.jsonl"
            if not path.is_file():
                continue
            preds = {r["id"]: r["prediction"] for r in store.read_predictions(results, name, task_name)
                     if r["prediction"] is not None}
            scored = score(task, examples, preds)
            public[(name, task_name)] = splits.part_scores(
                scored, splits.part_rows(task, examples, cfg.contest.partition, "public"))
            private[(name, task_name)] = splits.part_scores(scored, rows)
            private[(name, task_name, "full")] = dict(scored.scores)
    return private, public, references


def assert_no_private_material(public_tree, outputs, private_values, public_values, references):
    allowed = {v for scores in public_values.values() for v in scores.values()} | {0.0, 100.0}
    # a round value (75.0) is too likely to appear legitimately to be searched for as text; the records' exact
    # scores are checked against the public part directly
    secret = {v for scores in private_values.values() for v in scores.values() if len(repr(v)) >= 8} - allowed
    allowed_2dp = {f"{v:.2f}" for v in allowed}
    secret_2dp = {f"{v:.2f}" for v in secret} - allowed_2dp
    texts = {str(p): p.read_text(encoding="utf-8") for p in public_tree.rglob("*") if p.is_file()}
    texts.update({f"command output {i}": text for i, text in enumerate(outputs)})
    assert any(name.endswith("leaderboard.md") for name in texts) and len(texts) > 20
    for name, text in texts.items():
        for value in secret:
            assert repr(value) not in text, (name, value)
        for reference in references:
            assert reference not in text, (name, reference)
        if name.endswith((".md", ".html", ".csv")) and "contest_main" in name:  # 2 decimals: the main board
            found = [v for v in secret_2dp if f" {v} " in text or f"|{v}|" in text or f">{v}<" in text]
            assert not found, (name, found)
        assert '"stats"' not in text  # no per-item statistics anywhere
