"""The public/private partition of a contest's test sets, and scores on one part.

Each test set is split by example id into a public part (scored on the public board) and a private part (scored
only by `harness reveal`). The split is a pure function of the contest's `partition` settings, the task's name and
its examples: seeded, independent of row order, stratified by label for classification, example ids unchanged.
Scores on a part are the metrics' own `aggregate` over that part's per-item statistics, so corpus metrics (BLEU)
are computed on the part as a whole, never averaged from items.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from harness.config import PartitionConfig, RunConfig, TaskConfig, config_hash, contest_of
from harness.contest.rules import phase_for_suite
from harness.errors import SubmissionError
from harness.scoring import Scored
from tasks import kind_of
from tasks.examples import Example, load_examples

PARTS = ("public", "private", "full")


def board_part(cfg: RunConfig) -> str:
    """The part a run's records and public board score: `full` without a contest or in a `split: full` phase,
    otherwise `public`. A run outside every phase's suite (`harness evaluate task=...`) scores the public part, so
    a contest's private part never reaches a participant-visible record by accident."""
    if cfg.contest is None:
        return "full"
    phase = phase_for_suite(cfg.contest, cfg.suite.name) if cfg.suite is not None else None
    return "full" if phase is not None and phase.split == "full" else "public"


def _public_count(fraction: float, n: int) -> int:
    """round(fraction * n), half up, leaving at least one example in each part when there are two or more."""
    count = math.floor(fraction * n + 0.5)
    return min(max(count, 1), n - 1) if n >= 2 else count


def _quotas(fraction: float, sizes: Dict[Any, int]) -> Dict[Any, int]:
    """Public examples per stratum summing to the declared total: floors, then the largest remainders."""
    total = _public_count(fraction, sum(sizes.values()))
    quotas = {key: math.floor(fraction * size) for key, size in sizes.items()}
    order = sorted(sizes, key=lambda key: (-(fraction * sizes[key] - quotas[key]), str(key)))
    while sum(quotas.values()) < total:
        for key in order:
            if sum(quotas.values()) < total and quotas[key] < sizes[key]:
                quotas[key] += 1
    return quotas


def _task_seed(name: str) -> int:
    """Each task's split is drawn independently of the others under the same contest seed."""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:16], 16)


def public_mask(task: TaskConfig, examples: Sequence[Example], partition: PartitionConfig) -> np.ndarray:
    """True for the examples in the public part, in example order."""
    strata: Dict[Any, List[int]] = {}
    stratify = partition.stratify and kind_of(task).stratified
    for index, example in enumerate(examples):
        strata.setdefault(example.target if stratify else "", []).append(index)
    quotas = _quotas(float(partition.public_fraction), {key: len(rows) for key, rows in strata.items()})
    rng = np.random.default_rng([int(partition.seed), _task_seed(task.name)])
    mask = np.zeros(len(examples), dtype=bool)
    for key in sorted(strata, key=str):
        rows = sorted(strata[key], key=lambda i: examples[i].id)  # by id: the split ignores row order
        chosen = rng.permutation(len(rows))[: quotas[key]]
        mask[[rows[i] for i in chosen]] = True
    return mask


_PUBLIC_IDS: Dict[tuple, frozenset] = {}


def public_ids(task: TaskConfig, examples: Sequence[Example], partition: PartitionConfig) -> frozenset:
    """The ids of the whole test set's public part. A run on the first examples only (`data.limit`, the sample
    `harness validate` runs) uses the whole set's partition, so a sample never scores a private example."""
    if task.data.limit is None:
        mask = public_mask(task, examples, partition)
        return frozenset(e.id for e, public in zip(examples, mask) if public)
    full = copy.deepcopy(task)
    full.data.limit = None
    key = (config_hash(full), config_hash(partition))
    if key not in _PUBLIC_IDS:
        _PUBLIC_IDS[key] = public_ids(full, load_examples(full), partition)
    return _PUBLIC_IDS[key]


def part_rows(task: TaskConfig, examples: Sequence[Example], partition: Optional[PartitionConfig], part: str) -> np.ndarray:
    """Indices (in example order) of the examples in `part`."""
    if part not in PARTS:
        raise ValueError(f"part {part!r} is not valid; use one of {', '.join(PARTS)}")
    if part == "full":
        return np.arange(len(examples))
    if partition is None:
        raise ValueError(f"part {part!r} needs the contest's partition")
    public = public_ids(task, examples, partition)
    return np.array([i for i, e in enumerate(examples) if (e.id in public) == (part == "public")], dtype=int)


def part_scores(scored: Scored, rows: np.ndarray) -> Dict[str, float]:
    """Every score of `scored` recomputed on the examples at `rows`, from its per-item statistics."""
    scores: Dict[str, float] = {}
    for metric, stats in scored.stats.values():
        values = metric.aggregate(np.asarray(stats)[rows])
        scores.update({name: float(values[name]) for name in scored.scores if name in values})
    return scores


def public_view(cfg: RunConfig, task: TaskConfig, examples: Sequence[Example], scored: Scored) -> Any:
    """What a participant-visible record holds: scores on the public part (or everything when nothing is hidden).
    Counts still describe the whole submitted file (so they are no oracle for which ids are public), plus the size
    of the scored part."""
    part = board_part(cfg)
    if part == "full":
        return scored
    rows = part_rows(task, examples, contest_of(cfg).partition, part)
    if not len(rows):  # only a sample of the examples can miss the public part entirely (validate's first few)
        raise SubmissionError("the examples scored hold no example of the public part; nothing can be shown",
                              status="n/a")
    scores = part_scores(scored, rows)
    bad = sorted(name for name, value in scores.items() if not math.isfinite(value))
    if bad:
        raise SubmissionError(f"scores {', '.join(bad)} on the public part are not finite numbers", status="bad-output")
    counts = dict(scored.counts, public_examples=int(len(rows)))
    return dataclasses.replace(scored, scores=scores, counts=counts)
