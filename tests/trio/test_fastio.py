"""Direct socket I/O (wamp_trio._fastio) and the transports' try_send_many / flush,
over real loopback sockets."""

from __future__ import annotations

import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
from wsproto.events import BytesMessage, Ping, Pong

from tests.trio.test_rawsocket import handshake, make_tls_contexts, tcp_stream_pair
from tests.trio.test_websocket import RawClient, raw_pair
from wamp_trio._fastio import read_nowait, receive_some, socket_of, write_nowait
from wamp_trio._rawsocket import RawSocketTransport
from wamp_trio._transport import TransportClosed
from wamp_trio._websocket import WebSocketTransport, accept_websocket, connect_websocket

KiB = 1024
MiB = 1024 * KiB
BIG = 256 * KiB  # size of the messages used to fill the socket buffers
MAX_FILL = 200  # bound on the try_send_many calls before the kernel refuses some

# -- helpers ------------------------------------------------------------------------


@asynccontextmanager
async def tcp_sockets() -> AsyncIterator[tuple[trio.socket.SocketType, trio.socket.SocketType]]:
    """(one end, other end) of a loopback TCP connection, as trio sockets; closed at the end."""
    server, client = await tcp_stream_pair()
    try:
        yield server.socket, client.socket
    finally:
        server.socket.close()
        client.socket.close()


def message(index: int, size: int) -> bytes:
    """A distinct ASCII message of ``size`` bytes that starts with its index."""
    head = f"{index:08d}".encode()
    return head + bytes([65 + index % 26]) * (size - len(head))


def shrink_buffers(sender: trio.SocketStream, receiver: trio.SocketStream) -> None:
    """Small kernel buffers, so that a few hundred KiB fill the connection."""
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KiB)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)


async def rawsocket_pair(
    *, small_buffers: bool = False, client_exponent: int = 15
) -> tuple[RawSocketTransport, RawSocketTransport]:
    """(router, client) RawSocket transports over loopback TCP."""
    server_stream, client_stream = await tcp_stream_pair()
    if small_buffers:
        shrink_buffers(server_stream, client_stream)
    router, client = await handshake(
        server_stream, client_stream, client_kwargs={"max_length_exponent": client_exponent}
    )
    assert isinstance(router, RawSocketTransport)
    assert isinstance(client, RawSocketTransport)
    return router, client


async def tls_rawsocket_pair(directory: Path) -> tuple[RawSocketTransport, RawSocketTransport]:
    """(router, client) RawSocket transports over TLS on loopback TCP."""
    server_context, client_context = make_tls_contexts(directory)
    server_tcp, client_tcp = await tcp_stream_pair()
    router, client = await handshake(
        trio.SSLStream(server_tcp, server_context, server_side=True),
        trio.SSLStream(client_tcp, client_context, server_hostname="127.0.0.1"),
    )
    assert isinstance(router, RawSocketTransport)
    assert isinstance(client, RawSocketTransport)
    return router, client


SendsMany = RawSocketTransport | WebSocketTransport


def fill(transport: SendsMany, size: int = BIG, per_call: int = 1) -> list[bytes]:
    """try_send_many batches of distinct messages until one is only partly written;
    all the messages, in order."""
    sent: list[bytes] = []
    for _ in range(MAX_FILL):
        batch = [message(len(sent) + i, size) for i in range(per_call)]
        result = transport.try_send_many(batch)
        assert result is not None
        sent += batch
        if result is False:
            return sent
    pytest.fail(f"{MAX_FILL} batches of {per_call} x {size} bytes never filled the socket")


# (message size, messages per try_send_many): one big message, a batch, many small calls
FILLS = [(BIG, 1), (64 * KiB, 4), (8 * KiB, 1)]


async def receive_into(
    transport: RawSocketTransport | WebSocketTransport, count: int, into: list[bytes]
) -> None:
    for _ in range(count):
        into.append(await transport.receive())


async def receive_until_closed(transport: WebSocketTransport, into: list[bytes]) -> None:
    for _ in range(MAX_FILL * 4 + 10):
        try:
            into.append(await transport.receive())
        except TransportClosed:
            return
    pytest.fail("the connection never closed")


# -- socket_of ----------------------------------------------------------------------


