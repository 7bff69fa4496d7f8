"""Turn driver exceptions into storage's typed errors, whose str() a user can read."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from storage.models import DatabaseLoginError, DatabaseUnavailableError, StorageError

log = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "The database is unavailable — try again shortly."
FAILED_MESSAGE = "The database could not complete that — try again shortly."
LOGIN_MESSAGE = "The database refused moodbot's login: check the user and password in MONGODB_URI."
AUTHENTICATION_FAILED = 18  # MongoDB's error code; retrying does not help
# What a write error quotes of the data itself: a refused batch's documents ("op": a request's
# user id, an upload's file name), a duplicate key's values ("keyValue", and "dup key: {...}" in
# its message), a field's refused value. Log lines name users only hashed and hold no file name
# or note, so these are left out; the codes, index and field names, which tell what went wrong, stay.
DATA_FIELDS = frozenset({"op", "keyValue", "consideredValue"})
LEFT_OUT = "<left out>"
_DUP_KEY_VALUES = re.compile(r"(dup key: )\{.*\}", re.DOTALL)


def _without_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: LEFT_OUT if k in DATA_FIELDS else _without_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_data(v) for v in value]
    if isinstance(value, str):
        return _DUP_KEY_VALUES.sub(rf"\1{LEFT_OUT}", value)
    return value


def described(exc: PyMongoError) -> str:
    """The driver's error for the log, without the data it quotes (`DATA_FIELDS`)."""
    details = getattr(exc, "details", None)
    if not details:  # a connection failure: hosts and timeouts, no data
        return str(exc)
    return f"{type(exc).__name__}: {_without_data(details)}"


class _Outage:
    """Calls failed since the database last answered: one request with it down makes several (a
    journal answer, five), each waiting out the server selection, so the first of an outage is
    the WARNING and the rest are at DEBUG; the first call answered after them says so."""
    failed = 0


def unavailable(exc: ConnectionFailure) -> str:
    """The driver's words of an outage, the hosts and the error, without the topology description
    a server-selection timeout adds (every server's state again, some 800 characters)."""
    return str(exc).split(", Topology Description: ", 1)[0]


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Wrap one database call. ConnectionFailure covers refused connections, server-selection
    timeouts, network timeouts and a server that died mid-operation."""
    try:
        yield
    except ConnectionFailure as exc:
        level = logging.WARNING if _Outage.failed == 0 else logging.DEBUG
        _Outage.failed += 1
        log.log(level, "database unavailable during %s: %s", action, unavailable(exc))
        raise DatabaseUnavailableError(UNAVAILABLE_MESSAGE) from exc
    except PyMongoError as exc:
        if isinstance(exc, OperationFailure) and exc.code == AUTHENTICATION_FAILED:
            log.error("database login refused during %s: %s", action, described(exc))
            raise DatabaseLoginError(LOGIN_MESSAGE) from exc
        log.error("database error during %s: %s", action, described(exc))
        raise StorageError(FAILED_MESSAGE) from exc
    else:
        if _Outage.failed:
            log.info("database answering again after %d failed calls", _Outage.failed)
            _Outage.failed = 0
