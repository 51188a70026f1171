"""Languages: a task's BCP-47 tag, its primary subtag, and the Unicode script its text is written in.

A task declares the language of its references (`language:`, for translation the target; `source_language:` the
source). Only the primary subtag decides anything (`zh-Hant` -> `zh`, `EN-us` -> `en`); metric defaults follow
from it (each metric's `options_from_task`). The script table below is what the data guard (harness.guard) checks
the references against.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable, Optional

DEFAULT_LANGUAGE = "en"  # what a task without `language:` is scored as (with a warning)

# RFC 5646 "langtag" shape (grandfathered and private-use-only tags are not accepted): a 2-3 letter primary
# subtag (4-8 reserved / registered), extlang, script, region, variants, extensions, private use.
_BCP47 = re.compile(
    r"^(?P<primary>[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})"
    r"(?:-[A-Za-z]{4})?"
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*"
    r"(?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?$"
)

CJK_CHAR_LANGUAGES = ("zh", "ja")  # scored over characters (ROUGE), character perplexity
ASIAN_LANGUAGES = ("zh", "ja", "ko")  # sacrebleu's language-specific tokenizers, TER's asian support


def primary_subtag(tag: str) -> str:
    """The lower-cased primary language subtag of a BCP-47 tag. Raises ValueError for a malformed tag."""
    if not isinstance(tag, str) or not _BCP47.match(tag.strip()) or tag != tag.strip():
        raise ValueError(f"{tag!r} is not a BCP-47 language tag (e.g. en, zh, zh-Hant, ja, ko, de-CH)")
    return tag.split("-")[0].lower()


def task_language(task) -> str:
    """The primary subtag of a task's `language` (English where it is absent)."""
    tag = getattr(task, "language", None)
    return DEFAULT_LANGUAGE if tag is None else primary_subtag(tag)


# ---------------------------------------------------------------------------------------------- scripts

# Ranges of the scripts the guard tells apart (a character's script by its code point; letters only are counted).
_SCRIPT_RANGES = (
    ("Han", ((0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B), (0x3400, 0x4DBF),
             (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))),
    ("Kana", ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F), (0x1B000, 0x1B16F))),
    ("Hangul", ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7AF), (0xD7B0, 0xD7FF),
                (0xFFA0, 0xFFDC))),
)


def script_of(char: str) -> Optional[str]:
    """The script of a letter (Han, Kana, Hangul, Latin, or the first word of its Unicode name, e.g. CYRILLIC);
    None for a character that is not a letter."""
    if not unicodedata.category(char).startswith("L"):
        return None
    code = ord(char)
    for name, ranges in _SCRIPT_RANGES:
        if any(lo <= code <= hi for lo, hi in ranges):
            return name
    words = unicodedata.name(char, "").split()
    if not words:
        return "Unknown"
    if words[0] in ("LATIN", "FULLWIDTH") and "LATIN" in words:
        return "Latin"
    return words[0].capitalize()


def script_counts(texts: Iterable[str]) -> Counter:
    """How many letters of each script the texts hold (characters counted first, so each distinct character's
    script is looked up once)."""
    characters: Counter = Counter()
    for text in texts:
        characters.update(text)
    counts: Counter = Counter()
    for char, n in characters.items():
        script = script_of(char)
        if script is not None:
            counts[script] += n
    return counts


# Languages written in the Latin script (the primary subtags the script check knows as Latin-script).
LATIN_LANGUAGES = frozenset(
    "af az br bs ca cs cy da de en eo es et eu fi fil fo fr fy ga gd gl ha hr ht hu id ig is it jv ku la lb lt lv "
    "mg mi ms mt nb nl nn no oc pl pt qu rm ro sk sl sm so sq sv sw tl tk tr uz vi wo xh yo zu".split())


def script_problem(language: str, counts: Counter) -> Optional[str]:
    """Why letters with these script counts cannot be text of `language` (a primary subtag), or None when they
    can, or when the language is outside the table (zh, ja, ko, Latin-script languages)."""
    total = sum(counts.values())
    if total == 0:
        return None
    share = {script: n / total for script, n in counts.items()}
    han, kana, hangul, latin = (share.get(s, 0.0) for s in ("Han", "Kana", "Hangul", "Latin"))
    if language == "zh" and han < 0.5:
        return f"Han characters are {han:.0%} of the letters (Chinese needs at least 50%)"
    if language == "ja" and (han + kana < 0.5 or counts.get("Kana", 0) == 0):
        return f"Han and kana are {han + kana:.0%} of the letters, kana {kana:.0%} (Japanese needs at least 50%, " \
               f"with some kana)"
    if language == "ko" and hangul < 0.5:
        return f"Hangul is {hangul:.0%} of the letters (Korean needs at least 50%)"
    if language in LATIN_LANGUAGES and latin < 0.5:
        return f"Latin letters are {latin:.0%} of the letters (a Latin-script language needs at least 50%)"
    return None


def describe_scripts(counts: Counter, top: int = 3) -> str:
    """`Han 92%, Latin 8%`: the main scripts of the letters counted."""
    total = sum(counts.values())
    if not total:
        return "no letters"
    return ", ".join(f"{script} {n / total:.0%}" for script, n in counts.most_common(top))


def guess_language(counts: Counter) -> Optional[str]:
    """A language tag the letters fit (zh, ja, ko, en for Latin), for the error's suggestion; None if unsure."""
    for language in ("ja", "zh", "ko"):
        if script_problem(language, counts) is None:
            return language
    if script_problem("en", counts) is None:
        return "en (or the Latin-script language it is)"
    return None
