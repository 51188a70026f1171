"""Evaluation harness for language-model contests."""

__version__ = "0.1.0"
