"""Transient failures are retried: a `timeout`, `out-of-memory` or `crashed` cell runs again while its record's
`attempts` < `retries`; `retry_failed=true` runs every failed cell once more; other failures are kept as they are.
The model's process is replaced by a scripted outcome, so these tests load no model."""
from __future__ import annotations


import pytest
from tiny_models import write_entries

from harness import status
from harness.compose import compose
from harness.execution.executors import evaluate_all

TASK = "demo_translation"


@pytest.fixture
def scripted(scripted_jobs):
    return scripted_jobs


@pytest.fixture
def setup(tmp_path, tiny_gpt2_dir):
    subs = write_entries(tmp_path / "subs", {"gpt": ("hf-causal", tiny_gpt2_dir)}, shipped=())

    def run(*overrides):
        cfg = compose(["suite=demo", f"paths.results={tmp_path / 'store'}", "progress=false",
                       f"tasks.{TASK}.data.limit=3", *overrides])
        [record] = evaluate_all(cfg, {TASK: cfg.tasks[TASK]}, [subs / "gpt"], echo=lambda m: None)
        return record

    return run


@pytest.mark.parametrize("transient", sorted(status.TRANSIENT))
def test_transient_failures_are_retried_up_to_retries(setup, scripted, transient):
    plan, calls = scripted
    plan += [transient, transient, transient]
    first = setup()
    assert (first["status"], first["attempts"]) == (transient, 1)
    second = setup()  # 1 < retries (2): attempted again
    assert (second["status"], second["attempts"], len(calls)) == (transient, 2, 2)
    third = setup()  # 2 attempts made: kept
    assert (third["status"], third["attempts"], len(calls)) == (transient, 2, 2)
    assert setup("retries=3")["attempts"] == 3 and len(calls) == 3


def test_a_retry_that_succeeds_is_kept(setup, scripted):
    plan, calls = scripted
    plan += ["crashed", "ok"]
    assert setup()["status"] == "crashed"
    record = setup()
    assert (record["status"], record["attempts"]) == ("ok", 2) and record["primary"] is not None
    assert setup()["status"] == "ok" and len(calls) == 2  # an ok cell is never run again


@pytest.mark.parametrize("lasting", ["bad-output", "load-error"])
def test_lasting_failures_are_retried_only_on_request(setup, scripted, lasting):
    plan, calls = scripted
    plan += [lasting, lasting, "ok"]
    assert setup()["status"] == lasting
    assert setup()["status"] == lasting and len(calls) == 1  # never automatically
    assert setup("retry_failed=true")["attempts"] == 2 and len(calls) == 2  # once on request
    transient_after = setup("retry_failed=true")
    assert transient_after["status"] == "ok" and len(calls) == 3


def test_retries_is_checked(setup):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="retries"):
        setup("retries=0")