async def test_socket_of_a_socket_stream_is_its_socket() -> None:
    server, client = await tcp_stream_pair()
    try:
        assert socket_of(server) is server.socket
        assert socket_of(client) is client.socket
    finally:
        await trio.aclose_forcefully(server)
        await trio.aclose_forcefully(client)


async def test_socket_of_a_unix_socket_stream_is_its_socket() -> None:
    one, two = trio.socket.socketpair()
    streams = trio.SocketStream(one), trio.SocketStream(two)
    try:
        assert socket_of(streams[0]) is one
    finally:
        for stream in streams:
            await trio.aclose_forcefully(stream)


async def test_socket_of_tls_and_memory_streams_is_none() -> None:
    server, client = await tcp_stream_pair()
    try:
        tls = trio.SSLStream(client, ssl.create_default_context(), server_hostname="localhost")
        assert socket_of(tls) is None
    finally:
        await trio.aclose_forcefully(server)
        await trio.aclose_forcefully(client)
    left, right = trio.testing.memory_stream_pair()
    assert socket_of(left) is None
    assert socket_of(trio.testing.lockstep_stream_pair()[0]) is None
    await left.aclose()
    await right.aclose()


# -- receive_some -------------------------------------------------------------------


async def test_receive_some_returns_data_already_there() -> None:
    async with tcp_sockets() as (sock, peer):
        await peer.send(b"hello world")
        await trio.lowlevel.wait_readable(sock)
        with trio.fail_after(5):
            assert await receive_some(sock, 5) == b"hello"
            assert await receive_some(sock, 100) == b" world"


async def test_receive_some_with_data_there_is_still_a_checkpoint() -> None:
    async with tcp_sockets() as (sock, peer):
        await peer.send(b"abc")
        await trio.lowlevel.wait_readable(sock)
        with trio.testing.assert_checkpoints():
            assert await receive_some(sock, 100) == b"abc"


async def test_receive_some_cancelled_before_reading_leaves_the_data() -> None:
    async with tcp_sockets() as (sock, peer):
        await peer.send(b"kept")
        await trio.lowlevel.wait_readable(sock)
        with trio.CancelScope() as scope:
            scope.cancel()
            await receive_some(sock, 100)
        assert scope.cancelled_caught
        with trio.fail_after(5):
            assert await receive_some(sock, 100) == b"kept"


async def test_receive_some_waits_for_data() -> None:
    async with tcp_sockets() as (sock, peer):
        got: list[bytes] = []

        async def reader() -> None:
            got.append(await receive_some(sock, 100))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                assert got == []
                await peer.send(b"late")
        assert got == [b"late"]


async def test_receive_some_at_eof_is_empty() -> None:
    async with tcp_sockets() as (sock, peer):
        await peer.send(b"last")
        peer.close()
        with trio.fail_after(5):
            assert await receive_some(sock, 100) == b"last"
            assert await receive_some(sock, 100) == b""
            assert await receive_some(sock, 100) == b""


async def test_receive_some_on_a_closed_socket_is_closed_resource_error() -> None:
    async with tcp_sockets() as (sock, peer):
        await peer.send(b"unread")
        sock.close()
        with pytest.raises(trio.ClosedResourceError):
            await receive_some(sock, 100)


async def test_receive_some_on_a_closed_descriptor_is_closed_resource_error() -> None:
    async with tcp_sockets() as (sock, _peer):
        os.close(sock.fileno())  # the fd goes, the socket object still has it: EBADF
        try:
            with pytest.raises(trio.ClosedResourceError):
                await receive_some(sock, 100)
            assert write_nowait(sock, b"x") == 0
        finally:
            sock.detach()


async def test_receive_some_closed_while_waiting_is_closed_resource_error() -> None:
    async with tcp_sockets() as (sock, _peer):
        raised: list[BaseException] = []

        async def reader() -> None:
            try:
                await receive_some(sock, 100)
            except trio.ClosedResourceError as exc:
                raised.append(exc)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                sock.close()
        assert len(raised) == 1


