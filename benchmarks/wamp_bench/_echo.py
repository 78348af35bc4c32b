"""A bare trio echo "router": the ceiling to compare a router against.

It speaks WebSocket and RawSocket exactly as ``wamp_trio``'s listeners do (the
same transport code, the same serializers), but routes nothing: each message is
answered directly, on the connection it came from.

| received | answered with |
|---|---|
| HELLO | WELCOME (roles broker and dealer, ``shared_registration`` announced) |
| CALL | RESULT carrying the CALL's Args and KwArgs (no callee is invoked) |
| REGISTER / UNREGISTER | REGISTERED / UNREGISTERED |
| SUBSCRIBE / UNSUBSCRIBE | SUBSCRIBED / UNSUBSCRIBED (no EVENT is ever sent) |
| PUBLISH with ``acknowledge`` | PUBLISHED |
| GOODBYE | GOODBYE ``wamp.close.goodbye_and_out``, then the connection closes |

Everything else (YIELD, ERROR, unacknowledged PUBLISH, ...) is ignored. So
``rpc-latency`` and ``rpc-throughput`` run against it unchanged (the callee
session registers and is never invoked); ``fanout`` delivers nothing.

It does its I/O the way the router host does, so that it stays a ceiling: it
answers a message together with every message already buffered behind it
(``receive_buffered()``) and writes all the answers at once, without waiting
(``try_send_many()``, the rest by ``flush()``), else with ``send_many()`` or
``send()`` when the transport lacks those methods or refuses (TLS, a write in
progress). Per message it only decodes and encodes: no routing.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any

import trio

import wamp_core
from wamp_core import MessageType
from wamp_trio import MessageTransport, TransportClosed, serve_tcp, serve_unix

__all__ = ["echo_connection", "serve_echo"]

_ROLES = {
    "broker": {"features": {}},
    "dealer": {"features": {"shared_registration": True}},
}


async def echo_connection(transport: MessageTransport) -> None:
    """Answer one connection's messages until it closes (see the module's table):
    a message and those buffered behind it are answered in one write."""
    serializer = transport.serializer
    receive_buffered: Callable[[], bytes | None] | None = getattr(
        transport, "receive_buffered", None
    )
    write = _writer(transport)
    ids = itertools.count(1)
    answers: list[wamp_core.Message] = []
    closing = False
    while not closing:
        try:
            data: bytes | None = await transport.receive()
        except TransportClosed:
            return
        while data is not None:
            for message in serializer.decode(data):
                reply = _answer(message, ids)
                if reply is not None:
                    answers.append(reply)
                    closing = closing or message.type is MessageType.GOODBYE
            data = None if closing or receive_buffered is None else receive_buffered()
        if answers:
            try:
                await write(serializer.encode_many(answers))
            except TransportClosed:
                return
            answers.clear()


def _writer(transport: MessageTransport) -> Callable[[list[bytes]], Awaitable[None]]:
    """How to write several messages on ``transport``: ``try_send_many`` (then
    ``flush`` for what it left), else ``send_many``, else ``send`` each."""
    try_send_many: Callable[[list[bytes]], bool | None] | None = getattr(
        transport, "try_send_many", None
    )
    flush: Callable[[], Awaitable[None]] | None = getattr(transport, "flush", None)
    send_many: Callable[[list[bytes]], Awaitable[None]] | None = getattr(
        transport, "send_many", None
    )

    async def write(messages: list[bytes]) -> None:
        written = None if try_send_many is None else try_send_many(messages)
        if written is None:  # not taken: no such method, TLS, a write in progress
            if send_many is not None:
                await send_many(messages)
            else:
                for data in messages:
                    await transport.send(data)
        elif not written:  # taken, but the socket did not take it all
            assert flush is not None  # it comes with try_send_many
            await flush()

    return write


def _answer(message: Any, ids: itertools.count[int]) -> wamp_core.Message | None:
    kind = message.type
    if kind is MessageType.CALL:
        return wamp_core.Result(message.request, {}, message.args, message.kwargs)
    if kind is MessageType.HELLO:
        details = {
            "realm": message.realm,
            "authid": f"echo-{next(ids)}",
            "authrole": "anonymous",
            "authmethod": "anonymous",
            "roles": _ROLES,
        }
        return wamp_core.Welcome(random.randint(1, 2**53), details)
    if kind is MessageType.REGISTER:
        return wamp_core.Registered(message.request, next(ids))
    if kind is MessageType.UNREGISTER:
        return wamp_core.Unregistered(message.request)
    if kind is MessageType.SUBSCRIBE:
        return wamp_core.Subscribed(message.request, next(ids))
    if kind is MessageType.UNSUBSCRIBE:
        return wamp_core.Unsubscribed(message.request)
    if kind is MessageType.PUBLISH and message.options.get("acknowledge") is True:
        return wamp_core.Published(message.request, next(ids))
    if kind is MessageType.GOODBYE:
        return wamp_core.Goodbye({}, wamp_core.CloseReason.GOODBYE_AND_OUT)
    return None


async def serve_echo(
    host: str = "127.0.0.1",
    port: int = 0,
    unix: str | os.PathLike[str] | None = None,
    *,
    task_status: trio.TaskStatus[dict[str, str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the echo router on ``host:port`` (WebSocket at ``/ws`` and RawSocket)
    and, with ``unix``, RawSocket on that Unix socket. Use it like
    ``trio.serve_tcp``: ``urls = await nursery.start(serve_echo, "127.0.0.1", 0)``
    returns ``{"ws": ..., "rs": ...[, "unix": ...]}`` once bound."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(serve_tcp, echo_connection, host, port)
        bound = listeners[0].socket.getsockname()
        where = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        urls = {"ws": f"ws://{where}:{bound[1]}/ws", "rs": f"rs://{where}:{bound[1]}"}
        if unix is not None:
            await nursery.start(serve_unix, echo_connection, unix)
            urls["unix"] = f"unix://{os.fspath(unix)}"
        task_status.started(urls)
