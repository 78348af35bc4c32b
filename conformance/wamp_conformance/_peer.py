"""A raw WAMP peer for the conformance scenarios: it sends exactly the messages
(or bytes) a scenario gives it and hands back exactly what the router sends,
checking nothing on its own."""

from __future__ import annotations

from typing import Any, TypeVar

import trio

from wamp_core import (
    CLIENT_ROLES,
    Abort,
    Goodbye,
    Hello,
    Message,
    ProtocolError,
    SequentialIds,
    Serializer,
    Welcome,
)
from wamp_trio._transport import MessageTransport, TransportClosed

__all__ = ["CLOSED", "Failure", "Peer", "Skip"]

M = TypeVar("M", bound=Message)


class Failure(Exception):
    """The router did not do what the spec says (the scenario fails)."""


class Skip(Exception):
    """The scenario does not apply to this router (not announced, not offered)."""


class _Closed:
    """What ``Peer.receive`` returns once the router closed the transport."""

    def __repr__(self) -> str:
        return "the transport closed"


CLOSED = _Closed()


def describe(item: Message | _Closed | None) -> str:
    """A short description of what arrived, for failure messages."""
    if item is None:
        return "nothing"
    if isinstance(item, _Closed):
        return "the transport closed"
    text = repr(item)
    return text if len(text) <= 300 else text[:297] + "..."


class Peer:
    """One transport connection to the router under test.

    ``send`` encodes with the peer's serializer, ``send_raw`` sends bytes as
    one transport message; ``receive``, ``expect`` and ``expect_nothing`` read
    what the router sent, in order (a batched transport message yields several).
    """

    def __init__(
        self, transport: MessageTransport, serializer: Serializer, name: str, timeout: float
    ) -> None:
        self.transport = transport
        self.serializer = serializer
        self.name = name
        self.timeout = timeout
        self.requests = SequentialIds()
        self.session_id = 0
        self.welcome: Welcome | None = None
        self._inbox: list[Message] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"<Peer {self.name} session={self.session_id}>"

    def req(self) -> int:
        """The next sequential request ID (BP/building_blocks.md, "IDs")."""
        return self.requests()

    async def send(self, *messages: Message) -> None:
        """Send each message in its own transport message."""
        for message in messages:
            await self.send_raw(self.serializer.encode(message))

    async def send_raw(self, data: bytes) -> None:
        """Send ``data`` as one transport message (a closed transport is ignored:
        the next ``receive`` reports it)."""
        try:
            await self.transport.send(data)
        except TransportClosed:
            self.closed = True

    async def receive(self, timeout: float | None = None) -> Message | _Closed | None:
        """The next message, ``CLOSED`` once the transport closed, or None when
        nothing came within ``timeout`` seconds (default: the peer's)."""
        if self._inbox:
            return self._inbox.pop(0)
        if self.closed:
            return CLOSED
        with trio.move_on_after(self.timeout if timeout is None else timeout):
            try:
                data = await self.transport.receive()
            except TransportClosed:
                self.closed = True
                return CLOSED
            try:
                messages = self.serializer.decode(data)
            except ProtocolError as exc:
                raise Failure(
                    f"{self.name}: the router sent an undecodable message: {exc}"
                ) from None
            self._inbox.extend(messages)
            return self._inbox.pop(0)
        return None

    async def expect(self, *kinds: type[M], what: str = "", timeout: float | None = None) -> M:
        """The next message, which must be one of ``kinds``; else ``Failure``."""
        item = await self.receive(timeout)
        if isinstance(item, kinds):
            return item
        names = " or ".join(kind.__name__.upper() for kind in kinds)
        where = f" {what}" if what else ""
        raise Failure(f"{self.name}: expected {names}{where}, got {describe(item)}")

    async def expect_nothing(self, duration: float = 0.3, what: str = "") -> None:
        """Nothing may arrive within ``duration`` seconds."""
        item = await self.receive(duration)
        if item is not None:
            where = f" ({what})" if what else ""
            raise Failure(f"{self.name}: expected nothing{where}, got {describe(item)}")

    async def expect_closed(self, timeout: float | None = None) -> list[Message]:
        """Read until the router closes the transport; the messages that came
        first. ``Failure`` if it stays open."""
        seen: list[Message] = []
        for _ in range(100):
            item = await self.receive(timeout)
            if isinstance(item, _Closed):
                return seen
            if item is None:
                raise Failure(f"{self.name}: expected the transport to close; it stayed open")
            seen.append(item)
        raise Failure(f"{self.name}: expected the transport to close; messages kept coming")

    async def expect_abort(self, reason: str | None = None, what: str = "") -> Abort:
        """ABORT (with ``reason``, when given); the transport may close after it."""
        abort = await self.expect(Abort, what=what)
        if reason is not None and abort.reason != reason:
            raise Failure(f"{self.name}: expected ABORT {reason}, got ABORT {abort.reason}")
        return abort

    async def hello(self, realm: str, roles: dict[str, Any] | None = None, **details: Any) -> None:
        """Send HELLO (every client role and feature, unless ``roles``)."""
        await self.send(
            Hello(realm, {"roles": CLIENT_ROLES if roles is None else roles, **details})
        )

    async def join(
        self, realm: str, roles: dict[str, Any] | None = None, **details: Any
    ) -> Welcome:
        """HELLO, then WELCOME expected."""
        await self.hello(realm, roles, **details)
        welcome = await self.expect(Welcome, what=f"after HELLO to realm {realm!r}")
        self.welcome = welcome
        self.session_id = welcome.session
        return welcome

    async def leave(self) -> None:
        """GOODBYE, then the router's GOODBYE expected (BP/sessions.md)."""
        await self.send(Goodbye({}, "wamp.close.close_realm"))
        await self.expect(Goodbye, what="in reply to GOODBYE")

    async def aclose(self) -> None:
        """Close the transport."""
        with trio.move_on_after(2) as scope:
            scope.shield = True
            await self.transport.aclose()
