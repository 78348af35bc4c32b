"""HTTP long-poll over real sockets: LongPollServer (h11) and connect_longpoll."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import h11
import pytest
import trio
import trio.testing

import wamp_core
from wamp_trio._longpoll import LongPollServer, connect_longpoll, host_header
from wamp_trio._transport import MessageTransport, TransportClosed

from .test_rawsocket import make_tls_contexts

ALL_PROTOCOLS = list(wamp_core.SERIALIZERS)

# -- test server and raw HTTP client -------------------------------------------------


async def serve_connection(server: LongPollServer, stream: trio.abc.Stream) -> None:
    """What the real dispatcher does for long-poll paths: read the first head, hand over."""
    initial = b""
    while b"\r\n\r\n" not in initial:
        data = await stream.receive_some(65536)
        if not data:
            await stream.aclose()
            return
        initial += data
    await server.serve_http(stream, initial)


class Router:
    """A LongPollServer whose handler hands each transport to the test."""

    def __init__(self) -> None:
        self.opened_send, self.opened = trio.open_memory_channel[MessageTransport](100)

    async def handler(self, transport: MessageTransport) -> None:
        await self.opened_send.send(transport)
        await trio.sleep_forever()


@asynccontextmanager
async def longpoll_server(
    handler: Callable[[MessageTransport], Awaitable[None]],
    *,
    ssl_context: Any = None,
    **kwargs: Any,
) -> AsyncIterator[tuple[LongPollServer, int]]:
    server = LongPollServer(handler, "/lp", **kwargs)
    connection_handler: Callable[[trio.abc.Stream], Awaitable[None]] = functools.partial(
        serve_connection, server
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        listeners = await nursery.start(
            functools.partial(
                trio.serve_tcp,
                (
                    functools.partial(ssl_wrapped, connection_handler, ssl_context)
                    if ssl_context
                    else connection_handler
                ),
                0,
                host="127.0.0.1",
            )
        )
        yield server, listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def ssl_wrapped(
    handler: Callable[[trio.abc.Stream], Awaitable[None]], context: Any, stream: trio.abc.Stream
) -> None:
    await handler(trio.SSLStream(stream, context, server_side=True, https_compatible=True))


@asynccontextmanager
async def router_and_url(**kwargs: Any) -> AsyncIterator[tuple[Router, LongPollServer, str]]:
    router = Router()
    async with longpoll_server(router.handler, **kwargs) as (server, port):
        yield router, server, f"http://127.0.0.1:{port}/lp"


class RawClient:
    """One keep-alive HTTP/1.1 connection driven by hand with h11."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    @asynccontextmanager
    async def connect(cls, port: int) -> AsyncIterator[RawClient]:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            yield cls(stream)

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        all_headers = [("host", "127.0.0.1"), ("content-length", str(len(body)))]
        all_headers += headers or []
        data = self.conn.send(h11.Request(method=method, target=target, headers=all_headers))
        data += self.conn.send(h11.Data(data=body)) if body else b""
        data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        return await self.response()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        status, response_headers, chunks = 0, {}, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some())
            elif type(event) is h11.Response:
                status = event.status_code
                response_headers = {k.decode(): v.decode() for k, v in event.headers}
            elif type(event) is h11.Data:
                chunks.append(event.data)
            elif type(event) is h11.EndOfMessage:
                break
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return status, response_headers, b"".join(chunks)

    async def open(self, *protocols: str) -> str:
        body = json.dumps({"protocols": list(protocols) or ["wamp.2.json"]}).encode()
        status, _, answer = await self.request("POST", "/lp/open", body)
        assert status == 200, answer
        return str(json.loads(answer)["transport"])


async def read_until_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some():
        data += chunk
    return bytes(data)


# -- client against server -------------------------------------------------------------


