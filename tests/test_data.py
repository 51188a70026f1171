"""harness.data: line-aligned text as the harness, the parity tests and the benchmarks all read it; data config
errors name the key."""
from __future__ import annotations

import pytest

from harness.config import DataConfig
from harness.data import load_rows, read_lines
from harness.errors import ConfigError


@pytest.mark.parametrize("raw, lines", [
    (b"a\nb\n", ["a", "b"]),  # the final newline ends the last line
    (b"a\nb", ["a", "b"]),
    (b"a\n\nb\n", ["a", "", "b"]),  # an empty line is a line
    (b"a\r\nb\n", ["a\r", "b"]),  # only \n splits: a \r is text, as in the WMT files
    ("a\u2028b\nc\n".encode("utf-8"), ["a\u2028b", "c"]),  # a Unicode line separator inside a line is text
    (b"", []),
])
def test_read_lines_splits_on_newline_only(tmp_path, raw, lines):
    path = tmp_path / "f.txt"
    path.write_bytes(raw)
    assert read_lines(path) == lines


def test_text_files_are_read_with_read_lines(tmp_path):
    (tmp_path / "src.txt").write_bytes(b"x\r\ny\n")
    (tmp_path / "ref.txt").write_bytes(b"X\nY")
    cfg = DataConfig(files={"source": str(tmp_path / "src.txt"), "reference": str(tmp_path / "ref.txt")})
    rows = load_rows(cfg, "task t: data")
    assert [(r["source"], r["reference"]) for r in rows] == [("x\r", "X"), ("y", "Y")]


def test_a_file_format_without_a_path_names_the_key():
    with pytest.raises(ConfigError, match=r"task t: data.path: format jsonl reads one data file; set `path`"):
        load_rows(DataConfig(format="jsonl"), "task t: data")
