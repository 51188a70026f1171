"""Contests: the rules (pure: times, phases, checks), the ledger on disk (lock, entries, final choices), the
public/private split of each test set, and the participant's use cases (submit, select)."""
