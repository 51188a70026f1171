"""Real datasets as they come: blank rows are data, and the WikiText recipe of lm-evaluation-harness.

The shipped `wikitext2` task runs on a local copy of WikiText-2 raw test rows (empty rows included, as the hub
stores them), and a translation task whose reference file has empty lines is scored as sacrebleu scores it. The
copies are built here from the repository's sibling `shared/data` where it exists, else from a few literal rows.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import sacrebleu
from omegaconf import OmegaConf

from harness.config import TaskConfig
from harness.errors import ConfigError
from parity_helpers import evaluate_cli, make_submission, shared_data_dir
from tasks import kind_of
from tasks.transforms import wikitext_detokenize

RAW = ["", " = Robert Boulter = \n", "", " Robert Boulter is an English film , television and theatre actor . He had "
       "a guest @-@ starring role on the television series The Bill in 2000 . \n", "",
       " In 2006 , Boulter starred alongside Whishaw in the play Citizenship written by Mark Ravenhill . \n", "",
       " = = Career = = \n", "", " The 1 @,@ 000 @.@ 5 people ( \" quoted \" ) saw it in 2004 's season . \n"]


def wikitext_rows(limit: int = 400) -> list:
    """WikiText-2 raw test rows as the hub's `datasets` rows (PROVENANCE.md of the shared copy says how)."""
    path = shared_data_dir() / "language_modeling" / "wikitext-2" / "wiki.test.raw.reconstructed"
    if not path.is_file():
        return RAW
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(line + "\n") if line.strip() else "" for line in lines][:limit]


def shipped_task(name: str, **changes) -> TaskConfig:
    root = Path(__file__).resolve().parents[1]
    loaded = OmegaConf.load(root / "tasks" / "task" / f"{name}.yaml")
    return OmegaConf.merge(OmegaConf.structured(TaskConfig), loaded, changes)


def test_wikitext_detokenize_is_lm_evaluation_harness_rule():
    samples = RAW + wikitext_rows()
    expected = [" The 1,000.5 people (\"quoted\") saw it in 2004's season.\n"]
    assert wikitext_detokenize(RAW[-1]) == expected[0]
    lm_eval = pytest.importorskip("lm_eval.tasks.wikitext.preprocess_wikitext", reason="lm_eval not installed")
    for text in samples:
        assert wikitext_detokenize(text) == lm_eval.wikitext_detokenizer({"page": text})


def test_language_modeling_example_reads_transformed_text_and_counts_the_original():
    task = shipped_task("wikitext2")
    example = kind_of(task).make_example(task, "3", {"text": RAW[3]}, "task wikitext2: data")
    assert example.inputs["text"] == wikitext_detokenize(RAW[3]) != RAW[3] and example.target == RAW[3]
    counted = shipped_task("wikitext2", count_on="transformed")
    assert kind_of(counted).make_example(counted, "3", {"text": RAW[3]}, "w").target == wikitext_detokenize(RAW[3])
    with pytest.raises(ConfigError, match="transform 'nope' is not a registered text transform.*wikitext_detokenize"):
        bad = shipped_task("wikitext2", transform="nope")
        kind_of(bad).make_example(bad, "3", {"text": RAW[3]}, "w")
    blank = kind_of(task).make_example(task, "0", {"text": ""}, "w")
    assert blank.inputs["text"] == "" and blank.target == ""


def test_unmapped_or_null_field_is_a_config_error_naming_the_example():
    task = shipped_task("wikitext2")
    with pytest.raises(ConfigError, match=r"task wikitext2: data: example '7': .*needs field\(s\) text mapped"):
        kind_of(task).make_example(task, "7", {}, "task wikitext2: data")
    with pytest.raises(ConfigError, match=r"example '8': field\(s\) text hold no value \(null\)"):
        kind_of(task).make_example(task, "8", {"text": None}, "task wikitext2: data")


def test_shipped_wikitext2_runs_on_hub_rows_with_blank_documents(tmp_path):
    rows = wikitext_rows()
    assert "" in rows
    data = tmp_path / "wikitext2_test.jsonl"
    data.write_text("".join(json.dumps({"text": text}) + "\n" for text in rows), encoding="utf-8")
    predictions, logprob = {}, 0.0
    for i, text in enumerate(rows):  # made-up log-likelihoods; a blank document has no tokens and scores log 1
        n_tokens = len(wikitext_detokenize(text).split())
        predictions[str(i)] = {"logprob": -2.5 * n_tokens, "n_tokens": n_tokens}
        logprob += -2.5 * n_tokens
    folder = make_submission(tmp_path / "entries", "made-up-lm", {"wikitext2": predictions})
    record = evaluate_cli(folder, "wikitext2", tmp_path / "store",
                          {"source": "local", "path": data, "name": "null", "split": "null"})
    assert record["status"] == "ok", record["reason"]
    assert record["counts"]["blank_documents"] == rows.count("") > 0
    words = sum(len(re.split(r"\s+", t.strip())) if t.strip() else 0 for t in rows)  # on the original rows
    n_bytes = sum(len(t.encode("utf-8")) for t in rows)
    assert record["scores"]["word_perplexity"] == pytest.approx(math.exp(-logprob / words), rel=1e-12)
    assert record["scores"]["bits_per_byte"] == pytest.approx(-logprob / n_bytes / math.log(2), rel=1e-12)
    signature = record["signatures"]["perplexity"]
    assert "last-window:full" in signature and "transform:wikitext_detokenize|counted:original" in signature


def test_translation_with_empty_reference_lines_scores_as_sacrebleu(tmp_path):
    sources = ["Guten Morgen.", "Wie geht es?", "", "Danke schön.", "Bis morgen."]
    refs = ["Good morning.", "How are you?", "", "Thank you very much.", ""]
    hyps = ["Good morning.", "How is it going?", "", "Thanks a lot.", "See you tomorrow."]
    (tmp_path / "src.de").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (tmp_path / "ref.en").write_text("\n".join(refs) + "\n", encoding="utf-8")
    folder = make_submission(tmp_path / "entries", "mt", {"parity_wmt21_de_en_ref_a": dict(enumerate(hyps))})
    record = evaluate_cli(folder, "parity_wmt21_de_en_ref_a", tmp_path / "store",
                          {"files.source": tmp_path / "src.de", "files.ref_A": tmp_path / "ref.en"})
    assert record["status"] == "ok", record["reason"]
    assert record["scores"]["bleu"] == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert record["scores"]["chrf"] == sacrebleu.corpus_chrf(hyps, [refs]).score
