"""Cache keys shared by the fetcher and storage: "spotify:<id>", "youtube:<id>", "sha256:<hex>"."""
from __future__ import annotations

import hashlib
from pathlib import Path

from bot.sources.models import Query, TrackInfo

HASH_CHUNK_BYTES = 1024 * 1024


def cache_key(item: TrackInfo | Query) -> str | None:
    """The key a song is stored under; None for free text that is not resolved yet."""
    if item.spotify_id:
        return f"spotify:{item.spotify_id}"
    if item.youtube_id:
        return f"youtube:{item.youtube_id}"
    if isinstance(item, TrackInfo) and item.key:
        return item.key
    return None


def file_cache_key(path: Path | str) -> str:
    """"sha256:<hex>" of a file's content, read in chunks so a big upload never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
