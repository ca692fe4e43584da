"""Text normalization shared by every room that compares texts (dedup, SimHash, battery inference, BLEnD answers).

One definition, so that "the same question" means the same thing wherever texts are compared.
"""

from __future__ import annotations

import re

_NOT_WORD = re.compile(r"[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased words, punctuation read as spaces."""
    return _NOT_WORD.sub(" ", text.lower()).split()


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed: the key of exact-duplicate checks."""
    return " ".join(words(text))


def slug(text: str) -> str:
    """A file- and id-safe form: runs of characters other than a-z and 0-9 become one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
