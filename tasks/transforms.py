"""Registered text transforms a task may apply to a document before the model reads it (`transform:` in a task
YAML, recorded in the cell's keys and the perplexity signature).

`wikitext_detokenize` is lm-evaluation-harness 0.4.13's `wikitext_detokenizer` (tasks/wikitext/
preprocess_wikitext.py), rule for rule, so a WikiText task can reproduce that harness's recipe: the model reads the
detokenised text while words and bytes are counted on the original (`count_on: original`).
"""
from __future__ import annotations

import re
from typing import Callable, Dict

from harness.errors import ConfigError


def wikitext_detokenize(string: str) -> str:
    # contractions
    string = string.replace("s '", "s'")
    string = re.sub(r"/' [0-9]/", r"/'[0-9]/", string)
    # number separators
    string = string.replace(" @-@ ", "-")
    string = string.replace(" @,@ ", ",")
    string = string.replace(" @.@ ", ".")
    # punctuation
    string = string.replace(" : ", ": ")
    string = string.replace(" ; ", "; ")
    string = string.replace(" . ", ". ")
    string = string.replace(" ! ", "! ")
    string = string.replace(" ? ", "? ")
    string = string.replace(" , ", ", ")
    # double brackets
    string = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", string)
    string = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", string)
    string = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", string)
    string = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', string)
    string = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", string)
    # miscellaneous
    string = string.replace("= = = =", "====")
    string = string.replace("= = =", "===")
    string = string.replace("= =", "==")
    string = string.replace(" " + chr(176) + " ", chr(176))
    string = string.replace(" \n", "\n")
    string = string.replace("\n ", "\n")
    string = string.replace(" N ", " 1 ")
    string = string.replace(" 's", "'s")
    return string


TRANSFORMS: Dict[str, Callable[[str], str]] = {"wikitext_detokenize": wikitext_detokenize}
COUNT_ON = ("original", "transformed")


def text_transform(task_name: str, name: str) -> Callable[[str], str]:
    """The transform registered as `name`; a ConfigError naming the task and the valid names otherwise."""
    if name not in TRANSFORMS:
        raise ConfigError(f"task {task_name}: transform {name!r} is not a registered text transform; use one of "
                          f"{', '.join(TRANSFORMS)}")
    return TRANSFORMS[name]
