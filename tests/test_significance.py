"""Bootstrap intervals, the paired bootstrap and tiers: sacrebleu's own paired bootstrap reproduces them exactly
(small data in the fast tier; the 19 WMT21 de-en systems through the harness in the slow tier), and the real
SQuAD and XSum systems get boards whose intervals and tiers a direct computation reproduces."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.board import significance
from harness.metrics import build_metric

CONF = Path(__file__).resolve().parent / "contest_conf"
PARITY = Path(__file__).resolve().parent / "parity_tasks"


def demo_translation():
    from harness.compose import compose
    from tasks.examples import load_examples

    cfg = compose(["task=demo_translation"])
    examples = load_examples(cfg.task)
    return [e.inputs["source"] for e in examples], [e.target[0] for e in examples]


def systems(refs):
    """Three systems of different quality made from the references."""
    def damage(every):
        return [" ".join(w for k, w in enumerate(r.split()) if (i + k) % every) or "x" for i, r in enumerate(refs)]
    return {"good": damage(7), "fair": damage(4), "poor": damage(2)}


@pytest.fixture(autouse=True)
def default_sacrebleu_seed(monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)  # sacrebleu's default (12345) is the convention


def test_draws_are_sacrebleus():
    expected = np.random.default_rng(12345).choice(40, size=(1000, 40), replace=True)
    assert (significance.draws(40) == expected).all()


def test_sacrebleu_paired_bootstrap_reproduces_intervals_and_p_values():
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    _, refs = demo_translation()
    hyps = systems(refs)
    metric = build_metric("bleu")
    idxs = significance.draws(len(refs))
    mine = {}
    for name, hyp in hyps.items():
        stats = metric.item_stats(hyp, [[r] for r in refs])
        samples = significance.resample_scores(metric, stats, "bleu", idxs)
        mine[name] = (metric.aggregate(stats)["bleu"], samples, significance.confidence_interval(samples))
    for upper, lower in (("good", "fair"), ("fair", "poor"), ("good", "poor")):
        _, results = PairedTest([(upper, hyps[upper]), (lower, hyps[lower])], {"BLEU": BLEU()}, [refs],
                                test_type="bs", n_samples=1000)()
        base, system = results["BLEU"]
        assert base.score == mine[upper][0] and system.score == mine[lower][0]
        p = significance.paired_p_value(mine[upper][0], mine[lower][0], mine[upper][1], mine[lower][1])
        assert p == system.p_value
        low, high = mine[lower][2]
        assert 0.5 * (high - low) == system.ci and system.mean == np.sort(mine[lower][1]).mean()
        low, high = mine[upper][2]
        assert 0.5 * (high - low) == base.ci
    assert mine["poor"][2][1] < mine["good"][2][0]  # far apart: the intervals do not overlap


def test_non_sacrebleu_metrics_resample_their_rows():
    metric = build_metric("squad")
    preds = ["the cat", "a dog", "blue", "", "red fox"]
    golds = [["the cat"], ["dog"], ["green"], ["x"], ["red fox jumps"]]
    stats = metric.item_stats(preds, golds)
    idxs = significance.draws(5, resamples=50)
    samples = significance.resample_scores(metric, stats, "f1", idxs)
    assert samples.tolist() == [metric.aggregate(stats[row])["f1"] for row in idxs]


def test_interval_is_sacrebleus_order_statistics():
    samples = np.arange(1000, dtype=float)[::-1]
    assert significance.confidence_interval(samples) == (25.0, 974.0)  # sorted positions n//40 and n-n//40-1


def test_p_value_and_tiers():
    rng = np.random.default_rng(0)
    a = 50 + rng.normal(0, 1, 1000)
    # exact ties are never significant (a departure from sacrebleu, which gives 1/1001 here)
    assert significance.paired_p_value(50.0, 50.0, a, a) == 1.0
    assert significance.paired_p_value(50.0, 50.0, a, a + rng.normal(0, 1, 1000)) == 1.0
    assert significance.paired_p_value(50.0, 40.0, a, a - 10 + rng.normal(0, 0.1, 1000)) < 0.05
    close = significance.paired_p_value(50.0, 49.9, a, a - 0.1 + rng.normal(0, 3, 1000))
    assert close > 0.05
    # p between entries i < j; a chain of neighbour tests would put all of 0..3 in one tier
    p = {(0, 1): 0.3, (1, 2): 0.3, (0, 2): 0.01, (2, 3): 0.5, (3, 4): 0.5, (2, 4): 0.04}
    assert significance.tiers(5, lambda i, j: p.get((i, j), 0.5)) == [1, 1, 2, 2, 3]
    assert significance.tiers(3, lambda i, j: 1.0) == [1, 1, 1]


def _board_records(values, tasks):
    """Records of a board: each entry's number on every task, or a failed cell for None."""
    out = []
    for name, value in values.items():
        ok = value is not None
        out += [{"submission": name, "team": name, "submission_kind": "predictions", "task": task,
                 "task_kind": "qa", "status": "ok" if ok else "crashed", "reason": "" if ok else "boom",
                 "primary_metric": "f1", "primary": value, "scores": {"f1": value} if ok else {},
                 "higher_is_better": {"f1": True}} for task in tasks]
    return out


