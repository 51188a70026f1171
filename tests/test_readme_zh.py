"""README.zh-CN.md is kept in step with README.md: every command in its bash blocks is one of the English README's."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def commands(path: Path) -> list:
    """The commands of a markdown file's bash blocks, without their trailing `# comment` and extra spaces."""
    out = []
    for block in BASH_BLOCK.findall(path.read_text(encoding="utf-8")):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                out.append(" ".join(command.split()))
    return out


def test_every_command_of_the_chinese_readme_is_in_the_english_one():
    chinese, english = commands(ROOT / "README.zh-CN.md"), set(commands(ROOT / "README.md"))
    assert len(chinese) >= 6
    missing = [c for c in chinese if c not in english]
    assert not missing, f"README.zh-CN.md has commands README.md lacks: {missing}"


def test_both_readmes_have_a_languages_section():
    assert "\n## Languages\n" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## 语言\n" in (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
