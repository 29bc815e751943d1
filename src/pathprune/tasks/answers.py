"""Pull the final answer out of a model's text.

Each answer kind has one extractor; all return ``None`` when nothing that looks
like an answer was written (a truncated path, say), which grades as wrong.

    >>> extract_answer(r"so the total is \\boxed{\\frac{1}{9}}.", "math")
    '\\\\frac{1}{9}'
    >>> extract_answer('... "ANSWER": "C"', "choice")
    'C'
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_FINAL_LINE = re.compile(
    r"(?:final answer(?:\s+is)?|answer\s+is|answer\s*:)\s*[:=]?\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)
_CHOICE_PATTERNS = (
    re.compile(r'"?ANSWER"?\s*[:=]\s*"?\(?([A-Z])\)?"?'),
    re.compile(r"(?i:answer is)\s*:?\s*\(?([A-Z])\)?\b"),  # the letter itself stays case-sensitive
    re.compile(r"\\boxed\{\s*\(?([A-Z])\)?\s*\}"),
)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (braces balanced), or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth, i = 1, start
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start : i - 1].strip()
    return None


def final_answer_line(text: str) -> str | None:
    """The text after the last "Final answer:" / "The answer is" marker."""
    matches = _FINAL_LINE.findall(text)
    if not matches:
        return None
    answer = matches[-1].strip().strip("$ ").rstrip(".")
    return answer or None


def extract_math(text: str) -> str | None:
    return last_boxed(text) or final_answer_line(text)


def extract_choice(text: str) -> str | None:
    for pattern in _CHOICE_PATTERNS:
        found = pattern.findall(text)
        if found:
            return found[-1].upper()
    return None


def extract_testbed(text: str) -> str | None:
    """Testbed completions end in ``A <answer> <eos>``; the answer is every word after the last ``A``."""
    words = text.split()
    if "A" not in words:
        return None
    cut = len(words) - 1 - words[::-1].index("A")
    answer = [w for w in words[cut + 1 :] if w not in ("<eos>", "<pad>")]
    return " ".join(answer) or None


EXTRACTORS = {
    "math": extract_math,
    "choice": extract_choice,
    "testbed": extract_testbed,
    "text": lambda text: final_answer_line(text) or (text.strip() or None),
}


def extract_answer(text: str, kind: str) -> str | None:
    """Extract the answer of the given kind (``math``, ``choice``, ``testbed``, ``text``)."""
    try:
        return EXTRACTORS[kind](text)
    except KeyError:
        raise ValueError(f"unknown answer kind {kind!r}; choose from {sorted(EXTRACTORS)}") from None