async def test_receive_some_after_a_reset_is_broken_resource_error() -> None:
    async with tcp_sockets() as (sock, peer):
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # RST
        with trio.fail_after(5):
            await trio.lowlevel.wait_readable(sock)
            with pytest.raises(trio.BrokenResourceError) as info:
                await receive_some(sock, 100)
        assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_a_cancelled_wait_loses_no_data() -> None:
    async with tcp_sockets() as (sock, peer):
        scopes: list[trio.CancelScope] = []

        async def reader() -> None:
            with trio.CancelScope() as scope:
                scopes.append(scope)
                await receive_some(sock, 100)
                pytest.fail("the receive returned instead of being cancelled")

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                scopes[0].cancel()
            assert scopes[0].cancelled_caught
            await peer.send(b"all of it")
            assert await receive_some(sock, 100) == b"all of it"


# -- write_nowait -------------------------------------------------------------------


async def test_write_nowait_writes_a_small_buffer() -> None:
    async with tcp_sockets() as (sock, peer):
        assert write_nowait(sock, b"0123456789") == 10
        with trio.fail_after(5):
            assert await peer.recv(100) == b"0123456789"


async def test_write_nowait_to_a_full_socket_is_partial_then_zero() -> None:
    async with tcp_sockets() as (sock, _peer):
        chunk = b"z" * MiB
        counts: list[int] = []
        for _ in range(MAX_FILL):
            counts.append(write_nowait(sock, chunk))
            if counts[-1] == 0:
                break
        assert counts[-1] == 0, counts
        partial = [count for count in counts if count < MiB]
        assert 0 < partial[0] < MiB, counts  # the kernel took what fitted
        assert write_nowait(sock, b"y") == 0  # and then nothing


async def test_write_nowait_on_a_closed_socket_is_zero() -> None:
    async with tcp_sockets() as (sock, _peer):
        sock.close()
        assert sock.fileno() == -1
        assert write_nowait(sock, b"data") == 0


async def test_write_nowait_to_a_reset_connection_is_zero() -> None:
    async with tcp_sockets() as (sock, peer):
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        with trio.fail_after(5):
            await trio.lowlevel.wait_readable(sock)
        assert write_nowait(sock, b"data") == 0


# -- RawSocket ----------------------------------------------------------------------


async def test_rawsocket_try_send_many_small_messages_in_order() -> None:
    router, client = await rawsocket_pair()
    with trio.fail_after(10):
        assert router.try_send_many([b"[1]", b"[2]"]) is True
        assert router.try_send_many([b"[3]"]) is True
        assert router.try_send_many([]) is True
        assert [await client.receive() for _ in range(3)] == [b"[1]", b"[2]", b"[3]"]
        await client.send(b"back")  # the client's direction is untouched
        assert await router.receive() == b"back"
    await router.aclose()
    await client.aclose()


@pytest.mark.parametrize(("size", "per_call"), FILLS)
async def test_rawsocket_partial_write_then_flush(size: int, per_call: int) -> None:
    router, client = await rawsocket_pair()
    with trio.fail_after(20):
        sent = fill(router, size, per_call)
        assert router.try_send_many([b"refused"]) is None  # a rest is pending
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_into, client, len(sent), got)
            await router.flush()
        assert got == sent
        assert router.try_send_many([b"again"]) is True
        assert await client.receive() == b"again"
        await router.flush()  # nothing left: a no-op
    await router.aclose()
    await client.aclose()


@pytest.mark.parametrize(("size", "per_call"), FILLS)
async def test_rawsocket_send_after_a_partial_write_sends_the_rest_first(
    size: int, per_call: int
) -> None:
    router, client = await rawsocket_pair()
    with trio.fail_after(20):
        sent = fill(router, size, per_call)
        tail = b"t" * 100_000
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_into, client, len(sent) + 2, got)
            await router.send_many([tail, b"end"])
        assert got == [*sent, tail, b"end"]
        assert router.try_send_many([b"more"]) is True
        assert await client.receive() == b"more"
    await router.aclose()
    await client.aclose()


async def test_rawsocket_try_send_many_while_a_send_is_blocked_is_none() -> None:
    router, client = await rawsocket_pair(small_buffers=True)
    huge = message(7, 4 * MiB)
    with trio.fail_after(20):
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def send_huge() -> None:
                await router.send(huge)
                done.set()

            nursery.start_soon(send_huge)
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set()  # the peer does not read: the writer waits
            assert router.try_send_many([b"small"]) is None
            nursery.start_soon(receive_into, client, 1, got)
        assert got == [huge]
        assert router.try_send_many([b"small"]) is True
        assert await client.receive() == b"small"
    await router.aclose()
    await client.aclose()


