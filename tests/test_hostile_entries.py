"""One hostile entry never takes the run down: each attack becomes that entry's typed failure (or a refused
folder), every other entry is scored and the board is written. The store and the board hold against damaged
records, unwritable folders and free text that would break a format.

Entries are `predictions` entries and baselines (no model runs), so the whole file takes seconds.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import app, store
from harness.cli import main
from harness.compose import compose
from harness.errors import SubmissionError
from harness.execution.evaluator import Evaluator
from harness.submission import load_submission

ROOT = Path(__file__).resolve().parents[1]
GOOD = "rules-predictions"
TASKS = ("demo_classification", "demo_language_modeling", "demo_qa", "demo_summarization", "demo_translation")
MARKER = "<!-- leaderboard:demo:end -->"
README = "# Contest\n\n<!-- leaderboard:demo:start -->\n<!-- leaderboard:demo:end -->\n\nAfter the board.\n"


def entry(root: Path, name: str, manifest: str, predictions: dict = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "submission.yaml").write_text(manifest, encoding="utf-8")
    if predictions is not None:
        (folder / "predictions").mkdir()
        for task, text in predictions.items():
            (folder / "predictions" / f"{task}.jsonl").write_text(text, encoding="utf-8")
    return folder


def predictions_entry(root: Path, name: str, predictions: dict, team: str = "t") -> Path:
    return entry(root, name, f"team: {team}\nname: {name}\nkind: predictions\n", predictions)


def lm_rows(n_tokens: str) -> str:
    ids = [json.loads(line)["id"] for line in (ROOT / "tasks/data/demo/lm_test.jsonl").read_text().splitlines()]
    return "".join(f'{{"id": "{i}", "prediction": {{"logprob": -10.0, "n_tokens": {n_tokens}}}}}\n' for i in ids)


def qa_rows(first: str) -> str:
    """Valid QA predictions with the first line replaced by `first` (raw JSON text)."""
    lines = (ROOT / "submissions" / GOOD / "predictions" / "demo_qa.jsonl").read_text(encoding="utf-8").splitlines()
    return "\n".join([first] + lines[1:]) + "\n"


def alias_bomb() -> str:
    """9 levels of 9 aliases: 500-odd bytes that expand to 9^9 strings."""
    lines = ['a0: &a0 "lol"']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\nteam: [" + ", ".join(["*a8"] * 9) + "]\nname: bomb\nkind: predictions\n"


def deep_manifest(levels: int) -> str:
    return "team: " + "[" * levels + "]" * levels + "\nname: deep\nkind: predictions\n"


def build(subs: Path) -> None:
    shutil.copytree(ROOT / "submissions" / GOOD, subs / GOOD)
    shutil.copytree(ROOT / "submissions" / "baseline-unigram-lm", subs / "baseline-unigram-lm")
    predictions_entry(subs, "surrogate", {"demo_qa": qa_rows('{"id": "qa-0001", "prediction": "x\\ud800"}')})
    predictions_entry(subs, "overflow", {"demo_language_modeling": lm_rows("1" + "0" * 400)})
    entry(subs, "deep", deep_manifest(100_000))
    entry(subs, "bomb", alias_bomb())
    # the same name as the good entry, in a folder that sorts after it: refused, the good entry's cells kept
    predictions_entry(subs, "zz-impostor", {"demo_qa": qa_rows('{"id": "qa-0001", "prediction": "impostor"}')},
                      team="impostors").joinpath("submission.yaml").write_text(
        f"team: impostors\nname: {GOOD}\nkind: predictions\n", encoding="utf-8")
    huge = predictions_entry(subs, "huge-file", {"demo_qa": ""})
    os.truncate(huge / "predictions" / "demo_qa.jsonl", 50 << 20)  # sparse: 50 MB of nothing, never read
    predictions_entry(subs, "long-line", {"demo_qa": qa_rows('{"id": "qa-0001", "prediction": "' + "y" * 200_000 + '"}')})
    # free text that would break every format: a table pipe, a newline, markup and the README block's end marker
    markup = json.dumps({"id": f"{MARKER}<b>bold</b>|x\ny", "prediction": "z"})
    predictions_entry(subs, "markup", {"demo_qa": qa_rows(markup) + markup + "\n"})  # a repeated id quotes it
    entry(subs, "bad-yaml", "team: [unclosed\nname: bad-yaml\n")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("entries")
    build(work / "subs")
    (work / "README.md").write_text(README, encoding="utf-8")
    overrides = ["suite=demo", f"paths.submissions={work / 'subs'}", f"paths.results={work / 'store'}",
                 f"paths.leaderboards={work / 'boards'}", "progress=false", f"readme={work / 'README.md'}"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run"] + overrides)
    records = {}
    for path in (work / "store").glob("*/*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        records[(record["submission"], record["task"])] = record
    return SimpleNamespace(work=work, code=code, out=out.getvalue(), err=err.getvalue(), records=records,
                           overrides=overrides)


def test_the_run_survives_every_hostile_entry_and_writes_the_board(hostile_run):
    assert hostile_run.code == 0, hostile_run.err
    for task in ("demo_classification", "demo_qa", "demo_summarization", "demo_translation"):
        assert hostile_run.records[(GOOD, task)]["status"] == "ok"
    assert hostile_run.records[("baseline-unigram-lm", "demo_language_modeling")]["status"] == "ok"
    assert (hostile_run.work / "boards" / "demo" / "leaderboard.md").is_file()


@pytest.mark.parametrize("name, task, status, words", [
    ("surrogate", "demo_qa", "bad-output", ["predictions/demo_qa.jsonl:1", "UTF-8"]),
    ("overflow", "demo_language_modeling", "bad-output", ["predictions/demo_language_modeling.jsonl:1", "n_tokens"]),
    ("deep", "demo_qa", "invalid", ["submission.yaml", "200036 bytes; the limit is 65536 bytes"]),
    ("bomb", "demo_qa", "invalid", ["submission.yaml", "aliases"]),
    ("huge-file", "demo_qa", "bad-output", ["predictions/demo_qa.jsonl", "52428800 bytes", "limit"]),
    ("long-line", "demo_qa", "bad-output", ["predictions/demo_qa.jsonl:1", "bytes", "limit"]),
    ("markup", "demo_qa", "bad-output", ["predictions/demo_qa.jsonl:51", "duplicate id"]),
])
def test_each_attack_is_its_entrys_typed_failure(hostile_run, name, task, status, words):
    record = hostile_run.records[(name, task)]
    assert record["status"] == status, record["reason"]
    for word in words:
        assert word in record["reason"]
    assert len(record["reason"]) < 2000


def test_a_duplicate_name_refuses_the_later_folder_only(hostile_run):
    kept = hostile_run.records[(GOOD, "demo_qa")]
    assert kept["team"] == "demo-team-c" and kept["status"] == "ok"  # never overwritten by the impostor
    impostor = str(hostile_run.work / "subs" / "zz-impostor")
    assert impostor in hostile_run.err and "already used by" in hostile_run.err
    assert not (hostile_run.work / "store" / "zz-impostor").exists()


def test_failure_reasons_on_boards_carry_no_organizer_paths(hostile_run):
    reason = hostile_run.records[("bad-yaml", "demo_qa")]["reason"]
    assert reason.startswith("submission.yaml: not valid YAML"), reason
    for path in (hostile_run.work / "boards" / "demo").glob("leaderboard.*"):
        assert str(hostile_run.work) not in path.read_text(encoding="utf-8"), path.name
    assert str(hostile_run.work) not in (hostile_run.work / "README.md").read_text(encoding="utf-8")


def test_free_text_is_escaped_in_every_format(hostile_run):
    board = hostile_run.work / "boards" / "demo"
    markdown = (board / "leaderboard.md").read_text(encoding="utf-8")
    readme = (hostile_run.work / "README.md").read_text(encoding="utf-8")
    assert "<b>bold" in (hostile_run.work / "store" / "markup" / "demo_qa.json").read_text(encoding="utf-8")
    assert "&lt;b&gt;bold" in markdown  # shown as the text it is
    assert "<b>bold" not in markdown and "<b>bold" not in readme and "<b>bold" not in (board / "index.html").read_text()
    assert readme.count(MARKER) == 1 and readme.endswith("\n\nAfter the board.\n")
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len({line.count(" | ") - line.count("\\|") for line in rows}) == 1  # every row has the header's cells
    json.loads((board / "leaderboard.json").read_text(encoding="utf-8"))  # json escapes by construction
    # a second update of the README still finds exactly one block
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["leaderboard"] + hostile_run.overrides) == 0


# ---------------------------------------------------------------- the manifest is bounded before values are looked at


@pytest.mark.parametrize("text, words", [
    (deep_manifest(100_000), "bytes; the limit"),
    (deep_manifest(30_000), "nested deeper than"),  # within the size limit: 30,000 levels would still recurse
    (alias_bomb(), "aliases"),
    ("team: " + "x" * 10_000 + "\nname: long\nkind: predictions\n", "longer than"),
    ("team: t\nname: big\nkind: predictions\n" + "# padding\n" * 20_000, "bytes; the limit"),
])
def test_a_manifest_is_bounded_before_its_values_are_read(tmp_path, text, words):
    folder = entry(tmp_path, "m", text)
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    assert words in str(info.value) and info.value.status == "invalid"
    assert len(str(info.value)) < 1000


@pytest.mark.parametrize("team, ok", [
    ("清华大学 NLP", True), ("Équipe Zoë", True), ("R&D (north) o'neil-2_x.", True), ("देवनागरी", True),
    ("a|b", False), ("x\ny", False), ("<b>bold</b>", False), ("x" * 65, False), ("", False), ("  ", False),
    (MARKER, False), ("=cmd()", False),
])
def test_team_names_allow_letters_of_any_script_and_nothing_that_breaks_a_format(tmp_path, team, ok):
    folder = entry(tmp_path, "t", f"team: {json.dumps(team)}\nname: t\nkind: baseline\nbaseline: lead-1\n")
    if ok:
        assert load_submission(folder).manifest.team == team
    else:
        with pytest.raises(SubmissionError, match="field 'team'"):
            load_submission(folder)


# ---------------------------------------------------------------- duplicate names


def test_duplicate_names_keep_the_first_folder_by_path(tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(ROOT / "submissions" / "baseline-majority-class", subs / "a")
    os.symlink(subs / "a", subs / "b")  # a link to a sibling: the same name twice
    kept, refused = app.unique_names([subs / "a", subs / "b"])
    assert kept == [subs / "a"] and [path for path, _ in refused] == [subs / "b"]
    assert "already used by" in refused[0][1] and str(subs / "a") in refused[0][1]


# ---------------------------------------------------------------- size caps and the hash cache


def test_a_file_over_the_cap_is_refused_without_reading_it(tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(ROOT / "submissions" / "baseline-majority-class", subs / "sparse")
    with open(subs / "sparse" / "weights.bin.part", "wb") as f:
        f.truncate(10 << 30)  # 10 GB, sparse: reading it would take minutes
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false", f"max_file_bytes={8 << 30}"])
    evaluator = Evaluator(cfg, {"demo_classification": cfg.tasks.demo_classification}, echo=lambda m: None)
    [record] = evaluator.evaluate(subs / "sparse")
    assert record["status"] == "invalid"
    assert "weights.bin.part" in record["reason"] and "max_file_bytes" in record["reason"]
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false",
                   f"max_file_bytes={20 << 30}", "max_submission_bytes=1000"])
    evaluator = Evaluator(cfg, {"demo_classification": cfg.tasks.demo_classification}, echo=lambda m: None)
    [record] = evaluator.evaluate(subs / "sparse")
    assert record["status"] == "invalid" and "max_submission_bytes" in record["reason"]


def test_a_no_op_rerun_reads_no_file_it_has_hashed(tmp_path, monkeypatch):
    from harness import filehash

    folder = tmp_path / "entry"
    folder.mkdir()
    (folder / "weights.safetensors").write_bytes(b"w" * 1000)
    (folder / "config.json").write_text("{}")
    cache = tmp_path / "cache.json"
    first = filehash.tree_sha256(folder, cache)
    assert first == filehash.stream_sha256(folder)  # the same digest records and ledgers already hold
    reads = []
    real = filehash.stream_sha256
    monkeypatch.setattr(filehash, "stream_sha256", lambda path: reads.append(path) or real(path))
    assert filehash.tree_sha256(folder, cache) == first and reads == []  # the cache on disk: nothing read
    (folder / "config.json").write_text('{"changed": 1}')
    assert filehash.tree_sha256(folder, cache) != first and reads == [folder]


# ---------------------------------------------------------------- scoring budget


def test_scoring_over_its_budget_is_a_timeout(tmp_path, monkeypatch):
    import time

    from harness.metrics.classification import ClassificationMetric

    monkeypatch.setattr(ClassificationMetric, "item_stats", lambda self, p, t: time.sleep(30))
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false", "scoring_budget_s=0.5"])
    evaluator = Evaluator(cfg, {"demo_classification": cfg.tasks.demo_classification}, echo=lambda m: None)
    started = time.monotonic()
    [record] = evaluator.evaluate(ROOT / "submissions" / "baseline-majority-class")
    assert time.monotonic() - started < 10
    assert record["status"] == "timeout" and "scoring" in record["reason"]


# ---------------------------------------------------------------- damaged records and unwritable boards


@pytest.fixture
def scored_store(tmp_path):
    subs = tmp_path / "subs"
    for name in ("baseline-majority-class", GOOD):
        shutil.copytree(ROOT / "submissions" / name, subs / name)
    overrides = ["suite=demo", f"paths.submissions={subs}", f"paths.results={tmp_path / 'store'}",
                 f"paths.leaderboards={tmp_path / 'boards'}", "progress=false"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run"] + overrides) == 0
    return SimpleNamespace(root=tmp_path, overrides=overrides, record=tmp_path / "store" / GOOD / "demo_qa.json")


def _cli(args):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue()


@pytest.mark.parametrize("damage", [
    lambda b: b[: len(b) // 2],  # truncated
    lambda b: b"\xff\xfe" + b[2:],  # invalid UTF-8
    lambda b: b"[1, 2]\n",  # not a record
])
def test_a_damaged_record_stops_the_board_by_name(scored_store, damage):
    scored_store.record.write_bytes(damage(scored_store.record.read_bytes()))
    before = (scored_store.root / "boards" / "demo" / "leaderboard.json").read_bytes()
    code, err = _cli(["leaderboard"] + scored_store.overrides)
    assert code == 2 and f"{GOOD}/demo_qa.json" in err and "allow_damaged=true" in err
    assert (scored_store.root / "boards" / "demo" / "leaderboard.json").read_bytes() == before
    code, err = _cli(["leaderboard", "allow_damaged=true"] + scored_store.overrides)
    assert code == 0
    board = json.loads((scored_store.root / "boards" / "demo" / "leaderboard.json").read_text(encoding="utf-8"))
    row = next(r for r in board["rows"] if r["submission"] == GOOD)
    assert row["cells"]["demo_qa"]["status"] == "missing"
    code, err = _cli(["run"] + scored_store.overrides)  # run recomputes the damaged cell
    assert code == 0, err
    assert json.loads(scored_store.record.read_text(encoding="utf-8"))["status"] == "ok"


def test_read_record_treats_a_damaged_record_as_absent(tmp_path):
    path = store.record_path(tmp_path, "s", "t")
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"submission": "s", "task": "\xff"}')
    assert store.read_record(tmp_path, "s", "t") is None
    records, damaged = store.read_store(tmp_path)
    assert records == [] and damaged == ["s/t.json"]


def test_an_unwritable_leaderboards_folder_is_a_clear_error(scored_store):
    blocker = scored_store.root / "not-a-folder"
    blocker.write_text("a file where the boards should go")
    overrides = [o for o in scored_store.overrides if not o.startswith("paths.leaderboards")]
    code, err = _cli(["leaderboard", f"paths.leaderboards={blocker / 'boards'}"] + overrides)
    assert code == 2 and "Traceback" not in err and "cannot write" in err and str(blocker) in err


def test_a_failed_board_write_leaves_the_previous_board_whole(scored_store, monkeypatch):
    import errno

    from harness.board import history

    folder = scored_store.root / "boards" / "demo"
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    (scored_store.root / "store" / "baseline-majority-class" / "demo_classification.json").unlink()  # a new board
    real, calls = store.write_temp, []

    def failing(path, text):  # the third file staged fails, as on a file system gone read-only
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, text)

    monkeypatch.setattr(history, "write_temp", failing)
    code, err = _cli(["leaderboard"] + scored_store.overrides)
    assert code == 2 and "Read-only file system" in err and "Traceback" not in err
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # no file replaced, no snapshot taken, no temporary file left
    monkeypatch.setattr(history, "write_temp", real)
    assert _cli(["leaderboard"] + scored_store.overrides)[0] == 0  # the control: this board does change files
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} != before


@pytest.mark.parametrize("folder, text, shown", [
    ("/org/subs/a", "/org/subs/a/submission.yaml: not valid YAML", "submission.yaml: not valid YAML"),
    ("/org/subs/a", "in /org/subs/a; see /org/subs/ab/x", "in .; see /org/subs/ab/x"),
    ("a", "a/predictions/t.jsonl:3: a bad line, data/a/x", "predictions/t.jsonl:3: a bad line, data/a/x"),
])
def test_paths_are_shown_relative_to_the_submission(folder, text, shown):
    from harness.execution.evaluator import relative_paths

    assert relative_paths(text, Path(folder)) == shown


def test_a_damaged_predictions_file_costs_its_cell_the_interval_not_the_board(scored_store):
    predictions = scored_store.record.with_name("demo_qa.predictions.jsonl")
    predictions.write_bytes(b"\xff" + predictions.read_bytes()[1:])
    # without its stored statistics the board would score the cell again from the damaged predictions
    scored_store.record.with_name("demo_qa.stats").unlink()
    (scored_store.root / "store" / "baseline-majority-class" / "demo_classification.json").unlink()  # rebuild
    code, err = _cli(["leaderboard"] + scored_store.overrides)
    assert code == 0, err
    board = json.loads((scored_store.root / "boards" / "demo" / "leaderboard.json").read_text(encoding="utf-8"))
    cell = next(r for r in board["rows"] if r["submission"] == GOOD)["cells"]["demo_qa"]
    assert cell["status"] == "ok" and cell["ci"] is None


def test_text_cells_are_escaped_for_markdown_and_csv():
    from harness.board.formats import csv_text, md_text

    assert md_text("a|b\n<!-- leaderboard:demo:end --> R&D_1") == (
        "a\\|b &lt;!-- leaderboard:demo:end --&gt; R&amp;D\\_1")
    assert csv_text("-1 team") == "'-1 team" and csv_text("=HYPERLINK()") == "'=HYPERLINK()"
    assert csv_text("team one") == "team one" and csv_text(3.5) == 3.5


def test_an_unforeseen_error_fails_that_entry_only(tmp_path, monkeypatch):
    from harness import safety

    real = safety.vet

    def vet(submission, allowed):
        if submission.name == "baseline-lead-1":
            raise RecursionError("something no check foresaw")
        return real(submission, allowed)

    monkeypatch.setattr(safety, "vet", vet)
    cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false"])
    evaluator = Evaluator(cfg, {"demo_summarization": cfg.tasks.demo_summarization}, echo=lambda m: None)
    [bad] = evaluator.evaluate(ROOT / "submissions" / "baseline-lead-1")
    [good] = evaluator.evaluate(ROOT / "submissions" / "baseline-copy-source")
    assert bad["status"] == "crashed" and "RecursionError: something no check foresaw" in bad["reason"]
    assert "Traceback" in bad["log"] and good["status"] == "ok"