@pytest.mark.parametrize("protocol", ALL_PROTOCOLS)
async def test_open_send_receive_close(protocol: str) -> None:
    serializer = wamp_core.get_serializer(protocol)
    hello = serializer.encode(wamp_core.Hello("realm1", {"roles": {"caller": {}}}))
    with trio.fail_after(10):
        async with router_and_url() as (router, _, url):
            async with connect_longpoll(url, serializer) as client:
                server = await router.opened.receive()
                assert client.serializer is serializer
                assert server.serializer is serializer
                assert server.info["type"] == "longpoll"
                assert server.info["peer"].startswith("tcp4:127.0.0.1:")
                assert server.info["serializer"] == protocol
                assert client.info["type"] == "longpoll"
                assert client.info["transport_id"] == server.info["transport_id"]
                await client.send(hello)
                assert await server.receive() == hello
                await server.send(b"from the router")
                assert await client.receive() == b"from the router"
                await client.send(b"again")
                assert await server.receive() == b"again"
            with pytest.raises(TransportClosed):
                await server.receive()
            with pytest.raises(TransportClosed):
                await client.receive()
            with pytest.raises(TransportClosed):
                await client.send(b"late")
            await client.aclose()  # idempotent


@pytest.mark.parametrize("protocol", ["wamp.2.json.batched", "wamp.2.msgpack.batched"])
async def test_client_decodes_batches_of_queued_messages(protocol: str) -> None:
    serializer = wamp_core.get_serializer(protocol)
    published = [wamp_core.Event(1, i, {}, [i]) for i in range(1, 6)]
    with trio.fail_after(10):
        async with (
            router_and_url() as (router, _, url),
            connect_longpoll(url, serializer) as client,
        ):
            server = await router.opened.receive()
            for message in published:
                await server.send(serializer.encode(message))
            received: list[wamp_core.Message] = []
            while len(received) < len(published):
                received += serializer.decode(await client.receive())
            assert received == published


async def test_https(tmp_path: Path) -> None:
    server_context, client_context = make_tls_contexts(tmp_path)
    serializer = wamp_core.get_serializer("cbor")
    with trio.fail_after(10):
        router = Router()
        async with longpoll_server(router.handler, ssl_context=server_context) as (_, port):
            url = f"https://127.0.0.1:{port}/lp"
            async with connect_longpoll(url, serializer, ssl_context=client_context) as client:
                server = await router.opened.receive()
                assert server.info["tls"] is True
                assert client.info["tls"] is True
                await client.send(b"\x81\x01")
                assert await server.receive() == b"\x81\x01"
                await server.send(b"\x81\x02")
                assert await client.receive() == b"\x81\x02"


async def test_router_close_delivers_queued_output_then_ends_the_client() -> None:
    serializer = wamp_core.get_serializer("json")
    with trio.fail_after(10):
        async with router_and_url() as (router, server_side, url):
            async with connect_longpoll(url, serializer) as client:
                server = await router.opened.receive()
                await server.send(b'[6,{},"wamp.close.system_shutdown"]')
                await server.aclose()
                await server.aclose()  # idempotent
                with pytest.raises(TransportClosed):
                    await server.send(b"[1]")
                assert await client.receive() == b'[6,{},"wamp.close.system_shutdown"]'
                with pytest.raises(TransportClosed, match="404"):
                    await client.receive()
                with pytest.raises(TransportClosed):
                    await client.send(b"[1]")
            # The client's close was acknowledged: the endpoint forgot the transport.
            assert not server_side.endpoint.transports


async def test_open_refused_without_a_common_protocol() -> None:
    with trio.fail_after(10):
        async with router_and_url(serializers=["wamp.2.cbor"]) as (_, _, url):
            with pytest.raises(TransportClosed, match="no common protocol"):
                async with connect_longpoll(url, wamp_core.get_serializer("json")):
                    pass  # pragma: no cover