async def test_rawsocket_try_send_many_refuses_over_long_messages() -> None:
    router, client = await rawsocket_pair(client_exponent=0)
    assert router.peer_max_length == 512
    with pytest.raises(ValueError, match="maximum of 512"):
        router.try_send_many([b"ok", b"x" * 513])
    with trio.fail_after(10):
        assert router.try_send_many([b"y" * 512]) is True  # nothing of the refused batch went
        assert await client.receive() == b"y" * 512
    await router.aclose()
    await client.aclose()


async def test_rawsocket_try_send_many_after_aclose_is_none() -> None:
    router, client = await rawsocket_pair()
    await router.aclose()
    assert router.try_send_many([b"[1]"]) is None
    with pytest.raises(TransportClosed):
        await router.flush()
    await client.aclose()


async def test_rawsocket_try_send_many_on_tls_is_none(tmp_path: Path) -> None:
    router, client = await tls_rawsocket_pair(tmp_path)
    assert router.try_send_many([b"[1]"]) is None
    with trio.fail_after(10):
        await router.send(b"[2]")
        assert await client.receive() == b"[2]"
    await router.aclose()
    await client.aclose()


async def test_rawsocket_receive_on_a_plain_socket() -> None:
    router, client = await rawsocket_pair()
    with trio.fail_after(10):
        big = message(3, 1 * MiB)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_many, [b"[1]", big, b"[2]"])
            assert [await router.receive() for _ in range(3)] == [b"[1]", big, b"[2]"]
        await client.aclose()
        with pytest.raises(TransportClosed, match="peer closed"):
            await router.receive()
    await router.aclose()


async def test_rawsocket_reads_grow_while_a_large_message_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wamp_trio import _rawsocket

    sizes: list[int] = []

    def recording_read(sock: trio.socket.SocketType, max_bytes: int) -> bytes | None:
        data = read_nowait(sock, max_bytes)
        if data:
            sizes.append(max_bytes)
        return data

    monkeypatch.setattr(_rawsocket, "read_nowait", recording_read)
    router, client = await rawsocket_pair()
    big = message(1, 4 * MiB)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_many, [big, b"[1]"])
            assert await router.receive() == big
            assert await router.receive() == b"[1]"
    # 64 KiB, then four times more after each full read, up to 1 MiB.
    assert sizes[0] == _rawsocket.RECEIVE_SIZE
    assert max(sizes) == _rawsocket.LARGE_RECEIVE_SIZE
    assert set(sizes) <= {64 * KiB, 256 * KiB, MiB}
    assert len(sizes) < 4 * MiB // (64 * KiB)  # fewer reads than in 64 KiB pieces
    sizes.clear()
    await client.send(b"[2]")  # the next receive() starts small again
    assert await router.receive() == b"[2]"
    assert sizes == [_rawsocket.RECEIVE_SIZE]
    await router.aclose()
    await client.aclose()


async def test_rawsocket_large_message_over_tls(tmp_path: Path) -> None:
    router, client = await tls_rawsocket_pair(tmp_path)
    big = message(2, 3 * MiB)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send, big)
            assert await router.receive() == big
    await router.aclose()
    await client.aclose()


async def rawsocket_pair_with_input(
    data: bytes,
) -> tuple[RawSocketTransport, RawSocketTransport]:
    """A rawsocket_pair() whose client has sent ``data``, readable at the router's socket."""
    router, client = await rawsocket_pair()
    await client.send(data)
    await trio.lowlevel.wait_readable(router._stream.socket)  # type: ignore[attr-defined]
    return router, client


async def test_rawsocket_receive_with_data_there_is_still_a_checkpoint() -> None:
    router, client = await rawsocket_pair_with_input(b"[1]")
    with trio.testing.assert_checkpoints():
        assert await router.receive() == b"[1]"
    await router.aclose()
    await client.aclose()


async def test_rawsocket_receive_cancelled_before_reading_loses_nothing() -> None:
    router, client = await rawsocket_pair_with_input(b"[1]")
    with trio.CancelScope() as scope:
        scope.cancel()
        await router.receive()
    assert scope.cancelled_caught
    with trio.fail_after(10):
        assert await router.receive() == b"[1]"
    await router.aclose()
    await client.aclose()