@pytest.mark.parametrize("tasks", [["t"], ["t", "u"]])
@pytest.mark.parametrize("values", [
    {"a": 70.0, "b": 70.0, "c": 50.0},        # identical submissions
    {"a": 70.0, "b": None, "c": None},        # two failed entries under a scored one
    {"a": None, "b": None},                   # an all-failed board
])
def test_exact_ties_share_a_tier(values, tasks):
    from harness.board.frame import build
    from harness.board.uncertainty import uncertainty

    records = _board_records(values, tasks)
    frame = build(records, tasks, "mean_normalized", frozenset(), "worst")
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, significance.RESAMPLES)
    samples = {(name, task): value + base + (0 if name == "a" else rng.normal(0, 0.01, significance.RESAMPLES))
               for name, value in values.items() if value is not None for task in tasks}
    found = uncertainty(frame, records, tasks, "mean_normalized", frozenset(), "worst", samples)
    order = list(frame["submission"])
    assert len(set(frame["rank"])) == len(set(values.values()))  # exact ties share a rank
    if not samples:
        assert "tiers" not in found  # nothing was resampled: no tiers to split
        return
    for j in range(1, len(order)):
        if values[order[j]] == values[order[j - 1]]:
            assert found["p_above"][order[j]] == 1.0
            assert found["tiers"][order[j]] == found["tiers"][order[j - 1]]


def test_rank_distribution_shares_ties_and_sums_to_one():
    aggregates = np.array([[3.0, 2.0, 2.0], [1.0, 2.0, 3.0], [3.0, np.nan, 1.0]])
    dist = significance.rank_distribution(["a", "b", "c"], aggregates, higher_is_better=True)
    assert dist["a"] == {"1": 2 / 3, "3": 1 / 3}
    assert dist["b"] == {"2": 2 / 3, "3": 1 / 3}  # a tie takes the better rank; no aggregate ranks last
    assert all(sum(d.values()) == pytest.approx(1.0) for d in dist.values())


# ---------------------------------------------------------------- real systems through the harness (slow)


def build_board(tmp_path, suite, task, entries, data):
    """Predictions entries on a one-task suite, evaluated and ranked as `harness run` does; the board's json."""
    from parity_helpers import hydra_value, make_submission

    from harness.board import write as boards
    from harness.compose import compose
    from harness.execution.executors import evaluate_all

    folders = [make_submission(tmp_path / "entries", name, {task: by_id}) for name, by_id in entries.items()]
    cfg = compose([f"hydra.searchpath=[file://{PARITY},file://{CONF}]", f"suite={suite}", "progress=false",
                   f"paths.results={hydra_value(tmp_path / 'store')}",
                   f"paths.leaderboards={hydra_value(tmp_path / 'boards')}"]
                  + [f"tasks.{task}.data.{key}={hydra_value(value)}" for key, value in data.items()])
    evaluate_all(cfg, dict(cfg.tasks), folders, echo=lambda message: None)
    boards.write_public(cfg, dict(cfg.tasks))
    return json.loads((tmp_path / "boards" / suite / "leaderboard.json").read_text(encoding="utf-8")), cfg


