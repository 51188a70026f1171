"""How scoring and the board scale with the number of entries: K predictions entries on a 1,000-segment
translation task (WMT21 newstest2021 de-en, reference A), each a perturbed copy of one of the 19 real system
outputs (words dropped or swapped in some segments, seeded by the entry's number).

    python benchmarks/board_scale.py --data ../shared/data/translation/wmt21_newstest2021_de-en [--ks 20,100,500]

Every entry is scored once (`evaluate_all`, as `harness run` does, in a process of its own); then, for each K, a
store holding the first K entries gets its board built in a fresh process (`harness leaderboard`, the board files
removed first so it is really built) and once more with nothing changed (the no-op check). Printed per K: scoring
CPU seconds (the K entries' share of the one scoring run), board build CPU seconds and peak memory (the board
process's max RSS), the page's size, the no-op rerun's wall seconds; then the growth from the smallest K to the
largest against K's own growth. CPU seconds are the processes' user + system time: on a shared machine they move
much less with other load than wall-clock time.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas

ROOT = Path(__file__).resolve().parents[1]
TASK = "bench_wmt21_de_en"
METRICS = "[bleu, chrf]"

TASK_YAML = """# written by benchmarks/board_scale.py
name: {name}
kind: translation
description: WMT21 newstest2021 de-en, reference A (board-scale benchmark)
data:
  format: text
  files:
    source: {source}
    ref_A: {ref}
fields:
  source: source
  references: [ref_A]
prompt: "{{{{ source }}}}"
metrics: {metrics}
primary_metric: bleu
"""
SUITE_YAML = """defaults:
  - /task@_global_.tasks.{name}: {name}
name: bench
"""


def perturbed(lines: list[str], seed: int) -> list[str]:
    """A copy of a system's output with a word dropped or two words swapped in about a third of the segments."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        words = line.split(" ")
        if len(words) > 2 and rng.random() < 0.35:
            i = rng.randrange(len(words) - 1)
            if rng.random() < 0.5:
                del words[i]
            else:
                words[i], words[i + 1] = words[i + 1], words[i]
        out.append(" ".join(words))
    return out


def write_entries(data: Path, folder: Path, k: int) -> list[Path]:
    systems = sorted((data / "system-outputs").glob("newstest2021.de-en.hyp.*.en"))
    outputs = [p.read_text(encoding="utf-8").rstrip("\n").split("\n") for p in systems]
    folders = []
    for index in range(k):
        entry = folder / f"entry-{index:04d}"
        (entry / "predictions").mkdir(parents=True, exist_ok=True)
        (entry / "submission.yaml").write_text(f"team: team-{index % 37}\nname: entry-{index:04d}\n"
                                               f"kind: predictions\n", encoding="utf-8")
        lines = perturbed(outputs[index % len(outputs)], seed=index)
        rows = "".join(json.dumps({"id": str(i), "prediction": p}, ensure_ascii=False) + "\n"
                       for i, p in enumerate(lines))
        (entry / "predictions" / f"{TASK}.jsonl").write_text(rows, encoding="utf-8")
        folders.append(entry)
    return folders


def run_measured(code: str, args: list[str], cwd: Path, pythonpath: Path = ROOT) -> dict:
    """Runs `python -c code args` in a fresh process (importing the harness from `pythonpath`); its CPU seconds
    (its worker processes' included), peak RSS (MiB) and wall seconds."""
    started = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(pythonpath), PYTHONDONTWRITEBYTECODE="1")
    # stderr to a file, not a pipe: nobody reads a pipe while wait4 waits, and a full one would block the child
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                                   stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        errors.seek(0)
        stderr = errors.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"benchmark step failed:\n{stderr[-3000:]}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024, "wall": wall}


