"""The board: the ranking policies, the ranked frame, its uncertainty (intervals, tiers), its formats (markdown,
csv, json), its history and freshness, and `write` (the only module that writes a board)."""