def check_board(board, task):
    rows = board["rows"]
    assert board["bootstrap"] == {"resamples": 1000, "seed": 12345, "alpha": 0.05}
    for row in rows:
        cell = row["cells"][task]
        assert cell["ci"][0] <= cell["primary"] <= cell["ci"][1]
    tiers = [row["tier"] for row in rows]
    assert tiers[0] == 1 and all(b - a in (0, 1) for a, b in zip(tiers, tiers[1:]))
    scores = [row["cells"][task]["primary"] for row in rows]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_wmt21_de_en_tiers_equal_sacrebleus_paired_bootstrap(tmp_path):
    from parity_helpers import data_file, read_lines, require_shared_data
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    root = require_shared_data().joinpath("translation", "wmt21_newstest2021_de-en")
    source = data_file(root, "sources", "newstest2021.de-en.src.de")
    ref = data_file(root, "references", "newstest2021.de-en.ref.A.en")
    outputs = sorted(p for p in (root / "system-outputs").iterdir() if p.name.endswith(".en"))
    hyps = {p.name.split(".hyp.")[1][: -len(".en")]: read_lines(p) for p in outputs}
    assert len(hyps) == 19
    task = "parity_wmt21_de_en_ref_a"
    board, _ = build_board(tmp_path, "sig_wmt21", task,
                           {name: {str(i): line for i, line in enumerate(lines)} for name, lines in hyps.items()},
                           {"files.source": source, "files.ref_A": ref})
    check_board(board, task)
    rows = board["rows"]
    refs = [read_lines(ref)]

    def sacrebleu_p(i, j):  # sacreBLEU's own paired bootstrap of entry j against entry i
        above, below = rows[i], rows[j]
        _, results = PairedTest([(above["submission"], hyps[above["submission"]]),
                                 (below["submission"], hyps[below["submission"]])], {"BLEU": BLEU()}, refs,
                                test_type="bs", n_samples=1000)()
        base, system = results["BLEU"]
        assert base.score == above["cells"][task]["primary"] and system.score == below["cells"][task]["primary"]
        for result, row in ((base, above), (system, below)):
            low, high = row["cells"][task]["ci"]
            assert result.ci == 0.5 * (high - low), row["submission"]
        return system.p_value

    for j in range(1, len(rows)):
        assert sacrebleu_p(j - 1, j) == rows[j]["p_above"], rows[j]["submission"]
    tiers = [row["tier"] for row in rows]
    assert significance.tiers(len(rows), sacrebleu_p) == tiers
    assert tiers[0] == 1 and 2 < tiers[-1] < len(rows)  # clusters: neighbours often tie, the ends do not