async def test_rawsocket_close_now_wakes_a_waiting_receiver() -> None:
    router, client = await rawsocket_pair()
    assert router.direct_io
    errors: list[str] = []

    async def receive() -> None:
        with pytest.raises(TransportClosed) as info:
            await router.receive()
        errors.append(str(info.value))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            assert router.close_now() is True
        assert errors == ["the RawSocket transport was closed locally"]
        assert router.close_now() is True  # idempotent
        assert router.try_send_many([b"[1]"]) is None
        with pytest.raises(TransportClosed, match="peer closed"):
            await client.receive()  # the peer sees the end at once
    await router.aclose()
    await client.aclose()


async def test_rawsocket_close_now_on_tls_does_nothing(tmp_path: Path) -> None:
    router, client = await tls_rawsocket_pair(tmp_path)
    assert not router.direct_io
    assert router.close_now() is False
    with trio.fail_after(10):
        await router.send(b"[2]")  # still open
        assert await client.receive() == b"[2]"
    await router.aclose()
    await client.aclose()


# -- WebSocket ----------------------------------------------------------------------

WS_SUBPROTOCOLS = ["wamp.2.json", "wamp.2.msgpack"]


@asynccontextmanager
async def websocket_pair(
    subprotocol: str, *, small_buffers: bool = False
) -> AsyncIterator[tuple[WebSocketTransport, WebSocketTransport]]:
    """(server, client) WebSocket transports over loopback TCP; closed at the end."""
    server_stream, client_stream = await tcp_stream_pair()
    if small_buffers:
        shrink_buffers(server_stream, client_stream)
    try:
        accepted: list[WebSocketTransport | None] = []

        async def accept() -> None:
            accepted.append(await accept_websocket(server_stream, subprotocols=[subprotocol]))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(accept)
                client = await connect_websocket(client_stream, "127.0.0.1", "/ws", [subprotocol])
        server = accepted[0]
        assert server is not None
        assert server.info["protocol"] == subprotocol
        try:
            yield server, client
        finally:
            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(server.aclose)
                    nursery.start_soon(client.aclose)
    finally:
        await trio.aclose_forcefully(server_stream)
        await trio.aclose_forcefully(client_stream)


@pytest.mark.parametrize("subprotocol", WS_SUBPROTOCOLS)
async def test_websocket_try_send_many_small_messages_in_order(subprotocol: str) -> None:
    async with websocket_pair(subprotocol) as (server, client):
        long = message(1, 70_000)  # a 64-bit length header
        medium = message(2, 300)  # a 16-bit one
        with trio.fail_after(10):
            assert server.try_send_many([b"[1]", medium, long]) is True
            assert server.try_send_many([b"[2]"]) is True
            got = [await client.receive() for _ in range(4)]
        assert got == [b"[1]", medium, long, b"[2]"]


@pytest.mark.parametrize("subprotocol", WS_SUBPROTOCOLS)
@pytest.mark.parametrize(("size", "per_call"), FILLS)
async def test_websocket_partial_write_then_flush(
    subprotocol: str, size: int, per_call: int
) -> None:
    async with websocket_pair(subprotocol) as (server, client):
        with trio.fail_after(20):
            sent = fill(server, size, per_call)
            assert server.try_send_many([b"refused"]) is None
            got: list[bytes] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_into, client, len(sent), got)
                await server.flush()
            assert got == sent
            assert server.try_send_many([b"again"]) is True
            assert await client.receive() == b"again"
            await server.flush()  # nothing left: a no-op


@pytest.mark.parametrize("subprotocol", WS_SUBPROTOCOLS)
@pytest.mark.parametrize(("size", "per_call"), FILLS)
async def test_websocket_send_after_a_partial_write_sends_the_rest_first(
    subprotocol: str, size: int, per_call: int
) -> None:
    async with websocket_pair(subprotocol) as (server, client):
        with trio.fail_after(20):
            sent = fill(server, size, per_call)
            tail = message(999, 100_000)
            got: list[bytes] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_into, client, len(sent) + 1, got)
                await server.send(tail)
            assert got == [*sent, tail]
            assert server.try_send_many([b"more"]) is True
            assert await client.receive() == b"more"


