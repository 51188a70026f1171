"""An organizer's real run: the 19 WMT21 de-en system outputs as predictions entries, scored against reference A and
against A+B (38 cells, BLEU and chrF), then the board: `harness run` in a fresh process, on an empty store.

    python benchmarks/wmt21_run.py --data ../shared/data/translation/wmt21_newstest2021_de-en \
        [--baseline OTHER_CHECKOUT] [--repeat 2]

With --baseline (another checkout of this repository, e.g. `git worktree add /tmp/before <commit>`), each repeat
runs both checkouts back to back on the same entries, so the ratio is measured in one sitting; the boards' tables
(leaderboard.csv) of the two are compared and any difference is printed. CPU seconds are the run's user + system
time including its worker processes.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from board_scale import run_measured  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"wmt21_de_en_ref_a": ["A"], "wmt21_de_en_ref_ab": ["A", "B"]}
TASK_YAML = """# written by benchmarks/wmt21_run.py
name: {name}
kind: translation
description: WMT21 newstest2021 de-en, reference(s) {refs}
data:
  format: text
  files:
    source: {data}/sources/newstest2021.de-en.src.de
{files}
fields:
  source: source
  references: [{columns}]
prompt: "{{{{ source }}}}"
metrics: [bleu, chrf]
primary_metric: bleu
"""
RUN = """
import sys
from harness.cli import main
sys.exit(main(["run"] + sys.argv[1:]))
"""


def write_contest(data: Path, work: Path) -> list[str]:
    conf = work / "conf"
    (conf / "task").mkdir(parents=True, exist_ok=True)
    (conf / "suite").mkdir(parents=True, exist_ok=True)
    for name, refs in TASKS.items():
        files = "\n".join(f"    ref_{r}: {data}/references/newstest2021.de-en.ref.{r}.en" for r in refs)
        (conf / "task" / f"{name}.yaml").write_text(TASK_YAML.format(
            name=name, refs="+".join(refs), data=data, files=files, columns=", ".join(f"ref_{r}" for r in refs)),
            encoding="utf-8")
    defaults = "".join(f"  - /task@_global_.tasks.{name}: {name}\n" for name in TASKS)
    (conf / "suite" / "wmt21.yaml").write_text(f"defaults:\n{defaults}name: wmt21\n", encoding="utf-8")
    entries = work / "entries"
    for path in sorted((data / "system-outputs").glob("newstest2021.de-en.hyp.*.en")):
        system = path.name.split(".")[3]
        folder = entries / system / "predictions"
        folder.mkdir(parents=True, exist_ok=True)
        (folder.parent / "submission.yaml").write_text(f"team: {system}\nname: {system}\nkind: predictions\n",
                                                       encoding="utf-8")
        lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
        rows = "".join(json.dumps({"id": str(i), "prediction": line}, ensure_ascii=False) + "\n"
                       for i, line in enumerate(lines))
        for task in TASKS:
            (folder / f"{task}.jsonl").write_text(rows, encoding="utf-8")
    return [f"hydra.searchpath=[file://{conf}]", "suite=wmt21", "progress=false", f"paths.submissions={entries}"]


def measured_run(checkout: Path, common: list[str], out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    args = common + [f"paths.results={out / 'store'}", f"paths.leaderboards={out / 'boards'}"]
    result = run_measured(RUN, args, out.parent, pythonpath=checkout)
    result["table"] = (out / "boards" / "wmt21" / "leaderboard.csv").read_text(encoding="utf-8")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the WMT21 de-en folder (sources/, references/, system-outputs/)")
    parser.add_argument("--baseline", default=None, help="another checkout to measure in the same sitting")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wmt21-run-"))
    common = write_contest(Path(args.data).resolve(), work)
    sides = {"this checkout": ROOT}
    if args.baseline:
        sides["baseline"] = Path(args.baseline).resolve()
    cpu: dict = {side: [] for side in sides}
    tables = {}
    for attempt in range(args.repeat):
        for side, checkout in sides.items():
            result = measured_run(checkout, common, work / side.replace(" ", "-"))
            cpu[side].append(result["cpu"])
            tables[side] = result["table"]
            print(f"run {attempt + 1}, {side}: {result['cpu']:.1f} CPU s, {result['wall']:.1f} s wall, "
                  f"peak {result['rss_mib']:.0f} MiB")
    for side, values in cpu.items():
        print(f"{side}: best {min(values):.1f} CPU s of {len(values)}")
    if args.baseline:
        print(f"ratio (best of each): {min(cpu['this checkout']) / min(cpu['baseline']):.2f}x the baseline's CPU time")
        same = tables["this checkout"] == tables["baseline"]
        print("boards' tables: identical" if same else "boards' tables DIFFER:\n" + tables["baseline"] + "\n---\n"
              + tables["this checkout"])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