SCORE = """
import sys
from pathlib import Path
from harness.compose import compose, suite_tasks
from harness.execution.executors import evaluate_all
cfg = compose(sys.argv[2:])
folders = sorted(Path(sys.argv[1]).iterdir())
evaluate_all(cfg, suite_tasks(cfg), folders, echo=lambda message: None)
"""
BOARD = """
import sys
from harness.cli import main
sys.exit(main(["leaderboard"] + sys.argv[1:]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the WMT21 de-en folder (sources/, references/, system-outputs/)")
    parser.add_argument("--ks", default="20,100,500")
    parser.add_argument("--work", default=None, help="keep the work folder here (default: a temporary one)")
    args = parser.parse_args()
    ks = sorted(int(k) for k in args.ks.split(","))
    data = Path(args.data).resolve()
    work = Path(args.work or tempfile.mkdtemp(prefix="board-scale-")).resolve()
    conf = work / "conf"
    (conf / "task").mkdir(parents=True, exist_ok=True)
    (conf / "suite").mkdir(parents=True, exist_ok=True)
    (conf / "task" / f"{TASK}.yaml").write_text(TASK_YAML.format(
        name=TASK, metrics=METRICS, source=data / "sources" / "newstest2021.de-en.src.de",
        ref=data / "references" / "newstest2021.de-en.ref.A.en"), encoding="utf-8")
    (conf / "suite" / "bench.yaml").write_text(SUITE_YAML.format(name=TASK), encoding="utf-8")
    entries = work / "entries"
    shutil.rmtree(entries, ignore_errors=True)
    write_entries(data, entries, max(ks))
    common = [f"hydra.searchpath=[file://{conf}]", "suite=bench", "progress=false"]
    all_store = work / "store-all"
    shutil.rmtree(all_store, ignore_errors=True)
    scored = run_measured(SCORE, [str(entries)] + common + [f"paths.results={all_store}",
                                                            f"paths.submissions={entries}"], work)
    per_entry = scored["cpu"] / max(ks)
    print(f"scoring {max(ks)} entries once: {scored['cpu']:.1f} CPU s ({per_entry:.3f} s an entry), "
          f"{scored['wall']:.1f} s wall, peak {scored['rss_mib']:.0f} MiB")
    entry_folders = sorted(p.name for p in all_store.iterdir() if p.is_dir())  # not the store's hash cache
    rows = []
    for k in ks:
        store = work / f"store-{k}"
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir()
        # a board shows the entries whose folders exist: the first K entries and their stored cells
        subs = work / f"entries-{k}"
        shutil.rmtree(subs, ignore_errors=True)
        subs.mkdir()
        for name in entry_folders[:k]:
            shutil.copytree(all_store / name, store / name)
            shutil.copytree(entries / name, subs / name, copy_function=os.link)
        boards = work / f"boards-{k}"
        shutil.rmtree(boards, ignore_errors=True)
        board_args = common + [f"paths.results={store}", f"paths.leaderboards={boards}", f"paths.submissions={subs}"]
        built = run_measured(BOARD, board_args, work)
        noop = run_measured(BOARD, board_args, work)
        page = (boards / "bench" / "index.html").stat().st_size / 1e6
        shown = len(pandas.read_csv(boards / "bench" / "leaderboard.csv"))
        if shown != k:  # a board of fewer entries would measure nothing
            raise RuntimeError(f"the board over K={k} stored cells shows {shown} entries")
        rows.append((k, per_entry * k, built["cpu"], built["rss_mib"], page, noop["wall"]))
    print(f"\n{'K':>5} {'scoring CPU s':>14} {'board CPU s':>12} {'board peak MiB':>15} {'page MB':>8} "
          f"{'no-op s':>8}")
    for k, score_cpu, board_cpu, rss, page, noop in rows:
        print(f"{k:>5} {score_cpu:>14.1f} {board_cpu:>12.2f} {rss:>15.0f} {page:>8.2f} {noop:>8.2f}")
    (k0, _, b0, _, p0, _), (k1, _, b1, _, p1, _) = rows[0], rows[-1]
    print(f"\ngrowth from K={k0} to K={k1} (K grows {k1 / k0:.0f}x): board CPU {b1 / b0:.1f}x, page {p1 / p0:.1f}x")
    if args.work:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work)  # some hundred MB at K = 500


if __name__ == "__main__":
    main()
