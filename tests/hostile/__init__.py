"""Builders of hostile submissions for tests/test_hostile.py and tests/test_validate.py."""
