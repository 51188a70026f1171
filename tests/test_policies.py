"""Ranking policies as plug-ins: every policy registered in harness.board.policies.POLICIES meets the contract
the board, the page and the tiers rely on (one number per row, its direction stated once, NaN outside the pool).

A new policy is one aggregate function plus one `Policy` entry; this test then covers it without a change."""
from __future__ import annotations

import numpy as np
import pytest

from harness.board.policies import POLICIES, Policy, policy, policy_aggregate
from harness.errors import ConfigError

NAMES = sorted(POLICIES)


def _table(seed: int = 0, rows: int = 6, tasks: int = 3):
    """Scores oriented so that higher is better (NaN: no score), a baseline row and a pool that leaves one out."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 100, size=(rows, tasks))
    if tasks > 1:
        values[2, 1] = np.nan  # a failed cell
    baseline = np.zeros(rows, dtype=bool)
    baseline[0] = True
    pool = np.ones(rows, dtype=bool)
    pool[-1] = False  # an unranked entry: takes no part in the others' aggregates
    return values, baseline, pool


def _better(p: Policy, a: float, b: float) -> bool:
    return a > b if p.higher_is_better else a < b


@pytest.mark.parametrize("name", NAMES)
def test_policy_is_registered_under_its_name_and_describes_its_direction(name):
    p = policy(name)
    assert isinstance(p, Policy) and p.name == name
    assert p.description.strip() and p.description.endswith(".")
    direction = "higher is better" if p.higher_is_better else "lower is better"
    assert direction in p.description  # the text printed under the board says the direction the ranks follow


@pytest.mark.parametrize("name", NAMES)
def test_aggregate_is_one_finite_number_per_pool_row_and_nan_outside(name):
    values, baseline, pool = _table()
    out = policy_aggregate(values, baseline, pool, name)
    assert out.shape == (values.shape[0],)
    assert np.isfinite(out[pool]).all()
    assert np.isnan(out[~pool]).all()
    raw = POLICIES[name].aggregate(values, baseline, pool, None)
    assert raw.shape == (values.shape[0],)


@pytest.mark.parametrize("name", NAMES)
def test_rows_outside_the_pool_do_not_move_the_pool(name):
    values, baseline, pool = _table()
    changed = values.copy()
    changed[~pool] = 1e6  # an unranked entry far ahead on every task
    np.testing.assert_allclose(policy_aggregate(values, baseline, pool, name)[pool],
                               policy_aggregate(changed, baseline, pool, name)[pool])


@pytest.mark.parametrize("name", NAMES)
def test_an_entry_best_on_every_task_has_the_best_aggregate_in_the_policy_direction(name):
    p = POLICIES[name]
    values, baseline, pool = _table(seed=1)
    values[3] = values[np.isfinite(values)].max() + 10.0  # row 3 beats everyone everywhere
    out = policy_aggregate(values, baseline, pool, name)
    others = [i for i in np.flatnonzero(pool) if i != 3 and not baseline[i]]
    assert all(_better(p, out[3], out[i]) for i in others)


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_cell_never_helps(name):
    p = POLICIES[name]
    values, baseline, pool = _table(seed=2)
    missing = values.copy()
    missing[4, 0] = np.nan
    before, after = policy_aggregate(values, baseline, pool, name)[4], policy_aggregate(missing, baseline, pool, name)[4]
    assert before == pytest.approx(after) or _better(p, before, after)


@pytest.mark.parametrize("name", NAMES)
def test_a_suite_without_tasks_gives_zero_in_the_pool(name):
    values, baseline, pool = _table(tasks=0)
    out = policy_aggregate(values, baseline, pool, name)
    assert (out[pool] == 0).all() and np.isnan(out[~pool]).all()


def test_an_unknown_policy_is_a_config_error_naming_the_key_and_the_valid_names():
    with pytest.raises(ConfigError, match=r"ranking: 'best' is not valid; use one of " + ", ".join(POLICIES)):
        policy("best")


def test_the_usage_text_lists_every_policy():
    from harness.cli import usage

    text = usage()
    assert f"ranking ({'|'.join(POLICIES)})" in text