async def test_bad_urls() -> None:
    for url in ("ws://127.0.0.1/lp", "http:///lp"):
        with pytest.raises(ValueError, match="long-poll URL"):
            async with connect_longpoll(url, wamp_core.get_serializer("json")):
                pass  # pragma: no cover
    assert host_header("::1", 80, 80) == "[::1]"
    assert host_header("example.com", 8080, 80) == "example.com:8080"


async def test_client_reconnects_when_the_server_closed_an_idle_connection(
    autojump_clock: Any,
) -> None:
    serializer = wamp_core.get_serializer("json")
    async with (
        router_and_url(poll_timeout=2.0, http_timeout=5.0) as (router, _, url),
        connect_longpoll(url, serializer) as client,
    ):
        server = await router.opened.receive()
        await client.send(b"[1]")
        assert await server.receive() == b"[1]"
        await trio.sleep(20)  # virtual time: the server drops the idle send connection
        await client.send(b"[2]")  # on a new connection
        assert await server.receive() == b"[2]"
        await server.send(b"[3]")
        assert await client.receive() == b"[3]"


async def test_many_messages_both_ways_with_backpressure() -> None:
    serializer = wamp_core.get_serializer("msgpack")
    count = 200
    with trio.fail_after(20):
        async with (
            router_and_url(receive_buffer=1, max_queue_messages=2) as (router, _, url),
            connect_longpoll(url, serializer, receive_buffer=1) as client,
        ):
            server = await router.opened.receive()
            async with trio.open_nursery() as nursery:

                async def send_all(transport: MessageTransport) -> None:
                    for i in range(count):
                        await transport.send(b"%d" % i)

                nursery.start_soon(send_all, client)
                nursery.start_soon(send_all, server)
                for i in range(count):
                    assert await server.receive() == b"%d" % i
                    assert await client.receive() == b"%d" % i


# -- the server, with a raw HTTP client -------------------------------------------------