@pytest.mark.slow
def test_squad_systems_get_intervals_and_tiers_a_direct_bootstrap_reproduces(tmp_path):
    from parity_helpers import data_file, require_shared_data

    from harness.metrics.squad import f1_score, metric_max_over_ground_truths

    root = require_shared_data().joinpath("qa", "squad_v1.1")
    files = {"bert-ensemble": "BERT_ensemble_Google_AI_Language.json",
             "r-net-ensemble": "r_net_ensemble_Microsoft_Research_Asia.json",
             "slqa-ensemble": "SLQA_ensemble_Alibaba_iDST_NLP.json",
             "match-lstm-ensemble": "Match_LSTM_with_Ans_Ptr_Boundary_Ensemble_Singapore_Management_University.json",
             "logistic-regression": "Logistic_Regression_Baseline_Stanford_University.json"}
    answers = {name: json.loads(data_file(root, "predictions", f).read_text(encoding="utf-8"))
               for name, f in files.items()}
    task = "parity_squad_v11_dev"
    dev = data_file(root, "dev-v1.1.json")
    board, _ = build_board(tmp_path, "sig_squad", task, answers, {"path": dev})
    check_board(board, task)
    assert [row["submission"] for row in board["rows"]] == list(files)  # the published order
    # the official per-question F1 (max over gold answers), resampled directly with the same draws
    questions = [(qa["id"], [a["text"] for a in qa["answers"]])
                 for article in json.loads(dev.read_text(encoding="utf-8"))["data"]
                 for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    idxs = significance.draws(len(questions))
    direct = {}
    for name in files:
        f1 = np.array([metric_max_over_ground_truths(f1_score, answers[name].get(i, ""), golds) if i in answers[name]
                       else 0.0 for i, golds in questions], dtype=float)
        direct[name] = (100.0 * np.cumsum(f1)[-1] / len(f1), np.array([100.0 * f1[row].mean() for row in idxs]))
    rows = board["rows"]

    def direct_p(i, j):
        a, b = direct[rows[i]["submission"]], direct[rows[j]["submission"]]
        return significance.paired_p_value(a[0], b[0], a[1], b[1])

    assert [row["p_above"] for row in rows[1:]] == [direct_p(j - 1, j) for j in range(1, len(rows))]
    assert significance.tiers(len(rows), direct_p) == [row["tier"] for row in rows] == [1, 2, 2, 3, 4]
    for row in rows:
        low, high = significance.confidence_interval(direct[row["submission"]][1])
        assert row["cells"][task]["ci"] == pytest.approx([low, high], abs=1e-9)
    assert rows[-1]["tier"] > rows[0]["tier"]  # a logistic regression is not in the ensembles' tier


@pytest.mark.slow
def test_xsum_systems_get_intervals_and_tiers(tmp_path):
    from parity_helpers import data_file, read_lines, require_shared_data

    root = require_shared_data().joinpath("summarization", "xsum", "full_test_predictions")
    stems = {"t-convs2s": "topic-convs2s", "convs2s": "convs2s", "ptgen": "ptgen", "lead": "lead"}
    outputs = {name: read_lines(data_file(root, f"{stem}-test-output.txt")) for name, stem in stems.items()}
    task = "parity_xsum_refs_only"
    board, _ = build_board(tmp_path, "sig_xsum", task,
                           {name: {str(i): line for i, line in enumerate(lines)} for name, lines in outputs.items()},
                           {"files.gold": data_file(root, "gold-test-sentences.txt")})
    check_board(board, task)
    assert [row["submission"] for row in board["rows"]] == list(stems)  # the XSum paper's order on ROUGE-L
    assert [row["tier"] for row in board["rows"]] == [1, 2, 3, 4]  # 11,334 summaries separate them all
    distribution = board["rank_distribution"]
    assert distribution["t-convs2s"] == {"1": 1.0} and distribution["lead"] == {"4": 1.0}


@pytest.mark.parametrize("higher", [True, False])
def test_rank_distribution_by_sorting_equals_pairwise_counting(higher):
    """Ranks from one sort per resample equal 1 + the entries strictly better, counted pair by pair (ties from
    rounding, NaN aggregates ranked last)."""
    rng = np.random.default_rng(3)
    aggregates = np.round(rng.normal(size=(200, 40)), 1)  # many ties
    aggregates[rng.random(aggregates.shape) < 0.05] = np.nan
    names = [f"e{i}" for i in range(40)]
    values = np.where(np.isnan(aggregates), -np.inf, aggregates if higher else -aggregates)
    ranks = 1 + (values[:, None, :] > values[:, :, None]).sum(axis=2)
    expected = {name: {str(r): float(c) / 200 for r, c in enumerate(np.bincount(ranks[:, i], minlength=41)) if c}
                for i, name in enumerate(names)}
    assert significance.rank_distribution(names, aggregates, higher) == expected


def test_head_to_head_by_binary_search_equals_pairwise_counting():
    from harness.board.policies import _head_to_head

    rng = np.random.default_rng(5)
    for _ in range(20):
        values = np.round(rng.normal(size=(30, 3)), 1)
        values[rng.random(values.shape) < 0.1] = np.nan
        pool = rng.random(30) < 0.8
        rounded = np.round(values[pool], 9)
        scored = ~np.isnan(rounded)
        filled = np.where(scored, rounded, -np.inf)
        mine_scored = ~np.isnan(values)
        mine = np.where(mine_scored, values, -np.inf)
        wins = ((mine[:, None, :] > filled[None, :, :]) & mine_scored[:, None, :]).sum(axis=1)
        ties = ((mine[:, None, :] == filled[None, :, :]) & mine_scored[:, None, :] & scored[None, :, :]).sum(axis=1)
        got_wins, got_ties = _head_to_head(values, pool)
        assert (got_wins == wins).all() and (got_ties == ties - mine_scored * pool[:, None]).all()
