"""An Autobahn|Python (asyncio) client that exercises a router, for interop tests.

Run as ``python autobahn_probe.py URL SERIALIZER [REALM [IDLE]]`` where URL is
``ws://host:port/path``, ``rs://host:port`` or ``unix:///path``. It registers a
procedure, calls it, calls a missing one, subscribes, publishes (acknowledged,
not excluded), receives its own event, calls with progressive results, and
prints one JSON line with what it saw; exit status 0 on success. With IDLE
(seconds), it first stays silent that long after joining (a router's keepalive
must not end the session meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from urllib.parse import urlparse

import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
)
from autobahn.wamp.types import (  # noqa: E402
    CallOptions,
    ComponentConfig,
    PublishOptions,
    RegisterOptions,
)

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}


class Probe(ApplicationSession):
    """Runs the checks once joined, then leaves."""

    result: dict[str, Any]
    done: asyncio.Future[dict[str, Any]]
    idle: float = 0.0

    async def onJoin(self, details: Any) -> None:
        result: dict[str, Any] = {"session": details.session, "authrole": details.authrole}
        try:
            await asyncio.sleep(self.idle)
            await self.register(lambda a, b: a + b, "com.example.add2")
            result["call"] = await self.call("com.example.add2", 2, 3)

            async def echo_bytes(data: bytes) -> str:
                return data.hex()

            await self.register(echo_bytes, "com.example.hex")
            result["binary"] = await self.call("com.example.hex", b"\x00\x01\xff")
            try:
                await self.call("com.example.missing")
            except ApplicationError as exc:
                result["missing"] = exc.error
            got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

            def on_event(*args: Any, **kwargs: Any) -> None:
                if not got.done():
                    got.set_result({"args": list(args), "kwargs": kwargs})

            await self.subscribe(on_event, "com.example.topic")
            publication = await self.publish(
                "com.example.topic", 1, "two", x=3,
                options=PublishOptions(acknowledge=True, exclude_me=False),
            )  # fmt: skip
            result["published"] = publication.id > 0
            result["event"] = await asyncio.wait_for(got, 10)

            async def countdown(n: int, details: Any = None) -> str:
                if details is not None and details.progress:
                    for i in range(n, 0, -1):
                        details.progress(i)
                return "liftoff"

            await self.register(
                countdown, "com.example.countdown", options=RegisterOptions(details_arg="details")
            )
            chunks: list[Any] = []
            final = await self.call(
                "com.example.countdown", 3, options=CallOptions(on_progress=chunks.append)
            )
            result["progress"] = [chunks, final]
        except Exception as exc:  # report, don't hang
            result["exception"] = repr(exc)
        self.result = result
        self.leave()

    def onLeave(self, details: Any) -> None:
        self.result["leave_reason"] = details.reason
        self.disconnect()

    def onDisconnect(self) -> None:
        if not self.done.done():
            self.done.set_result(self.result)


async def main(url: str, serializer_name: str, realm: str, idle: float = 0.0) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict[str, Any]] = loop.create_future()

    def make_session() -> Probe:
        session = Probe(ComponentConfig(realm=realm))
        session.done = done
        session.result = {}
        session.idle = idle
        return session

    serializer = SERIALIZERS[serializer_name]()
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    if parsed.scheme == "ws":
        factory: Any = WampWebSocketClientFactory(make_session, url=url, serializers=[serializer])
        await loop.create_connection(factory, host, port)
    elif parsed.scheme == "rs":
        factory = WampRawSocketClientFactory(make_session, serializer=serializer)
        await loop.create_connection(factory, host, port)
    elif parsed.scheme == "unix":
        factory = WampRawSocketClientFactory(make_session, serializer=serializer)
        await loop.create_unix_connection(factory, parsed.path)
    else:
        raise SystemExit(f"unsupported URL {url}")
    result = await asyncio.wait_for(done, 30 + idle)
    print(json.dumps(result))
    return 0 if "exception" not in result else 1


if __name__ == "__main__":
    sys.exit(
        asyncio.run(
            main(
                sys.argv[1],
                sys.argv[2],
                sys.argv[3] if len(sys.argv) > 3 else "realm1",
                float(sys.argv[4]) if len(sys.argv) > 4 else 0.0,
            )
        )
    )