@pytest.mark.parametrize("subprotocol", WS_SUBPROTOCOLS)
@pytest.mark.parametrize(("size", "per_call"), FILLS)
async def test_websocket_aclose_after_a_partial_write_delivers_the_rest(
    subprotocol: str, size: int, per_call: int
) -> None:
    async with websocket_pair(subprotocol) as (server, client):
        with trio.fail_after(20):
            sent = fill(server, size, per_call)
            got: list[bytes] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_until_closed, client, got)
                await server.aclose()
            assert got == sent
            assert client.close_code == 1000
            assert server.close_code == 1000
            assert server.try_send_many([b"late"]) is None


async def test_websocket_client_role_try_send_many_is_none() -> None:
    async with websocket_pair("wamp.2.json") as (server, client):
        assert client.try_send_many([b"[1]"]) is None
        with trio.fail_after(10):
            await client.send(b"[2]")  # the client sends through send()
            assert await server.receive() == b"[2]"


async def test_websocket_try_send_many_refuses_non_utf8_json() -> None:
    async with websocket_pair("wamp.2.json") as (server, client):
        with pytest.raises(ValueError, match="UTF-8"):
            server.try_send_many([b"[1]", b"\xff\xfe"])
        with trio.fail_after(10):
            assert server.try_send_many([b"[2]"]) is True  # nothing of the refused batch went
            assert await client.receive() == b"[2]"


async def test_websocket_msgpack_takes_any_bytes() -> None:
    async with websocket_pair("wamp.2.msgpack") as (server, client):
        with trio.fail_after(10):
            assert server.try_send_many([b"\xff\xfe"]) is True
            assert await client.receive() == b"\xff\xfe"


@pytest.mark.parametrize("subprotocol", WS_SUBPROTOCOLS)
async def test_websocket_try_send_many_while_a_send_is_blocked_is_none(
    subprotocol: str,
) -> None:
    async with websocket_pair(subprotocol, small_buffers=True) as (server, client):
        huge = message(5, 4 * MiB)
        small: Sequence[bytes] = [b"small"]
        with trio.fail_after(20):
            got: list[bytes] = []
            async with trio.open_nursery() as nursery:
                done = trio.Event()

                async def send_huge() -> None:
                    await server.send(huge)
                    done.set()

                nursery.start_soon(send_huge)
                await trio.testing.wait_all_tasks_blocked()
                assert not done.is_set()
                assert server.try_send_many(small) is None
                nursery.start_soon(receive_into, client, 1, got)
            assert got == [huge]
            assert server.try_send_many(small) is True
            assert await client.receive() == b"small"


async def test_websocket_try_send_many_after_aclose_is_none() -> None:
    async with websocket_pair("wamp.2.msgpack") as (server, client):
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_until_closed, client, [])
                await server.aclose()
        assert server.try_send_many([b"x"]) is None
        assert client.try_send_many([b"x"]) is None


async def raw_messages(raw: RawClient, count: int) -> list[bytes]:
    """The next ``count`` binary messages the raw client gets (reassembled)."""
    messages: list[bytes] = []
    partial = bytearray()
    for _ in range(count * 1000):
        if len(messages) == count:
            return messages
        event = await raw.next_event()
        assert isinstance(event, BytesMessage), event
        partial += event.data
        if event.message_finished:
            messages.append(bytes(partial))
            partial.clear()
    pytest.fail("too many events")


async def test_websocket_pong_goes_after_the_rest_of_a_partial_write() -> None:
    async with raw_pair(["wamp.2.msgpack"]) as (server, raw):
        with trio.fail_after(20):
            sent = fill(server)
            await raw.send(Ping(payload=b"hi"))
            received: list[bytes] = []

            async def serve() -> None:
                received.append(await server.receive())  # answers the ping meanwhile

            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                assert await raw_messages(raw, len(sent)) == sent
                assert await raw.next_event() == Pong(payload=b"hi")
                await raw.send(BytesMessage(data=b"[9]"))
            assert received == [b"[9]"]
            assert server.try_send_many([b"[10]"]) is True
            assert await raw_messages(raw, 1) == [b"[10]"]
