"""Text as the platforms' JSON can deliver it: half of an emoji's surrogate pair.

JSON writes a character beyond U+FFFF as two \\u escapes, and a message or file name cut between
them (a client's or server's truncation by UTF-16 units) decodes to a lone surrogate, which no
database, log or HTTP query can encode: every later step failed with "something went wrong".
"""
from __future__ import annotations

from typing import Any


def mended(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (a pair written as two halves is joined)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def mended_json(value: Any) -> Any:
    """A parsed JSON value with every string in it (keys too) `mended`; the same object when none
    needed it."""
    if isinstance(value, str):
        return mended(value)
    if isinstance(value, dict):
        return {mended_json(key): mended_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mended_json(item) for item in value]
    return value