async def test_queued_messages_are_drained_one_by_one_or_batched() -> None:
    with trio.fail_after(10):
        async with (
            router_and_url() as (router, _, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            plain = await http.open("wamp.2.json")
            server = await router.opened.receive()
            for i in range(3):
                await server.send(b"[%d]" % i)
            for i in range(3):
                status, headers, body = await http.request("POST", f"/lp/{plain}/receive")
                assert (status, body) == (200, b"[%d]" % i)
                assert headers["content-type"] == "application/json"
            batched = await http.open("wamp.2.json.batched")
            server = await router.opened.receive()
            encoded = [
                server.serializer.encode(wamp_core.Event(1, i, {}, [i])) for i in range(1, 4)
            ]
            for payload in encoded:
                await server.send(payload)
            status, _, body = await http.request("POST", f"/lp/{batched}/receive?x=123")
            assert (status, body) == (200, b"".join(encoded))
            assert len(server.serializer.decode(body)) == 3


def server_side_port(url: str) -> int:
    return int(url.split(":")[2].split("/", maxsplit=1)[0])


async def test_held_receive_is_released_by_a_router_send() -> None:
    with trio.fail_after(10):
        async with (
            router_and_url() as (router, _, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            transport_id = await http.open()
            server = await router.opened.receive()
            results: list[tuple[int, dict[str, str], bytes]] = []
            async with trio.open_nursery() as nursery:

                async def poll() -> None:
                    results.append(await http.request("POST", f"/lp/{transport_id}/receive"))

                nursery.start_soon(poll)
                await trio.testing.wait_all_tasks_blocked()
                assert not results  # held
                await server.send(b"[36,1,2,{}]")
            assert results[0][0] == 200
            assert results[0][2] == b"[36,1,2,{}]"


async def test_poll_timeout_answers_204(autojump_clock: Any) -> None:
    async with (
        router_and_url(poll_timeout=3.0) as (router, _, url),
        RawClient.connect(server_side_port(url)) as http,
    ):
        transport_id = await http.open()
        await router.opened.receive()
        start = trio.current_time()
        status, headers, body = await http.request("POST", f"/lp/{transport_id}/receive")
        assert (status, body) == (204, b"")
        assert trio.current_time() - start == pytest.approx(3.0)
        assert headers["access-control-allow-origin"] == "*"
        # The connection stays usable (keep-alive).
        status, _, _ = await http.request("POST", f"/lp/{transport_id}/send", b"[1]")
        assert status == 204


async def test_superseded_receive_answers_204() -> None:
    with trio.fail_after(10):
        async with router_and_url() as (router, _, url):
            port = server_side_port(url)
            async with RawClient.connect(port) as first, RawClient.connect(port) as second:
                transport_id = await first.open()
                server = await router.opened.receive()
                results: list[int] = []
                async with trio.open_nursery() as nursery:

                    async def poll() -> None:
                        status, _, _ = await first.request("POST", f"/lp/{transport_id}/receive")
                        results.append(status)

                    nursery.start_soon(poll)
                    await trio.testing.wait_all_tasks_blocked()
                    nursery.start_soon(second.request, "POST", f"/lp/{transport_id}/receive")
                    await trio.testing.wait_all_tasks_blocked()
                    assert results == [204]
                    await server.send(b"[2]")  # answers the second, now held, request


async def test_expiry_detaches_the_handler(autojump_clock: Any) -> None:
    outcome: list[str] = []

    async def handler(transport: MessageTransport) -> None:
        try:
            await transport.receive()
        except TransportClosed:
            outcome.append("closed")

    async with (
        longpoll_server(handler, idle_timeout=7.0) as (server, port),
        RawClient.connect(port) as http,
    ):
        start = trio.current_time()
        transport_id = await http.open()
        while not outcome:
            await trio.sleep(1)
        assert trio.current_time() - start == pytest.approx(7.0, abs=1.0)
        assert not server.endpoint.transports
        status, _, _ = await http.request("POST", f"/lp/{transport_id}/receive")
        assert status == 404


async def test_a_polled_transport_does_not_expire(autojump_clock: Any) -> None:
    async with (
        router_and_url(idle_timeout=5.0, poll_timeout=4.0) as (router, server_side, url),
        RawClient.connect(server_side_port(url)) as http,
    ):
        transport_id = await http.open()
        server = await router.opened.receive()
        for _ in range(5):  # 20 s of polling
            status, _, _ = await http.request("POST", f"/lp/{transport_id}/receive")
            assert status == 204
        await server.send(b"[1]")
        status, _, body = await http.request("POST", f"/lp/{transport_id}/receive")
        assert (status, body) == (200, b"[1]")
        assert server_side.endpoint.transports


async def test_close_then_404() -> None:
    with trio.fail_after(10):
        async with (
            router_and_url() as (router, server_side, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            transport_id = await http.open()
            server = await router.opened.receive()
            status, _, _ = await http.request("POST", f"/lp/{transport_id}/close")
            assert status == 204
            with pytest.raises(TransportClosed):
                await server.receive()
            with pytest.raises(TransportClosed):
                await server.send(b"[1]")
            for operation in ("send", "receive", "close"):
                status, _, body = await http.request(
                    "POST", f"/lp/{transport_id}/{operation}", b"x"
                )
                assert status == 404, body
            assert not server_side.endpoint.transports


async def test_client_close_answers_the_held_receive() -> None:
    with trio.fail_after(10):
        async with router_and_url() as (router, _, url):
            port = server_side_port(url)
            async with RawClient.connect(port) as first, RawClient.connect(port) as second:
                transport_id = await first.open()
                await router.opened.receive()
                results: list[int] = []
                async with trio.open_nursery() as nursery:

                    async def poll() -> None:
                        status, _, _ = await first.request("POST", f"/lp/{transport_id}/receive")
                        results.append(status)

                    nursery.start_soon(poll)
                    await trio.testing.wait_all_tasks_blocked()
                    status, _, _ = await second.request("POST", f"/lp/{transport_id}/close")
                    assert status == 204
                assert results == [204]


async def test_request_body_too_large_gets_413_before_it_is_sent() -> None:
    with trio.fail_after(10):
        async with router_and_url(max_body_size=1000) as (router, _, url):
            port = server_side_port(url)
            async with RawClient.connect(port) as http:
                transport_id = await http.open()
                await router.opened.receive()
                head = (
                    f"POST /lp/{transport_id}/send HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: 5000000\r\nOrigin: https://app.example\r\n\r\n"
                )
                await http.stream.send_all(head.encode())  # and no body
                answer = await read_until_eof(http.stream)
                assert answer.startswith(b"HTTP/1.1 413 ")
                assert b"access-control-allow-origin: https://app.example\r\n" in answer
                assert b"connection: close\r\n" in answer
            async with RawClient.connect(port) as http:  # a chunked body, too large
                transport_id = await http.open()
                await router.opened.receive()
                head = (
                    f"POST /lp/{transport_id}/send HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                )
                chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
                await http.stream.send_all(head.encode() + chunk)
                assert (await read_until_eof(http.stream)).startswith(b"HTTP/1.1 413 ")


async def test_expect_100_continue() -> None:
    with trio.fail_after(10):
        async with (
            router_and_url() as (router, _, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            transport_id = await http.open()
            server = await router.opened.receive()
            head = (
                f"POST /lp/{transport_id}/send HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n"
            )
            await http.stream.send_all(head.encode())
            interim = await http.stream.receive_some()
            assert interim.startswith(b"HTTP/1.1 100 ")
            await http.stream.send_all(b"[1]")
            assert await server.receive() == b"[1]"


async def test_cors_headers() -> None:
    with trio.fail_after(10):
        async with (
            router_and_url() as (_, _, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            origin = [("origin", "https://app.example")]
            status, headers, _ = await http.request("OPTIONS", "/lp/open", headers=origin)
            assert status == 204
            assert headers["access-control-allow-origin"] == "https://app.example"
            assert headers["access-control-allow-credentials"] == "true"
            assert headers["vary"] == "origin"
            assert "POST" in headers["access-control-allow-methods"]
            assert headers["access-control-allow-headers"] == "content-type"
            body = json.dumps({"protocols": ["wamp.2.json"]}).encode()
            status, headers, _ = await http.request("POST", "/lp/open", body, origin)
            assert status == 200
            assert headers["access-control-allow-origin"] == "https://app.example"
            status, headers, _ = await http.request("POST", "/lp/open", body)
            assert headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in headers
            status, headers, _ = await http.request("POST", "/lp/nope/send", b"x")
            assert status == 404
            assert headers["access-control-allow-origin"] == "*"


async def test_http_errors() -> None:
    with trio.fail_after(10):
        async with router_and_url() as (_, _, url):
            port = server_side_port(url)
            async with RawClient.connect(port) as http:
                status, headers, _ = await http.request("GET", "/lp/open")
                assert (status, headers["allow"]) == (405, "POST, OPTIONS")
                status, _, _ = await http.request("POST", "/elsewhere")
                assert status == 404
                status, _, body = await http.request("POST", "/lp/open", b"not json")
                assert status == 400, body
            async with RawClient.connect(port) as http:  # garbage
                await http.stream.send_all(b"POST /lp/open HTTP/1.1\r\nbad header line\r\n\r\n")
                answer = await read_until_eof(http.stream)
                assert answer.startswith(b"HTTP/1.1 400 ")
            async with RawClient.connect(port) as http:  # Connection: close is honoured
                status, headers, _ = await http.request(
                    "POST", "/lp/x/receive", headers=[("connection", "close")]
                )
                assert status == 404
                assert headers["connection"] == "close"
                assert await read_until_eof(http.stream) == b""


async def test_http_idle_connection_is_closed(autojump_clock: Any) -> None:
    async with (
        router_and_url(http_timeout=5.0) as (_, _, url),
        RawClient.connect(server_side_port(url)) as http,
    ):
        await http.open()
        start = trio.current_time()
        assert await read_until_eof(http.stream) == b""
        assert trio.current_time() - start == pytest.approx(5.0)


async def test_send_waits_for_the_wamp_side() -> None:
    """A client's send is answered only once the WAMP side has room for it."""
    with trio.fail_after(10):
        async with (
            router_and_url(receive_buffer=0) as (router, _, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            transport_id = await http.open()
            server = await router.opened.receive()
            results: list[int] = []
            async with trio.open_nursery() as nursery:

                async def send() -> None:
                    status, _, _ = await http.request("POST", f"/lp/{transport_id}/send", b"[1]")
                    results.append(status)

                nursery.start_soon(send)
                await trio.testing.wait_all_tasks_blocked()
                assert not results  # waiting for the WAMP side
                assert await server.receive() == b"[1]"
            assert results == [204]


async def test_router_send_waits_while_the_queue_is_full() -> None:
    with trio.fail_after(10):
        async with (
            router_and_url(max_queue_messages=1) as (router, _, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            transport_id = await http.open()
            server = await router.opened.receive()
            await server.send(b"[1]")
            sent: list[bytes] = []
            async with trio.open_nursery() as nursery:

                async def send() -> None:
                    await server.send(b"[2]")
                    sent.append(b"[2]")

                nursery.start_soon(send)
                await trio.testing.wait_all_tasks_blocked()
                assert not sent  # the queue is full
                status, _, body = await http.request("POST", f"/lp/{transport_id}/receive")
                assert (status, body) == (200, b"[1]")
            assert sent == [b"[2]"]
            status, _, body = await http.request("POST", f"/lp/{transport_id}/receive")
            assert (status, body) == (200, b"[2]")
            with pytest.raises(ValueError, match="empty"):
                await server.send(b"")


async def test_router_send_blocked_on_a_full_queue_ends_when_the_client_closes() -> None:
    with trio.fail_after(10):
        async with (
            router_and_url(max_queue_messages=1) as (router, _, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            transport_id = await http.open()
            server = await router.opened.receive()
            await server.send(b"[1]")
            async with trio.open_nursery() as nursery:

                async def send() -> None:
                    with pytest.raises(TransportClosed):
                        await server.send(b"[2]")

                nursery.start_soon(send)
                await trio.testing.wait_all_tasks_blocked()
                status, _, _ = await http.request("POST", f"/lp/{transport_id}/close")
                assert status == 204


async def test_a_disconnected_poller_loses_no_message() -> None:
    with trio.fail_after(10):
        async with router_and_url() as (router, server_side, url):
            port = server_side_port(url)
            async with RawClient.connect(port) as http:
                transport_id = await http.open()
                server = await router.opened.receive()
            async with RawClient.connect(port) as poller:
                head = f"POST /lp/{transport_id}/receive HTTP/1.1\r\nHost: x\r\n\r\n"
                await poller.stream.send_all(head.encode())
                await trio.testing.wait_all_tasks_blocked()
                assert server_side.endpoint.transports[transport_id].polling
            await trio.testing.wait_all_tasks_blocked()  # the server notices the disconnect
            assert not server_side.endpoint.transports[transport_id].polling
            await server.send(b"[1]")
            async with RawClient.connect(port) as http:
                status, _, body = await http.request("POST", f"/lp/{transport_id}/receive")
                assert (status, body) == (200, b"[1]")


@pytest.mark.parametrize("split", [False, True])
async def test_pipelined_request_behind_a_held_receive(split: bool) -> None:
    """A request pipelined behind a held receive waits its turn, whether it came
    with the receive or while the receive was held."""
    with trio.fail_after(10):
        async with (
            router_and_url() as (router, _, url),
            RawClient.connect(server_side_port(url)) as http,
        ):
            transport_id = await http.open()
            server = await router.opened.receive()
            receive = f"POST /lp/{transport_id}/receive HTTP/1.1\r\nHost: x\r\n\r\n"
            send = (
                f"POST /lp/{transport_id}/send HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n[9]"
            )
            if split:
                await http.stream.send_all(receive.encode())
                await trio.testing.wait_all_tasks_blocked()
                await http.stream.send_all(send.encode())
            else:
                await http.stream.send_all(receive.encode() + send.encode())
            await trio.testing.wait_all_tasks_blocked()
            await server.send(b"[1]")
            http.conn.send(h11.Request(method="POST", target="/", headers=[("host", "x")]))
            http.conn.send(h11.EndOfMessage())
            status, _, body = await http.response()
            assert (status, body) == (200, b"[1]")
            assert await server.receive() == b"[9]"


async def test_serve_http_before_run_answers_503() -> None:
    server = LongPollServer(Router().handler)
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        port = listener.socket.getsockname()[1]
        with trio.fail_after(10):
            async with RawClient.connect(port) as http, trio.open_nursery() as nursery:
                head = b"POST /lp/open HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                await http.stream.send_all(head)
                stream = await listener.accept()
                nursery.start_soon(serve_connection, server, stream)
                answer = await read_until_eof(http.stream)
                assert answer.startswith(b"HTTP/1.1 503 ")


async def test_run_twice_is_an_error() -> None:
    server = LongPollServer(Router().handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        with pytest.raises(RuntimeError, match="already running"):
            await server.run()
        nursery.cancel_scope.cancel()


async def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="positive"):
        LongPollServer(Router().handler, poll_timeout=0)
    with pytest.raises(wamp_core.LocalProtocolError):
        LongPollServer(Router().handler, "no-slash")


async def test_client_send_refused_ends_the_transport() -> None:
    serializer = wamp_core.get_serializer("json")
    with trio.fail_after(10):
        async with router_and_url(max_body_size=100) as (router, _, url):
            async with connect_longpoll(url, serializer) as client:
                server = await router.opened.receive()
                with pytest.raises(ValueError, match="empty"):
                    await client.send(b"")
                with pytest.raises(TransportClosed, match="413"):
                    await client.send(b"x" * 101)  # 413, and the server closes the connection
                with pytest.raises(TransportClosed, match="413"):
                    await client.receive()
                with pytest.raises(TransportClosed):
                    await client.send(b"[1]")
            with pytest.raises(TransportClosed):
                await server.receive()  # the close was still posted


async def test_client_sees_the_server_go_away() -> None:
    serializer = wamp_core.get_serializer("json")
    with trio.fail_after(10):
        router = Router()
        async with trio.open_nursery() as outer:
            server_scope = trio.CancelScope()
            ports: list[int] = []
            ready = trio.Event()

            async def run_server() -> None:
                with server_scope:
                    async with longpoll_server(router.handler) as (_, port):
                        ports.append(port)
                        ready.set()
                        await trio.sleep_forever()

            outer.start_soon(run_server)
            await ready.wait()
            async with connect_longpoll(f"http://127.0.0.1:{ports[0]}/lp", serializer) as client:
                await router.opened.receive()
                server_scope.cancel()
                with pytest.raises(TransportClosed):
                    await client.receive()
                with pytest.raises(TransportClosed):
                    await client.send(b"[1]")


async def fake_http_server(
    answer: bytes, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answers every connection's first request with ``answer`` and closes."""

    async def handle(stream: trio.abc.Stream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            if not chunk:
                break
            data += chunk
        if answer:
            await stream.send_all(answer)
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", "HTTP request failed"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnope!", "unusable answer"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n"
            b'{"protocol": "wamp.2.cbor", "transport": "x"}',
            "not offered",
        ),
    ],
)
async def test_client_refuses_bad_open_answers(answer: bytes, error: str) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(fake_http_server, answer)
            with pytest.raises(TransportClosed, match=error):
                async with connect_longpoll(
                    f"http://127.0.0.1:{port}/lp", wamp_core.get_serializer("json")
                ):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()
