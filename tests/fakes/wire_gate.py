"""A relay in front of the real database server that can hold back one command until told.

A test makes an interleaving happen for sure (a /forget between a read and the write made from
it) without touching the project's code: the driver talks to the relay as to the server. It
reads just enough of MongoDB's wire protocol to name a command and its collection (the body
section of an OP_MSG); every byte goes on as it came.
"""
from __future__ import annotations

import asyncio
import struct
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import bson

from storage.database import Database

OP_MSG = 2013
HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
INT32 = struct.Struct("<i")
BODY, DOCUMENT_SEQUENCE = 0, 1


def command_of(header: bytes, payload: bytes) -> tuple[str, Any] | None:
    """(command name, its value: the collection) of a client's OP_MSG, else None."""
    if HEADER.unpack(header)[3] != OP_MSG:
        return None
    at = 4  # flagBits
    while at < len(payload):
        kind = payload[at]
        size = INT32.unpack_from(payload, at + 1)[0]
        if kind == BODY:
            name, value = next(iter(bson.decode(payload[at + 1:at + 1 + size]).items()))
            return name, value
        at += 1 + size
    return None


# The commands that read or write a collection's documents (not the driver's hello, ping or sessions).
DATA_COMMANDS = frozenset({"find", "getMore", "aggregate", "count", "distinct", "insert", "update", "delete",
                           "findAndModify"})


class WireGate:
    """`uri(real_uri)` points a client at the relay; `hold(command, collection)` makes the next
    such command wait (`held` is set once it does) until `release()`.

    `cut(n)`: the connection that carries the n-th data command from now on (`DATA_COMMANDS`,
    counted from 0) is closed instead, the command never sent: to its client the database went
    away right then (`was_cut`). With `after=True` the command is sent and done, and its answer is
    what never arrives. `cut_next(command, collection)`: the connection that carries the next such
    command is closed instead, the command never sent. `commands` lists each data command relayed,
    (name, collection)."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.port = 0
        self.held = asyncio.Event()
        self._released = asyncio.Event()
        self._armed: tuple[str, str] | None = None
        self._cut_armed: tuple[str, str] | None = None
        self.commands: list[tuple[str, Any]] = []
        self._cut_at: int | None = None
        self._cut_after = False
        self._counted = 0
        self.was_cut = False  # since the last `cut`
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task] = set()

    def uri(self, real_uri: str) -> str:
        # Direct: else the driver, told of the server's own address by its hello, goes there.
        relayed = real_uri.replace(f":{self.server_port}/", f":{self.port}/", 1)
        return relayed + ("&" if "?" in relayed else "?") + "directConnection=true"

    def hold(self, command: str, collection: str) -> None:
        self._armed = (command, collection)

    def release(self) -> None:
        self._released.set()

    def cut(self, n: int | None, *, after: bool = False) -> None:
        """None: nothing is cut from now on."""
        self._cut_at, self._cut_after, self._counted, self.was_cut = n, after, 0, False

    def cut_next(self, command: str, collection: str) -> None:
        self._cut_armed, self.was_cut = (command, collection), False

    async def start(self) -> "WireGate":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.release()
        if self._server is not None:
            self._server.close()
        for relay in list(self._relays):
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.server_port)
        cut_reply = asyncio.Event()  # set: the next answer to this client is dropped, its connection closed
        relays = [asyncio.create_task(self._relay(client_reader, server_writer, inspect=True, cut_reply=cut_reply)),
                  asyncio.create_task(self._relay(server_reader, client_writer, inspect=False, cut_reply=cut_reply))]
        self._relays.update(relays)
        try:
            await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for relay in relays:
                relay.cancel()
                self._relays.discard(relay)
            for writer in (client_writer, server_writer):
                writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, inspect: bool,
                     cut_reply: asyncio.Event) -> None:
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                payload = await reader.readexactly(HEADER.unpack(header)[0] - HEADER.size)
                if not inspect and cut_reply.is_set():
                    return  # the answer dropped: the connection closes (_serve)
                command = command_of(header, payload) if inspect else None
                if inspect and self._armed is not None and command == self._armed:
                    self._armed = None
                    self.held.set()
                    await self._released.wait()
                if inspect and self._cut_armed is not None and command == self._cut_armed:
                    self._cut_armed, self.was_cut = None, True
                    return  # never sent: the connection closes (_serve)
                if command is not None and command[0] in DATA_COMMANDS:
                    self.commands.append(command)
                    if self._cut_at is not None:
                        self._counted += 1
                        if self._counted - 1 == self._cut_at:
                            self.was_cut = True
                            if not self._cut_after:
                                return  # never sent: the connection closes (_serve)
                            cut_reply.set()
                writer.write(header + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return


@asynccontextmanager
async def gated_database(db_server, mongo_uri: str, db_name: str) -> AsyncIterator[tuple[WireGate, Database]]:
    """A connection to the test database through a WireGate, which can hold or cut its commands on
    the wire: (gate, database). Both are closed at the end."""
    gate = await WireGate(db_server.port).start()
    try:
        gated = await Database.connect(gate.uri(mongo_uri), db_name)
        try:
            yield gate, gated
        finally:
            await gated.close()
    finally:
        await gate.close()
