"""The message transport interface every adapter piece speaks.

A ``MessageTransport`` moves whole WAMP transport messages (one WebSocket
message, one RawSocket frame payload, one long-poll body) in both directions.
The router host and the client session are written against this interface
alone; WebSocket, RawSocket and long-poll each provide an implementation.

``RouterHost`` also uses these methods when a transport has them (the WebSocket
and RawSocket transports do): ``send_many(messages)`` (several messages in one
write), ``receive_buffered()`` (a message already received, or None, without
waiting), and ``try_send_many(messages)`` with ``flush()`` (a write that never
waits: True when written, False when a rest is left for ``flush()``, None when
nothing was taken).

For keepalive (see ``RouterHost``), a transport may also have ``idle_ticks``
(an int its read path resets to 0 whenever bytes arrive, pongs included; the
host's sweep counts up in it), ``try_send_ping()`` (a PING that never waits,
answered as ``try_send_many``) and ``send_ping()`` (the awaiting way). A
transport without ``idle_ticks`` is never pinged.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import trio

from wamp_core import Serializer

__all__ = ["MessageTransport", "TransportClosed", "memory_transport_pair"]


class TransportClosed(Exception):
    """The transport is closed (by either side, or by a network failure)."""


class MessageTransport(Protocol):
    """A connected, message-based, reliable, ordered, full-duplex transport.

    ``serializer`` is the serializer negotiated for it (WebSocket subprotocol,
    RawSocket serializer id, long-poll protocol). ``info`` describes the
    connection for logs and for ``HELLO`` transport details (``type``, ``peer``,
    TLS facts ...).
    """

    serializer: Serializer
    info: dict[str, Any]

    async def send(self, data: bytes) -> None:
        """Send one transport message. Raises ``TransportClosed``."""

    async def receive(self) -> bytes:
        """Receive the next transport message. Raises ``TransportClosed`` at the end."""

    async def aclose(self) -> None:
        """Close the transport (gracefully where the protocol has a closing handshake).

        Idempotent; never raises ``TransportClosed``.
        """


class _MemoryTransport:
    """One end of ``memory_transport_pair``."""

    def __init__(
        self,
        serializer: Serializer,
        send_channel: trio.MemorySendChannel[bytes],
        receive_channel: trio.MemoryReceiveChannel[bytes],
        info: dict[str, Any],
    ) -> None:
        self.serializer = serializer
        self.info = info
        self._send = send_channel
        self._receive = receive_channel

    async def send(self, data: bytes) -> None:
        try:
            await self._send.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise TransportClosed("the transport is closed") from None

    async def receive(self) -> bytes:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosed("the transport is closed") from None

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def memory_transport_pair(
    serializer: Serializer, buffer: float = math.inf
) -> tuple[MessageTransport, MessageTransport]:
    """Two connected in-memory transports, for tests and for embedding a client
    in the same process as the router."""
    a_send, b_receive = trio.open_memory_channel[bytes](buffer)
    b_send, a_receive = trio.open_memory_channel[bytes](buffer)
    return (
        _MemoryTransport(serializer, a_send, a_receive, {"type": "memory"}),
        _MemoryTransport(serializer, b_send, b_receive, {"type": "memory"}),
    )
