"""Turn driver exceptions into storage's typed errors, whose str() a user can read."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pymongo.errors import ConnectionFailure, PyMongoError

from storage.models import DatabaseUnavailableError, StorageError

log = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "The database is unavailable — try again shortly."
FAILED_MESSAGE = "The database could not complete that — try again shortly."


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Wrap one database call. ConnectionFailure covers refused connections, server-selection
    timeouts, network timeouts and a server that died mid-operation."""
    try:
        yield
    except ConnectionFailure as exc:
        log.warning("database unavailable during %s: %s", action, exc)
        raise DatabaseUnavailableError(UNAVAILABLE_MESSAGE) from exc
    except PyMongoError as exc:
        log.error("database error during %s: %s", action, exc)
        raise StorageError(FAILED_MESSAGE) from exc
