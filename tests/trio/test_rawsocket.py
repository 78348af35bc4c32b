"""RawSocket over real trio streams: TCP, Unix, TLS; handshake errors; framing; limits."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import wamp_core
from wamp_trio._rawsocket import RawSocketTransport, accept_rawsocket, connect_rawsocket
from wamp_trio._transport import MessageTransport, TransportClosed

SERIALIZERS = ["json", "msgpack", "cbor"]

# -- helpers ------------------------------------------------------------------------


def make_tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for a fresh self-signed certificate for 127.0.0.1 / localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_file = directory / "cert.pem"
    key_file = directory / "key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


async def tcp_stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    """(server side, client side) of a real loopback TCP connection."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listener.accept()
    assert isinstance(server, trio.SocketStream)
    return server, client


async def unix_stream_pair(path: Path) -> tuple[trio.abc.Stream, trio.abc.Stream]:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(str(path))
    sock.listen()
    async with trio.SocketListener(sock) as listener:
        client = await trio.open_unix_socket(str(path))
        server = await listener.accept()
    return server, client


async def handshake(
    server_stream: trio.abc.Stream,
    client_stream: trio.abc.Stream,
    serializer: str = "json",
    *,
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> tuple[MessageTransport, MessageTransport]:
    """Run both handshakes concurrently; (router transport, client transport)."""
    results: dict[str, Any] = {}

    async def router() -> None:
        results["router"] = await accept_rawsocket(server_stream, **(server_kwargs or {}))

    async def client() -> None:
        results["client"] = await connect_rawsocket(
            client_stream, wamp_core.get_serializer(serializer), **(client_kwargs or {})
        )

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router)
            nursery.start_soon(client)
    assert results["router"] is not None
    return results["router"], results["client"]


