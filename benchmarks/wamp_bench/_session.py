"""One benchmark session: a transport and a ``wamp_core.ClientSession`` on it,
driven by hand (no background tasks, no per-call futures)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit

import trio

import wamp_core
from wamp_trio import MessageTransport, TransportClosed, open_transport

__all__ = ["BenchError", "Connection", "check_url", "join", "open_connection", "run_session"]

SCHEMES = ("ws", "wss", "rs", "rss", "unix", "http", "https")


class BenchError(Exception):
    """The benchmark cannot go on: the message says why."""


def check_url(url: str) -> str:
    """The URL's scheme (lower case); ``ValueError`` for one no transport has."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"unknown transport scheme in {url!r}; use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    return scheme


def open_connection(url: str, serializer: str) -> AbstractAsyncContextManager[MessageTransport]:
    """A transport to ``url`` (``wamp_trio.open_transport``; ``ValueError`` for a bad URL)."""
    check_url(url)
    return open_transport(url, serializer)


class Connection:
    """A joined session: ``transport`` and its ``session``."""

    __slots__ = ("session", "transport")

    def __init__(self, transport: MessageTransport, session: wamp_core.ClientSession) -> None:
        self.transport = transport
        self.session = session

    async def flush(self) -> None:
        """Send what the session has queued."""
        for data in self.session.data_to_send():
            await self.transport.send(data)

    async def events(self) -> list[wamp_core.SessionEvent]:
        """The events of the next transport message."""
        return self.session.receive_data(await self.transport.receive())

    async def request(self, request_id: int) -> wamp_core.SessionEvent:
        """Send what is queued and wait for the answer to ``request_id`` (other
        events are dropped); ``BenchError`` for an ERROR."""
        await self.flush()
        while True:
            for event in await self.events():
                if getattr(event, "request_id", None) != request_id:
                    continue
                if isinstance(event, wamp_core.ErrorReceived):
                    raise BenchError(f"{event.error} {event.args or ''}".rstrip())
                return event

    async def leave(self, timeout: float) -> None:
        """GOODBYE, waiting at most ``timeout`` s for the reply (events before it
        are dropped). A broken transport is no error here."""
        with trio.move_on_after(timeout):
            try:
                if self.session.state is wamp_core.ClientState.ESTABLISHED:
                    self.session.leave()
                    await self.flush()
                    while not self._closed():
                        await self.events()
            except (TransportClosed, wamp_core.ProtocolError):
                pass

    def _closed(self) -> bool:
        return self.session.state is wamp_core.ClientState.CLOSED


async def join(transport: MessageTransport, realm: str) -> Connection:
    """Join ``realm`` over ``transport``; ``BenchError`` when the router refuses."""
    connection = Connection(transport, wamp_core.ClientSession(transport.serializer))
    connection.session.join(realm)
    await connection.flush()
    while True:
        for event in await connection.events():
            if isinstance(event, wamp_core.SessionJoined):
                return connection
            if isinstance(event, wamp_core.SessionAborted):
                raise BenchError(f"the router refused realm {realm!r}: {event.reason}")
            if isinstance(event, wamp_core.ChallengeReceived):
                raise BenchError(f"realm {realm!r} wants authentication ({event.authmethod})")


async def run_session(
    url: str,
    serializer: str,
    realm: str,
    stop: trio.Event,
    *,
    leave_timeout: float = 2.0,
    task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED,
) -> None:
    """One session's life, in its own task (a transport may run tasks of its own,
    which must start and end in one task): connect, join, hand the
    ``Connection`` to ``task_status``, wait for ``stop``, leave, close. Use as
    ``connection = await nursery.start(run_session, url, serializer, realm, stop)``;
    it raises ``OSError``, ``TransportClosed`` or ``BenchError`` before starting
    when it cannot join. Other tasks may use the connection meanwhile (one
    reader at a time), and must be done with it before ``stop`` is set."""
    async with open_connection(url, serializer) as transport:
        connection = await join(transport, realm)
        task_status.started(connection)
        await stop.wait()
        await connection.leave(leave_timeout)
