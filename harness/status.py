"""The one vocabulary of cell statuses, and the text limits that go with them.

Every (submission, task) cell ends in exactly one status. `ok` has scores; the *marks* are not failures of the
entry (nothing to score: a task not submitted, a task the entry cannot take part in); the *failures* are the
entry's fault or misfortune, each with a reason. Everything that prints, counts, retries or colours a cell reads
these sets instead of spelling statuses out again.
"""
from __future__ import annotations

from typing import Dict, FrozenSet

OK = "ok"
NOT_SUBMITTED = "not-submitted"  # a predictions entry without a file for the task
NOT_APPLICABLE = "n/a"  # the entry cannot be scored on the task (a baseline that does not cover it, ...)
MISSING = "missing"  # on a board: the entry has no record for the task at all
NOT_RESCORED = "not-rescored"  # on a private board: stored predictions that could not be scored on the private part
STALE = "stale"  # on a board: a record computed from another config of the task (`harness run` redoes it)

INVALID = "invalid"  # the manifest or a predictions file breaks the rules
REFUSED = "refused"  # a safety check refused the entry before anything loaded
LOAD_ERROR = "load-error"
TIMEOUT = "timeout"
OUT_OF_MEMORY = "out-of-memory"
CRASHED = "crashed"
BAD_OUTPUT = "bad-output"

# Failures of a stored cell (what `fail_on_error`, the contest's limits and `harness run`'s summary count).
FAILED: FrozenSet[str] = frozenset({INVALID, REFUSED, LOAD_ERROR, TIMEOUT, OUT_OF_MEMORY, CRASHED, BAD_OUTPUT})
# Failures that may not happen again (a slow or busy machine, a crash): `harness run` re-attempts such a cell while
# its record's `attempts` < the run config's `retries`. The other failures repeat until the entry changes; they are
# re-attempted only with `retry_failed=true`.
TRANSIENT: FrozenSet[str] = frozenset({TIMEOUT, OUT_OF_MEMORY, CRASHED})
# What a cell can say that is not a failure of the entry; a board shows these as text, never as "failed".
MARK_TEXT: Dict[str, str] = {NOT_SUBMITTED: "not submitted", NOT_APPLICABLE: "n/a", MISSING: "not evaluated",
                             STALE: "stale (task changed; run again)"}
# Statuses a stored record may have (a board adds MISSING and, on private boards, NOT_RESCORED).
RECORD_STATUSES: FrozenSet[str] = frozenset({OK, NOT_SUBMITTED, NOT_APPLICABLE} | FAILED)
# Statuses the model's child process may report for a task or a job; anything else it says is `crashed`.
CHILD_STATUSES: FrozenSet[str] = frozenset({LOAD_ERROR, TIMEOUT, OUT_OF_MEMORY, CRASHED, BAD_OUTPUT, REFUSED,
                                            NOT_APPLICABLE})
# What `harness validate` and `harness evaluate` accept: nothing failed.
ACCEPTED: FrozenSet[str] = frozenset({OK, NOT_APPLICABLE, NOT_SUBMITTED})

# Text limits: a failure's reason (one line on a board) and a log excerpt kept in the record.
REASON_CHARS = 500
LOG_CHARS = 2000
# The most one example's prediction may take as a JSON line, whether a model wrote it or a predictions file holds it.
OUTPUT_BYTES = 64 * 1024


def is_failed(status: str) -> bool:
    """A failure of the entry (also a private board's not-rescored cell: it has no score to show)."""
    return status in FAILED or status == NOT_RESCORED


def is_mark(status: str) -> bool:
    return status in MARK_TEXT
