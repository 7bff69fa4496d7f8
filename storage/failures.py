"""Turn driver exceptions into storage's typed errors, whose str() a user can read."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from storage.models import DatabaseLoginError, DatabaseUnavailableError, StorageError

log = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "The database is unavailable — try again shortly."
FAILED_MESSAGE = "The database could not complete that — try again shortly."
LOGIN_MESSAGE = "The database refused moodbot's login: check the user and password in MONGODB_URI."
AUTHENTICATION_FAILED = 18  # MongoDB's error code; retrying does not help


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
        if isinstance(exc, OperationFailure) and exc.code == AUTHENTICATION_FAILED:
            log.error("database login refused during %s: %s", action, exc)
            raise DatabaseLoginError(LOGIN_MESSAGE) from exc
        log.error("database error during %s: %s", action, exc)
        raise StorageError(FAILED_MESSAGE) from exc
