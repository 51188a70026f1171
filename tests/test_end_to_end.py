"""`harness run suite=demo` end to end on tiny models built in fixtures, a baseline and a predictions entry."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["demo_classification", "demo_language_modeling", "demo_qa", "demo_summarization", "demo_translation"]


def hf_entry(folder: Path, name: str, kind: str, model_dir: str) -> None:
    shutil.copytree(model_dir, folder / name / "model")
    (folder / name / "submission.yaml").write_text(f"team: t-{name}\nname: {name}\nkind: {kind}\nmodel: model\n",
                                                   encoding="utf-8")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, tiny_gpt2_dir, tiny_t5_dir):
    """One full demo run (cheap settings) shared by the tests below."""
    work = tmp_path_factory.mktemp("e2e")
    subs = work / "submissions"
    subs.mkdir()
    hf_entry(subs, "gpt2", "hf-causal", tiny_gpt2_dir)
    hf_entry(subs, "t5", "hf-seq2seq", tiny_t5_dir)
    shutil.copytree(ROOT / "submissions" / "baseline-lead-1", subs / "baseline-lead-1")
    shutil.copytree(ROOT / "submissions" / "rules-predictions", subs / "rules-predictions")
    args = [f"paths.submissions={subs}", f"paths.results={work / 'store'}", f"paths.leaderboards={work / 'boards'}",
            "progress=false", "batch_size=16"] + [f"tasks.{t}.data.limit=12" for t in (
                "demo_translation", "demo_summarization", "demo_qa", "demo_classification", "demo_language_modeling")]
    args += [f"tasks.{t}.generation.max_new_tokens=8" for t in ("demo_translation", "demo_summarization", "demo_qa")]
    assert main(["run", "suite=demo"] + args) == 0
    return work, args


def test_board_has_every_entry_and_task(demo_run):
    work, _ = demo_run
    board = pd.read_csv(work / "boards" / "demo" / "leaderboard.csv", keep_default_na=False,
                        na_values={t: [""] for t in TASKS})
    assert sorted(board["submission"]) == ["baseline-lead-1", "gpt2", "rules-predictions", "t5"]
    tasks = TASKS
    for task in tasks:
        assert f"{task}_status" in board.columns and board[task].dtype == float
    by = board.set_index("submission")
    assert by.loc["gpt2", [f"{t}_status" for t in tasks]].tolist() == ["ok"] * 5
    assert by.loc["t5", [f"{t}_status" for t in tasks]].tolist() == ["ok", "n/a", "ok", "ok", "ok"]
    assert "decoder-only" in by.loc["t5", "demo_language_modeling_reason"]
    assert by.loc["baseline-lead-1", "demo_qa_status"] == "n/a"
    assert by.loc["rules-predictions", "demo_language_modeling_status"] == "not-submitted"
    # Without a contest the built-in baselines are the baselines: listed and marked, anchors, never ranked.
    assert by.loc["baseline-lead-1", "rank"] == "" and str(by.loc["baseline-lead-1", "baseline"]) == "True"
    ranked = [int(rank) for rank in board["rank"] if rank != ""]
    assert ranked == sorted(ranked) == [1, 2, 3]
    md = (work / "boards" / "demo" / "leaderboard.md").read_text(encoding="utf-8")
    assert "Ranking" in md and "not submitted" in md and "n/a" in md


def test_records_carry_scores_signatures_counts_and_provenance(demo_run):
    work, _ = demo_run
    record = json.loads((work / "store" / "gpt2" / "demo_translation.json").read_text(encoding="utf-8"))
    assert record["status"] == "ok"
    assert set(record["scores"]) == {"bleu", "chrf", "ter"}
    assert record["higher_is_better"] == {"bleu": True, "chrf": True, "ter": False}
    assert record["signatures"]["bleu"].startswith("nrefs:1")
    assert record["counts"]["examples"] == 12 and record["counts"]["missing"] == 0
    assert "truncated" in record["counts"] and record["counts"]["dropped_shots"] == 0
    prov = record["provenance"]
    assert len(prov["prompt_config_sha256"]) == 64 and prov["prompt_config"]["chat_template"] is False
    assert prov["libraries"]["sacrebleu"] and len(prov["submission_sha256"]) == 64
    assert all(len(sha) == 64 for sha in prov["data_sha256"].values())
    rows = (work / "store" / "gpt2" / "demo_translation.predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 12 and set(json.loads(rows[0])) == {"id", "prediction", "prompt_sha256"}
    assert len({json.loads(row)["prompt_sha256"] for row in rows}) == 12  # one prompt per example


def test_second_run_reuses_every_cell_and_rebuild_is_identical(demo_run, capsys):
    work, args = demo_run
    board = work / "boards" / "demo" / "leaderboard.json"
    before = {p: p.read_bytes() for p in (work / "store").rglob("*")  if p.is_file()}
    board_bytes = board.read_bytes()
    assert main(["run", "suite=demo"] + args) == 0
    assert "running" not in capsys.readouterr().err, "no model is run when nothing changed"
    assert {p: p.read_bytes() for p in (work / "store").rglob("*") if p.is_file()} == before
    assert board.read_bytes() == board_bytes
    assert main(["leaderboard", "suite=demo"] + [a for a in args if a.startswith(("paths", "ranking", "tasks"))]) == 0
    assert board.read_bytes() == board_bytes


def test_evaluate_one_cell_prints_scores(demo_run, capsys):
    work, _ = demo_run
    code = main(["evaluate", f"submission={work / 'submissions' / 'rules-predictions'}", "task=demo_qa",
                 f"paths.results={work / 'store2'}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "exact_match" in out and "f1" in out and "signature squad" in out
    assert (work / "store2" / "rules-predictions" / "demo_qa.json").is_file()


@pytest.mark.parametrize("line, words", [
    (b'{"id": "qa-0001", "prediction": "x"}\n{"id": "qa-0001", "prediction": "y"}\n', ["demo_qa.jsonl:2", "duplicate"]),
    (b'{"id": "qa-0001", "prediction": "x"}\nnot json\n', ["demo_qa.jsonl:2", "JSON"]),
    (b'{"id": "qa-0001", "prediction": "\xff\xfe"}\n', ["demo_qa.jsonl:1", "UTF-8"]),
    (b'{"id": 7, "prediction": "x"}\n', ["demo_qa.jsonl:1", "'id'"]),
    (b'{"id": "qa-0001", "answer": "x"}\n', ["demo_qa.jsonl:1", "prediction"]),
    (b'{"id": "qa-0001", "prediction": ["x"]}\n', ["demo_qa.jsonl:1", "text"]),
])
def test_bad_predictions_file_fails_the_cell_naming_file_and_line(tmp_path, capsys, line, words):
    entry = tmp_path / "entry"
    (entry / "predictions").mkdir(parents=True)
    (entry / "submission.yaml").write_text("team: t\nname: entry\nkind: predictions\n", encoding="utf-8")
    (entry / "predictions" / "demo_qa.jsonl").write_bytes(line)
    code = main(["evaluate", f"submission={entry}", "task=demo_qa", f"paths.results={tmp_path / 'store'}"])
    out = capsys.readouterr().out
    assert code == 1
    assert "bad-output" in out
    for word in words:
        assert word in out


def test_missing_and_unknown_ids_are_counted(tmp_path):
    entry = tmp_path / "entry"
    (entry / "predictions").mkdir(parents=True)
    (entry / "submission.yaml").write_text("team: t\nname: entry\nkind: predictions\n", encoding="utf-8")
    lines = [{"id": "qa-0001", "prediction": "x"}, {"id": "nope-1", "prediction": "y"}, {"id": "nope-2", "prediction": "z"}]
    (entry / "predictions" / "demo_qa.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines), encoding="utf-8")
    assert main(["evaluate", f"submission={entry}", "task=demo_qa", f"paths.results={tmp_path / 'store'}"]) == 0
    record = json.loads((tmp_path / "store" / "entry" / "demo_qa.json").read_text(encoding="utf-8"))
    assert record["counts"]["missing"] == record["counts"]["examples"] - 1
    assert record["counts"]["unknown"] == 2


def test_invalid_manifest_fails_every_cell_and_run_goes_on(tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(ROOT / "submissions" / "baseline-lead-1", subs / "baseline-lead-1")
    (subs / "broken").mkdir()
    (subs / "broken" / "submission.yaml").write_text("team: t\nname: broken\nkind: nonsense\n", encoding="utf-8")
    common = [f"paths.submissions={subs}", f"paths.results={tmp_path / 'store'}", f"paths.leaderboards={tmp_path / 'b'}"]
    assert main(["run", "suite=demo"] + common) == 0
    board = pd.read_csv(tmp_path / "b" / "demo" / "leaderboard.csv", keep_default_na=False).set_index("submission")
    assert board.loc["broken", "demo_qa_status"] == "invalid"
    assert "nonsense" in board.loc["broken", "demo_qa_reason"]
    assert board.loc["baseline-lead-1", "demo_summarization_status"] == "ok"
    assert main(["run", "suite=demo", "fail_on_error=true"] + common) == 1
