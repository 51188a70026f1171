"""Errors a user can fix. The CLI prints their message (no traceback) and exits with their code."""
from __future__ import annotations


class HarnessError(Exception):
    exit_code = 2


class ConfigError(HarnessError):
    """A run, task or suite config is wrong (exit 2)."""


class SubmissionError(HarnessError):
    """A submission was rejected (exit 1). `status` is the typed failure recorded for its cells."""

    exit_code = 1

    def __init__(self, message: str, status: str = "invalid"):
        super().__init__(message)
        self.status = status
