"""CMRC 2018 exact match and F1 (Chinese extractive QA), as the task's official evaluation script computes them.

The functions below follow `squad-style-data/cmrc2018_evaluate.py` of the official repository (ymcui/cmrc2018,
"version: v5 - special"), a Python 2 script that is not a pip package, line for line in Python 3:

* "mixed segmentation": lower-cased and stripped; each CJK character (U+4E00..U+9FA5) and each character of the
  punctuation list is its own token; the runs of other characters between them are split with nltk's
  `word_tokenize`. That function first splits sentences with the Punkt model, a data download; it is called here
  with `preserve_line=True` (no sentence split), which gives the official numbers on the CMRC 2018 dev set
  (tests/test_parity_real_data.py);
* F1 per gold answer: the longest common *contiguous* run of tokens after removing the listed punctuation;
  precision = its length / prediction tokens, recall = its length / answer tokens; the max over the golds;
* EM: the prediction equals a gold answer after lower-casing, stripping and removing the listed punctuation;
* both summed in order over ALL questions and x100 / number of questions; an unanswered question counts 0.

The punctuation list is the script's: note that "……" is one two-character entry, so it never equals a single
character, and that the ASCII `, . ? !` are not in it.
"""
from __future__ import annotations

import re
from importlib import metadata
from typing import List, Optional, Sequence, Tuple

from nltk.tokenize import word_tokenize

from .squad import GoldAnswersMetric

# ---- begin: official cmrc2018_evaluate.py (v5 - special), ported to Python 3 ------------------------------------
SP_CHAR = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
           '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
           '「', '」', '（', '）', '－', '～', '『', '』']
_CJK = re.compile('[\u4e00-\u9fa5]')


def _word_tokenize(text: str) -> list:
    return word_tokenize(text, preserve_line=True)


def mixed_segmentation(in_str: str, rm_punc: bool = False) -> list:
    """Split Chinese characters and punctuation one by one, the other runs with nltk."""
    in_str = str(in_str).lower().strip()
    segs_out = []
    temp_str = ""
    for char in in_str:
        if rm_punc and char in SP_CHAR:
            continue
        if _CJK.search(char) or char in SP_CHAR:
            if temp_str != "":
                segs_out.extend(_word_tokenize(temp_str))
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char
    if temp_str != "":  # handling last part
        segs_out.extend(_word_tokenize(temp_str))
    return segs_out


def remove_punctuation(in_str: str) -> str:
    in_str = str(in_str).lower().strip()
    return ''.join(char for char in in_str if char not in SP_CHAR)


def find_lcs(s1: list, s2: list):
    """The longest common contiguous run of s1 and s2, and its length."""
    m = [[0 for _ in range(len(s2) + 1)] for _ in range(len(s1) + 1)]
    mmax = 0
    p = 0
    for i in range(len(s1)):
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                m[i + 1][j + 1] = m[i][j] + 1
                if m[i + 1][j + 1] > mmax:
                    mmax = m[i + 1][j + 1]
                    p = i + 1
    return s1[p - mmax:p], mmax


def calc_f1_score(answers: Sequence[str], prediction: str) -> float:
    f1_scores = []
    for ans in answers:
        ans_segs = mixed_segmentation(ans, rm_punc=True)
        prediction_segs = mixed_segmentation(prediction, rm_punc=True)
        lcs, lcs_len = find_lcs(ans_segs, prediction_segs)
        if lcs_len == 0:
            f1_scores.append(0)
            continue
        precision = 1.0 * lcs_len / len(prediction_segs)
        recall = 1.0 * lcs_len / len(ans_segs)
        f1 = (2 * precision * recall) / (precision + recall)
        f1_scores.append(f1)
    return max(f1_scores)


def calc_em_score(answers: Sequence[str], prediction: str) -> int:
    em = 0
    for ans in answers:
        ans_ = remove_punctuation(ans)
        prediction_ = remove_punctuation(prediction)
        if ans_ == prediction_:
            em = 1
            break
    return em
# ---- end: official cmrc2018_evaluate.py -------------------------------------------------------------------------


class Cmrc2018Metric(GoldAnswersMetric):
    """CMRC 2018 EM / F1 (official mixed segmentation, max over gold answers), 0-100. No options."""

    name = "cmrc2018"
    OPTIONS: tuple[str, ...] = ()

    def signature(self) -> str:
        return ("cmrc2018|seg:mixed(cjk-char,nltk-word_tokenize-preserve_line)|f1:longest-common-run|"
                f"em:no-punct|agg:max-over-golds|scale:100|version:nltk-{metadata.version('nltk')}")

    def kept_characters(self, text: str) -> Optional[int]:
        return sum(len(token) for token in mixed_segmentation(text))

    def answer_scores(self, prediction: str, golds: List[str]) -> Tuple[float, float]:
        return float(calc_em_score(golds, prediction)), float(calc_f1_score(golds, prediction))