async def exchange(router: MessageTransport, client: MessageTransport, *payloads: bytes) -> None:
    """Every payload goes both ways intact and in order."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def send_all(transport: MessageTransport) -> None:
                for payload in payloads:
                    await transport.send(payload)

            nursery.start_soon(send_all, router)
            nursery.start_soon(send_all, client)
            for payload in payloads:
                assert await client.receive() == payload
                assert await router.receive() == payload


def frame(frame_type: int, payload: bytes) -> bytes:
    return struct.pack(">I", (frame_type << 24) | len(payload)) + payload


async def receive_exactly(stream: trio.abc.ReceiveStream, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = await stream.receive_some(count - len(data))
        assert chunk, f"EOF after {bytes(data)!r}"
        data += chunk
    return bytes(data)


async def receive_until_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some():
        data += chunk
    return bytes(data)


async def lockstep_handshake(
    server_stream: trio.abc.Stream,
    client_stream: trio.abc.Stream,
    connection: wamp_core.RawSocketClient,
) -> MessageTransport:
    """Handshake over a lockstep pair (every write waits for its reader)."""
    results: list[MessageTransport | None] = []

    async def accept() -> None:
        results.append(await accept_rawsocket(server_stream))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        await client_stream.send_all(connection.data_to_send())
        connection.receive_data(await client_stream.receive_some())
    (transport,) = results
    assert transport is not None
    return transport


async def raw_router_test(
    client_bytes: bytes,
    check: Callable[[trio.SocketStream], Awaitable[None]],
    **kwargs: Any,
) -> None:
    """Send ``client_bytes`` from a raw client to a refusing ``accept_rawsocket``;
    ``check`` reads the client stream (then it is closed, as real clients do)."""
    server_stream, client_stream = await tcp_stream_pair()
    results: list[MessageTransport | None] = []

    async def accept() -> None:
        results.append(await accept_rawsocket(server_stream, **kwargs))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            async with client_stream:
                await client_stream.send_all(client_bytes)
                await check(client_stream)
    assert results == [None]


# -- round trips over each stream type ---------------------------------------------


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_tcp_roundtrip(serializer: str) -> None:
    router, client = await handshake(*await tcp_stream_pair(), serializer)
    expected = wamp_core.get_serializer(serializer)
    for transport in (router, client):
        assert transport.serializer is expected
        assert transport.info["type"] == "rawsocket"
        assert transport.info["serializer"] == expected.subprotocol
        assert transport.info["peer"].startswith("tcp4:127.0.0.1:")
        assert transport.info["tls"] is False
    message = expected.encode(wamp_core.Hello("realm1", {"roles": {"caller": {}}}))
    await exchange(router, client, message, b"second", b"third")
    await client.aclose()
    with pytest.raises(TransportClosed):
        await router.receive()
    await router.aclose()


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_unix_roundtrip(tmp_path: Path, serializer: str) -> None:
    router, client = await handshake(*await unix_stream_pair(tmp_path / "s"), serializer)
    assert router.info["peer"].startswith("unix")
    assert router.serializer.codec == serializer
    await exchange(router, client, b"[1]", b"x" * 100_000)
    await router.aclose()
    with pytest.raises(TransportClosed):
        await client.receive()
    await client.aclose()


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_tls_roundtrip(tmp_path: Path, serializer: str) -> None:
    server_context, client_context = make_tls_contexts(tmp_path)
    server_tcp, client_tcp = await tcp_stream_pair()
    server_stream = trio.SSLStream(server_tcp, server_context, server_side=True)
    client_stream = trio.SSLStream(client_tcp, client_context, server_hostname="127.0.0.1")
    router, client = await handshake(server_stream, client_stream, serializer)
    assert router.info["tls"] is True
    assert router.info["peer"].startswith("tcp4:127.0.0.1:")
    await exchange(router, client, b"hello", b"y" * 300_000)
    await client.aclose()
    with pytest.raises(TransportClosed):
        await router.receive()
    await router.aclose()


async def test_zero_and_one_mebibyte_messages() -> None:
    router, client = await handshake(*await tcp_stream_pair(), "msgpack")
    await exchange(router, client, b"", bytes(range(256)) * 4096, b"")
    await router.aclose()
    await client.aclose()


async def test_messages_pipelined_with_the_handshake() -> None:
    server_stream, client_stream = await tcp_stream_pair()
    async with client_stream:
        request = bytes((0x7F, 0xF1, 0, 0))
        await client_stream.send_all(request + frame(0, b"[1]") + frame(1, b"p") + frame(0, b"[2]"))
        with trio.fail_after(10):
            transport = await accept_rawsocket(server_stream, b"")
            assert transport is not None
            assert await receive_exactly(client_stream, 4) == bytes((0x7F, 0xF1, 0, 0))
            assert await receive_exactly(client_stream, 5) == frame(2, b"p")  # the PONG
            assert await transport.receive() == b"[1]"
            assert await transport.receive() == b"[2]"
        await transport.aclose()


async def test_initial_bytes_are_the_start_of_the_request() -> None:
    server_stream, client_stream = await tcp_stream_pair()
    async with client_stream:
        await client_stream.send_all(bytes((0xF2, 0, 0)) + frame(0, b"\x91\x01"))
        with trio.fail_after(10):
            transport = await accept_rawsocket(server_stream, b"\x7f")
            assert transport is not None
            assert transport.serializer.codec == "msgpack"
            assert await transport.receive() == b"\x91\x01"
        await transport.aclose()


async def test_concurrent_senders_never_interleave_frames() -> None:
    router, client = await handshake(*await tcp_stream_pair())
    payloads = {bytes([i]) * (20_000 + i) for i in range(20)}
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for payload in payloads:
                nursery.start_soon(client.send, payload)
            received = {await router.receive() for _ in payloads}
    assert received == payloads
    await router.aclose()
    await client.aclose()


# -- handshake errors ----------------------------------------------------------------


async def test_unsupported_serializer_gets_code_1_then_close() -> None:
    async def check(stream: trio.SocketStream) -> None:
        assert await receive_until_eof(stream) == bytes((0x7F, 0x10, 0, 0))

    await raw_router_test(bytes((0x7F, 0xF4, 0, 0)), check)  # UBJSON
    await raw_router_test(bytes((0x7F, 0xF3, 0, 0)), check, serializers=(1, 2))
    await raw_router_test(bytes((0x7F, 0xF0, 0, 0)), check)  # serializer 0 is illegal


async def test_reserved_bits_get_code_3_then_close() -> None:
    async def check(stream: trio.SocketStream) -> None:
        assert await receive_until_eof(stream) == bytes((0x7F, 0x30, 0, 0))

    await raw_router_test(bytes((0x7F, 0xF1, 0, 1)), check)
    # Input after the refused request is read and discarded: the reply still arrives.
    await raw_router_test(bytes((0x7F, 0xF1, 1, 0)) + b"z" * 100_000, check)


async def test_bad_magic_byte_closes_without_reply() -> None:
    async def check(stream: trio.SocketStream) -> None:
        assert await receive_until_eof(stream) == b""

    await raw_router_test(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", check)


async def test_handshake_timeout_drops_a_silent_client(autojump_clock: Any) -> None:
    for request in (b"", b"\x7f\xf1"):  # nothing, or too little
        server_stream, client_stream = await tcp_stream_pair()
        async with client_stream:
            await client_stream.send_all(request)
            start = trio.current_time()
            result = await accept_rawsocket(server_stream, handshake_timeout=7.0)
            assert result is None
            assert trio.current_time() - start == pytest.approx(7.0)
            assert await receive_until_eof(client_stream) == b""


async def test_accept_refuses_serializer_ids_the_core_lacks() -> None:
    server_stream, client_stream = await tcp_stream_pair()
    async with server_stream, client_stream:
        with pytest.raises(ValueError, match="serializer"):
            await accept_rawsocket(server_stream, serializers=(1, 4))


async def test_client_sees_the_rejection_code() -> None:
    server_stream, client_stream = await tcp_stream_pair()

    async def router() -> None:
        assert await accept_rawsocket(server_stream, serializers=(1,)) is None

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router)
            with pytest.raises(TransportClosed, match="rejected") as caught:
                await connect_rawsocket(client_stream, wamp_core.get_serializer("cbor"))
    cause = caught.value.__cause__
    assert isinstance(cause, wamp_core.RawSocketRejected)
    assert cause.code == wamp_core.RawSocketErrorCode.SERIALIZER_UNSUPPORTED


async def test_client_sees_a_router_that_closes() -> None:
    server_stream, client_stream = await tcp_stream_pair()
    await server_stream.aclose()
    with trio.fail_after(10), pytest.raises(TransportClosed):
        await connect_rawsocket(client_stream, wamp_core.get_serializer("json"))


async def test_client_refuses_batched_serializers() -> None:
    server_stream, client_stream = await tcp_stream_pair()
    async with server_stream, client_stream:
        with pytest.raises(ValueError, match="batched"):
            await connect_rawsocket(client_stream, wamp_core.get_serializer("wamp.2.json.batched"))


# -- PING / PONG ---------------------------------------------------------------------


async def test_ping_is_answered_with_the_same_payload() -> None:
    server_stream, client_stream = await tcp_stream_pair()
    async with client_stream:
        await client_stream.send_all(bytes((0x7F, 0xF1, 0, 0)))
        with trio.fail_after(10):
            transport = await accept_rawsocket(server_stream)
            assert transport is not None
            assert await receive_exactly(client_stream, 4) == bytes((0x7F, 0xF1, 0, 0))
            for payload in (b"", b"ping-payload", bytes(range(256)) * 40):
                await client_stream.send_all(
                    frame(1, payload) + frame(0, b"[" + payload[:1] + b"]")
                )
                assert await transport.receive() == b"[" + payload[:1] + b"]"
                header = await receive_exactly(client_stream, 4)
                assert header == struct.pack(">I", (2 << 24) | len(payload))
                assert await receive_exactly(client_stream, len(payload)) == payload
        await transport.aclose()


async def test_pong_does_not_wait_behind_a_blocked_writer() -> None:
    """The writer is stuck (the peer does not read); a PING arriving meanwhile
    neither blocks ``receive`` nor gets lost: the writer sends the PONG next."""
    server_stream, client_stream = trio.testing.lockstep_stream_pair()
    connection = wamp_core.RawSocketClient(1)
    with trio.fail_after(10):
        transport = await lockstep_handshake(server_stream, client_stream, connection)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport.send, b"[1,2,3]")  # blocks: nobody reads yet
            await trio.testing.wait_all_tasks_blocked()
            connection.send_ping(b"are you there")
            connection.send_message(b"[4]")
            nursery.start_soon(client_stream.send_all, connection.data_to_send())
            assert await transport.receive() == b"[4]"  # not stuck behind the writer
            events: list[wamp_core.RawSocketEvent] = []
            while len(events) < 2:
                events += connection.receive_data(await client_stream.receive_some())
        assert events == [
            wamp_core.RawSocketMessage(b"[1,2,3]"),
            wamp_core.RawSocketPong(b"are you there"),
        ]
    await transport.aclose()


async def test_send_ping_and_pong_are_not_messages() -> None:
    router, client = await handshake(*await tcp_stream_pair())
    assert isinstance(client, RawSocketTransport)
    await client.send_ping(b"abc")
    await client.send(b"[1]")
    with trio.fail_after(10):
        assert await router.receive() == b"[1]"
        await router.send(b"[2]")
        assert await client.receive() == b"[2]"  # the PONG was skipped
    with pytest.raises(ValueError, match="PING"):
        await client.send_ping(b"x" * (client.peer_max_length + 1))
    await router.aclose()
    await client.aclose()
    with pytest.raises(TransportClosed):
        await client.send_ping()


# -- limits and failures -------------------------------------------------------------


async def test_send_refuses_messages_over_the_peers_limit() -> None:
    router, client = await handshake(
        *await tcp_stream_pair(),
        server_kwargs={"max_length_exponent": 1},  # 1 KiB
        client_kwargs={"max_length_exponent": 0},  # 512 bytes
    )
    assert isinstance(router, RawSocketTransport)
    assert isinstance(client, RawSocketTransport)
    assert router.peer_max_length == 512
    assert client.peer_max_length == 1024
    with pytest.raises(ValueError, match="maximum of 512"):
        await router.send(b"x" * 513)
    with pytest.raises(ValueError, match="maximum of 1024"):
        await client.send(b"x" * 1025)
    await exchange(router, client, b"x" * 512)  # the limit itself is fine
    await client.send(b"y" * 1024)
    with trio.fail_after(10):
        assert await router.receive() == b"y" * 1024
    await router.aclose()
    await client.aclose()


async def test_an_over_long_frame_from_the_peer_fails_the_transport() -> None:
    server_stream, client_stream = await tcp_stream_pair()
    async with client_stream:
        await client_stream.send_all(bytes((0x7F, 0xF1, 0, 0)))
        with trio.fail_after(10):
            transport = await accept_rawsocket(server_stream, max_length_exponent=0)
            assert transport is not None
            await receive_exactly(client_stream, 4)
            await client_stream.send_all(frame(0, b"x" * 513))
            with pytest.raises(TransportClosed, match="maximum is 512"):
                await transport.receive()
            assert await receive_until_eof(client_stream) == b""
            with pytest.raises(TransportClosed, match="maximum is 512"):
                await transport.send(b"[1]")
        await transport.aclose()


async def test_closed_transport_refuses_everything() -> None:
    router, client = await handshake(*await tcp_stream_pair())
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(TransportClosed):
        await client.send(b"[1]")
    with pytest.raises(TransportClosed):
        await client.receive()
    with trio.fail_after(10), pytest.raises(TransportClosed):
        await router.receive()
    with pytest.raises(TransportClosed):
        await router.send(b"[1]")
    await router.aclose()


async def test_messages_received_before_the_close_are_still_delivered() -> None:
    router, client = await handshake(*await tcp_stream_pair())
    await client.send(b"[1]")
    await client.send(b"[2]")
    await client.aclose()
    with trio.fail_after(10):
        assert await router.receive() == b"[1]"
        assert await router.receive() == b"[2]"
        with pytest.raises(TransportClosed):
            await router.receive()
    await router.aclose()


async def test_a_send_cancelled_mid_write_closes_the_transport() -> None:
    server_stream, client_stream = trio.testing.lockstep_stream_pair()
    with trio.fail_after(10):
        transport = await lockstep_handshake(
            server_stream, client_stream, wamp_core.RawSocketClient(1)
        )
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(transport.send, b"[1]")
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        with pytest.raises(TransportClosed, match="interrupted"):
            await transport.send(b"[2]")
    await transport.aclose()


async def test_info_from_the_dispatcher_is_merged() -> None:
    router, client = await handshake(
        *await tcp_stream_pair(), server_kwargs={"info": {"peer": "tcp4:1.2.3.4:5", "x": 1}}
    )
    assert router.info == {
        "type": "rawsocket",
        "peer": "tcp4:1.2.3.4:5",
        "tls": False,
        "x": 1,
        "serializer": "wamp.2.json",
    }
    await router.aclose()
    await client.aclose()


async def test_ipv6_peer() -> None:
    try:
        (listener,) = await trio.open_tcp_listeners(0, host="::1")
    except OSError:  # pragma: no cover - no IPv6 loopback here
        pytest.skip("no IPv6 loopback")
    async with listener:
        port = listener.socket.getsockname()[1]
        client_stream = await trio.open_tcp_stream("::1", port)
        server_stream = await listener.accept()
    router, client = await handshake(server_stream, client_stream)
    assert router.info["peer"].startswith("tcp6:::1:")
    assert client.info["peer"] == f"tcp6:::1:{port}"
    await router.aclose()
    await client.aclose()


async def test_sending_to_a_vanished_peer_ends_in_transport_closed() -> None:
    router, client = await handshake(*await tcp_stream_pair())
    await client.aclose()

    async def send_until_refused() -> None:
        while True:  # the first writes may still succeed; the reset comes back
            await router.send(b"x" * 65536)

    with trio.fail_after(10), pytest.raises(TransportClosed, match="broken"):
        await send_until_refused()
    with pytest.raises(TransportClosed):
        await router.receive()
    await router.aclose()


async def test_send_many_sends_one_frame_per_message() -> None:
    router, client = await handshake(*await tcp_stream_pair(), "json")
    assert isinstance(router, RawSocketTransport)
    assert isinstance(client, RawSocketTransport)
    messages = [b"[1]", b"", b"x" * 70_000, b"[2]"]
    await router.send_many(messages)
    with trio.fail_after(10):
        received = [await client.receive()]
        while len(received) < len(messages):
            data = client.receive_buffered()
            received.append(await client.receive() if data is None else data)
    assert received == messages
    assert client.receive_buffered() is None
    await router.aclose()
    await client.aclose()


async def test_send_many_refuses_a_batch_over_the_peers_limit_and_sends_nothing() -> None:
    router, client = await handshake(
        *await tcp_stream_pair(), client_kwargs={"max_length_exponent": 0}
    )
    assert isinstance(router, RawSocketTransport)
    with pytest.raises(ValueError, match="maximum of 512"):
        await router.send_many([b"[1]", b"x" * 513])
    await router.send(b"[2]")
    with trio.fail_after(10):
        assert await client.receive() == b"[2]"
    await router.aclose()
    with pytest.raises(TransportClosed):
        await router.send_many([b"[3]"])
    await client.aclose()
